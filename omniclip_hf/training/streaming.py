# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Training from a streamed dataset: WebDataset-style tar shards of video files, or a Hub dataset, never on disk whole.

`--streaming` with `--train_data` a folder of `*.tar` shards (each sample `<key>.mp4` + `<key>.cls`, the class
index, read with datasets' `webdataset` builder) or a Hub dataset id (`load_dataset(..., streaming=True)`).

- Each process reads its own shards (`datasets.distributed.split_dataset_by_node`: with a shard count divisible
  by the number of processes, whole shards; otherwise every process reads everything and keeps its share).
- The order of an epoch is fixed by `(seed, epoch)` (a shuffle buffer over shuffled shards) and does not depend on
  the number of DataLoader workers: worker `w` of `W` decodes the stream's batches `w, w + W, ...`, which the
  DataLoader hands out in stream order. So a resumed run skips the epoch's first N batches without decoding them
  and continues with exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from .data import _class_index, _describe, _name_lookup, process_training_clip


VIDEO_FIELD_EXTENSIONS = ("mp4", "avi", "webm", "mkv", "mov", "m4v")
DEFAULT_SHUFFLE_BUFFER = 256


@dataclass
class StreamingVideoData:
    """A streamed split with columns `video` (bytes/path dict) and `label` (class index or name)."""

    stream: Any  # datasets.IterableDataset
    class_names: list[str]
    source: str

    @property
    def num_shards(self) -> int:
        return self.stream.num_shards


def load_streaming_dataset(source: str | Path, class_names: list[str] | None, split: str = "train",
                           video_column: str = "video", label_column: str = "label") -> StreamingVideoData:
    """A folder of WebDataset tar shards, or a Hub dataset id, as a stream (nothing is downloaded whole)."""
    from datasets import ClassLabel, Video, load_dataset

    path = Path(source)
    if path.is_dir():
        shards = sorted(str(shard.resolve()) for shard in path.glob("*.tar"))
        if not shards:
            raise ValueError(f"{source}: --streaming reads WebDataset tar shards (*.tar), and this folder has none.")
        stream = load_dataset("webdataset", data_files={split: shards}, split=split, streaming=True)
        video_column = next((name for name in stream.features if name in VIDEO_FIELD_EXTENSIONS), video_column)
        label_column = "cls" if "cls" in stream.features else label_column
    else:
        stream = load_dataset(str(source), split=split, streaming=True)
    features = stream.features or {}
    for column in (video_column, label_column):
        if column not in features:
            raise ValueError(f"{source}: the stream has no column {column!r} (its columns: {list(features)}); "
                             "tar shards need <key>.mp4 and <key>.cls per sample, Hub datasets --video_column and "
                             "--label_column.")
    if class_names is None:
        if not isinstance(features[label_column], ClassLabel):
            raise ValueError(f"{source}: pass --labels_file with the class names (one a line, in index order).")
        class_names = list(features[label_column].names)
    if isinstance(features[video_column], Video):
        stream = stream.cast_column(video_column, Video(decode=False))  # decode in our workers, our way
    stream = stream.select_columns([video_column, label_column])
    if video_column != "video":
        stream = stream.rename_column(video_column, "video")
    if label_column != "label":
        stream = stream.rename_column(label_column, "label")
    return StreamingVideoData(stream, list(class_names), str(source))


def stream_for_process(data: StreamingVideoData, rank: int, world_size: int, seed: int,
                       shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER) -> StreamingVideoData:
    """This process's part of the stream, shuffled by `seed` (and the epoch, see `StreamingVideoClipDataset`)."""
    from datasets.distributed import split_dataset_by_node

    stream = data.stream.shuffle(seed=seed, buffer_size=shuffle_buffer) if shuffle_buffer > 1 else data.stream
    if world_size > 1:
        stream = split_dataset_by_node(stream, rank=rank, world_size=world_size)
    return StreamingVideoData(stream, data.class_names, data.source)


class StreamingVideoClipDataset(torch.utils.data.IterableDataset):
    """Decodes a stream's videos in DataLoader workers, in an order that does not depend on the worker count.

    Items are those of `VideoClipDataset` (`index` is the position in this process's epoch stream); `set_epoch`
    reshuffles, `skip_batches` makes the next pass start after that many batches (resumption), unread.
    """

    def __init__(self, data: StreamingVideoData, video_processor, batch_size: int, seed: int = 0,
                 **processor_kwargs):
        self.data = data
        self.video_processor = video_processor
        self.batch_size = batch_size
        self.train = bool(processor_kwargs.pop("do_augment", True))
        self.seed = seed
        self.processor_kwargs = processor_kwargs
        self.epoch = 0
        self.batches_to_skip = 0
        self._name_lookup = _name_lookup(data.class_names)  # once, not per video in the workers

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_batches(self, count: int) -> None:
        self.batches_to_skip = count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = torch.utils.data.get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        self.data.stream.set_epoch(self.epoch)
        # `iter(batch_size)` reads the whole stream in every worker (datasets would otherwise split the shards among
        # workers, making the order depend on their number); only this worker's batches are decoded.
        for number, rows in enumerate(self.data.stream.iter(batch_size=self.batch_size)):
            if number < self.batches_to_skip or (number - self.batches_to_skip) % num_workers != worker_id:
                continue
            for offset, (video, label) in enumerate(zip(rows["video"], rows["label"])):
                yield self._item(number * self.batch_size + offset, video, label)

    def _item(self, index: int, video: Any, label: Any) -> dict[str, Any]:
        try:
            target = self._label_index(label)
            views = process_training_clip(self.video_processor, video, self.train, self.seed, self.epoch, index,
                                          self.processor_kwargs)
        except (ValueError, FileNotFoundError, OSError) as error:
            return {"index": index, "error": f"{_describe(video)}: {error}"}
        return {"index": index, **views, "labels": target}

    def _label_index(self, label: Any) -> int:
        if isinstance(label, int):
            if not 0 <= label < len(self.data.class_names):
                raise ValueError(f"label index {label} is out of range for {len(self.data.class_names)} classes")
            return label
        return _class_index(str(label), self.data.class_names, self._name_lookup, self.data.source)


__all__ = ["StreamingVideoClipDataset", "StreamingVideoData", "load_streaming_dataset", "stream_for_process"]


def batches_while_every_process_has_one(loader, accelerator) -> Iterator[dict[str, Any]]:
    """The loader's batches, on the host, until any process runs out: processes' shards may differ in length, and a
    process that left the epoch alone would leave the others waiting in the gradient all-reduce. (With several
    processes, asking is a collective whose answer the host reads: a wait for the device every step.)"""
    iterator = iter(loader)
    while True:
        batch = next(iterator, None)
        if accelerator.num_processes > 1:
            have = torch.tensor([0 if batch is None else 1], device=accelerator.device)
            if accelerator.reduce(have, reduction="sum").item() < accelerator.num_processes:
                return
        elif batch is None:
            return
        yield batch


__all__ += ["batches_while_every_process_has_one"]
