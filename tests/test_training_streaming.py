"""Training from a stream: WebDataset tar shards of the shared clips (built in a temporary folder, never copied
into the repository), read with datasets' `webdataset` builder; processes read disjoint shards; the order does
not depend on the DataLoader workers; a killed streaming run resumes mid-epoch to the uninterrupted weights."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from omniclip_hf.training.streaming import StreamingVideoClipDataset, load_streaming_dataset, stream_for_process

from .conftest import REPO_ROOT, SHARED_DIR
from .test_training import motion_data, run, trainable_weights  # noqa: F401 (fixture)

CLIPS = sorted((SHARED_DIR / "videos").glob("*.mp4"))[:8]
CLASS_NAMES = ["first half", "second half"]
NUM_SHARDS = 4


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """4 shards of 2 samples: `<key>.mp4` (a shared clip) and `<key>.cls` (its class index)."""
    if len(CLIPS) < 8:
        pytest.skip(f"needs 8 mp4 clips in {SHARED_DIR / 'videos'}")
    folder = tmp_path_factory.mktemp("shards")
    for shard in range(NUM_SHARDS):
        with tarfile.open(folder / f"train-{shard:05d}.tar", "w") as archive:
            for position in range(2):
                number = shard * 2 + position
                key = f"clip{number:03d}"
                archive.add(CLIPS[number], arcname=f"{key}.mp4")
                label = str(number * 2 // len(CLIPS)).encode()
                info = tarfile.TarInfo(f"{key}.cls")
                info.size = len(label)
                archive.addfile(info, io.BytesIO(label))
    (folder.parent / f"{folder.name}-labels.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    return folder


class FileSize:
    """A stand-in video processor: the clip's byte count, so the order tests decode nothing."""

    def __call__(self, video, train, generator, return_tensors, **kwargs):
        return {"pixel_values_videos": torch.tensor([[float(len(video))]])}


def streamed(dataset, workers: int) -> list[tuple[int, float]]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=workers)
    return [(int(i), float(p)) for batch in loader for i, p in zip(batch["index"], batch["pixel_values_videos"][:, 0])]


def test_processes_read_disjoint_shards_in_an_order_independent_of_workers(shards):
    data = load_streaming_dataset(shards, CLASS_NAMES)
    assert data.num_shards == NUM_SHARDS
    sizes = {float(path.stat().st_size) for path in CLIPS}
    per_rank, reshuffled = [], []
    for rank in (0, 1):
        dataset = StreamingVideoClipDataset(stream_for_process(data, rank, 2, seed=3), FileSize(), batch_size=2)
        order = streamed(dataset, workers=0)
        assert streamed(dataset, workers=2) == order  # the workers change nothing
        dataset.skip_batches(1)
        assert streamed(dataset, workers=2) == order[2:]  # resumption: the rest of the epoch, in order
        dataset.skip_batches(0)
        dataset.set_epoch(1)
        next_epoch = streamed(dataset, workers=0)
        assert sorted(size for _, size in next_epoch) == sorted(size for _, size in order)  # the same shards
        reshuffled.append(next_epoch != order)
        per_rank.append({size for _, size in order})
    assert any(reshuffled)  # set_epoch reshuffles (seed 3: deterministic)
    assert per_rank[0] and per_rank[1] and not per_rank[0] & per_rank[1]  # disjoint
    assert per_rank[0] | per_rank[1] == sizes  # and complete


def test_a_killed_streaming_run_resumes_mid_epoch_to_the_uninterrupted_weights(tiny_clip_dir, shards, tmp_path):
    def command(output: Path, *extra: str) -> list[str]:
        return [sys.executable, str(REPO_ROOT / "examples" / "train.py"), "--clip", str(tiny_clip_dir),
                "--streaming", "--train_data", str(shards),
                "--labels_file", str(shards.parent / f"{shards.name}-labels.txt"), "--output_dir", str(output),
                "--num_frames", "2", "--batch_size", "2", "--num_workers", "0", "--max_steps", "6",
                "--warmup_steps", "0", "--lr", "1e-2", "--checkpointing_steps", "1", *extra]

    # The interrupted run colours its clips in the loop (`--color_augmentation_on device`), the straight one in the
    # data pipeline: the same pixels, so the same weights.
    straight = run(command(tmp_path / "straight", "--color_augmentation_on", "workers"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    on_device = ("--color_augmentation_on", "device")
    killed = run(command(tmp_path / "killed", *on_device), hooks={"kill_after_steps": 3})
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = run(command(tmp_path / "killed", "--resume_from_checkpoint", "latest", *on_device))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 3 (epoch 0, batch 3)" in resumed.stdout  # mid-epoch: 4 batches an epoch
    expected = trainable_weights(tmp_path / "straight" / "checkpoints" / "step_00000006")
    got = trainable_weights(tmp_path / "killed" / "checkpoints" / "step_00000006")
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    metrics = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert metrics["global_step"] == 6 and metrics["skipped_videos"] == 0


def test_two_processes_with_unequal_shards_end_each_epoch_together(tiny_clip_dir, motion_data, tmp_path):
    """Rank 0 gets shards of 1 + 2 clips, rank 1 of 2 + 3: both leave each epoch after rank 0's 2 batches, so no
    process waits alone in the all-reduce (the run would hang)."""
    videos = sorted((motion_data / "train").rglob("*.mp4"))[:8]
    folder = tmp_path / "shards"
    folder.mkdir()
    first = 0
    for shard, size in enumerate((1, 2, 2, 3)):
        with tarfile.open(folder / f"train-{shard:05d}.tar", "w") as archive:
            for number in range(first, first + size):
                archive.add(videos[number], arcname=f"clip{number:03d}.mp4")
                label = str(number % 2).encode()
                info = tarfile.TarInfo(f"clip{number:03d}.cls")
                info.size = len(label)
                archive.addfile(info, io.BytesIO(label))
        first += size
    (tmp_path / "labels.txt").write_text("a\nb\n")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29541",
               str(REPO_ROOT / "examples" / "train.py"), "--clip", str(tiny_clip_dir), "--streaming",
               "--train_data", str(folder), "--labels_file", str(tmp_path / "labels.txt"),
               "--output_dir", str(tmp_path / "run"), "--num_frames", "2", "--batch_size", "2", "--num_workers", "0",
               "--max_steps", "5", "--warmup_steps", "0", "--shuffle_buffer", "1"]
    result = run(command, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["global_step"] == 5 and metrics["distributed"]["processes"] == 2
    # 2 steps an epoch (rank 0's batches): steps 1-2, 3-4, then step 5 in the third epoch
    state = json.loads((tmp_path / "run" / "checkpoints" / "step_00000005" / "trainer_state.json").read_text())
    assert (state["epoch"], state["batches_in_epoch"]) == (2, 1)
