"""The demo's, bench_ablation's and the motion-set scripts' inputs: a bad flag, a folder they did not write and a data
set or tiny CLIP made with other settings are refused in one `error:` line naming what to change, before anything is
written or trained. Every test stops before training: pretraining and `examples/train.py` are replaced by stubs that
fail the test if reached, or that stand for the failure under test."""

from __future__ import annotations

import importlib.util
import json

import pytest

from omniclip_hf.motion_benchmark import motion_data as md
from omniclip_hf.motion_benchmark import tiny_clip as tc

from .conftest import REPO_ROOT, load_benchmark

TWO_CLASSES = ["moving left", "moving right"]


class Reached(Exception):
    """Raised by a stub where the script got past its checks (to pretraining or training)."""


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def stop_before_training(monkeypatch):
    """Pretraining the tiny CLIP and training OmniCLIP raise `Reached` instead of running (minutes)."""
    def reached(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(tc, "pretrain_tiny_clip", reached)
    return reached


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


def file_tree(folder) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# ----------------------------------------------------------------------------------------------------------------------
# 1. bench_ablation.py reuses only the motion set and tiny CLIP its flags ask for
# ----------------------------------------------------------------------------------------------------------------------
SMALL_BENCH = ["--pairs", "1", "--train_per_class", "1", "--test_per_class", "1", "--num_frames", "2"]


def write_small_set(folder, size=64, **changes):
    settings = dict(num_train_per_class=1, num_test_per_class=1, num_frames=2, size=size, seed=0,
                    classes=TWO_CLASSES)
    md.write_motion_dataset(folder, **{**settings, **changes})


@pytest.fixture
def bench(monkeypatch, stop_before_training):
    module = load_benchmark("bench_ablation")
    monkeypatch.setattr(module, "train_omniclip", stop_before_training)
    return module


def run_bench(bench, *flags):
    with pytest.raises(SystemExit) as stopped:
        bench.main(list(flags))
    return stopped.value.code


@pytest.mark.parametrize("change, named", [
    ({"size": 32}, "frame size 32 (this script writes 64)"),
    ({"num_train_per_class": 2}, "--train_per_class 2 (not 1)"),
    ({"num_test_per_class": 2}, "--test_per_class 2 (not 1)"),
    ({"num_frames": 3}, "--num_frames 3 (not 2)"),
    ({"seed": 1}, "seed 1 (this script writes 0)"),
])
def test_bench_refuses_a_motion_set_written_with_other_settings(bench, tmp_path, capsys, change, named):
    write_small_set(tmp_path / "motion_data", **change)
    before = file_tree(tmp_path)
    assert run_bench(bench, "--work_dir", str(tmp_path), "--rows", "full", "--seeds", "0", *SMALL_BENCH) == 2
    line = error_line(capsys)
    assert "error: --work_dir" in line and named in line and "another --work_dir" in line, line
    assert file_tree(tmp_path) == before


def test_bench_names_pairs_for_a_set_of_other_classes_and_the_table_checks_it_too(bench, tmp_path, capsys):
    """The audit's case: a `make demo --pairs 1` set under bench_ablation's default --pairs 4 (64/16 clips a class)."""
    write_small_set(tmp_path / "motion_data")
    assert run_bench(bench, "--work_dir", str(tmp_path), "--rows", "full", "--seeds", "0", "--epochs", "1") == 2
    line = error_line(capsys)
    assert "--pairs 4 gives" in line and "--train_per_class 1 (not 64)" in line and "--test_per_class 1 (not 16)" in line
    # --table prints scores of runs trained on that set: refused the same way, not printed as the table asked for.
    assert run_bench(bench, "--work_dir", str(tmp_path), "--table", "--rows", "full", "--seeds", "0") == 2
    assert "--pairs 4 gives" in error_line(capsys)


def test_bench_reuses_a_motion_set_written_with_its_flags(bench, tmp_path):
    write_small_set(tmp_path / "motion_data")
    before = file_tree(tmp_path / "motion_data")
    with pytest.raises(Reached):  # on to pretraining the tiny CLIP, with the set as it was
        bench.main(["--work_dir", str(tmp_path), "--rows", "full", "--seeds", "0", *SMALL_BENCH])
    assert file_tree(tmp_path / "motion_data") == before


def test_bench_refuses_a_folder_data_set_it_did_not_write(bench, tmp_path, capsys):
    (tmp_path / "motion_data" / "train" / "archery").mkdir(parents=True)
    (tmp_path / "motion_data" / "labels.txt").write_text("archery\n")
    assert run_bench(bench, "--work_dir", str(tmp_path), "--rows", "full", "--seeds", "0", *SMALL_BENCH) == 2
    assert "has no dataset_info.json" in error_line(capsys)


def test_bench_refuses_a_tiny_clip_pretrained_at_another_image_size(bench, tmp_path, capsys):
    write_small_set(tmp_path / "motion_data")
    clip_dir = tmp_path / "tiny_clip"  # what `make demo --frame_size 32` leaves (the weights play no part here)
    tc.make_tiny_clip_config(image_size=32).save_pretrained(clip_dir)
    (clip_dir / tc.METRICS_FILE).write_text("{}")
    for flags in ([], ["--table"]):
        assert run_bench(bench, "--work_dir", str(tmp_path), "--rows", "full", "--seeds", "0", *SMALL_BENCH,
                         *flags) == 2
        line = error_line(capsys)
        assert "tiny_clip was pretrained at 32x32 pixels, not the 64" in line and "--clip" in line, line


# ----------------------------------------------------------------------------------------------------------------------
# 5. bench_ablation.py: a training that stops on a bad input is one error line, not a traceback
# ----------------------------------------------------------------------------------------------------------------------
def test_bench_reports_a_failed_training_in_one_line(bench, tmp_path, monkeypatch, capsys):
    not_a_clip = tmp_path / "notdry"
    not_a_clip.mkdir()
    (not_a_clip / "f").write_text("")

    def train_py_refuses(*args, **kwargs):  # what runner.train_omniclip raises for train.py's one `error:` line
        raise ValueError(f"examples/train.py stopped: {not_a_clip} holds no config.json")

    monkeypatch.setattr(bench, "train_omniclip", train_py_refuses)
    assert run_bench(bench, "--work_dir", str(tmp_path / "w2"), "--clip", str(not_a_clip), "--rows", "full",
                     "--seeds", "0", *SMALL_BENCH) == 2
    line = error_line(capsys)
    assert line.endswith(f"error: examples/train.py stopped: {not_a_clip} holds no config.json"), line


# ----------------------------------------------------------------------------------------------------------------------
# 2, 4, 7. examples/demo.py checks every flag and its output folder before step 1
# ----------------------------------------------------------------------------------------------------------------------
SMALL_DEMO = ["--pairs", "1", "--train_per_class", "1", "--test_per_class", "1", "--num_frames", "2",
              "--frame_size", "32"]


@pytest.fixture
def demo(monkeypatch, stop_before_training):
    module = load_example("demo")
    monkeypatch.setattr(module, "train_omniclip", stop_before_training)
    return module


@pytest.mark.parametrize("flag, value", [
    ("--seed", "-1"), ("--frame_size", "31"), ("--frame_size", "36"), ("--pretrain_steps", "0"),
    ("--pretrain_seconds", "0"), ("--train_per_class", "0"), ("--test_per_class", "0"), ("--lr", "-1"),
    ("--epochs", "0"), ("--batch_size", "0"), ("--warmup_epochs", "-1"), ("--num_frames", "1"),
])
def test_demo_refuses_a_bad_flag_by_its_name_before_writing_anything(demo, tmp_path, capsys, flag, value):
    output = tmp_path / "X"
    (output / "motion_data").mkdir(parents=True)
    (output / "motion_data" / "my_notes.txt").write_text("precious")
    with pytest.raises(SystemExit) as stopped:
        demo.main(["--output_dir", str(output), *SMALL_DEMO, flag, value])
    assert stopped.value.code == 2
    line = error_line(capsys)
    assert f"error: {flag} " in line, line
    assert file_tree(output) == {"motion_data/my_notes.txt": b"precious"}


@pytest.mark.parametrize("files, named", [
    ({"my_notes.txt": "precious"}, "not a motion set (my_notes.txt)"),
    # A folder data set in the motion set's layout, without the info file the demo writes.
    ({"labels.txt": "archery\n", "train/archery/v1.mp4": "v"}, "has no dataset_info.json"),
])
def test_demo_keeps_a_motion_data_folder_it_did_not_write(demo, tmp_path, capsys, files, named):
    """The audit's case, with every flag valid: motion_data/ holding someone's files is refused, not replaced."""
    output = tmp_path / "X"
    for name, text in files.items():
        (output / "motion_data" / name).parent.mkdir(parents=True, exist_ok=True)
        (output / "motion_data" / name).write_text(text)
    before = file_tree(output)
    with pytest.raises(SystemExit) as stopped:
        demo.main(["--output_dir", str(output), *SMALL_DEMO])
    assert stopped.value.code == 2
    line = error_line(capsys)
    assert "error: --output_dir" in line and named in line, line
    assert file_tree(output) == before


def test_demo_replaces_a_motion_set_an_earlier_demo_wrote(demo, tmp_path):
    output = tmp_path / "X"
    write_small_set(output / "motion_data", size=32, num_train_per_class=2)
    with pytest.raises(Reached):  # step 1 done, on to pretraining
        demo.main(["--output_dir", str(output), *SMALL_DEMO])
    assert json.loads((output / "motion_data" / "dataset_info.json").read_text())["settings"]["num_train_per_class"] == 1


def test_demo_refuses_a_file_as_output_dir_by_its_flag(demo, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    with pytest.raises(SystemExit) as stopped:
        demo.main(["--output_dir", str(tmp_path / "afile"), *SMALL_DEMO])
    assert stopped.value.code == 2
    assert f"error: --output_dir {tmp_path / 'afile'}: {tmp_path / 'afile'} is a file; give a folder" in \
        error_line(capsys)


# ----------------------------------------------------------------------------------------------------------------------
# 3, 7. make_motion_dataset.py: --overwrite replaces only a set it wrote; --seed named
# ----------------------------------------------------------------------------------------------------------------------
def make_motion_dataset(output_dir, *flags):
    return load_example("make_motion_dataset").main(
        ["--output_dir", str(output_dir), "--num_frames", "2", "--size", "32", "--train_per_class", "1",
         "--test_per_class", "1", "--classes", *TWO_CLASSES, *flags])


@pytest.mark.parametrize("info", [None, {"name": "my archery clips"}])
def test_overwrite_keeps_a_folder_data_set_it_did_not_write(tmp_path, info):
    folder = tmp_path / "R"
    (folder / "train" / "archery").mkdir(parents=True)
    (folder / "test").mkdir()
    (folder / "labels.txt").write_text("archery\n")
    (folder / "train" / "archery" / "v1.mp4").write_text("v")
    if info is not None:  # laid out like a motion set, info file included, but not written by the script
        (folder / "dataset_info.json").write_text(json.dumps(info))
    before = file_tree(folder)
    with pytest.raises(ValueError, match=r"--output_dir .*R has no dataset_info.json naming it an omniclip synthetic "
                                         r"motion set.*--overwrite replaces only a folder this script wrote"):
        make_motion_dataset(folder, "--overwrite")
    assert file_tree(folder) == before


def test_make_motion_dataset_names_a_negative_seed(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        make_motion_dataset(tmp_path / "out", "--seed", "-1")
    assert stopped.value.code == 2
    assert "error: --seed -1: must be at least 0" in error_line(capsys)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------------------------------
# 6. pretrain_tiny_clip.py --tokenizer is checked, by its name, before training
# ----------------------------------------------------------------------------------------------------------------------
def write_small_vocabulary(folder):
    """A BPE tokenizer folder whose vocabulary (5 tokens) has no room for CLIP's start and end ids."""
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps({"a</w>": 0, "red</w>": 1, "circle</w>": 2}))
    (folder / "merges.txt").write_text("#version: 0.2\n")


@pytest.mark.parametrize("tokenizer, message", [
    ("missing", "no such folder; give a CLIP tokenizer folder"),
    ("no_files", "holds neither vocab.json and merges.txt nor tokenizer.json"),
    ("small", "its vocabulary (5 tokens, start and end token ids 3 and 4) does not fit the tiny CLIP"),
])
def test_pretrain_tiny_clip_checks_the_tokenizer_folder(tmp_path, tokenizer, message):
    folder = tmp_path / tokenizer
    if tokenizer == "no_files":
        folder.mkdir()
        (folder / "clip.mp4").write_bytes(b"")
    elif tokenizer == "small":
        write_small_vocabulary(folder)
    flags = ["--output_dir", str(tmp_path / "tiny_clip"), "--tokenizer", str(folder), "--steps", "1",
             "--batch_size", "2", "--eval_images", "1", "--num_threads", "1"]
    with pytest.raises(ValueError) as refused:
        tc.main(flags)
    assert str(refused.value).startswith(f"--tokenizer {folder}: ") and message in str(refused.value)
    assert not (tmp_path / "tiny_clip").exists()


# ----------------------------------------------------------------------------------------------------------------------
# 8. The docs say what the code does
# ----------------------------------------------------------------------------------------------------------------------
def test_the_docs_state_the_rotation_per_frame_and_the_tiny_clip_module_path():
    docs = (REPO_ROOT / "docs" / "motion_benchmark.md").read_text()
    # _sample_rotation turns 120-240 degrees in all; 8 frames have 7 steps between them.
    assert f"{120 // 7}-{240 // 7} degrees a frame" in docs and "15-30 degrees a frame" not in docs
    for path in ("examples/pretrain_tiny_clip.py", "omniclip_hf/motion_benchmark/motion_data.py"):
        text = (REPO_ROOT / path).read_text()
        assert "omniclip_hf/tiny_clip.py" not in text and "omniclip_hf/motion_benchmark/tiny_clip.py" in text, path
    assert "about 2 minutes" not in (REPO_ROOT / "examples" / "pretrain_tiny_clip.py").read_text()
