"""The main job, reduced: `examples/demo.py` end to end (data, tiny CLIP pretraining, `accelerate launch` training,
frame-average baseline, results.json, learning curve, zero-shot pipeline) on one reversal pair, in about two minutes.

The pair is appearing/disappearing because colour is what a 100-step tiny CLIP already sees (83% zero-shot, against
31% for position): the full demo's 200 steps would take twice as long. Measured with these settings (seed 0, both
cores shared with another job): OmniCLIP 95.0% within the pair, frame average 50.0%; 2 min 25 s. Batch 8 and 64
clips a class matter: batch 16 with 32 clips a class (48 steps) gave 85.0% at lr 3e-3 and 50.0% at lr 5e-3, and
batch 8 with 32 clips a class memorised the training set (loss ~0) and gave 80.0%.
Frame averaging cannot separate a clip from its time reversal, so its pair top-1 is 50% whatever its head.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from omniclip_hf.motion_benchmark.runner import DEMO_PROMPT_LR_SCALE, DEMO_SPG_LR_SCALE

from .conftest import REPO_ROOT

REDUCED_DEMO = [
    "--classes", "appearing", "disappearing", "--train_per_class", "64", "--test_per_class", "10",
    "--epochs", "6", "--batch_size", "8", "--pretrain_steps", "100", "--seed", "0",
]


@pytest.mark.runs_long
def test_reduced_demo_beats_frame_averaging_within_reversal_pairs(tmp_path):
    output = tmp_path / "demo_output"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "demo.py"), "--output_dir", str(output),
                             *REDUCED_DEMO], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    rows = {row["model"]: row for row in json.loads((output / "results.json").read_text())}
    assert set(rows) == {"omniclip", "frame_average"}
    for row in rows.values():
        assert set(row) == {"model", "trainable_params", "top1", "pair_top1", "errors", "reversal_errors"}
    # A clip and its reversal have the same frame average: exactly chance within the pair, by construction.
    assert rows["frame_average"]["pair_top1"] == 0.5
    # With one pair every error is an order error: the only other class is the reverse one.
    assert rows["frame_average"]["reversal_errors"] == rows["frame_average"]["errors"] > 0
    # OmniCLIP must see the direction of time: a wide margin over that chance level.
    assert rows["omniclip"]["pair_top1"] >= 0.8, rows
    assert rows["omniclip"]["trainable_params"] > rows["frame_average"]["trainable_params"]

    assert (output / "learning_curve.png").stat().st_size > 1000
    assert "| omniclip |" in result.stdout and "| frame_average |" in result.stdout
    assert "zero-shot pipeline on" in result.stdout  # the trained folder classified a clip by label names

    # The demo's recipe reached the training run: the package's default model (eq. 6 SPG) and both prompt generators
    # at a tenth of the learning rate.
    options = json.loads((output / "omniclip_run" / "metrics.json").read_text())["options"]
    assert (options["spg_lr_scale"], options["prompt_lr_scale"]) == (DEMO_SPG_LR_SCALE, DEMO_PROMPT_LR_SCALE) == (0.1, 0.1)
    config = json.loads((output / "omniclip_run" / "model" / "config.json").read_text())
    assert (config["spg_residual"], config["spg_projector_init"]) == (False, "identity")


def test_demo_rejects_a_class_without_its_reversal_partner(tmp_path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "demo.py"), "--output_dir", str(tmp_path),
                             "--classes", "moving left"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: every class needs its time-reversed partner too; missing ['moving right']")
    assert "Traceback" not in result.stderr


@pytest.mark.runs_long
def test_demo_rerun_replaces_its_motion_set_and_passes_on_trainings_error_line(tmp_path):
    """A rerun with other classes or fewer clips left the old ones in motion_data (and trained on them); a CLIP
    folder train.py refuses ended in a RuntimeError around the launcher's traceback; a missing one was found only
    after the motion set was written."""
    stale = [tmp_path / "motion_data" / "train" / "rotating clockwise" / "00000.mp4",
             tmp_path / "motion_data" / "train" / "appearing" / "00099.mp4"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"an earlier run's clip")
    not_a_clip = tmp_path / "not_a_clip"
    not_a_clip.mkdir()
    demo = [sys.executable, str(REPO_ROOT / "examples" / "demo.py"), "--output_dir", str(tmp_path), "--classes",
            "appearing", "disappearing", "--train_per_class", "1", "--test_per_class", "1"]
    result = subprocess.run(demo + ["--clip", str(not_a_clip)], capture_output=True, text=True, cwd=REPO_ROOT,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: examples/train.py stopped: {not_a_clip} holds no config.json"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not any(path.exists() for path in stale)
    assert sorted(path.relative_to(tmp_path / "motion_data").as_posix()
                  for path in (tmp_path / "motion_data").rglob("*.mp4")) == [
        "test/appearing/00000.mp4", "test/disappearing/00000.mp4",
        "train/appearing/00000.mp4", "train/disappearing/00000.mp4"]

    missing = subprocess.run(demo + ["--output_dir", str(tmp_path / "second"), "--clip", str(tmp_path / "nothere")],
                             capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert missing.returncode == 2 and "--clip" in missing.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "second").exists()  # refused before anything was written


def test_reversal_errors_count_the_errors_that_chose_the_reverse_class():
    import torch

    from omniclip_hf.motion_benchmark.runner import reversal_errors, split_scores

    classes = ["moving left", "moving right", "appearing", "disappearing"]  # two reversal pairs
    labels = torch.tensor([0, 1, 2, 3, 0])
    # Right; reverse class (1 -> 0); another kind of motion (2 -> 0); reverse class (3 -> 2); right.
    predicted = torch.tensor([0, 0, 0, 2, 0])
    logits = torch.nn.functional.one_hot(predicted, 4).float()
    assert reversal_errors(logits, labels, classes) == (3, 2)
    scores = split_scores(logits, labels, classes)
    assert (scores["errors"], scores["reversal_errors"]) == (3, 2)
    assert scores["top1"] == pytest.approx(0.4)
