"""Evaluation edge cases that gave silently wrong results: eval sets of one name, failed samples of one message,
every video failing, train.py's eval-only --clip and its reordered labels file, class names CLIP reads alike, and
top-1 on tied logits."""

from __future__ import annotations

import contextlib
import logging
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset

import omniclip_hf.training.evaluation as evaluation
from omniclip_hf import OmniCLIPModel, OmniCLIPProcessor
from omniclip_hf.training.data import VideoClassificationData
from omniclip_hf.training.evaluation import (
    FRAME_AVERAGE,
    class_text_embeddings,
    classification_metrics,
    eval_set_names,
    predict,
)
from omniclip_hf.training.loop import parse_training_options
from omniclip_hf.training.run import load_eval_sets, load_model_and_processor

from .test_training import CLASSES, motion_data  # noqa: F401 (fixture)


# 1. eval set names

@pytest.mark.parametrize("sources", [["data/test", "data/test.csv"], ["hmdb/split1.txt", "hmdb/split1.csv"]])
def test_eval_sets_whose_folders_and_stems_agree_get_different_names(sources):
    """They were both `data_test` (or `hmdb_split1`): metrics.json kept one set's results, without mean and std."""
    names = eval_set_names(sources)
    assert len(set(names)) == len(names), names


def test_eval_set_names_keep_their_short_forms():
    assert eval_set_names(["split1/test.csv", "split2/test.csv"]) == ["split1_test", "split2_test"]
    assert eval_set_names(["data/test", "data/test.csv"]) == ["test", "test_csv"]
    assert eval_set_names(["a/test.csv", "a/test.csv"]) == ["test_1", "test_2"]


# 2 and 3. failed videos

@pytest.fixture(scope="module")
def tiny_model(tiny_omniclip_dir):
    model = OmniCLIPModel.from_pretrained(tiny_omniclip_dir).eval()
    processor = OmniCLIPProcessor.from_pretrained(tiny_omniclip_dir)
    return model, processor, class_text_embeddings(model, processor.tokenizer, CLASSES)


def byte_cells_data(motion_data, good: int, empty: int) -> VideoClassificationData:  # noqa: F811 (fixture)
    """A Hub-like set: `good` decodable video cells, then `empty` cells of 0 bytes (one error message for all)."""
    videos = sorted((motion_data / "test").glob("*/*.mp4"))[:good]
    cells = [{"bytes": path.read_bytes(), "path": None} for path in videos]
    cells += [{"bytes": b"", "path": None} for _ in range(empty)]
    labels = [index % len(CLASSES) for index in range(len(cells))]
    return VideoClassificationData(Dataset.from_dict({"video": cells, "label": labels}), CLASSES, "hub-like")


def two_process_stand_in():
    """An accelerator for 2 processes run in this one: its gathers return what they are given (as if the other
    process had nothing more to add)."""
    return SimpleNamespace(prepare=lambda loader: loader, gather_for_metrics=lambda x: x, num_processes=2,
                           is_main_process=True, autocast=contextlib.nullcontext, unwrap_model=lambda model: model)


def test_every_failed_sample_is_counted_once_even_with_one_message(tiny_model, motion_data, monkeypatch):  # noqa: F811
    """Errors were deduplicated by text to drop Accelerate's repeated samples: 3 empty cells counted as 1."""
    model, processor, text_embeds = tiny_model
    data = byte_cells_data(motion_data, good=2, empty=3)
    _, labels, errors = predict(model, processor.video_processor, data, text_embeds, None, batch_size=5,
                                progress=False)
    assert (len(labels), len(errors)) == (2, 3)
    monkeypatch.setattr(evaluation, "gather_object", lambda failures: list(failures))
    _, labels, errors = predict(model, processor.video_processor, data, text_embeds, two_process_stand_in(),
                                batch_size=5, progress=False)
    assert (len(labels), len(errors)) == (2, 3)


def test_repeated_samples_of_the_last_batch_are_counted_once():
    """Accelerate's padding repeats a sample (same index) on another process: one failure, however often gathered."""
    failures = [(4, "b: the video is empty"), (1, "a: bad"), (4, "b: the video is empty"), (2, "b: the video is empty")]
    assert evaluation.failed_video_messages(failures) == ["a: bad", "b: the video is empty", "b: the video is empty"]


def test_a_set_whose_every_video_fails_says_why(tiny_model, motion_data):  # noqa: F811 (fixture)
    model, processor, text_embeds = tiny_model
    data = byte_cells_data(motion_data, good=0, empty=2)
    with pytest.raises(ValueError, match=r"no video could be evaluated \(2 failed to decode; first: .*empty"):
        predict(model, processor.video_processor, data, text_embeds, None, progress=False)


# 4 and 5. train.py's eval sets and eval-only model

def test_train_py_warns_about_an_eval_labels_file_in_another_order(tiny_clip_dir, motion_data, tmp_path,  # noqa: F811
                                                                    caplog):
    reordered = tmp_path / "labels.txt"
    reordered.write_text("\n".join(reversed(CLASSES)) + "\n")
    options = parse_training_options(["--clip", str(tiny_clip_dir), "--eval_data", str(motion_data / "test"),
                                      "--eval_labels_file", str(reordered), "--output_dir", str(tmp_path / "run")])
    with caplog.at_level(logging.WARNING):
        load_eval_sets(options, trained_classes=CLASSES)
    assert "--eval_labels_file" in caplog.text and "in another order" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_eval_sets(options, trained_classes=list(reversed(CLASSES)))  # the trained order: nothing to say
    assert "another order" not in caplog.text


def test_train_py_evaluates_a_clip_without_training_data_as_the_frame_averaged_baseline(tiny_clip_dir, motion_data,  # noqa: F811,E501
                                                                                         tmp_path):
    """It was OmniCLIP with untrained modules (SPG random): results unlike evaluate.py --clip's, varying with --seed."""
    options = parse_training_options(["--clip", str(tiny_clip_dir), "--eval_data", str(motion_data / "test"),
                                      "--output_dir", str(tmp_path / "run")])
    model, _ = load_model_and_processor(options)
    assert {key: getattr(model.config, key) for key in FRAME_AVERAGE} == FRAME_AVERAGE
    assert model.config.use_spg is False

    options = parse_training_options(["--clip", str(tiny_clip_dir), "--train_data", str(motion_data / "train"),
                                      "--output_dir", str(tmp_path / "run2")])
    model, _ = load_model_and_processor(options)
    assert model.config.use_spg is True  # training keeps the paper's modules


# 6. class prompts and top-1

@pytest.mark.parametrize("names", [
    ["moving up,down", "moving up , down", "moving left"],
    ["moving " + "very " * 80 + "left", "moving " + "very " * 80 + "right", "moving up"],  # cut to the same 77 tokens
])
def test_class_names_clip_reads_alike_are_refused(tiny_model, names):
    model, processor, _ = tiny_model
    with pytest.raises(ValueError, match="class names .* tokenize to the same ids"):
        class_text_embeddings(model, processor.tokenizer, names)


def test_top1_agrees_with_the_confusion_matrix_on_tied_logits():
    """topk picked another of the tied classes than argmax (the confusion matrix's): top-1 0.0, the matrix 4/4."""
    metrics = classification_metrics(torch.zeros(4, 4), torch.zeros(4, dtype=torch.long), CLASSES)
    matrix = torch.tensor(metrics["confusion_matrix"])
    assert metrics["top1"] == matrix.diagonal().sum().item() / matrix.sum().item() == 1.0
