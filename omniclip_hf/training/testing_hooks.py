# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Fault-injection and recording hooks for the tests, driven by one environment variable, never by a flag.

`OMNICLIP_TRAINING_TEST_HOOKS` holds a JSON object; each key switches on one hook:

- `"kill_after_steps": N`: SIGKILL the training process after optimizer step N (an abrupt, uncatchable stop);
- `"step_marker": PATH`: write the global step to PATH after every optimizer step (lets a test time a kill);
- `"pause_in_checkpoint": {"step": N, "seconds": S, "marker": PATH}`: inside `save_checkpoint` of step N, after
  the state is written to the temporary folder and before it is renamed, write PATH and sleep S seconds (a test
  kills the run there, in the middle of a checkpoint write);
- `"record_seen_indices": true`: write the example indices each rank trained on to
  `output_dir/seen_indices_rank{R}.json`;
- `"deepspeed_on_cpu": true`: leave Accelerate's `cpu=True` off on a machine without a GPU, so that a DeepSpeed
  launch runs DeepSpeed (its CPU accelerator) instead of plain data parallelism; with several processes, Accelerate's
  state is given the process group's ranks (`count_deepspeed_processes_on_cpu`).

Unset (the normal case), every hook is a no-op.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from pathlib import Path
from typing import Any


ENVIRONMENT_VARIABLE = "OMNICLIP_TRAINING_TEST_HOOKS"


@functools.lru_cache(maxsize=1)
def active_hooks() -> dict[str, Any]:
    text = os.environ.get(ENVIRONMENT_VARIABLE)
    return json.loads(text) if text else {}


def after_optimizer_step(step: int) -> None:
    hooks = active_hooks()
    if "step_marker" in hooks:
        Path(hooks["step_marker"]).write_text(str(step))
    if hooks.get("kill_after_steps") and step >= hooks["kill_after_steps"]:
        os.kill(os.getpid(), signal.SIGKILL)


def inside_checkpoint_write(step: int) -> None:
    pause = active_hooks().get("pause_in_checkpoint")
    if pause and pause["step"] == step:
        Path(pause["marker"]).write_text(str(step))
        time.sleep(pause["seconds"])


def records_seen_indices() -> bool:
    return bool(active_hooks().get("record_seen_indices"))


def runs_deepspeed_on_cpu() -> bool:
    return bool(active_hooks().get("deepspeed_on_cpu"))


def count_deepspeed_processes_on_cpu() -> None:
    """Under `deepspeed_on_cpu`, launched with several processes: Accelerate 1.16 has DeepSpeed set up its process
    group on a CPU, but records one process of rank 0 in each (it reads ranks only from a backend it chose itself), so
    every process would take itself for the main one and see all the data. Its state is given the group's size and
    ranks, as Accelerate records them on GPUs. Called once the Accelerator is made."""
    if not runs_deepspeed_on_cpu():
        return
    import torch.distributed
    from accelerate.state import AcceleratorState, PartialState

    if not torch.distributed.is_initialized() or PartialState().num_processes == torch.distributed.get_world_size():
        return
    ranks = {"num_processes": torch.distributed.get_world_size(), "process_index": torch.distributed.get_rank(),
             "local_process_index": int(os.environ.get("LOCAL_RANK", torch.distributed.get_rank()))}
    PartialState._shared_state.update(ranks)
    AcceleratorState._shared_state.update(ranks)  # a copy of PartialState's, made when the Accelerator was
