"""Processing derived from a plain CLIP checkpoint, as an audit over varied CLIPs found it wrong: the pipeline's
tokenizer for a CLIP folder without vocabulary files, the image processor's settings the video processor copies,
class prompts truncated without a word, a tokenizer longer than the text model, and duplicates that only truncation
made."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from .conftest import TOKENIZER_DIR, tiny_clip_config

TASK = "zero-shot-video-classification"
LONG_CLASS_NAME = "playing the " + "very " * 80 + "big drum"
# 4 frames of noise (uint8, 57 x 83: resized and cropped, unlike a square frame of the crop size).
FRAMES = np.random.default_rng(0).integers(0, 256, size=(4, 57, 83, 3)).astype(np.uint8)


def save_clip(folder, clip, tokenizer: bool = True, **image_settings):
    """`clip` saved in `folder`, with CLIP's tokenizer unless told otherwise and an image processor of these settings
    (32 px shortest edge and crop, as the tiny CLIP's image size)."""
    from transformers import CLIPImageProcessor, CLIPTokenizer

    clip.save_pretrained(folder)
    if tokenizer:
        CLIPTokenizer.from_pretrained(TOKENIZER_DIR).save_pretrained(folder)
    settings = {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}, **image_settings}
    CLIPImageProcessor(**settings).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def short_clip():
    """A tiny CLIP whose text model reads 16 positions, not CLIP's 77."""
    from transformers import CLIPModel

    config = tiny_clip_config()
    config.text_config.max_position_embeddings = 16
    torch.manual_seed(0)
    return CLIPModel(config).eval()


def omniclip_of(clip):
    from omniclip_hf import OmniCLIPModel

    return OmniCLIPModel.from_clip(clip, num_frames=4).eval()


# ----------------------------------------------------------------------------------------------------------------
# S2: the pipeline on a CLIP folder without tokenizer files
# ----------------------------------------------------------------------------------------------------------------
def test_pipeline_on_a_clip_folder_without_vocabulary_uses_clips_tokenizer_as_init_does(tiny_clip, tmp_path):
    import omniclip_hf  # noqa: F401  (registers the task)
    from transformers import pipeline

    folder = save_clip(tmp_path, tiny_clip, tokenizer=False)
    with pytest.warns(UserWarning, match=r"has a tokenizer of only \d+ tokens for a text model of 49408 .*using "
                                         r"CLIP's BPE tokenizer shipped with omniclip_hf"):
        classifier = pipeline(TASK, model=str(folder), device="cpu")
    assert len(classifier.tokenizer) == 49408
    scores = [entry["score"] for entry in classifier(FRAMES, candidate_labels=["archery", "playing guitar"])]
    assert scores[0] != pytest.approx(scores[1], abs=1e-6)  # one id per word gave 0.5 and 0.5


def test_classify_on_a_clip_folder_without_vocabulary_uses_clips_tokenizer_as_the_pipeline_does(tiny_clip, tmp_path,
                                                                                                 capsys):
    """`omniclip classify` refused such a folder (no tokenizer files) while the pipeline and `omniclip init` went on
    with CLIP's tokenizer and a warning: three answers to one folder."""
    from omniclip_hf.cli import main

    from .test_pipeline import SHORT_MP4

    folder = save_clip(tmp_path / "clip", tiny_clip, tokenizer=False)
    status = main(["classify", str(SHORT_MP4), "--model", str(folder), "--labels", "archery,playing guitar",
                   "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "using CLIP's BPE tokenizer shipped with omniclip_hf" in captured.err
    assert '"archery"' in captured.out and '"playing guitar"' in captured.out


def test_pipeline_refuses_a_tokenizer_without_vocabulary_given_for_a_model(tiny_clip, tiny_omniclip_dir, tmp_path):
    import omniclip_hf  # noqa: F401  (registers the task)
    from transformers import AutoTokenizer, pipeline

    no_vocabulary = AutoTokenizer.from_pretrained(save_clip(tmp_path, tiny_clip, tokenizer=False))
    assert len(no_vocabulary) < 100
    with pytest.raises(ValueError, match=r"tokenizer \(from .*\) has only \d+ tokens for a text model of 49408 "
                                         r".* cannot be CLIP's tokenizer for this model: pass CLIP's tokenizer"):
        pipeline(TASK, model=str(tiny_omniclip_dir), tokenizer=no_vocabulary, device="cpu")


# ----------------------------------------------------------------------------------------------------------------
# S3: every pixel setting of the CLIP's image processor reaches the video processor
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("settings", [
    {"resample": 2},  # BILINEAR, as a saved preprocessor_config.json holds it
    {"resample": 0},  # NEAREST: PIL's rule is torch's NEAREST_EXACT, not its legacy NEAREST
    {"rescale_factor": 1 / 127.5},
    {"do_rescale": False},
    {"do_normalize": False},
    {"do_resize": False},
    {"image_mean": 0.0, "image_std": 1.0},  # a falsy mean was dropped for OpenAI's
], ids=lambda settings: ",".join(settings))
def test_video_processor_for_clip_prepares_frames_as_the_clips_image_processor(tmp_path, settings):
    from transformers import CLIPImageProcessor

    from omniclip_hf.clip_conversion import video_processor_for_clip

    (tmp_path / "config.json").write_text('{"model_type": "clip"}')
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, **settings
                       ).save_pretrained(tmp_path)
    video_processor = video_processor_for_clip(tmp_path, image_size=32, num_frames=4)
    ours = video_processor(FRAMES, return_tensors="pt")["pixel_values_videos"][0]
    theirs = CLIPImageProcessor.from_pretrained(tmp_path)(list(FRAMES), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_a_resize_filter_videos_cannot_use_is_replaced_with_a_warning(tmp_path):
    from transformers import CLIPImageProcessor

    from omniclip_hf.clip_conversion import video_processor_for_clip

    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, resample=1  # LANCZOS
                       ).save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="resizes with LANCZOS, which video frames cannot use: resizing with BICUBIC"):
        video_processor = video_processor_for_clip(tmp_path, image_size=32, num_frames=4)
    assert int(video_processor.resample) == 3
    assert video_processor(FRAMES, return_tensors="pt")["pixel_values_videos"].shape == (1, 4, 3, 32, 32)


# ----------------------------------------------------------------------------------------------------------------
# S4: class names cut by truncation are named in evaluation and in the Trainer collator
# ----------------------------------------------------------------------------------------------------------------
def test_evaluation_warns_of_a_class_prompt_truncated_to_the_text_models_positions(tiny_clip, clip_tokenizer):
    from omniclip_hf.training.evaluation import class_text_embeddings

    model = omniclip_of(tiny_clip)
    with pytest.warns(UserWarning, match=r"Label 'playing the very .* gives a prompt of \d+ tokens, longer than "
                                         r"CLIP's 77; it is truncated to its first 77 tokens"):
        embeddings = class_text_embeddings(model, clip_tokenizer, [LONG_CLASS_NAME, "archery"])
    assert embeddings.shape[0] == 2


def test_trainer_collator_warns_of_a_truncated_class_prompt_and_takes_the_models_length(clip_tokenizer):
    from omniclip_hf.training.trainer_collator import ClassTextCollator

    with pytest.warns(UserWarning, match=r"Label 'playing the very .* truncated to its first 16 tokens"):
        collator = ClassTextCollator(clip_tokenizer, [LONG_CLASS_NAME, "archery"], max_length=16)
    assert collator.input_ids.shape == (2, 16)
    with pytest.warns(UserWarning, match="truncated to its first 77 tokens"):
        ClassTextCollator(clip_tokenizer, [LONG_CLASS_NAME, "archery"])


# ----------------------------------------------------------------------------------------------------------------
# E1: the processor of a CLIP with fewer positions than 77 truncates to them
# ----------------------------------------------------------------------------------------------------------------
def test_processor_for_a_clip_of_16_positions_truncates_texts_to_16_tokens(short_clip, tmp_path):
    from omniclip_hf.clip_conversion import processor_for_clip

    folder = save_clip(tmp_path, short_clip)
    model = omniclip_of(short_clip)
    processor = processor_for_clip(model, folder)
    assert processor.tokenizer.model_max_length == 16
    with pytest.warns(UserWarning, match="truncated to its first 16 tokens"):
        inputs = processor(text=[model.config.text_template.format(LONG_CLASS_NAME), "archery"], return_tensors="pt")
    assert inputs["input_ids"].shape == (2, 16)
    assert model.get_text_features(**inputs).pooler_output.shape[0] == 2  # 77 ids were refused here


def test_a_saved_processor_is_limited_to_the_positions_of_the_model_beside_it(short_clip, tmp_path):
    from transformers import CLIPTokenizer

    from omniclip_hf import OmniCLIPProcessor, OmniCLIPVideoProcessor

    # As `omniclip init` wrote folders before: CLIP's tokenizer at 77 beside a text model of 16 positions.
    omniclip_of(short_clip).save_pretrained(tmp_path)
    OmniCLIPProcessor(OmniCLIPVideoProcessor(), CLIPTokenizer.from_pretrained(TOKENIZER_DIR)).save_pretrained(tmp_path)
    processor = OmniCLIPProcessor.from_pretrained(tmp_path)
    assert processor.tokenizer.model_max_length == 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert processor(text=[LONG_CLASS_NAME], return_tensors="pt")["input_ids"].shape == (1, 16)


# ----------------------------------------------------------------------------------------------------------------
# R4: labels made equal by truncation are said to be so
# ----------------------------------------------------------------------------------------------------------------
LONG_TEMPLATE = "a video " + "of a person " * 30 + "doing {}"


def test_pipeline_says_truncation_made_two_prompts_equal(tiny_omniclip_dir):
    import omniclip_hf  # noqa: F401  (registers the task)
    from transformers import pipeline

    classifier = pipeline(TASK, model=str(tiny_omniclip_dir), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the truncation warnings themselves
        with pytest.raises(ValueError, match=r"'archery' = 'playing guitar'\. .*their prompts differ, but truncated to "
                                             r"CLIP's 77 tokens these labels tokenize to the same ids.*use a shorter "
                                             r"template"):
            classifier.text_embeddings(["archery", "playing guitar"], LONG_TEMPLATE)
        # Labels alike before truncation keep their own reason.
        with pytest.raises(ValueError, match="these labels tokenize to the same ids"):
            classifier.text_embeddings(["t-shirt", "t - shirt"], "a video of {}")


def test_evaluation_says_truncation_made_two_class_prompts_equal(tiny_clip, clip_tokenizer):
    from omniclip_hf.training.evaluation import class_text_embeddings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"the class names .* have duplicates: 'archery' = 'playing_guitar'.*"
                                             r"their prompts differ, but truncated to CLIP's 77 tokens"):
            class_text_embeddings(omniclip_of(tiny_clip), clip_tokenizer, ["archery", "playing_guitar"], LONG_TEMPLATE)
