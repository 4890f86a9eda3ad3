# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""DataLoader settings that follow from measuring the input pipeline (`benchmarks/bench_input_pipeline.py`).

Measured on 16 cores by the wall clock (8 frames at 224 px, training augmentation, PyAV, `--clips 64`;
docs/training.md, "Keeping the GPU fed"): 4.1 clips/s per core in-process; 4 workers 12.9 clips/s (3.2 per worker),
8 workers 24.2 (3.0 per worker): decoding scales about linearly with workers, and a GPU needs far more than a node's
cores give. Counted at the rate a worker gives inside the DataLoader (the in-process rate leaves out what workers
cost), an H200 training OmniCLIP B/16 at 265-397 clips/s needs 83-132 cores, 129-138 for the frozen encoder's 413.
On the 2-core development machine, by CPU time (it is shared, so the wall clock varies with others' load): 167 CPU
ms per clip in the workers against 158 in-process, 69 cores for 413 clips/s, 48 with the colour augmentation on the
device. So every CPU a process has should decode. (The 14-worker row, 25.3, ran 8 batches over 14 workers: too few
batches to measure, not a ceiling.)
"""

from __future__ import annotations

import os
from typing import Any

import torch
from accelerate.utils import send_to_device


# A cap by host memory, not speed: each worker holds `prefetch_factor` (2) batches of 32 clips, 154 MB each in
# float32 at 8x224x224, so 16 workers hold about 5 GB per process, 40 GB for 8 GPUs on a node (a quarter of that
# with the colour augmentation on the GPU, whose batches are uint8 crops: `--color_augmentation_on`).
MAX_DEFAULT_WORKERS = 16


def cpus_per_process() -> int:
    """The CPUs this process may use (its affinity mask, as a container or SLURM sets it), shared with the other
    processes torchrun or `accelerate launch` started on this node (`LOCAL_WORLD_SIZE`)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    processes_on_node = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, available // processes_on_node)


def default_num_workers() -> int:
    """One worker per CPU of this process but one (left to the training loop), at most `MAX_DEFAULT_WORKERS` (16); 0 (decode
    in the loop itself) on a single CPU."""
    return min(MAX_DEFAULT_WORKERS, cpus_per_process() - 1)


def loader_settings(num_workers: int, device: torch.device | None = None) -> dict[str, Any]:
    """`DataLoader` keyword arguments besides the dataset, batch size, order and collate function.

    - `pin_memory` when the batches go to a GPU (`device`; when not given, whenever this machine has one):
      page-locked batches copy to the device straight, with no staging copy, and without the host waiting for the
      copy (`batch_to_device`). A CPU run on a GPU machine pinned too, and the pinning thread made a CUDA context
      on GPU 0 in every process for nothing.
    - `prefetch_factor` 2 (two batches in flight per worker): one batch of 32 clips takes a worker 10-11 s to
      decode on 16 cores (3.0-3.2 clips/s per worker), so more prefetch adds memory (154 MB per float32 batch at
      8x224x224) without adding throughput.
    - `persistent_workers` stays off: the per-epoch augmentation seed (`VideoClipDataset.set_epoch`) reaches the
      workers when they start, so workers kept across epochs would repeat the first epoch's augmentation.
    """
    to_gpu = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
    settings: dict[str, Any] = {"num_workers": num_workers, "pin_memory": to_gpu, "persistent_workers": False}
    if num_workers > 0:
        settings["prefetch_factor"] = 2
    return settings


# The collated batch's keys that stay on the host: the deferred colour rows are read there (`finish_views` plans its
# kernels from them), so on a GPU they would only come back again, and reading them back waits for the GPU.
HOST_KEYS = ("color_augmentation",)


def batch_to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The training loop's batch on `device`, all but `HOST_KEYS`. The copies are queued without the host waiting
    for them (`non_blocking`: from the page-locked memory `pin_memory` gives, a GPU copies the batch while the host
    goes on to queue the step), so the host can queue step k+1 while the GPU still runs step k. The loader is
    prepared without Accelerate's own placement, which copies with the host waiting and moves every key."""
    return send_to_device(batch, device, non_blocking=True, skip_keys=list(HOST_KEYS))


__all__ = ["HOST_KEYS", "MAX_DEFAULT_WORKERS", "batch_to_device", "cpus_per_process", "default_num_workers",
           "loader_settings"]
