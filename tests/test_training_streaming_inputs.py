"""Streamed training data as users have it: shards of several splits in one folder, other spellings of shard and
member names, a shard cut short, a Hub ClassLabel listed in another order than --labels_file, a stream that gives no
samples, an epoch shorter than one accumulated step; and each process drawing its own augmentation."""

from __future__ import annotations

import gzip
import json
import shutil
import sys

import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value

from omniclip_hf.training.data import labels_in_class_order
from omniclip_hf.training.streaming import (
    StreamingDataError,
    StreamingVideoClipDataset,
    load_streaming_dataset,
    stream_for_process,
)

from .conftest import REPO_ROOT
from .test_training import run
from .test_training_streaming import CLASS_NAMES, FileSize, good_samples, stream_of, streamed, write_shard


class FirstDraw:
    """A stand-in video processor whose output is the clip's first random draw: what seeds its augmentation."""

    def __call__(self, video, train, generator, return_tensors, **kwargs):
        return {"pixel_values_videos": torch.rand(1, 1, generator=generator)}


def test_each_process_draws_its_own_augmentation_for_the_same_position(tmp_path):
    """Two processes, each reading one shard of the same clips: the k-th clip of each was augmented alike (its seed
    was its position in its own process's stream), so 8 GPUs repeated every crop, flip and colour 8 times."""
    for shard in range(2):
        write_shard(tmp_path / f"train-{shard:05d}.tar", good_samples(0, 4))
    data = load_streaming_dataset(tmp_path, CLASS_NAMES)
    draws = [streamed(StreamingVideoClipDataset(stream_for_process(data, rank, 2, seed=0, shuffle_buffer=0),
                                                FirstDraw(), batch_size=2, seed=5), workers=0) for rank in (0, 1)]
    assert len(draws[0]) == len(draws[1]) == 4
    for (index_0, draw_0), (index_1, draw_1) in zip(*draws):
        assert index_0 != index_1 and draw_0 != draw_1
    assert sorted(index for rank in draws for index, _ in rank) == list(range(8))  # positions over the whole epoch


def write_gzipped_shard(path, files):
    plain = write_shard(path.with_suffix(".plain"), files)
    path.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()


def test_shards_are_told_apart_by_split_and_read_in_any_spelling(tmp_path):
    """Every `*.tar` streamed before: validation shards beside training ones were trained on, and `.TAR`, `.tar.gz`
    and `.tgz` shards were left out unsaid."""
    write_shard(tmp_path / "train-00000.tar", good_samples(0, 2))
    write_shard(tmp_path / "train-00001.TAR", good_samples(2, 2))
    write_gzipped_shard(tmp_path / "train-00002.tar.gz", good_samples(4, 2))
    write_gzipped_shard(tmp_path / "train-00003.tgz", good_samples(6, 2))
    write_shard(tmp_path / "validation-00000.tar", good_samples(20, 2))
    (tmp_path / "labels.txt").write_text("\n".join(CLASS_NAMES))  # not a shard: left alone
    sizes = sorted(size for _, size in stream_of(tmp_path))
    assert sizes == [float(n + 1) for n in range(8)]
    validation = stream_for_process(load_streaming_dataset(tmp_path, CLASS_NAMES, split="validation"), 0, 1, seed=0)
    assert sorted(size for _, size in streamed(StreamingVideoClipDataset(validation, FileSize(), batch_size=2), 0)) \
        == [21.0, 22.0]
    with pytest.raises(ValueError, match=r"no shards of split 'test' \(--train_split\); this folder's shards are "
                                         r"named for 'train', 'validation'"):
        load_streaming_dataset(tmp_path, CLASS_NAMES, split="test")


def test_upper_case_member_extensions_stream(tmp_path):
    """`S9.MP4` + `S9.CLS`, as cameras name files: read as a sample with no video ("no video file")."""
    write_shard(tmp_path / "train-00000.tar", good_samples(0, 2) + [("s9.MP4", b"v" * 10), ("s9.CLS", b"1")])
    assert sorted(size for _, size in stream_of(tmp_path)) == [1.0, 2.0, 10.0]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_truncated_shard_stops_the_run_in_one_line(tmp_path, workers):
    """tarfile's ReadError is no ValueError: it came out as a 60-line traceback naming no file."""
    write_shard(tmp_path / "train-00000.tar", good_samples(0, 2))
    shard = write_shard(tmp_path / "train-00001.tar", good_samples(2, 6))
    shard.write_bytes(shard.read_bytes()[: 512 * 5 + 100])  # inside the third member's data (tar blocks of 512)
    with pytest.raises(StreamingDataError, match=rf"^{tmp_path}: a shard could not be read to its end \(.*\): a "
                                                 "truncated or damaged tar archive; rebuild it or remove it"):
        stream_of(tmp_path, workers)


@pytest.mark.parametrize("iterable", [False, True])
def test_a_classlabel_is_read_by_name_in_the_labels_files_order(iterable):
    """A Hub dataset's ClassLabel counts in its own names' order; with a --labels_file of the same classes in another
    order, each label meant the class at its index in the file: archery trained as cooking."""
    features = Features({"video": Value("string"), "label": ClassLabel(names=["archery", "bowling", "cooking"])})
    dataset = Dataset.from_dict({"video": ["a", "b", "c", "d"], "label": [0, 1, 2, -1]}, features=features)
    if iterable:
        dataset = dataset.to_iterable_dataset()
    ordered = labels_in_class_order(dataset, "label", ["cooking", "Archery", "bowling"], "someone/k3")
    assert [row["label"] for row in ordered] == [1, 2, 0, -1]  # -1 (no label) is refused where it is read
    with pytest.raises(ValueError, match=r"^someone/k3: class 'bowling' of the 'label' ClassLabel: label 'bowling' "
                                         r"is not one of the 2 class names"):
        labels_in_class_order(dataset, "label", ["cooking", "archery"], "someone/k3")
    assert labels_in_class_order(dataset, "label", ["archery", "bowling", "cooking"], "x") is dataset  # same order


def train_on_stream(tiny_clip_dir, folder, tmp_path, *extra, timeout=240):
    (tmp_path / "labels.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    command = [sys.executable, str(REPO_ROOT / "examples" / "train.py"), "--clip", str(tiny_clip_dir), "--streaming",
               "--train_data", str(folder), "--labels_file", str(tmp_path / "labels.txt"),
               "--output_dir", str(tmp_path / "run"), "--num_frames", "2", "--batch_size", "2", "--num_workers", "0",
               "--warmup_steps", "0", *extra]
    return run(command, timeout=timeout)


def test_a_stream_with_no_samples_stops_instead_of_running_forever(tiny_clip_dir, tmp_path):
    """A shard whose only file has no extension gives datasets no sample: every epoch was empty, and the run went on
    to the next one, at step 0 for ever."""
    (tmp_path / "shards").mkdir()
    write_shard(tmp_path / "shards" / "train-00000.tar", [("README", b"about these shards")])
    result = train_on_stream(tiny_clip_dir, tmp_path / "shards", tmp_path, "--max_steps", "2", timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'shards'}: the stream gave no samples (split 'train'); check its shards or columns.")


def test_an_accumulated_step_longer_than_an_epoch_trains(tiny_clip_dir, shared_clip_shards, tmp_path):
    """4 batches an epoch and --gradient_accumulation_steps 5: no epoch ends on an optimizer step, which read as
    "an epoch made no training step; every video failed to decode?" and stopped the run. A stream's length is set by
    --max_steps: the --epochs given was dropped with nothing said."""
    result = train_on_stream(tiny_clip_dir, shared_clip_shards, tmp_path, "--max_steps", "2",
                             "--gradient_accumulation_steps", "5", "--shuffle_buffer", "0", "--epochs", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--epochs 3 is not used: --max_steps 2 sets how long training runs." in result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["global_step"] == 2 and len(metrics["train_losses"]) == 2


@pytest.fixture(scope="module")
def shared_clip_shards(tmp_path_factory):
    """4 shards of 2 shared clips, labels 0 and 1."""
    from .test_training_streaming import CLIPS

    if len(CLIPS) < 8:
        pytest.skip("needs 8 shared mp4 clips")
    folder = tmp_path_factory.mktemp("clip_shards")
    for shard in range(4):
        write_shard(folder / f"train-{shard:05d}.tar",
                    [file for n in (2 * shard, 2 * shard + 1)
                     for file in ((f"c{n}.mp4", CLIPS[n].read_bytes()), (f"c{n}.cls", str(n % 2).encode()))])
    return folder


def test_shards_given_as_eval_data_fail_before_training(tiny_clip_dir, shared_clip_shards, tmp_path):
    """They failed after the last training step ("no class sub-folders found"), metrics.json unwritten."""
    result = train_on_stream(tiny_clip_dir, shared_clip_shards, tmp_path, "--max_steps", "2",
                             "--eval_data", str(shared_clip_shards))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "no class sub-folders found" in result.stderr.strip().splitlines()[-1]
    assert "training" not in result.stderr and not (tmp_path / "run" / "checkpoints").exists()


def test_a_resume_over_another_set_of_shards_is_warned_about(tiny_clip_dir, shared_clip_shards, tmp_path):
    """A shard added to the folder between two runs moved the resumed position within the stream with nothing said."""
    shards = tmp_path / "shards"
    shutil.copytree(shared_clip_shards, shards)
    first = train_on_stream(tiny_clip_dir, shards, tmp_path, "--max_steps", "1", "--checkpointing_steps", "1",
                            "--shuffle_buffer", "0")
    assert first.returncode == 0, first.stderr[-2000:]
    shutil.copy(shards / "train-00000.tar", shards / "train-00004.tar")
    resumed = train_on_stream(tiny_clip_dir, shards, tmp_path, "--max_steps", "2", "--shuffle_buffer", "0",
                              "--resume_from_checkpoint", "latest")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert ("the training data (5 shards: train-00000.tar, train-00001.tar, train-00002.tar..., was 4 shards: "
            "train-00000.tar, train-00001.tar, train-00002.tar...)") in resumed.stderr
