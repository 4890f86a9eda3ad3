# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Training from a streamed dataset: WebDataset-style tar shards of video files, or a Hub dataset, never on disk whole.

`--streaming` with `--train_data` a folder of tar shards (`*.tar`, `*.tar.gz` or `*.tgz`; each sample `<key>.mp4`, or
another video extension, + `<key>.cls`, the class index, read with datasets' `webdataset` builder; shards named by
split, `train-*.tar` and `validation-*.tar`, are told apart as `load_dataset` does, `--train_split` picking one) or a
Hub dataset id
(`load_dataset(..., streaming=True)`). A sample without one video or a label, or with a label out of range, stops
the run in one line naming shard and file (`StreamingDataError`); an undecodable video is skipped, as listed ones.

- Each process reads its own shards (`datasets.distributed.split_dataset_by_node`: with a shard count divisible
  by the number of processes, whole shards; otherwise every process reads everything and keeps its share).
- The order of an epoch is fixed by `(seed, epoch)` (a shuffle buffer over shuffled shards) and does not depend on
  the number of DataLoader workers: worker `w` of `W` decodes the stream's batches `w, w + W, ...`, which the
  DataLoader hands out in stream order. So a resumed run skips the epoch's first N batches without decoding them
  and continues with exactly the batches an uninterrupted run would have seen.
- A clip's augmentation is drawn from its position in the whole epoch (over every process), so no two processes
  crop, flip and colour their k-th clips alike.
"""

from __future__ import annotations

import logging
import os
import tarfile
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from .data import VIDEO_EXTENSIONS, _class_index, _describe, _name_lookup, labels_in_class_order, process_training_clip


# Under the scripts' "omniclip.train" logger, which is quiet on all but the main process.
logger = logging.getLogger("omniclip.train.streaming")


# A shard sample's video is its `<key>.<extension>` file, whichever of these: datasets' `webdataset` builder infers
# the columns from the first shard's first samples only, so a set of `.mp4` and `.avi` shards would stream the `.avi`
# samples without their video. Declaring every extension's column makes every sample find its own.
# Upper-case spellings (`CLIP.MP4`, as cameras write them) are declared too: datasets keeps a field's case and drops
# undeclared fields, so such a sample would read as having no video.
VIDEO_FIELD_EXTENSIONS = tuple(spelled for extension in VIDEO_EXTENSIONS
                               for spelled in (extension.lstrip("."), extension.lstrip(".").upper()))
LABEL_FIELDS = ("cls", "CLS")
SHARD_SUFFIXES = (".tar", ".tar.gz", ".tgz")  # any case; datasets' webdataset builder reads the compressed ones too
DEFAULT_SHUFFLE_BUFFER = 256


class StreamingDataError(ValueError):
    """A bad sample in a stream (no video, no label, a label out of range): the run stops, in one line, instead of
    skipping it as an undecodable video. Raised in a DataLoader worker, it reaches the main process rebuilt from the
    worker's formatted traceback (torch's `ExceptionWrapper.reraise` passes that text as the only argument): the
    message is then cut back to the original line, so `run_script` still prints one line, not a traceback."""

    def __init__(self, message: str):
        marker = f"{type(self).__name__}: "
        if message.startswith("Caught ") and marker in message:
            message = message.rsplit(marker, 1)[1].strip()
        super().__init__(message)


@dataclass
class StreamingVideoData:
    """A streamed split with columns `video` (bytes/path dict) and `label` (class index or name); tar shards add
    `sample` ("<shard>: <file or key>", for messages) and `problem` (why the sample has no one video, or None)."""

    stream: Any  # datasets.IterableDataset
    class_names: list[str]
    source: str
    class_names_from: str = "--labels_file"  # where the class list came from, for a label's error message
    rank: int = 0  # this process's part of the stream (`stream_for_process`), for positions over the whole epoch
    world_size: int = 1
    # The whole stream's shards, recorded with each checkpoint (another set under the same --train_data moves a resumed
    # position): the file names of a folder's tar shards, or how many a Hub dataset has.
    shards: list[str] | int = 0

    @property
    def num_shards(self) -> int:
        return self.stream.num_shards


def load_streaming_dataset(source: str | Path, class_names: list[str] | None, split: str = "train",
                           video_column: str = "video", label_column: str = "label") -> StreamingVideoData:
    """A folder of WebDataset tar shards, or a Hub dataset id, as a stream (nothing is downloaded whole)."""
    if Path(source).exists():
        return load_tar_shards(source, class_names, split)
    from datasets import ClassLabel, Video, load_dataset

    stream = load_dataset(str(source), split=split, streaming=True)
    # A stream whose card declares no features tells its columns only in its rows: the first one is read for them.
    columns = list(stream.features) if stream.features else list(next(iter(stream.take(1)), {}))
    for column in (video_column, label_column):
        if column not in columns:
            raise ValueError(f"{source}: the stream has no column {column!r} (its columns: {columns}); "
                             "Hub datasets need --video_column and --label_column.")
    features = stream.features or {}
    class_names_from = "--labels_file"
    if class_names is None:
        if not isinstance(features.get(label_column), ClassLabel):
            raise ValueError(f"{source}: pass --labels_file with the class names (one a line, in index order).")
        class_names, class_names_from = list(features[label_column].names), f"the {label_column!r} ClassLabel"
    stream = labels_in_class_order(stream, label_column, class_names, str(source))
    if isinstance(features.get(video_column), Video):
        stream = stream.cast_column(video_column, Video(decode=False))  # decode in our workers, our way
    stream = stream.select_columns([video_column, label_column])
    if video_column != "video":
        stream = stream.rename_column(video_column, "video")
    if label_column != "label":
        stream = stream.rename_column(label_column, "label")
    return StreamingVideoData(stream, list(class_names), str(source), class_names_from, shards=stream.num_shards)


def load_tar_shards(source: str | Path, class_names: list[str] | None, split: str = "train") -> StreamingVideoData:
    """The `*.tar` shards of a folder as a stream of `video`, `label` and `sample` (the shard and file, for messages).

    The columns are declared, not inferred from the first shard: every sample finds its video whatever its extension,
    and one without a video or a `.cls` streams with None there, which `StreamingVideoClipDataset` reports by shard
    and key, instead of datasets' error about the whole set (or a missing column read as an undecodable video).
    """
    from datasets import Features, Value, Video, load_dataset

    shards = tar_shards(source, split)
    if class_names is None:  # a `.cls` holds an index: the names come from elsewhere
        raise ValueError(f"{source}: pass --labels_file with the class names (one a line, in index order).")
    features = Features({**{extension: Video(decode=False) for extension in VIDEO_FIELD_EXTENSIONS},
                         **{field: Value("int64") for field in LABEL_FIELDS},
                         "__key__": Value("string"), "__url__": Value("string")})
    stream = load_dataset("webdataset", data_files={split: shards}, split=split, streaming=True, features=features)
    stream = stream.map(one_video_per_sample, remove_columns=list(features))
    return StreamingVideoData(stream, list(class_names), str(source), shards=[os.path.relpath(shard, Path(source).resolve()) for shard in shards])


def tar_shards(source: str | Path, split: str = "train") -> list[str]:
    """The folder's tar shards of `split`, each checked to be a tar archive with at least one file (datasets would stop
    at an empty first shard with "Must pass at least one table", naming none, and skip an empty later one unsaid).

    Splits are told apart by the shards' names as `load_dataset` does (`train-00000.tar`, `validation-00000.tar`,
    `test-*`, in sub-folders too: datasets' `get_data_patterns`); shards named for no split are all the `train` split.
    Before, every `*.tar` of the folder streamed, validation shards beside training ones included, and a `.TAR` or
    `.tar.gz` shard was left out unsaid.
    """
    from datasets.data_files import DataFilesDict, get_data_patterns

    path = Path(source)
    if not path.is_dir():
        advice = ("to stream a single shard, put it in a folder of its own" if is_shard(path) else
                  "to train from an annotation file, leave out --streaming")
        raise ValueError(f"{source}: --streaming reads a folder of WebDataset tar shards (*.tar) or a Hub dataset id, "
                         f"not a file; pass the folder of shards ({advice}).")
    try:
        files_of_split = DataFilesDict.from_patterns(get_data_patterns(str(path)), str(path))
    except FileNotFoundError:  # datasets' EmptyDatasetError: no file at all
        files_of_split = {}
    shards_of_split = {str(name): sorted(Path(file).resolve() for file in files if is_shard(Path(file)))
                       for name, files in files_of_split.items()}
    shards_of_split = {name: shards for name, shards in shards_of_split.items() if shards}
    if not shards_of_split:
        raise ValueError(f"{source}: --streaming reads WebDataset tar shards ({', '.join('*' + suffix for suffix in SHARD_SUFFIXES)}), "
                         "and this folder has none.")
    if split not in shards_of_split:
        raise ValueError(f"{source}: no shards of split {split!r} (--train_split); this folder's shards are named for "
                         f"{', '.join(repr(name) for name in shards_of_split)} (e.g. train-00000.tar, "
                         "validation-00000.tar; shards named for no split are the 'train' split).")
    shards = shards_of_split[split]
    for shard in shards:
        check_shard_has_files(shard)
    return [str(shard) for shard in shards]


def is_shard(path: Path) -> bool:
    return path.name.lower().endswith(SHARD_SUFFIXES)


def check_shard_has_files(shard: Path) -> None:
    """Reads only the shard's first headers: cheap for any number of shards, whatever their size."""
    try:
        with tarfile.open(shard) as archive:
            member = archive.next()
            while member is not None and not member.isfile():
                member = archive.next()
    except tarfile.ReadError as error:
        if shard.stat().st_size == 0:
            member = None  # an empty file: no tar header at all
        else:
            # Not tarfile's message: it lists each compression it tried, over several lines.
            raise ValueError(f"{shard}: not a readable tar archive; rebuild the shard or remove it from the folder."
                             ) from error
    if member is None:
        raise ValueError(f"{shard}: this shard holds no samples (an empty tar archive); rebuild it or remove it from "
                         "the folder.")


def one_video_per_sample(row: dict[str, Any]) -> dict[str, Any]:
    """A shard sample as `video` (its video file's bytes), `label` (its `.cls`, None without one), `sample` (shard and
    file, for messages) and `problem` (None, or why the sample has no one video). Checked where the sample is decoded
    (`StreamingVideoClipDataset`), not here: this runs in every worker over the whole stream, skipped batches too."""
    videos = [extension for extension in VIDEO_FIELD_EXTENSIONS if row[extension] is not None]
    problem = None
    if not videos:
        # Also what keys with dots (`a.b.mp4`: key `a`, file `b.mp4`) and a sample's files apart in the tar give.
        problem = (f"no video file (<key>{', <key>'.join(VIDEO_EXTENSIONS)}, any case) in this sample; a sample is "
                   "the files of one key, without dots, next to each other in the tar")
    elif len(videos) > 1:
        problem = f"{len(videos)} video files ({', '.join(videos)}) in one sample; keep one video a key"
    name = f"{row['__key__']}.{videos[0]}" if len(videos) == 1 else row["__key__"]
    labels = [row[field] for field in LABEL_FIELDS if row[field] is not None]
    return {"video": row[videos[0]] if videos else None, "label": labels[0] if labels else None,
            "sample": f"{row['__url__']}: {name}", "problem": problem}


def stream_for_process(data: StreamingVideoData, rank: int, world_size: int, seed: int,
                       shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER) -> StreamingVideoData:
    """This process's part of the stream, shuffled by `seed` (and the epoch, see `StreamingVideoClipDataset`)."""
    from datasets.distributed import split_dataset_by_node

    stream = data.stream.shuffle(seed=seed, buffer_size=shuffle_buffer) if shuffle_buffer > 1 else data.stream
    if world_size > 1:
        stream = split_dataset_by_node(stream, rank=rank, world_size=world_size)
    return dataclasses.replace(data, stream=stream, rank=rank, world_size=world_size)


class StreamingVideoClipDataset(torch.utils.data.IterableDataset):
    """Decodes a stream's videos in DataLoader workers, in an order that does not depend on the worker count.

    Items are those of `VideoClipDataset`; `index` is the clip's position in the epoch over every process (the k-th
    clip of process r of N: k * N + r), which seeds its augmentation, so processes do not draw alike. `set_epoch`
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
        import_torchcodec_before_datasets_threads()
        worker = torch.utils.data.get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        self.data.stream.set_epoch(self.epoch)
        # `iter(batch_size)` reads the whole stream in every worker (datasets would otherwise split the shards among
        # workers, making the order depend on their number); only this worker's batches are decoded.
        rows_of_batches = enumerate(self.data.stream.iter(batch_size=self.batch_size))
        while (batch := next_batch(rows_of_batches, self.data.source)) is not None:
            number, rows = batch
            if number < self.batches_to_skip or (number - self.batches_to_skip) % num_workers != worker_id:
                continue
            samples = zip(rows["video"], rows["label"], rows.get("sample", [None] * len(rows["video"])),
                          rows.get("problem", [None] * len(rows["video"])))
            for offset, (video, label, sample, problem) in enumerate(samples):
                position = number * self.batch_size + offset  # in this process's stream
                yield self._item(position * self.data.world_size + self.data.rank, video, label, sample, problem)

    def _item(self, index: int, video: Any, label: Any, sample: str | None = None,
              problem: str | None = None) -> dict[str, Any]:
        where = sample or _describe(video)
        if problem is not None:
            raise StreamingDataError(f"{where}: {problem}.")
        # A wrong label is the data's or the labels file's mistake, not the video's: it stops the run (as listed data
        # refuses it when it loads) instead of being skipped and counted as an undecodable video.
        target = self._label_index(label, where, from_shard=sample is not None)
        try:
            views = process_training_clip(self.video_processor, video, self.train, self.seed, self.epoch, index,
                                          self.processor_kwargs)
        except (ValueError, FileNotFoundError, OSError) as error:
            return {"index": index, "error": f"{where}: {error}"}
        return {"index": index, **views, "labels": target}

    def _label_index(self, label: Any, where: str, from_shard: bool) -> int:
        count = len(self.data.class_names)
        if label is None:
            missing = "no <key>.cls file (the class index, e.g. 0) beside its video" if from_shard else "no label"
            raise StreamingDataError(f"{where}: {missing}; every sample needs one.")
        if isinstance(label, int):
            if not 0 <= label < count:
                raise StreamingDataError(
                    f"{where}: label index {label} is out of range: {self.data.class_names_from} has {count} classes, "
                    f"indices 0 to {count - 1}; fix the label or pass the class list it counts in.")
            return label
        try:
            return _class_index(str(label), self.data.class_names, self._name_lookup, where)
        except ValueError as error:
            raise StreamingDataError(str(error)) from None


def import_torchcodec_before_datasets_threads() -> None:
    """datasets (5.2) reads several shards in threads, and its `_cast_to_python_objects` imports torchcodec's
    `VideoDecoder` only if torchcodec is already in `sys.modules` when it starts, then checks `sys.modules` again
    before using it: when the `Video` feature's `encode_example` imports torchcodec in another thread in between, the
    worker fails with "UnboundLocalError: cannot access local variable 'VideoDecoder'" (seen here one run in two
    with 2 workers). Imported first, it is in `sys.modules` for both checks."""
    try:
        import torchcodec.decoders  # noqa: F401
    except Exception:  # not installed, or FFmpeg's libraries missing: datasets then never imports it either
        pass


def next_batch(batches: Iterator[tuple[int, dict[str, list]]], source: str) -> tuple[int, dict[str, list]] | None:
    """The stream's next batch (None at its end); what datasets cannot read stops the run in one line: mostly a
    `.cls` that is not a number (datasets turns it into an int while reading the tar, before any of our checks), or
    a shard cut short (tarfile's ReadError, which is no ValueError, came out as a traceback)."""
    try:
        return next(batches, None)
    except tarfile.TarError as error:
        raise StreamingDataError(f"{source}: a shard could not be read to its end ({error}): a truncated or damaged tar "
                                 "archive; rebuild it or remove it from the folder.") from error
    except ValueError as error:
        hint = (" (a <key>.cls holds the class index, e.g. 0, not its name)" if "invalid literal for int" in str(error)
                else "")
        raise StreamingDataError(f"{source}: a shard could not be read: {error}{hint}.") from error


__all__ = ["StreamingDataError", "StreamingVideoClipDataset", "StreamingVideoData", "load_streaming_dataset",
           "stream_for_process"]


def batches_while_every_process_has_one(loader, accelerator) -> Iterator[dict[str, Any]]:
    """The loader's batches, on the host, until any process runs out: processes' shards may differ in length, and a
    process that left the epoch alone would leave the others waiting in the gradient all-reduce. (With several
    processes, asking is a collective whose answer the host reads: a wait for the device every step.)"""
    iterator = iter(loader)
    while True:
        batch = next(iterator, None)
        if accelerator.num_processes > 1:
            have = torch.tensor([0 if batch is None else 1], device=accelerator.device)
            processes_with_a_batch = int(accelerator.reduce(have, reduction="sum").item())
            if processes_with_a_batch < accelerator.num_processes:
                if processes_with_a_batch:  # documented, but a share of the data goes untrained every epoch
                    logger.warning("the epoch ended when a process ran out of batches; %d of %d processes had more, "
                                   "left out of this epoch: keep the shards of equal size (docs/training.md, "
                                   "Streaming).", processes_with_a_batch, accelerator.num_processes)
                return
        elif batch is None:
            return
        yield batch


__all__ += ["batches_while_every_process_has_one"]
