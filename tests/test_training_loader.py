"""The DataLoader defaults follow from the input-pipeline measurement (omniclip_hf/training/loader.py)."""

from __future__ import annotations

import pytest
import torch

from omniclip_hf.training import loader
from omniclip_hf.training.loop import parse_training_options


@pytest.mark.parametrize(("cpus", "local_processes", "workers"), [
    (1, 1, 0),     # one CPU: decode in the loop itself
    (2, 1, 1),     # this machine: one worker, one CPU left to the loop
    (16, 1, 15),
    (16, 2, 7),    # two processes on the node share the 16 CPUs
    (128, 8, 15),  # 8 GPUs of a 128-core node: 16 CPUs each
    (256, 1, 16),  # capped (host memory for prefetched batches)
    (12, 8, 0),    # fewer CPUs than processes: no workers
])
def test_default_workers_are_the_cpus_per_process_minus_one_capped(monkeypatch, cpus, local_processes, workers):
    monkeypatch.setattr(loader.os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local_processes))
    assert loader.default_num_workers() == workers
    assert parse_training_options(["--clip", "x", "--train_data", "y"]).num_workers == workers
    assert parse_training_options(["--clip", "x", "--train_data", "y", "--num_workers", "3"]).num_workers == 3


def test_loader_settings(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert loader.loader_settings(4) == {"num_workers": 4, "pin_memory": True, "persistent_workers": False,
                                         "prefetch_factor": 2}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert loader.loader_settings(0) == {"num_workers": 0, "pin_memory": False, "persistent_workers": False}


def test_batches_are_pinned_only_for_a_gpu(monkeypatch):
    """A CPU run on a GPU machine pinned its batches (the pinning thread made a CUDA context in every process)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert loader.loader_settings(2, torch.device("cpu"))["pin_memory"] is False
    assert loader.loader_settings(2, torch.device("cuda", 0))["pin_memory"] is True


def test_a_negative_worker_count_is_refused_before_anything_loads():
    with pytest.raises(ValueError, match=r"^--num_workers=-1 is invalid: it must be >= 0"):
        parse_training_options(["--clip", "x", "--train_data", "y", "--num_workers", "-1"])


def test_workers_see_each_epochs_augmentation_seed():
    """Why persistent_workers stays off: the epoch set in the main process must reach the workers."""

    class EpochProbe(torch.utils.data.Dataset):
        epoch = 0

        def set_epoch(self, epoch):
            self.epoch = epoch

        def __len__(self):
            return 2

        def __getitem__(self, index):
            return self.epoch

    dataset = EpochProbe()
    data_loader = torch.utils.data.DataLoader(dataset, batch_size=2, **loader.loader_settings(1))
    seen = []
    for epoch in range(2):
        dataset.set_epoch(epoch)
        seen += [int(value) for batch in data_loader for value in batch]
    assert seen == [0, 0, 1, 1]
