"""Training from a stream: WebDataset tar shards of the shared clips (built in a temporary folder, never copied
into the repository), read with datasets' `webdataset` builder; processes read disjoint shards; the order does
not depend on the DataLoader workers; a killed streaming run resumes mid-epoch to the uninterrupted weights."""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from omniclip_hf.training.loop import check_inputs_exist, parse_training_options
from omniclip_hf.training.streaming import (
    StreamingDataError,
    StreamingVideoClipDataset,
    load_streaming_dataset,
    stream_for_process,
)

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


@pytest.mark.runs_long
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
    # said at each epoch's end (two; step 5 stops the third): rank 1's third batch is left out of every epoch
    assert result.stderr.count("the epoch ended when a process ran out of batches; 1 of 2 processes had more") == 2
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["global_step"] == 5 and metrics["distributed"]["processes"] == 2
    # 2 steps an epoch (rank 0's batches): steps 1-2, 3-4, then step 5 in the third epoch
    state = json.loads((tmp_path / "run" / "checkpoints" / "step_00000005" / "trainer_state.json").read_text())
    assert (state["epoch"], state["batches_in_epoch"]) == (2, 1)


# Shards of odd samples. The stand-in processor (`FileSize`) decodes nothing, so a "video" is any bytes: the sizes
# say which samples reached it.


def write_shard(path: Path, files: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def good_samples(first: int, count: int, extension: str = "mp4") -> list[tuple[str, bytes]]:
    """`count` samples `s<n>.<extension>` (n + 1 bytes, so each size names its sample) + `s<n>.cls`."""
    return [file for n in range(first, first + count)
            for file in ((f"s{n}.{extension}", b"v" * (n + 1)), (f"s{n}.cls", str(n % 2).encode()))]


def stream_of(folder: Path, workers: int = 0) -> list[tuple[int, float]]:
    data = stream_for_process(load_streaming_dataset(folder, CLASS_NAMES), 0, 1, seed=0)
    return streamed(StreamingVideoClipDataset(data, FileSize(), batch_size=2), workers)


def test_shards_of_different_video_extensions_stream_every_sample(tmp_path):
    """The columns were those of the first shard's samples: every `.avi` sample after `.mp4` ones came without its
    video and was skipped as undecodable ("Video given as NoneType"), leaving the set silently smaller."""
    for shard, extension in enumerate(("mp4", "avi", "webm", "mkv")):
        write_shard(tmp_path / f"train-{shard:05d}.tar", good_samples(shard * 2, 2, extension))
    sizes = sorted(size for _, size in stream_of(tmp_path))
    assert sizes == [float(n + 1) for n in range(8)]


@pytest.mark.parametrize("name", ["train-00000.tar", "train.csv"])
def test_streaming_given_a_file_says_to_pass_the_folder_of_shards(tmp_path, name):
    """It went on to the Hub: "Couldn't reach 'shards/train-00000.tar' on the Hub"."""
    path = write_shard(tmp_path / name, good_samples(0, 2)) if name.endswith(".tar") else tmp_path / name
    path.touch()
    with pytest.raises(ValueError, match=r"^.*train.*: --streaming reads a folder .* pass the folder of shards"):
        load_streaming_dataset(path, CLASS_NAMES)
    # examples/train.py checks it with the other inputs, before the model loads.
    options = parse_training_options(["--clip", "openai/x", "--streaming", "--train_data", str(path), "--max_steps",
                                      "1", "--warmup_steps", "0"])
    with pytest.raises(ValueError, match=r"^.*train.*: --streaming reads a folder .* pass the folder of shards"):
        check_inputs_exist(options)


@pytest.mark.parametrize("empty", ["no files", "no bytes"])
def test_an_empty_shard_is_named(tmp_path, empty):
    """datasets said "Must pass at least one table" (an empty first shard), naming no file."""
    shard = tmp_path / "train-00000.tar"
    write_shard(shard, []) if empty == "no files" else shard.touch()
    write_shard(tmp_path / "train-00001.tar", good_samples(0, 2))
    with pytest.raises(ValueError, match=rf"^{shard}: this shard holds no samples .* remove it from the folder"):
        load_streaming_dataset(tmp_path, CLASS_NAMES)


def test_a_shard_that_is_no_tar_archive_is_named(tmp_path):
    (tmp_path / "train-00000.tar").write_bytes(b"not a tar archive " * 64)
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'train-00000.tar'}: not a readable tar archive; rebuild"):
        load_streaming_dataset(tmp_path, CLASS_NAMES)


@pytest.mark.parametrize("files, problem", [
    ([("clip.v0.mp4", b"v"), ("clip.v0.cls", b"0")], "clip: no video file (<key>.mp4, <key>.avi, "),
    ([("s9.mp4", b"v"), ("s9.avi", b"v"), ("s9.cls", b"0")], "s9: 2 video files (mp4, avi) in one sample; keep one"),
])
def test_a_sample_without_one_video_stops_the_run_naming_shard_and_key(tmp_path, files, problem):
    shard = write_shard(tmp_path / "train-00000.tar", good_samples(0, 2) + files)
    with pytest.raises(StreamingDataError, match=rf"^{shard}: {re.escape(problem)}"):
        stream_of(tmp_path)


def test_a_label_that_is_no_number_stops_the_run_in_one_line(tmp_path):
    write_shard(tmp_path / "train-00000.tar", good_samples(0, 2) + [("s9.mp4", b"v"), ("s9.cls", b"second half")])
    with pytest.raises(StreamingDataError) as error:
        stream_of(tmp_path, workers=2)
    assert str(error.value) == (f"{tmp_path}: a shard could not be read: invalid literal for int() with base 10: "
                                "b'second half' (a <key>.cls holds the class index, e.g. 0, not its name).")


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("shard", [0, 1])
def test_a_sample_without_its_label_stops_the_run_naming_shard_and_key(tmp_path, shard, workers):
    """Without a `.cls` in the first shard datasets refused the whole set ("should be in WebDataset format"), naming
    nothing; in a later shard the sample was skipped as an undecodable video (label 'None')."""
    write_shard(tmp_path / "train-00000.tar", good_samples(0, 2))
    write_shard(tmp_path / "train-00001.tar", good_samples(2, 2))
    unlabelled = tmp_path / f"train-{shard:05d}.tar"
    with tarfile.open(unlabelled, "a") as archive:
        info = tarfile.TarInfo("nolabel.mp4")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"vvv"))
    with pytest.raises(StreamingDataError) as error:
        stream_of(tmp_path, workers)
    assert str(error.value) == (f"{unlabelled}: nolabel.mp4: no <key>.cls file (the class index, e.g. 0) beside its "
                                "video; every sample needs one.")  # one line, also from a worker: no traceback


@pytest.mark.parametrize("workers", [0, 2])
def test_a_label_out_of_range_is_a_label_error_not_an_undecodable_video(tmp_path, workers):
    """It was skipped as "undecodable training video", and with every label wrong the run ended with "every video
    failed to decode?"; listed data refuses such labels when it loads."""
    write_shard(tmp_path / "train-00000.tar", good_samples(0, 2) + [("s9.mp4", b"v"), ("s9.cls", b"7\n")])
    with pytest.raises(StreamingDataError) as error:
        stream_of(tmp_path, workers)
    assert str(error.value) == (f"{tmp_path / 'train-00000.tar'}: s9.mp4: label index 7 is out of range: "
                                "--labels_file has 2 classes, indices 0 to 1; fix the label or pass the class list "
                                "it counts in.")


def test_a_run_whose_shards_have_wrong_labels_stops_with_one_label_error(tiny_clip_dir, tmp_path):
    """The command line sees the label error as one `error:` line, from a DataLoader worker too."""
    write_shard(tmp_path / "train-00000.tar", [("c0.mp4", CLIPS[0].read_bytes()), ("c0.cls", b"7")])
    (tmp_path / "labels.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    result = run([sys.executable, str(REPO_ROOT / "examples" / "train.py"), "--clip", str(tiny_clip_dir),
                  "--streaming", "--train_data", str(tmp_path), "--labels_file", str(tmp_path / "labels.txt"),
                  "--output_dir", str(tmp_path / "run"), "--num_frames", "2", "--batch_size", "2",
                  "--num_workers", "1", "--max_steps", "1", "--warmup_steps", "0"])
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert errors == [f"error: {tmp_path / 'train-00000.tar'}: c0.mp4: label index 7 is out of range: --labels_file "
                      "has 2 classes, indices 0 to 1; fix the label or pass the class list it counts in."], errors
    assert "undecodable" not in result.stderr


@pytest.mark.runs_long
def test_an_epoch_that_ends_between_optimizer_steps_resumes_exactly(tiny_clip_dir, shards, tmp_path):
    """4 batches an epoch, 3 accumulated per step: each epoch ends with gradients accumulated for the next step.
    No checkpoint is written there (it could not hold them): a run killed after step 2 resumes from the last
    checkpoint that can (none here: from the start) and ends with the uninterrupted run's weights. It resumed from
    an epoch-end checkpoint, the gradients lost, and ended elsewhere."""
    def command(output: Path) -> list[str]:
        return [sys.executable, str(REPO_ROOT / "examples" / "train.py"), "--clip", str(tiny_clip_dir),
                "--streaming", "--train_data", str(shards),
                "--labels_file", str(shards.parent / f"{shards.name}-labels.txt"), "--output_dir", str(output),
                "--num_frames", "2", "--batch_size", "2", "--num_workers", "0", "--max_steps", "3",
                "--gradient_accumulation_steps", "3", "--warmup_steps", "0", "--lr", "1e-2",
                "--checkpointing_steps", "3", "--resume_from_checkpoint", "latest"]

    straight = run(command(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert [path.name for path in (tmp_path / "straight" / "checkpoints").iterdir()] == ["step_00000003"]
    killed = run(command(tmp_path / "killed"), hooks={"kill_after_steps": 2})
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = run(command(tmp_path / "killed"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = trainable_weights(tmp_path / "straight" / "checkpoints" / "step_00000003")
    got = trainable_weights(tmp_path / "killed" / "checkpoints" / "step_00000003")
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
