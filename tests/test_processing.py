# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""OmniCLIPProcessor (CLIP tokenizer + video processor) and the label-name helpers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import CLIPTokenizer

from omniclip_hf.processing_omniclip import OmniCLIPProcessor, label_to_text, labels_to_prompts, load_label_names
from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor


SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
LABELS_DIR = Path(__file__).resolve().parents[1] / "labels"  # shipped with the repository
VIDEOS_DIR = SHARED_DIR / "videos"
TOKENIZER_DIR = Path(__file__).resolve().parents[1] / "omniclip_hf" / "tokenizer"
LABEL_FILES = {
    "hmdb51.txt": 51,
    "ucf101.txt": 101,
    "kinetics400.txt": 400,
    "ssv2.txt": 174,
    "kinetics600_xclip.csv": 600,
}

needs_videos = pytest.mark.skipif(not VIDEOS_DIR.is_dir(), reason=f"shared test videos not found at {VIDEOS_DIR}")


@pytest.fixture(scope="module")
def processor():
    tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))
    return OmniCLIPProcessor(OmniCLIPVideoProcessor(num_frames=4), tokenizer)


# ------------------------------------------------------------------------------------------------ label names
@pytest.mark.parametrize(
    "name, text",
    [
        ("brush_hair", "brush hair"),
        ("ApplyEyeMakeup", "apply eye makeup"),
        ("flic_flac", "flic flac"),
        ("YoYo", "yo yo"),
        ("CleanAndJerk", "clean and jerk"),
        ("HandstandPushups", "handstand pushups"),
        ("abseiling", "abseiling"),
        ("passing American football (in game)", "passing american football (in game)"),
        ("massaging person's head", "massaging person's head"),
        ("Putting something onto something", "putting something onto something"),
        ("  extra   spaces_here ", "extra spaces here"),
    ],
)
def test_label_to_text(name, text):
    assert label_to_text(name) == text


def test_labels_to_prompts_fills_template():
    assert labels_to_prompts(["brush_hair", "ApplyEyeMakeup"]) == [
        "a video of brush hair action",
        "a video of apply eye makeup action",
    ]
    assert labels_to_prompts(["YoYo"], "a photo of {}.") == ["a photo of yo yo."]
    with pytest.raises(ValueError, match="'{}'"):
        labels_to_prompts(["YoYo"], "no placeholder")
    with pytest.raises(ValueError, match="empty"):
        label_to_text("___")


@pytest.mark.parametrize("file_name", sorted(LABEL_FILES))
def test_label_helper_on_shared_lists(file_name):
    names = load_label_names(LABELS_DIR / file_name)
    assert len(names) == LABEL_FILES[file_name]
    texts = [label_to_text(name) for name in names]
    for name, text in zip(names, texts):
        assert text == text.lower() and text == " ".join(text.split()), (name, text)
        assert "_" not in text, (name, text)
        assert not re.search(r"[a-z][A-Z]", text), (name, text)
    # Distinct classes stay distinct once turned into text.
    assert len(set(texts)) == len(set(names))
    prompts = labels_to_prompts(names)
    assert all(prompt.startswith("a video of ") and prompt.endswith(" action") for prompt in prompts)


def test_known_names_from_shared_lists():
    hmdb = load_label_names(LABELS_DIR / "hmdb51.txt")
    ucf = load_label_names(LABELS_DIR / "ucf101.txt")
    kinetics600 = load_label_names(LABELS_DIR / "kinetics600_xclip.csv")
    assert label_to_text(hmdb[0]) == "brush hair"
    assert label_to_text(ucf[0]) == "apply eye makeup"
    assert kinetics600[0] == "abseiling"  # ordered by the CSV's id column


def test_load_label_names_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_label_names(tmp_path / "missing.txt")
    bad_csv = tmp_path / "labels.csv"
    bad_csv.write_text("id,label\n0,a\n")
    with pytest.raises(ValueError, match="'name' column"):
        load_label_names(bad_csv)


@pytest.mark.parametrize(
    "content, phrase",
    [
        (bytes(range(256)) * 4, "is not UTF-8 text"),  # a video, an archive, a model file
        ("brush_hair\x00\x00\x00\ncartwheel\n".encode(), "is binary"),  # valid UTF-8 but NUL bytes
    ],
)
def test_binary_label_file_is_refused_in_one_line(tmp_path, content, phrase):
    path = tmp_path / "labels.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=phrase) as error:
        load_label_names(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_label_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffbrush_hair\r\ncartwheel\r\n".encode())  # as Windows editors save it
    assert load_label_names(path) == ["brush_hair", "cartwheel"]


# ------------------------------------------------------------------------------------------------ processor
def test_text_only(processor):
    batch = processor(text=["a video of brush hair action", "a video of yo yo action"], return_tensors="pt")
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].shape[0] == 2
    assert batch["input_ids"][0, 0].item() == processor.tokenizer.bos_token_id


@needs_videos
def test_text_and_video(processor):
    path = str(VIDEOS_DIR / "mmaction2_rawvideo_part_0.mp4")
    prompts = processor.prompts_for_labels(["brush_hair", "ApplyEyeMakeup", "abseiling"])
    batch = processor(text=prompts, videos=[path, path], return_tensors="pt", num_frames=6, return_metadata=True)
    assert batch["pixel_values_videos"].shape == (2, 6, 3, 224, 224)
    assert batch["input_ids"].shape[0] == 3
    assert len(batch["video_metadata"]) == 2 and len(batch["video_metadata"][0].frames_indices[0]) == 6
    # Video kwargs and tokenizer kwargs are routed to the right component.
    padded = processor(text=prompts, videos=path, return_tensors="pt", padding="max_length", max_length=20,
                       num_spatial_crops=3)
    assert padded["input_ids"].shape == (3, 20)
    assert padded["pixel_values_videos"].shape == (1, 3, 4, 3, 224, 224)
    explicit = processor(text=prompts, videos=path, return_tensors="pt", videos_kwargs={"num_frames": 2},
                         text_kwargs={"padding": "max_length", "max_length": 12})
    assert explicit["pixel_values_videos"].shape == (1, 2, 3, 224, 224)
    assert explicit["input_ids"].shape == (3, 12)


def test_video_only_in_memory(processor):
    video = np.random.default_rng(0).integers(0, 256, size=(5, 64, 80, 3), dtype=np.uint8)
    batch = processor(videos=video, return_tensors="pt", train=True, generator=torch.Generator().manual_seed(0))
    assert set(batch) == {"pixel_values_videos"}
    assert batch["pixel_values_videos"].shape == (1, 4, 3, 224, 224)


def test_processor_needs_inputs(processor):
    with pytest.raises(ValueError, match="text"):
        processor()
    with pytest.raises(ValueError, match="text is an empty list"):
        processor(text=[], return_tensors="pt")


def test_long_text_is_truncated_to_the_tokenizers_77_tokens_as_the_model_needs(processor, tiny_clip):
    long_text = "a video of " + " ".join(f"someone juggling ball number {i}" for i in range(60))  # 300+ words
    with pytest.warns(UserWarning, match=r"is \d+ tokens, longer than the tokenizer's 77; it is truncated"):
        batch = processor(text=["cooking", long_text], return_tensors="pt")
    assert batch["input_ids"].shape == (2, 77)
    expected = processor.tokenizer(long_text, truncation=True, max_length=77)["input_ids"]
    assert batch["input_ids"][1].tolist() == expected  # start, its first 75 tokens, end
    with torch.no_grad():  # the model's position embeddings hold 77: untruncated ids would fail here
        features = tiny_clip.get_text_features(**batch)
    assert torch.isfinite(getattr(features, "pooler_output", features)).all()
    # An explicit choice wins: truncation=False keeps every token.
    assert len(processor(text=long_text, truncation=False)["input_ids"]) > 77


@pytest.mark.parametrize(
    "removed, phrase",
    [
        (["tokenizer.json", "tokenizer_config.json"], "holds no tokenizer files (tokenizer.json"),
        (["processor_config.json"], "holds no processor settings (processor_config.json)"),
    ],
)
def test_loading_a_folder_without_tokenizer_or_settings_names_what_is_missing(tmp_path, processor, removed, phrase):
    from transformers import AutoProcessor

    import omniclip_hf  # noqa: F401  (registers the Auto classes)

    processor.save_pretrained(tmp_path)
    for name in removed:
        (tmp_path / name).unlink()
    for load in (OmniCLIPProcessor.from_pretrained, AutoProcessor.from_pretrained):
        with pytest.raises(FileNotFoundError, match=re.escape(f"model folder {tmp_path} {phrase}")):
            load(tmp_path)


def test_processor_round_trip(tmp_path, processor):
    from transformers import AutoProcessor

    import omniclip_hf  # noqa: F401  (registers the Auto classes)

    custom = OmniCLIPProcessor(
        OmniCLIPVideoProcessor(num_frames=16, sampling="uniform", num_temporal_clips=2),
        processor.tokenizer,
        text_template="a clip of {}",
    )
    custom.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is OmniCLIPProcessor
    assert type(loaded.video_processor) is OmniCLIPVideoProcessor
    assert loaded.text_template == "a clip of {}"
    assert loaded.video_processor.to_dict() == custom.video_processor.to_dict()
    assert loaded.prompts_for_labels(["YoYo"]) == ["a clip of yo yo"]
    texts = ["a clip of yo yo", "a clip of brush hair"]
    assert loaded.tokenizer(texts)["input_ids"] == custom.tokenizer(texts)["input_ids"]
    assert "pixel_values_videos" in loaded.model_input_names and "input_ids" in loaded.model_input_names
