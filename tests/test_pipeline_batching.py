"""Zero-shot pipeline: batches of videos of different shapes, windows of rate-sampling processors, duplicate labels as
CLIP tokenizes them, and one-line errors for call arguments the pipeline does not take."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from .conftest import REPO_ROOT, TOKENIZER_DIR

VIDEOS = REPO_ROOT.parent / "shared" / "videos"
SHORT_MP4 = VIDEOS / "mmaction2_rawvideo_part_0.mp4"  # 32 frames at 30 fps (1.07 s), 340x256
AVI = VIDEOS / "mmaction2_tests_test.avi"  # 164 frames at 25 fps (6.56 s), 320x240
WEBM = VIDEOS / "moviepy_big_buck_bunny_432_433.webm"  # 24 frames at 24 fps (1.0 s), 1280x720
WIDE_MP4 = VIDEOS / "askanything_yoga.mp4"  # 300 frames at 30 fps (10 s), 568x320
LABELS = ["cleaning a pool", "playing guitar", "doing yoga", "hitting a baseball"]
TASK = "zero-shot-video-classification"
SMALL = {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}}


@pytest.fixture(scope="module")
def classifier(tiny_omniclip_dir):
    import omniclip_hf  # noqa: F401  (registers the task)
    from transformers import pipeline

    return pipeline(TASK, model=str(tiny_omniclip_dir), device="cpu")


def with_processor(classifier, **settings):
    """The same model and tokenizer with another video processor (32 px, as the tiny model's)."""
    from transformers import pipeline

    from omniclip_hf import OmniCLIPVideoProcessor

    processor = OmniCLIPVideoProcessor(**{**SMALL, **settings})
    return pipeline(TASK, model=classifier.model, tokenizer=classifier.tokenizer, video_processor=processor)


def as_dict(predictions):
    return {prediction["label"]: prediction["score"] for prediction in predictions}


def record_video_shapes(monkeypatch, model) -> list[tuple[int, ...]]:
    """The `pixel_values_videos` shape of every model call from now on."""
    shapes = []
    original = model.forward

    def recording(*args, **kwargs):
        shapes.append(tuple(kwargs["pixel_values_videos"].shape))
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "forward", recording)
    return shapes


def assert_same_scores(batched, alone, abs=1e-6):
    assert len(batched) == len(alone)
    for result, expected in zip(batched, alone):
        assert as_dict(result) == pytest.approx(as_dict(expected), abs=abs)


# ----------------------------------------------------------------------------------------------------------------
# Batches of videos of different shapes
# ----------------------------------------------------------------------------------------------------------------
def test_rate_sampled_videos_of_different_lengths_batch_like_one_at_a_time(classifier, monkeypatch):
    # fps=2: the 6.56 s AVI gets 13 frames, the 1.07 s MP4 2; padding the MP4 to 13 frames with zeros changed its
    # scores. The two AVIs share a sub-batch.
    by_rate = with_processor(classifier, fps=2)
    videos = [str(AVI), str(SHORT_MP4), str(AVI)]
    alone = [by_rate(video, candidate_labels=LABELS) for video in videos]
    shapes = record_video_shapes(monkeypatch, by_rate.model)
    batched = by_rate(videos, candidate_labels=LABELS, batch_size=3)
    assert_same_scores(batched, alone)
    assert sorted(shape[:2] for shape in shapes) == [(1, 2), (2, 13)]  # one model call per shape, no padding


def test_videos_of_different_aspect_ratios_batch_without_centre_crop(classifier):
    # Without a centre crop the 340x256 MP4 is 32x42 and the 568x320 one 32x56: transformers' pad failed on them.
    uncropped = with_processor(classifier, num_frames=4, do_center_crop=False)
    videos = [str(SHORT_MP4), str(WIDE_MP4)]
    batched = uncropped(videos, candidate_labels=LABELS, batch_size=2)
    assert_same_scores(batched, [uncropped(video, candidate_labels=LABELS) for video in videos])


def test_batches_of_one_shape_give_the_numbers_of_one_stacked_model_call(classifier):
    # The collation that replaced transformers' for batches concatenates equal shapes: bit-identical to stacking the
    # processor's batch and calling the model once, as before.
    videos = [str(SHORT_MP4), str(WEBM), str(AVI)]
    batched = classifier(videos, candidate_labels=LABELS, batch_size=3)
    pixels = classifier.video_processor(videos, return_tensors="pt")["pixel_values_videos"]
    with torch.no_grad():
        logits = classifier.model(pixel_values_videos=pixels, text_embeds=classifier.text_embeddings(LABELS))
    expected = logits.logits_per_video.softmax(dim=-1).tolist()
    assert [as_dict(result) for result in batched] == [dict(zip(LABELS, row)) for row in expected]


def test_collate_keeps_videos_of_different_shapes_apart():
    from omniclip_hf.pipeline_omniclip import collate_model_inputs

    items = [
        {"pixel_values_videos": torch.ones(1, 3, 3, 4, 4), "window_start": torch.tensor([0.5]), "is_last": False},
        {"pixel_values_videos": torch.ones(1, 2, 3, 4, 4), "window_start": torch.tensor([1.0]), "is_last": True},
    ]
    batch = collate_model_inputs(items)
    assert [tuple(video.shape) for video in batch["pixel_values_videos"]] == [(1, 3, 3, 4, 4), (1, 2, 3, 4, 4)]
    assert batch["window_start"].tolist() == [0.5, 1.0] and batch["is_last"] == [False, True]
    same = collate_model_inputs([items[0], items[0]])
    assert same["pixel_values_videos"].shape == (2, 3, 3, 4, 4)


def test_classify_batch_size_gives_the_scores_of_one_video_at_a_time(classifier, tiny_omniclip_dir, tmp_path, capsys):
    from transformers import CLIPTokenizer

    from omniclip_hf import OmniCLIPProcessor, OmniCLIPVideoProcessor
    from omniclip_hf.cli import main

    folder = tmp_path / "by-rate"
    shutil.copytree(tiny_omniclip_dir, folder)
    processor = OmniCLIPVideoProcessor(fps=2, **SMALL)
    tokenizer = CLIPTokenizer.from_pretrained(TOKENIZER_DIR)
    template = classifier.model.config.text_template
    OmniCLIPProcessor(processor, tokenizer, text_template=template).save_pretrained(folder)
    outputs = {}
    for batch_size in ("1", "2"):
        arguments = ["classify", str(AVI), str(SHORT_MP4), "--model", str(folder), "--labels", ",".join(LABELS)]
        assert main([*arguments, "--json", "--top-k", "4", "--batch-size", batch_size]) == 0
        outputs[batch_size] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(outputs["2"]) == 2
    for batched, alone in zip(outputs["2"], outputs["1"]):
        assert as_dict(batched["labels"]) == pytest.approx(as_dict(alone["labels"]), abs=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# Windows of a processor that samples by rate
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_frames", [8, None])
def test_segment_windows_sample_at_the_processor_rate(classifier, monkeypatch, num_frames):
    # fps=2 with 2 s windows of the 25 fps AVI: windows of 50 frames get 4 frames, the last 14 frames (0.56 s) 1, as
    # a whole video of that length would; num_frames does not apply to rate sampling (None crashed).
    by_rate = with_processor(classifier, fps=2, num_frames=num_frames)
    alone = by_rate(str(AVI), candidate_labels=LABELS, segment_seconds=2)
    shapes = record_video_shapes(monkeypatch, by_rate.model)
    batched = by_rate(str(AVI), candidate_labels=LABELS, segment_seconds=2, batch_size=4)
    bounds = [time for window in batched for time in (window["start"], window["end"])]
    assert bounds == pytest.approx([0, 2, 2, 4, 4, 6, 6, 6.56])
    assert sorted(shape[:2] for shape in shapes) == [(1, 1), (3, 4)]
    assert_same_scores([window["labels"] for window in batched], [window["labels"] for window in alone])

    # A window as long as the video is the whole video: int(6.56 s * 2) = 13 frames, the same scores.
    (whole,) = by_rate(str(AVI), candidate_labels=LABELS, segment_seconds=10)
    assert shapes[-1][:2] == (1, 13)
    assert as_dict(whole["labels"]) == pytest.approx(as_dict(by_rate(str(AVI), candidate_labels=LABELS)), abs=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# Duplicate labels: the ones CLIP tokenizes alike
# ----------------------------------------------------------------------------------------------------------------
def prompt_ids(classifier, label, template=None):
    return classifier.tokenizer((template or classifier.model.config.text_template).format(label))["input_ids"]


@pytest.mark.parametrize(
    "labels, message",
    [
        # Punctuation is split off words whatever the spaces around it: one prompt, one score split in two.
        (["t-shirt folding", "t - shirt folding", "doing yoga"], "duplicates: 't-shirt folding' = 't - shirt folding'"),
        (["yoga!", "yoga !", "playing guitar"], "duplicates: 'yoga!' = 'yoga !'"),
        (["run", "run", "jump", "Jump "], r"duplicates: 'run' \(2 times\); 'jump' = 'Jump '"),
        (["Été", "été"], "duplicates: 'Été' = 'été'"),
    ],
)
def test_labels_clip_tokenizes_alike_are_refused(classifier, labels, message):
    assert prompt_ids(classifier, labels[0]) == prompt_ids(classifier, labels[1])
    with pytest.raises(ValueError, match=message + r".*tokenize to the same ids"):
        classifier(str(SHORT_MP4), candidate_labels=labels)


@pytest.mark.parametrize(
    "labels",
    [
        # CLIP's tokenizer applies NFC and lowercases, never NFKC or case folding: these are other tokens.
        ["ｙｏｇａ", "yoga"],
        ["ﬁshing", "fishing"],
        ["Straße fegen", "strasse fegen"],
    ],
)
def test_labels_clip_tokenizes_differently_are_accepted(classifier, labels):
    from omniclip_hf.pipeline_omniclip import check_candidate_labels

    assert prompt_ids(classifier, labels[0]) != prompt_ids(classifier, labels[1])
    assert check_candidate_labels(labels) == tuple(labels)  # the command line's check before a model loads
    predictions = classifier(str(SHORT_MP4), candidate_labels=labels)
    assert sorted(as_dict(predictions)) == sorted(labels)


def test_duplicates_are_judged_in_the_template_and_after_truncation(classifier):
    # "{}s" reads a trailing space: "run s" and "runs" are other tokens.
    assert len(classifier(str(SHORT_MP4), candidate_labels=["run", "run "], hypothesis_template="{}s")) == 2
    with pytest.raises(ValueError, match="'run' = 'run '"):
        classifier(str(SHORT_MP4), candidate_labels=["run", "run "])
    # Labels that differ only after CLIP's 77 tokens are read alike.
    long_label = "someone " + " ".join(f"juggling ball number {i}" for i in range(30))
    with pytest.warns(UserWarning, match="truncated"), pytest.raises(ValueError, match="tokenize to the same ids"):
        classifier(str(SHORT_MP4), candidate_labels=[long_label, long_label + " and more"])


def test_command_line_label_check_only_refuses_what_clip_tokenizes_alike(clip_tokenizer):
    from omniclip_hf.pipeline_omniclip import check_candidate_labels

    # Its view of ASCII case and runs of spaces never merges labels with other tokens, in any template.
    pairs = [("Run", "run"), ("a  b", "a b"), ("a\tb", "A b"), ("ΟΔΟΣ", "οδος"), ("a\x1cb", "a b")]
    pairs.append(("J\u030c", "j\u030c"))  # NFC composes only the small letter: "ǰ"
    for first, second in pairs:
        try:
            check_candidate_labels([first, second])
        except ValueError:
            for template in ("a video of {} action", "{}", "x{}y"):
                ids = [clip_tokenizer(template.format(label))["input_ids"] for label in (first, second)]
                assert ids[0] == ids[1], (first, second, template)
    with pytest.raises(ValueError, match="duplicates: 'Run' = 'run'"):
        check_candidate_labels(["Run", "run"])


# ----------------------------------------------------------------------------------------------------------------
# Call arguments the pipeline does not take
# ----------------------------------------------------------------------------------------------------------------
def test_processor_settings_in_a_call_are_refused_in_one_line(classifier, tiny_omniclip_dir, monkeypatch):
    from transformers import pipeline

    from omniclip_hf import OmniCLIPVideoProcessor

    with pytest.raises(TypeError, match=r"num_frames=8 is a video processor setting") as error:
        classifier(str(SHORT_MP4), candidate_labels=LABELS, num_frames=8)
    assert "video_processor=OmniCLIPVideoProcessor.from_pretrained(model_folder, num_frames=8)" in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(TypeError, match=r"unexpected argument colour='red': the pipeline takes candidate_labels"):
        classifier(str(SHORT_MP4), candidate_labels=LABELS, colour="red")

    # What the message says works.
    eight = OmniCLIPVideoProcessor.from_pretrained(tiny_omniclip_dir, num_frames=8)
    advised = pipeline(TASK, model=classifier.model, tokenizer=classifier.tokenizer, video_processor=eight)
    shapes = record_video_shapes(monkeypatch, advised.model)
    advised(str(SHORT_MP4), candidate_labels=LABELS)
    assert shapes[0][1] == 8


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_batch_size_below_one_is_refused_in_one_line(classifier, batch_size):
    with pytest.raises(ValueError, match=rf"^batch_size={batch_size!r} is invalid: it must be an integer >= 1"):
        classifier([str(SHORT_MP4), str(WEBM)], candidate_labels=LABELS, batch_size=batch_size)


def test_numpy_batch_size_works(classifier):
    batched = classifier([str(SHORT_MP4), str(WEBM)], candidate_labels=LABELS, batch_size=np.int64(2))
    assert_same_scores(batched, classifier([str(SHORT_MP4), str(WEBM)], candidate_labels=LABELS), abs=1e-5)


def test_in_memory_frames_take_video_fps_for_a_rate_sampling_processor(classifier, monkeypatch):
    """video_fps reached only the segment windows: a whole in-memory video asked for video_metadata, which the
    pipeline does not take, whatever video_fps was given."""
    by_rate = with_processor(classifier, fps=2, num_frames=None)
    frames = np.random.default_rng(0).integers(0, 255, (40, 32, 32, 3), dtype=np.uint8)  # 2 s at 20 frames a second
    with pytest.raises(ValueError, match="samples 2 frames a second, and an in-memory video carries no frame rate: "
                                         "pass video_fps="):
        by_rate(frames, candidate_labels=LABELS)
    shapes = record_video_shapes(monkeypatch, by_rate.model)
    scores = by_rate(frames, candidate_labels=LABELS, video_fps=20)
    assert shapes == [(1, 4, 3, 32, 32)]  # 2 s at 2 frames a second
    pixels = by_rate.video_processor(frames, video_metadata={"fps": 20}, return_tensors="pt")["pixel_values_videos"]
    text = by_rate.tokenizer([classifier.model.config.text_template.format(label) for label in LABELS], padding=True,
                             return_tensors="pt")
    with torch.no_grad():
        expected = by_rate.model(pixel_values_videos=pixels, **text).logits_per_video.softmax(-1)[0]
    assert as_dict(scores) == pytest.approx(dict(zip(LABELS, expected.tolist())), abs=1e-6)
