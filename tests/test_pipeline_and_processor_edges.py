"""Edge cases of the pipeline, the processor, dense sampling and frame folders that once gave wrong results silently
(a tuple of videos, templates that never insert the label, a file's frame rate overridden in window mode only, ...)
or failed badly (return_tensors per modality, windows shorter than a frame)."""

from __future__ import annotations

import io
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from .test_pipeline import LABELS, SHORT_MP4, TASK, WEBM, as_dict


@pytest.fixture(scope="module")
def classifier(tiny_omniclip_dir):
    import omniclip_hf  # noqa: F401  (registers the task)
    from transformers import pipeline

    return pipeline(TASK, model=str(tiny_omniclip_dir), device="cpu")


def tiny_video(seed: int = 0, frames: int = 12) -> np.ndarray:
    """An in-memory `(T, H, W, 3)` uint8 video: nothing to decode."""
    return np.random.default_rng(seed).integers(0, 256, size=(frames, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def processor(tiny_omniclip_dir):
    from omniclip_hf import OmniCLIPProcessor

    return OmniCLIPProcessor.from_pretrained(str(tiny_omniclip_dir))


# ----------------------------------------------------------------------------------------------------------------
# 1. A tuple of videos is a batch; postprocess scores one video at a time
# ----------------------------------------------------------------------------------------------------------------
def test_tuple_of_videos_is_a_batch_like_a_list(classifier):
    as_list = classifier([str(SHORT_MP4), str(WEBM)], candidate_labels=LABELS)
    as_tuple = classifier((str(SHORT_MP4), str(WEBM)), candidate_labels=LABELS)
    assert len(as_tuple) == 2
    for listed, tupled in zip(as_list, as_tuple):
        assert as_dict(tupled) == pytest.approx(as_dict(listed))
    # Arrays too; a tuple of frames stays one video.
    videos = (tiny_video(1), tiny_video(2))
    assert [as_dict(r) for r in classifier(videos, candidate_labels=LABELS)] == [
        pytest.approx(as_dict(r)) for r in classifier(list(videos), candidate_labels=LABELS)
    ]
    frames = [Image.fromarray(frame) for frame in tiny_video(3)]
    one_video = classifier(tuple(frames), candidate_labels=LABELS)
    assert as_dict(one_video) == pytest.approx(as_dict(classifier(frames, candidate_labels=LABELS)))


def test_postprocess_refuses_logits_of_several_videos(classifier):
    one = classifier.postprocess([{"logits": torch.zeros(1, 4), "is_last": True}], candidate_labels=tuple(LABELS))
    assert [entry["score"] for entry in one] == pytest.approx([0.25] * 4)
    with pytest.raises(ValueError, match=r"one video's logits.*got shape \(2, 4\)"):
        classifier.postprocess([{"logits": torch.zeros(2, 4), "is_last": True}], candidate_labels=tuple(LABELS))


# ----------------------------------------------------------------------------------------------------------------
# 2. A template must fill in the label
# ----------------------------------------------------------------------------------------------------------------
def template_users(processor, classifier):
    """Every place a template is given, as `(name, call with the template)`."""
    from omniclip_hf import OmniCLIPProcessor, labels_to_prompts

    return [
        ("labels_to_prompts", lambda template: labels_to_prompts(["brush_hair", "YoYo"], template)),
        ("prompts_for_labels", lambda template: processor.prompts_for_labels(["brush_hair", "YoYo"], template)),
        ("OmniCLIPProcessor", lambda template: OmniCLIPProcessor(
            processor.video_processor, processor.tokenizer, text_template=template)),
        ("pipeline", lambda template: classifier(tiny_video(), candidate_labels=LABELS,
                                                 hypothesis_template=template)),
    ]


def test_template_that_never_inserts_the_label_is_refused(processor, classifier):
    for name, call in template_users(processor, classifier):
        with pytest.raises(ValueError, match=r"'a video of \{\{\}\}' never inserts the label") as caught:
            call("a video of {{}}")
        assert "\n" not in str(caught.value), name


def test_template_that_format_cannot_fill_names_the_template(processor, classifier):
    for name, call in template_users(processor, classifier):
        with pytest.raises(ValueError, match=r"'\{\} in \{place\}' cannot be filled with one label") as caught:
            call("{} in {place}")
        assert "\n" not in str(caught.value), name
    # Templates that place the label still work.
    from omniclip_hf import labels_to_prompts

    assert labels_to_prompts(["YoYo"], "{{x}} {}!") == ["{x} yo yo!"]


# ----------------------------------------------------------------------------------------------------------------
# 3. video_fps is for in-memory videos; a file uses its own rate in both modes
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("segment_seconds", [None, 0.5])
def test_video_fps_is_refused_for_a_file(classifier, segment_seconds):
    extra = {} if segment_seconds is None else {"segment_seconds": segment_seconds}
    for video in (str(SHORT_MP4), SHORT_MP4.read_bytes()):
        with pytest.raises(ValueError, match=r"video_fps=5 is the frame rate of an in-memory video.*leave video_fps"):
            classifier(video, candidate_labels=LABELS, video_fps=5, **extra)
    windows = classifier(str(SHORT_MP4), candidate_labels=LABELS, segment_seconds=0.5)
    assert [(w["start"], round(w["end"], 3)) for w in windows] == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.067)]


# ----------------------------------------------------------------------------------------------------------------
# 4. A processor whose text_template differs from the model config's
# ----------------------------------------------------------------------------------------------------------------
def test_pipeline_warns_once_when_the_processor_template_differs(tiny_omniclip_dir, tmp_path):
    from transformers import pipeline

    from omniclip_hf import OmniCLIPProcessor

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the saved folder's two templates agree: nothing to say
        pipeline(TASK, model=str(tiny_omniclip_dir), device="cpu")
    folder = tmp_path / "model"
    shutil.copytree(tiny_omniclip_dir, folder)
    saved = OmniCLIPProcessor.from_pretrained(str(folder))
    saved.text_template = "a photo of {}."
    saved.save_pretrained(str(folder))
    with pytest.warns(UserWarning) as caught:
        differing = pipeline(TASK, model=str(folder), device="cpu")
    messages = [str(w.message) for w in caught if "text_template" in str(w.message)]
    assert messages == [
        "The processor's text_template 'a photo of {}.' differs from the model config's 'a video of {} action'; the "
        "pipeline uses the model config's (pass hypothesis_template= to choose another, or save both with one "
        "template)."
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # once, at construction: not on every call
        differing(tiny_video(), candidate_labels=LABELS)


# ----------------------------------------------------------------------------------------------------------------
# 5. return_tensors per modality
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["text_kwargs", "videos_kwargs"])
def test_return_tensors_of_one_modality_applies_to_it(processor, where):
    batch = processor(text=["a video of run action", "b"], videos=tiny_video(), **{where: {"return_tensors": "pt"}})
    as_tensor = {"text_kwargs": "input_ids", "videos_kwargs": "pixel_values_videos"}[where]
    assert isinstance(batch[as_tensor], torch.Tensor)
    both = processor(text=["a video of run action", "b"], videos=tiny_video(), return_tensors="np",
                     **{where: {"return_tensors": "pt"}})
    other = {"text_kwargs": "pixel_values_videos", "videos_kwargs": "input_ids"}[where]
    assert isinstance(both[as_tensor], torch.Tensor) and isinstance(both[other], np.ndarray)


# ----------------------------------------------------------------------------------------------------------------
# 6. Windows shorter than one frame
# ----------------------------------------------------------------------------------------------------------------
def test_segment_shorter_than_one_frame_is_refused(classifier):
    from omniclip_hf.pipeline_omniclip import plan_windows

    with pytest.raises(ValueError, match=r"segment_seconds=0.01 is shorter than one frame .*0.03333 s at 30 fps"):
        plan_windows(30, 30.0, 0.01)
    assert plan_windows(30, 30.0, 1 / 30) == [(index, index + 1) for index in range(30)]
    with pytest.raises(ValueError, match=r"shorter than one frame of the in-memory video given as ndarray"):
        classifier(tiny_video(), candidate_labels=LABELS, segment_seconds=0.01, video_fps=30)
    with pytest.raises(ValueError, match=r"shorter than one frame of .*mmaction2_rawvideo_part_0.mp4 \(0.03333 s"):
        classifier(str(SHORT_MP4), candidate_labels=LABELS, segment_seconds=1e-9)


# ----------------------------------------------------------------------------------------------------------------
# 7. Dense sampling of a video shorter than its window
# ----------------------------------------------------------------------------------------------------------------
def test_dense_sampling_of_a_short_video_keeps_clips_and_randomness():
    from omniclip_hf.video_sampling import sample_clip_indices

    # 8 frames 4 apart need 29 frames; the video has 20.
    clips = sample_clip_indices(20, 8, "dense", 4, num_clips=3)
    assert len({tuple(clip) for clip in clips}) == 3
    assert sample_clip_indices(20, 8, "dense", 4) == sample_clip_indices(20, 8, "uniform")  # one clip: unchanged
    drawn = [sample_clip_indices(20, 8, "dense", 4, train=True, generator=torch.Generator().manual_seed(seed))
             for seed in (0, 1)]
    assert drawn[0] != drawn[1]
    for clip in [*clips, *(d[0] for d in drawn)]:
        assert clip == sorted(clip) and 0 <= clip[0] and clip[-1] < 20


# ----------------------------------------------------------------------------------------------------------------
# 8. Frame folders of bytes and file objects
# ----------------------------------------------------------------------------------------------------------------
def test_frame_folder_of_bytes_is_not_resumed_for_other_bytes(tmp_path):
    from omniclip_hf.video_frame_folders import FrameFolderOutputError, write_frame_folder

    first, other = SHORT_MP4.read_bytes(), WEBM.read_bytes()
    folder = tmp_path / "frames"
    manifest = write_frame_folder(first, folder, short_side=32)
    with pytest.raises(FrameFolderOutputError, match="already holds the frames of another video"):
        write_frame_folder(other, folder, short_side=32)
    assert write_frame_folder(bytearray(first), folder, short_side=32) == manifest  # the same video: resumed
    assert manifest["source_identity"][:2] == ["<bytes>", len(first)]
    # A file object cannot be identified: a complete folder is never taken for its frames.
    with pytest.raises(FrameFolderOutputError, match=r"cannot be told \(<file object> has no name"):
        write_frame_folder(io.BytesIO(first), folder, short_side=32)


# ----------------------------------------------------------------------------------------------------------------
# 9. A list of 2-D (grayscale) frames
# ----------------------------------------------------------------------------------------------------------------
def test_list_of_2d_frames_is_one_grayscale_video(classifier, processor):
    """2-D arrays are grayscale frames (as PIL "L" images): the list was read as a batch of 2-D "videos" and refused
    with an error about 4-D videos."""
    gray = [frame[..., 0] for frame in tiny_video()]
    with_channel = [frame[..., None] for frame in gray]
    assert classifier(gray, candidate_labels=LABELS) == classifier(with_channel, candidate_labels=LABELS)
    torch.testing.assert_close(processor(videos=gray, return_tensors="pt")["pixel_values_videos"],
                               processor(videos=with_channel, return_tensors="pt")["pixel_values_videos"])

# ------------------------------------------------------------------------- the pipeline's own save_pretrained
def test_a_pipeline_saved_with_save_pretrained_loads_as_a_pipeline_again(classifier, tmp_path):
    """transformers' Pipeline.save_pretrained saves the model and tokenizer, not the processor: the folder loaded as
    no pipeline ("holds no processor settings"), and its tokenizer config named processing code it did not hold."""
    from transformers import pipeline

    classifier.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "processing_omniclip.py").is_file()
    again = pipeline(TASK, model=str(tmp_path / "saved"), device="cpu")
    video = tiny_video()
    assert as_dict(again(video, candidate_labels=LABELS)) == pytest.approx(
        as_dict(classifier(video, candidate_labels=LABELS)))


def test_a_model_that_is_no_omniclip_is_named_before_its_processor(tiny_clip, clip_tokenizer):
    """Where OmniCLIPModel refuses a checkpoint, pipeline() loads the class its config names (a CLIPModel): the
    pipeline then said it needed a video processor, not that the model was no OmniCLIP."""
    from transformers import pipeline

    with pytest.raises(ValueError, match=r"needs an OmniCLIPModel; .* loaded as CLIPModel, which has no "
                                         r"get_video_features\(\)"):
        pipeline(TASK, model=tiny_clip, tokenizer=clip_tokenizer, device="cpu")
