"""DeepSpeed ZeRO-2 through the shipped `deepspeed_zero2.yaml`, one and two processes on this CPU.

Accelerate places DeepSpeed on GPUs only (on a CPU it sets up plain data parallelism, and train.py says so), so the
tests' `deepspeed_on_cpu` hook leaves Accelerate's `cpu=True` off and DeepSpeed runs on its CPU accelerator (with two
processes the hook also gives Accelerate's state the process group's ranks, which it records only on GPUs). Before
these tests the config had never run: `accelerator.prepare` stopped on CLIP's 0-dim `logit_scale`, every checkpoint
also held the whole frozen CLIP, and every resume called its checkpoints damaged. Skipped where deepspeed is not
installed (it is not a dependency of the package: `pip install deepspeed`).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from .conftest import REPO_ROOT
from .test_training import motion_data, run, train_command  # noqa: F401 (fixture)


pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed is not installed"),
    pytest.mark.runs_long,
]

HOOKS = {"deepspeed_on_cpu": True}


def deepspeed_run(tiny_clip_dir, motion_data, output: Path, *flags: str, processes: int = 1,
                  hooks: dict | None = None):
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(REPO_ROOT / "examples" / "accelerate_configs" / "deepspeed_zero2.yaml"),
              "--num_processes", str(processes)]
    return run(launch + train_command(tiny_clip_dir, motion_data, output, "--max_steps", "4",
                                      "--checkpointing_steps", "2", "--eval_data", str(motion_data / "test"),
                                      *flags)[1:], hooks={**HOOKS, **(hooks or {})})


@pytest.mark.parametrize("processes", [1, 2])
def test_the_shipped_deepspeed_config_trains_checkpoints_only_trainable_weights_and_resumes(tiny_clip_dir,
                                                                                             motion_data, tmp_path,
                                                                                             processes):
    whole = deepspeed_run(tiny_clip_dir, motion_data, tmp_path / "whole", processes=processes,
                          hooks={"record_seen_indices": True})
    assert whole.returncode == 0, whole.stderr[-3000:]
    metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert metrics["distributed"]["type"] == "DEEPSPEED" and metrics["global_step"] == 4, whole.stderr[-2000:]
    assert metrics["distributed"]["processes"] == processes and "top1" in metrics
    # Each process trains on its own part of every epoch (4 steps of 4 videos per process: 2 epochs of 16 for two).
    seen = [json.loads((tmp_path / "whole" / f"seen_indices_rank{rank}.json").read_text())
            for rank in range(processes)]
    for epoch in {epoch for ranks in seen for epoch, _ in ranks}:
        per_rank = [[index for seen_epoch, batch in ranks if seen_epoch == epoch for index in batch] for ranks in seen]
        assert all(per_rank) and sum(map(len, per_rank)) == len(set().union(*per_rank)), (epoch, per_rank)
    # ZeRO-2: one optimizer shard per process.
    shards = sorted(path.name for path in (tmp_path / "whole" / "checkpoints" / "step_00000004" / "pytorch_model")
                    .glob("*optim_states.pt"))
    assert len(shards) == processes and all(f"pp_rank_{rank}_" in shard for rank, shard in enumerate(shards)), shards

    # Each checkpoint holds the trainable weights alone: no CLIP weight in `module`, none written apart by ZeRO-2.
    for step in ("step_00000002", "step_00000004"):
        saved = torch.load(tmp_path / "whole" / "checkpoints" / step / "pytorch_model" / "mp_rank_00_model_states.pt",
                           map_location="cpu", weights_only=False)
        assert saved["module"] and not [name for name in saved["module"] if name.startswith("clip.")]
        assert not saved.get("frozen_param_fragments")

    # Killed after step 2 (its checkpoint written) and resumed from it: the weights of the uninterrupted run.
    killed = deepspeed_run(tiny_clip_dir, motion_data, tmp_path / "halves", processes=processes,
                           hooks={"kill_after_steps": 2})
    assert killed.returncode != 0 and not (tmp_path / "halves" / "model").exists()
    resumed = deepspeed_run(tiny_clip_dir, motion_data, tmp_path / "halves", "--resume_from_checkpoint", "latest",
                            processes=processes)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    said = resumed.stdout + resumed.stderr
    assert "resumed from" in said and "step_00000002 at step 2" in said, said[-2000:]
    whole_model = load_file(str(tmp_path / "whole" / "model" / "model.safetensors"))
    resumed_model = load_file(str(tmp_path / "halves" / "model" / "model.safetensors"))
    assert whole_model.keys() == resumed_model.keys()
    assert [name for name, value in whole_model.items() if not torch.equal(resumed_model[name], value)] == []

    # The saved model holds CLIP's logit_scale (a buffer while DeepSpeed trained) under its own name and shape.
    clip = load_file(str(next(Path(tiny_clip_dir).glob("*.safetensors"))))
    assert whole_model["clip.logit_scale"].shape == clip["logit_scale"].shape == torch.Size([])


def test_deepspeed_zero2_over_two_processes_trains_the_weights_of_ddp(tiny_clip_dir, motion_data, tmp_path):
    """ZeRO-2 shards the optimizer state and averages the gradients itself, and the loop's optimizer and schedule are
    handed to its engine: in float32, two processes under the shipped config train the weights two DDP processes
    train, step for step (a gradient summed instead of averaged, or a learning rate that never reached DeepSpeed's
    optimizer, would not)."""
    flags = ("--mixed_precision", "no", "--checkpointing_steps", "100")
    deepspeed = deepspeed_run(tiny_clip_dir, motion_data, tmp_path / "deepspeed", *flags, processes=2)
    assert deepspeed.returncode == 0, deepspeed.stderr[-3000:]
    ddp = run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO_ROOT / "examples" / "accelerate_configs" / "multi_gpu.yaml"), "--num_processes", "2"]
              + train_command(tiny_clip_dir, motion_data, tmp_path / "ddp", "--max_steps", "4", *flags)[1:])
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    metrics = {name: json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("deepspeed", "ddp")}
    assert metrics["deepspeed"]["distributed"]["type"] == "DEEPSPEED"
    assert metrics["ddp"]["distributed"]["type"] == "MULTI_CPU"
    assert metrics["deepspeed"]["train_learning_rates"] == metrics["ddp"]["train_learning_rates"]
    assert metrics["deepspeed"]["train_losses"] == pytest.approx(metrics["ddp"]["train_losses"], abs=1e-4)
    trained = {name: load_file(str(tmp_path / name / "model" / "model.safetensors")) for name in ("deepspeed", "ddp")}
    assert trained["deepspeed"].keys() == trained["ddp"].keys()
    for name, weight in trained["ddp"].items():
        torch.testing.assert_close(trained["deepspeed"][name], weight, rtol=1e-5, atol=1e-4,
                                   msg=lambda message: f"{name}: {message}")
