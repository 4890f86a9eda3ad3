"""`benchmarks/bench_input_pipeline.py` counts the CPU seconds each clip costs where it is prepared (this process
in-process, the DataLoader workers through a loader), not the wall clock's, so waiting (another job on the cores, a
slow disk) lowers clips/s but not the cores it prints as needed; and those cores are the rate to feed times the CPU
seconds per clip measured in the workers. Behaviour, not timings. Not a benchmark."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
import torch

from .conftest import REPO_ROOT, SHARED_DIR, load_benchmark

BURN, SLEEP = 0.02, 0.1  # each item's CPU seconds and its seconds of waiting


class BurnAndWait(torch.utils.data.Dataset):
    """Items that each take `BURN` seconds of CPU and `SLEEP` seconds of waiting."""

    def __init__(self, items: int):
        self.items = items
        self.processor_kwargs = {}  # as `VideoClipDataset` has: the in-process pass sets decoder threading in it

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> dict:
        time.sleep(SLEEP)
        end = time.process_time() + BURN
        while time.process_time() < end:
            pass
        return {"pixel_values_videos": torch.zeros(2)}


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_input_pipeline")


def assert_counts_cpu_not_waiting(measured, clips):
    assert measured.clips == clips
    assert BURN <= measured.cpu_seconds_per_clip < BURN + SLEEP / 2, measured
    assert measured.wall_seconds >= clips * (BURN + SLEEP) / measured.processes, measured
    assert measured.cores_busy < 0.5 * measured.processes, measured
    assert measured.cores_needed(100.0) == pytest.approx(100.0 * measured.cpu_seconds_per_clip)


def test_the_in_process_pass_counts_cpu_seconds_not_waiting(bench):
    measured = bench.one_core(BurnAndWait(6), batch_size=2, collate_fn=torch.utils.data.default_collate)
    assert measured.processes == 1
    assert_counts_cpu_not_waiting(measured, 6)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_loader_pass_counts_the_cpu_seconds_of_whoever_loads(bench, workers):
    """With workers, their CPU time (this process only waits for the batches); with 0, this process's."""
    measured = bench.loader_pass(BurnAndWait(8), workers, batch_size=1, collate_fn=torch.utils.data.default_collate)
    assert measured.processes == max(workers, 1)
    assert_counts_cpu_not_waiting(measured, 8)
    if workers:
        assert measured.main_cpu_seconds < measured.cpu_seconds / 2, measured


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 3 workers on a 2-core machine, as meant
def test_more_workers_than_batches_still_counts_the_clips_cpu(bench):
    """Two batches over three workers: one worker never gets a batch, and clips/s shows the shortage; the CPU seconds
    per clip still hold."""
    measured = bench.loader_pass(BurnAndWait(2), 3, batch_size=1, collate_fn=torch.utils.data.default_collate)
    assert measured.clips == 2 and BURN <= measured.cpu_seconds_per_clip < BURN + SLEEP / 2, measured


@pytest.mark.skipif(not (SHARED_DIR / "videos").is_dir(), reason="needs the shared clips")
def test_the_script_prints_cores_needed_from_the_workers_cpu_seconds_per_clip():
    process = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "bench_input_pipeline.py"),
                              "--clips", "2", "--batch_size", "1", "--workers", "1", "--num_frames", "1",
                              "--image_size", "16", "--gpu_clips_per_second", "413", "265"],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
    assert process.returncode == 0, process.stderr[-2000:]
    lines = process.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| source |"))
    assert "cores for 413 clips/s, workers" in header and "cores for 265 clips/s, in-process" in header
    cells = next(line for line in lines if line.startswith("| videos |")).strip("|").split("|")
    workers_ms, in_process_ms = float(cells[1]), float(cells[2])
    cores = [float(cell) for cell in cells[4:8]]
    # From the printed milliseconds, to their rounding (half a millisecond per clip).
    for needed, target, ms in zip(cores, (413, 413, 265, 265), (workers_ms, in_process_ms) * 2):
        assert abs(needed - target * ms / 1000) <= target * 0.0005 + 0.05, (needed, target, ms)
    rows = [line for line in lines if line.startswith("| in-process") or line.startswith("| DataLoader")]
    assert len(rows) == 2 and all(len(row.strip("|").split("|")) == 5 for row in rows), rows
    assert any("--color_on_device" in line for line in lines)  # says which colour setting it measured
