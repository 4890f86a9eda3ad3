"""Faults from outside a training run: SIGKILL at random moments (some in the middle of a checkpoint write) and
resumption to the weights of an uninterrupted run; damaged, stray and half-written checkpoints; a full disk during
a checkpoint or the final save; --strict with DataLoader workers. The kill points are set through the
`OMNICLIP_TRAINING_TEST_HOOKS` environment variable (omniclip_hf/training/testing_hooks.py), not through flags."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from accelerate.utils import DistributedType
from safetensors.torch import load_file, save_file

from omniclip_hf.training.checkpoints import (
    CheckpointMismatchError,
    latest_checkpoint,
    load_trainer_state,
    restore_checkpoint,
    save_checkpoint,
    write_folder_atomically,
)
from omniclip_hf.training.testing_hooks import ENVIRONMENT_VARIABLE

from .conftest import REPO_ROOT
from .test_training import CLASSES, motion_data, run, train_command, trainable_weights  # noqa: F401 (fixture)

# 16 training videos, batch 4: 4 steps an epoch, 2 epochs; a checkpoint after every step.
OPTIONS = ("--epochs", "2", "--checkpointing_steps", "1")
TOTAL_STEPS = 8
STEPS_PER_EPOCH = 4


def start(command: list[str], hooks: dict, log: Path) -> subprocess.Popen:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                   ENVIRONMENT_VARIABLE: json.dumps(hooks)}
    with open(log, "w") as handle:
        return subprocess.Popen(command, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT, env=environment)


def wait_for(condition, process: subprocess.Popen, log: Path, timeout: float = 300) -> bool:
    """True once `condition()` holds; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return condition()
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"timed out; log:\n{log.read_text()[-3000:]}")


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def read_int(path: Path) -> int:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return -1


@pytest.mark.runs_long
def test_sigkill_at_random_moments_and_in_checkpoint_writes_resumes_to_the_uninterrupted_weights(
        tiny_clip_dir, motion_data, tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    straight = run(train_command(tiny_clip_dir, motion_data, tmp_path / "straight", *OPTIONS))
    assert straight.returncode == 0, straight.stderr[-3000:]

    output = tmp_path / "killed"
    command = train_command(tiny_clip_dir, motion_data, output, *OPTIONS, "--resume_from_checkpoint", "latest")
    marker, steps = tmp_path / "in_checkpoint", tmp_path / "step"
    resumed_at = []

    def checkpoint_write_kill(step: int, attempt: int) -> None:
        """Kill in the middle of writing checkpoint `step`: its state saved, not yet renamed."""
        marker.unlink(missing_ok=True)
        log = tmp_path / f"log{attempt}.txt"
        process = start(command, {"pause_in_checkpoint": {"step": step, "seconds": 120, "marker": str(marker)}}, log)
        assert wait_for(marker.exists, process, log), log.read_text()[-3000:]
        kill(process)
        assert (output / "checkpoints" / f".partial-step_{step:08d}").is_dir()  # the half-written one is there
        assert latest_checkpoint(output).name == f"step_{step - 1:08d}", f"seed {seed}"  # ... and never picked
        record_resume(log)

    def random_kill(attempt: int) -> None:
        """Kill at a random moment after the run has made one step since its start."""
        steps.unlink(missing_ok=True)
        log = tmp_path / f"log{attempt}.txt"
        process = start(command, {"step_marker": str(steps)}, log)
        wait_for(lambda: read_int(steps) >= 0, process, log)
        time.sleep(rng.uniform(0.0, 1.5))
        kill(process)
        record_resume(log)

    def record_resume(log: Path) -> None:
        for line in log.read_text().splitlines():
            if line.startswith("resumed from"):
                resumed_at.append(int(line.split(" at step ")[1].split()[0]))

    first = rng.randint(2, STEPS_PER_EPOCH - 1)  # mid-epoch: the resume lands on step first - 1 of an epoch
    checkpoint_write_kill(first, 0)
    random_kill(1)
    reached = load_trainer_state(latest_checkpoint(output))["global_step"]
    if reached + 2 <= TOTAL_STEPS - 1:
        checkpoint_write_kill(rng.randint(reached + 2, TOTAL_STEPS - 1), 2)
    random_kill(3)
    final = run(command)
    assert final.returncode == 0, final.stderr[-3000:]
    record_resume_text = [line for line in (final.stdout + final.stderr).splitlines() if line.startswith("resumed")]
    resumed_at += [int(line.split(" at step ")[1].split()[0]) for line in record_resume_text]

    assert any(step % STEPS_PER_EPOCH for step in resumed_at), (seed, resumed_at)  # at least one mid-epoch resume
    assert json.loads((output / "metrics.json").read_text())["global_step"] == TOTAL_STEPS
    expected = trainable_weights(tmp_path / "straight" / "checkpoints" / f"step_{TOTAL_STEPS:08d}")
    got = trainable_weights(output / "checkpoints" / f"step_{TOTAL_STEPS:08d}")
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), (seed, resumed_at, name)
    final_model = trainable_weights(output / "model")
    for name in expected:
        assert torch.equal(final_model[name], expected[name]), name

    # A damaged latest checkpoint (truncated weights): the run warns, falls back to the one before, and redoes the
    # last step to the same weights.
    last = output / "checkpoints" / f"step_{TOTAL_STEPS:08d}"
    weights = last / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    again = run(command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{last} is damaged" in again.stderr and "falling back" in again.stderr, again.stderr[-3000:]
    assert f"at step {TOTAL_STEPS - 1} " in again.stdout
    redone = trainable_weights(last)
    for name in expected:
        assert torch.equal(redone[name], expected[name]), name


# ---------------------------------------------------------------------------------------------- damaged checkpoints
class FakeAccelerator:
    """The parts of `Accelerator` the checkpoint code uses, one process; `load_state` reads `weights.json`."""

    is_main_process = True
    distributed_type = DistributedType.NO

    def __init__(self, weights=None, fail_save_with: int | None = None):
        self.weights = weights
        self.fail_save_with = fail_save_with

    def wait_for_everyone(self):
        pass

    def save_state(self, folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "weights.json").write_text(json.dumps(self.weights))
        if self.fail_save_with:
            raise OSError(self.fail_save_with, os.strerror(self.fail_save_with))

    def load_state(self, folder, strict=False):
        self.weights = json.loads((Path(folder) / "weights.json").read_text())


def write_checkpoints(output: Path, steps) -> None:
    for step in steps:
        save_checkpoint(FakeAccelerator({"step": step}), output, step,
                        {"global_step": step, "epoch": 0, "batches_in_epoch": step})


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before_with_a_warning(tmp_path, caplog):
    write_checkpoints(tmp_path, [2, 4, 6])
    (tmp_path / "checkpoints" / "step_00000006" / "weights.json").write_text("{trunc")  # a damaged state file
    (tmp_path / "checkpoints" / "step_00000004" / "trainer_state.json").write_text("")  # an empty trainer state
    (tmp_path / "checkpoints" / "step_00000099").write_text("stray")  # a file with a checkpoint's name
    accelerator = FakeAccelerator()
    with caplog.at_level("WARNING"):
        checkpoint, state = restore_checkpoint(accelerator, "latest", tmp_path)
    assert checkpoint.name == "step_00000002" and state["global_step"] == 2 and accelerator.weights == {"step": 2}
    warnings = [record.getMessage() for record in caplog.records]
    assert any("step_00000006 is damaged" in message and "falling back" in message for message in warnings), warnings
    assert any("step_00000004/trainer_state.json is damaged" in message for message in warnings), warnings
    assert latest_checkpoint(tmp_path).name == "step_00000006"  # the stray file is not a checkpoint

    # A folder named explicitly is not replaced by another: one line naming it.
    with pytest.raises(ValueError, match=r"step_00000004/trainer_state.json is damaged"):
        restore_checkpoint(FakeAccelerator(), str(tmp_path / "checkpoints" / "step_00000004"), tmp_path)

    # When none can be read, the run stops in one line instead of starting over from nothing.
    (tmp_path / "checkpoints" / "step_00000002" / "trainer_state.json").write_text("")
    with pytest.raises(ValueError, match=r"^no checkpoint in .*checkpoints can be loaded \(step_00000002, "
                                         r"step_00000004, step_00000006 damaged"):
        restore_checkpoint(FakeAccelerator(), "latest", tmp_path)


def test_a_checkpoint_of_another_model_is_refused_not_skipped_for_an_older_one(tmp_path):
    written_by = {"down.weight": [32, 64], "up.weight": [64, 32], "spg.weight": [64, 64]}
    for step in (2, 4):
        save_checkpoint(FakeAccelerator({"step": step}), tmp_path, step,
                        {"global_step": step, "epoch": 0, "batches_in_epoch": step, "trainable_weights": written_by})
    wider = {"down.weight": [64, 64], "up.weight": [64, 64]}  # another ratio, and no SPG
    accelerator = FakeAccelerator()
    with pytest.raises(CheckpointMismatchError) as info:
        restore_checkpoint(accelerator, "latest", tmp_path, wider)
    message = str(info.value)
    assert "step_00000004" in message and "\n" not in message, message  # the latest, not a fallback to step 2
    assert "it has spg.weight, which this model lacks" in message, message
    assert "down.weight: [32, 64] there, [64, 64] here" in message, message
    assert accelerator.weights is None  # refused before anything was loaded
    checkpoint, state = restore_checkpoint(accelerator, "latest", tmp_path, dict(written_by))
    assert checkpoint.name == "step_00000004" and accelerator.weights == {"step": 4}


def test_overwrite_and_resume_together_are_refused():
    from omniclip_hf.training.loop import parse_training_options

    with pytest.raises(ValueError, match="--overwrite_output_dir deletes the checkpoints that --resume_from_checkpoint"):
        parse_training_options(["--clip", "x", "--train_data", "y", "--overwrite_output_dir",
                                "--resume_from_checkpoint", "latest"])


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.runs_long
def test_training_never_mixes_two_runs_in_one_output_dir(tiny_clip_dir, motion_data, tmp_path):
    output = tmp_path / "run"
    no_spg = ("--model_overrides", '{"use_spg": false}')
    first = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "2", "--checkpointing_steps", "1",
                              *no_spg))
    assert first.returncode == 0, first.stderr[-3000:]
    before = files_under(output)

    # Resuming with another model: refused in one line that names the checkpoint and the weights; nothing written.
    resumed = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "3", "--resume_from_checkpoint",
                                "latest"))
    errors = [line for line in resumed.stderr.splitlines() if line.startswith("error:")]
    assert resumed.returncode == 2 and len(errors) == 1, resumed.stderr[-3000:]
    assert "step_00000002" in errors[0] and "self_prompt_generator" in errors[0] and "Traceback" not in resumed.stderr
    assert files_under(output) == before

    # Resuming over another CLIP of the same shapes (other frozen weights): refused too, nothing written.
    other_clip = tmp_path / "other_clip"
    shutil.copytree(tiny_clip_dir, other_clip)
    weights = load_file(other_clip / "model.safetensors")
    weights = {name: tensor * 1.01 if "vision_model" in name else tensor for name, tensor in weights.items()}
    save_file(weights, other_clip / "model.safetensors", metadata={"format": "pt"})
    command = train_command(other_clip, motion_data, output, "--max_steps", "3", "--resume_from_checkpoint", "latest",
                            *no_spg)
    other = run(command)
    errors = [line for line in other.stderr.splitlines() if line.startswith("error:")]
    assert other.returncode == 2 and len(errors) == 1, other.stderr[-3000:]
    assert "step_00000002 was trained over another frozen CLIP" in errors[0]
    assert files_under(output) == before

    # A new run without --resume_from_checkpoint: refused too (latest would pick the earlier run's step 2).
    fresh = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "1"))
    errors = [line for line in fresh.stderr.splitlines() if line.startswith("error:")]
    assert fresh.returncode == 2 and len(errors) == 1 and "--overwrite_output_dir" in errors[0], fresh.stderr[-3000:]
    assert files_under(output) == before

    # --overwrite_output_dir with data that cannot train (5 shots of 4 videos a class): the earlier checkpoints stay.
    failed = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "1", "--shots", "5",
                               "--overwrite_output_dir"))
    assert failed.returncode == 2 and "shots" in failed.stderr, failed.stderr[-3000:]
    assert files_under(output) == before

    # Evaluating only (no --train_data) into the folder would replace its model/ and metrics.json: refused.
    evaluation = train_command(tiny_clip_dir, motion_data, output, "--eval_data", str(motion_data / "test"))
    evaluation[evaluation.index("--train_data"):evaluation.index("--train_data") + 2] = []
    evaluated = run(evaluation)
    errors = [line for line in evaluated.stderr.splitlines() if line.startswith("error:")]
    assert evaluated.returncode == 2 and len(errors) == 1, evaluated.stderr[-3000:]
    assert "holds an earlier run (model, metrics.json, checkpoints)" in errors[0]
    assert files_under(output) == before

    # --overwrite_output_dir: the earlier run's checkpoints go, and the new model's are the only ones left.
    again = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "1", "--checkpointing_steps", "1",
                              "--overwrite_output_dir"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert [path.name for path in (output / "checkpoints").iterdir()] == ["step_00000001"]
    state = load_trainer_state(output / "checkpoints" / "step_00000001")
    assert any(name.startswith("self_prompt_generator.") for name in state["trainable_weights"])
    assert json.loads((output / "training_options.json").read_text())["model_overrides"] is None

    # Resuming the same model with another batch size: it goes on, with one warning that the position means
    # something else now.
    smaller = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "2", "--batch_size", "2",
                                "--resume_from_checkpoint", "latest"))
    assert smaller.returncode == 0, smaller.stderr[-3000:]
    warnings = [line for line in smaller.stderr.splitlines() if "recipe other than the run's" in line]
    assert len(warnings) == 1 and "--batch_size 2 (was 4)" in warnings[0], smaller.stderr[-3000:]

    # Another run's checkpoint, resumed in a new folder: compared with the recipe that checkpoint recorded.
    elsewhere = run(train_command(tiny_clip_dir, motion_data, tmp_path / "elsewhere", "--max_steps", "2", "--seed",
                                  "7", "--resume_from_checkpoint", str(output / "checkpoints" / "step_00000001")))
    assert elsewhere.returncode == 0, elsewhere.stderr[-3000:]
    warnings = [line for line in elsewhere.stderr.splitlines() if "recipe other than the run's" in line]
    assert len(warnings) == 1 and "step_00000001" in warnings[0] and "--seed 7 (was 42)" in warnings[0], \
        elsewhere.stderr[-3000:]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_failed_checkpoint_write_leaves_nothing_half_written(tmp_path, code):
    write_checkpoints(tmp_path, [2])
    with pytest.raises(OSError, match="no space left on device" if code == errno.ENOSPC else "writing failed") as info:
        save_checkpoint(FakeAccelerator({"step": 4}, fail_save_with=code), tmp_path, 4,
                        {"global_step": 4, "epoch": 0, "batches_in_epoch": 4})
    assert "\n" not in str(info.value) and "step_00000004" in str(info.value)
    assert [path.name for path in (tmp_path / "checkpoints").iterdir()] == ["step_00000002"]


def test_the_final_folder_is_replaced_only_when_complete(tmp_path):
    target = tmp_path / "model"
    write_folder_atomically(target, lambda folder: (folder.mkdir(), (folder / "config.json").write_text("old")))

    def disk_full(folder: Path) -> None:
        folder.mkdir()
        (folder / "config.json").write_text("new")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=r"model: no space left on device; nothing was written"):
        write_folder_atomically(target, disk_full)
    assert [path.name for path in tmp_path.iterdir()] == ["model"]  # no temporary folder left
    assert (target / "config.json").read_text() == "old"  # the previous complete folder is untouched
    write_folder_atomically(target, lambda folder: (folder.mkdir(), (folder / "config.json").write_text("new")))
    assert (target / "config.json").read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_strict_with_dataloader_workers_fails_in_one_line(tiny_clip_dir, motion_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(motion_data, data)
    (data / "train" / CLASSES[1] / "broken.mp4").write_text("this is not a video")
    command = train_command(tiny_clip_dir, data, tmp_path / "strict", "--epochs", "1", "--strict")
    command[command.index("--num_workers") + 1] = "2"
    strict = run(command)
    assert strict.returncode == 2, strict.stderr[-3000:]
    errors = [line for line in strict.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.mp4" in errors[0] and "--strict" in errors[0], strict.stderr[-3000:]
    assert "Traceback" not in strict.stderr and "in DataLoader worker" not in strict.stderr, strict.stderr[-3000:]


class OneRankDiskFull(FakeAccelerator):
    """Two gloo processes; rank 0's disk is full."""

    def __init__(self, rank: int):
        super().__init__({"rank": rank}, fail_save_with=errno.ENOSPC if rank == 0 else None)
        self.is_main_process = rank == 0
        self.num_processes = 2
        self.device = torch.device("cpu")

    def wait_for_everyone(self):
        torch.distributed.barrier()

    def reduce(self, tensor, reduction="sum"):
        torch.distributed.all_reduce(tensor)
        return tensor


def save_with_one_rank_out_of_space(rank: int, port: int, output: str) -> None:
    from datetime import timedelta

    # A short collective timeout: without the agreement, rank 1 would wait at the barrier for rank 0 in vain.
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                                         timeout=timedelta(seconds=30))
    try:
        save_checkpoint(OneRankDiskFull(rank), output, 4, {"global_step": 4, "epoch": 0, "batches_in_epoch": 4})
        outcome = "saved"
    except OSError as error:
        outcome = str(error)
    Path(output, f"outcome{rank}.txt").write_text(outcome)
    torch.distributed.destroy_process_group()


def test_a_checkpoint_write_failing_on_one_process_stops_every_process(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(save_with_one_rank_out_of_space, args=(port, str(tmp_path)), nprocs=2, join=True)
    outcomes = [(tmp_path / f"outcome{rank}.txt").read_text() for rank in (0, 1)]
    assert "no space left on device" in outcomes[0]
    assert "another process could not write its part" in outcomes[1]  # not waiting forever at the barrier
    assert not any(path.name.startswith("step_") for path in (tmp_path / "checkpoints").iterdir())


def test_the_frozen_clip_fingerprint_sees_frozen_weights_only(tiny_clip):
    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.training.checkpoints import frozen_clip_fingerprint

    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4)
    fingerprint = frozen_clip_fingerprint(model)
    assert frozen_clip_fingerprint(OmniCLIPModel.from_clip(tiny_clip, num_frames=4)) == fingerprint
    with torch.no_grad():
        next(parameter for parameter in model.parameters() if parameter.requires_grad).add_(1.0)  # trained: the same
        assert frozen_clip_fingerprint(model) == fingerprint
        model.clip.vision_model.post_layernorm.weight[0] += 0.01  # a frozen value it samples: another CLIP
    assert frozen_clip_fingerprint(model) != fingerprint


def test_a_resume_on_another_number_of_processes_is_warned_about(tmp_path, caplog):
    """A checkpoint's position counts each process's batches: batch 40 of two processes is batch 80 of one."""
    from omniclip_hf.training.loop import parse_training_options
    from omniclip_hf.training.recipe import recipe_of, warn_about_changed_recipe

    options = parse_training_options(["--clip", "x", "--train_data", "y"])
    with caplog.at_level("WARNING"):
        warn_about_changed_recipe(options, tmp_path, tmp_path / "step_00000040", recipe_of(options, 2), processes=2)
        assert not caplog.records
        warn_about_changed_recipe(options, tmp_path, tmp_path / "step_00000040", recipe_of(options, 2), processes=1)
    assert len(caplog.records) == 1 and "step_00000040): processes 1 (was 2)" in caplog.records[0].getMessage()
