"""examples/evaluate.py and the class lists it scores: the model's trained classes by default, a labels file that
differs from them warned about, duplicate class names refused, undecodable videos said on the console, and a run
folder or training checkpoint passed as --model pointed to RUN/model."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil

import pytest
import torch

from omniclip_hf import OmniCLIPConfig
from omniclip_hf.training.data import load_video_dataset

from .conftest import REPO_ROOT
from .test_training import CLASSES, motion_data, run  # noqa: F401 (fixture)
from .test_training_scripts import EVALUATE, one_error_line

ONE_VIEW = ["--num_clips", "1", "--num_crops", "1", "--num_workers", "0"]


def load_evaluate_script():
    spec = importlib.util.spec_from_file_location("evaluate_script", REPO_ROOT / "examples" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained_model_dir(tiny_omniclip_dir, tmp_path_factory):
    """The tiny OmniCLIP with the class names examples/train.py writes into the config after training."""
    folder = tmp_path_factory.mktemp("trained") / "model"
    shutil.copytree(tiny_omniclip_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(index): name for index, name in enumerate(CLASSES)}
    config["label2id"] = {name: index for index, name in enumerate(CLASSES)}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def video(motion_data, name: str, number: int = 0):  # noqa: F811 (fixture)
    return motion_data / "test" / name / f"{number:05d}.mp4"


def warning_lines(result, text: str) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("WARNING") and text in line]


def test_the_models_trained_classes_are_the_default_class_list(trained_model_dir, motion_data, tmp_path):  # noqa: F811
    """A 2-clip eval file was scored over its own 2 labels, not the model's 4 classes (an easier, other task)."""
    annotations = tmp_path / "two.csv"
    annotations.write_text(f"path,label\n{video(motion_data, CLASSES[2])},{CLASSES[2]}\n"
                           f"{video(motion_data, CLASSES[3])},{CLASSES[3]}\n")
    result = run(EVALUATE + ["--model", str(trained_model_dir), "--eval_data", str(annotations), *ONE_VIEW,
                             "--output_dir", str(tmp_path / "eval")])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert len(metrics["confusion_matrix"]) == len(CLASSES) and metrics["num_videos"] == 2
    assert not warning_lines(result, "--labels_file")


def test_a_model_never_trained_has_no_trained_classes():
    """transformers' placeholder names (LABEL_0, LABEL_1) or no mapping: the eval data's labels stay the default."""
    script = load_evaluate_script()
    assert script.trained_class_names(OmniCLIPConfig(), "m") is None
    assert script.trained_class_names(OmniCLIPConfig(id2label={}), "m") is None
    assert script.trained_class_names(OmniCLIPConfig(id2label={1: "b", 0: "a"}), "m") == ["a", "b"]


def test_a_reordered_labels_file_with_index_labelled_rows_is_warned_about(trained_model_dir, motion_data,  # noqa: F811
                                                                          tmp_path):
    """`path index` rows (examples/prepare_data.py's format) are read in the labels file's order: a reordered copy
    of the trained classes silently moved every ground-truth label to another class."""
    annotations = tmp_path / "test.txt"
    annotations.write_text("".join(f"{video(motion_data, name)} {index}\n" for index, name in enumerate(CLASSES)))
    reordered = tmp_path / "reordered.txt"
    reordered.write_text("\n".join(reversed(CLASSES)) + "\n")
    result = run(EVALUATE + ["--model", str(trained_model_dir), "--eval_data", str(annotations),
                             "--labels_file", str(reordered), *ONE_VIEW, "--output_dir", str(tmp_path / "eval")])
    assert result.returncode == 0, result.stderr[-3000:]
    lines = warning_lines(result, f"--labels_file {reordered}")
    assert len(lines) == 1 and "another order" in lines[0] and "path index" in lines[0], result.stderr[-3000:]


def test_a_labels_file_of_other_classes_is_a_zero_shot_warning(caplog):
    script = load_evaluate_script()
    with caplog.at_level(logging.WARNING, logger="omniclip_hf.training.evaluation"):
        script.warn_if_classes_differ_from_training("same.txt", ["Moving_Left", "moving-right"],
                                                    ["moving left", "moving right"])
        assert not caplog.records  # the same names, spelled otherwise, in the same order
        script.warn_if_classes_differ_from_training("other.txt", ["moving left", "jumping"],
                                                    ["moving left", "moving right"])
    [record] = caplog.records
    message = record.getMessage()
    assert "other.txt" in message and "'jumping'" in message and "'moving right'" in message
    assert "zero-shot" in message and "scores by class name" in message


def test_class_names_that_normalise_alike_are_refused(motion_data, tmp_path):  # noqa: F811
    """`moving up` and `Moving_Up` were one lookup key: the first became a class that could never be predicted."""
    labels = tmp_path / "labels.txt"
    labels.write_text("moving left\nmoving right\nmoving up\nmoving down\nMoving_Up\n")
    with pytest.raises(ValueError) as raised:
        load_video_dataset(motion_data / "test", labels)
    message = str(raised.value)
    assert message.startswith(f"{labels}: ") and "'moving up' and 'Moving_Up'" in message and "\n" not in message
    annotations = tmp_path / "rows.csv"  # no labels file: the classes are the rows' own labels
    annotations.write_text(f"path,label\n{video(motion_data, 'moving up')},moving up\n"
                           f"{video(motion_data, 'moving up', 1)},Moving_Up\n")
    with pytest.raises(ValueError, match=rf"^{annotations}: class names 'Moving_Up' and 'moving up' are the same"):
        load_video_dataset(annotations)


def test_undecodable_eval_videos_are_said_on_the_console(tiny_omniclip_dir, motion_data, tmp_path):  # noqa: F811
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    annotations = tmp_path / "eval.csv"
    annotations.write_text(f"path,label\n{video(motion_data, 'moving up')},moving up\n{broken},moving down\n")
    result = run(EVALUATE + ["--model", str(tiny_omniclip_dir), "--eval_data", str(annotations), *ONE_VIEW,
                             "--output_dir", str(tmp_path / "eval")])
    assert result.returncode == 0, result.stderr[-3000:]
    lines = warning_lines(result, "could not be decoded")
    assert len(lines) == 1 and "1 of the 2 videos" in lines[0] and str(broken) in lines[0], result.stderr[-3000:]
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["num_videos"] == 1


@pytest.mark.parametrize("given", ["run", "checkpoint"])
def test_a_run_folder_or_training_checkpoint_as_model_points_to_run_model(motion_data, tmp_path, given):  # noqa: F811
    run_dir = tmp_path / "run"
    checkpoint = run_dir / "checkpoints" / "step_00000002"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text('{"global_step": 2}')
    (run_dir / "model").mkdir()
    (run_dir / "model" / "config.json").write_text('{"model_type": "omniclip"}')
    model = run_dir if given == "run" else checkpoint
    line = one_error_line(run(EVALUATE + ["--model", str(model), "--eval_data", str(motion_data / "test")]))
    assert f"pass the run's model, --model {run_dir / 'model'}" in line
    assert ("a training run folder" if given == "run" else "a training checkpoint") in line


def test_an_output_dir_under_a_file_and_a_missing_gpu_are_refused_before_loading(tiny_omniclip_dir,
                                                                                 motion_data, tmp_path):  # noqa: F811
    (tmp_path / "file").write_text("")
    command = EVALUATE + ["--model", str(tiny_omniclip_dir), "--eval_data", str(motion_data / "test"), *ONE_VIEW]
    line = one_error_line(run(command + ["--output_dir", str(tmp_path / "file" / "eval")]))
    assert line == (f"error: --output_dir {tmp_path / 'file' / 'eval'} cannot be created: {tmp_path / 'file'} is a "
                    "file, not a folder; pass a folder path.")
    if not torch.cuda.is_available():
        line = one_error_line(run(command + ["--device", "cuda", "--output_dir", str(tmp_path / "eval")]))
        assert "--device cuda" in line and "no CUDA GPU" in line
