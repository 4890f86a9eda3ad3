# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Training from a streamed dataset: WebDataset-style tar shards of video files, or a Hub dataset, never on disk whole.

`--streaming` with `--train_data` a folder of tar shards (`*.tar`, `*.tar.gz` or `*.tgz`; each sample `<key>.mp4`, or
another video extension, + `<key>.cls`, the class index, read with datasets' `webdataset` builder; shards named by
split, `train-*.tar` and `validation-*.tar`, are told apart as `load_dataset` does, `--train_split` picking one) or a
Hub dataset id
(`load_dataset(..., streaming=True)`). A sample without one video or a label, or with a label out of range, stops
the run in one line naming shard and file (`StreamingDataError`); an undecodable video is skipped, as listed ones.
What datasets would drop without a word is refused by name at start-up, before the model loads (`tar_shards`): a
shard in no split or hidden, a damaged tar header past the first member, a shard cut short (even between two
members), a member named as hidden (`__<youtube id>.mp4`) or stored as a link.

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
import posixpath
import tarfile
import zlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import torch
from datasets import Value

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


# A video cell as it is stored: its bytes and its file name. Cast to `Video(decode=False)` instead, a stream built in
# Python (a Hub WebDataset repo) went through `Video.encode_example`, which swaps a cell's bytes for its file name
# whenever a file of that name is in the working folder: that file was trained on, under the cell's label.
RAW_VIDEO = {"bytes": Value("binary"), "path": Value("string")}


def load_streaming_dataset(source: str | Path, class_names: list[str] | None, split: str = "train",
                           video_column: str = "video", label_column: str = "label",
                           check_shards: bool = True) -> StreamingVideoData:
    """A folder of WebDataset tar shards, or a Hub dataset id, as a stream (nothing is downloaded whole).
    `check_shards=False`: the shards were checked whole already (`tar_shards`), as examples/train.py does once."""
    if Path(source).exists():
        return load_tar_shards(source, class_names, split, check_shards)
    from datasets import ClassLabel, Video, load_dataset

    try:
        stream = load_dataset(str(source), split=split, streaming=True)
    except Exception as error:  # datasets' and huggingface_hub's own error types (not found, offline, no access)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FileNotFoundError(f"{source}: no such local folder of shards, and streaming it as a Hub dataset failed "
                                f"({reason}).") from error
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
        stream = stream.cast_column(video_column, RAW_VIDEO)  # decode in our workers, our way
    stream = stream.select_columns([video_column, label_column])
    if video_column != "video":
        stream = stream.rename_column(video_column, "video")
    if label_column != "label":
        stream = stream.rename_column(label_column, "label")
    return StreamingVideoData(stream, list(class_names), str(source), class_names_from, shards=stream.num_shards)


def load_tar_shards(source: str | Path, class_names: list[str] | None, split: str = "train",
                    check_shards: bool = True) -> StreamingVideoData:
    """The `*.tar` shards of a folder as a stream of `video`, `label` and `sample` (the shard and file, for messages).

    The columns are declared, not inferred from the first shard: every sample finds its video whatever its extension,
    and one without a video or a `.cls` streams with None there, which `StreamingVideoClipDataset` reports by shard
    and key, instead of datasets' error about the whole set (or a missing column read as an undecodable video).
    """
    from datasets import Features, load_dataset

    shards = tar_shards(source, split, check_shards)
    if class_names is None:  # a `.cls` holds an index: the names come from elsewhere
        raise ValueError(f"{source}: pass --labels_file with the class names (one a line, in index order).")
    # The members as raw bytes: as `Video` features, datasets' `encode_example` replaced a member's bytes with its bare
    # name whenever a file of that name was in the working folder, and that file was trained on under the sample's
    # label (`one_video_per_sample` gives the decoder the bytes, with the name for messages).
    features = Features({**{extension: Value("binary") for extension in VIDEO_FIELD_EXTENSIONS},
                         **{field: Value("int64") for field in LABEL_FIELDS},
                         "__key__": Value("string"), "__url__": Value("string")})
    stream = load_dataset("webdataset", data_files={split: shards}, split=split, streaming=True, features=features)
    stream = stream.map(one_video_per_sample, remove_columns=list(features))
    return StreamingVideoData(stream, list(class_names), str(source), shards=[os.path.relpath(shard, Path(source).resolve()) for shard in shards])


def tar_shards(source: str | Path, split: str = "train", check_shards: bool = True) -> list[str]:
    """The folder's tar shards of `split`, each checked whole (`check_shard`) unless `check_shards` is False.

    Splits are told apart by the shards' names as `load_dataset` does (`train-00000.tar`, `validation-00000.tar`,
    `test-*`, in sub-folders too: datasets' `get_data_patterns`); when no shard is named for a split, all are the
    `train` split. A shard that datasets would put in no split (named for none beside shards named for one, or hidden:
    a name or folder starting with `.`, a folder starting with `__`) is refused by name, not left out unsaid.
    Before, every `*.tar` of the folder streamed, validation shards beside training ones included, and a `.TAR` or
    `.tar.gz` shard was left out unsaid.
    """
    path = Path(source)
    if not path.is_dir():
        advice = ("to stream a single shard, put it in a folder of its own" if is_shard(path) else
                  "to train from an annotation file, leave out --streaming")
        raise ValueError(f"{source}: --streaming reads a folder of WebDataset tar shards (*.tar) or a Hub dataset id, "
                         f"not a file; pass the folder of shards ({advice}).")
    shards_of_split = shards_by_split(path)
    check_no_shard_left_out(path, shards_of_split)
    if not shards_of_split:
        raise ValueError(f"{source}: --streaming reads WebDataset tar shards ({', '.join('*' + suffix for suffix in SHARD_SUFFIXES)}), "
                         "and this folder has none.")
    if split not in shards_of_split:
        raise ValueError(f"{source}: no shards of split {split!r} (--train_split); this folder's shards are named for "
                         f"{', '.join(repr(name) for name in shards_of_split)} (e.g. train-00000.tar, "
                         "validation-00000.tar; when no shard is named for a split, all are the 'train' split).")
    shards = shards_of_split[split]
    for shard in shards if check_shards else ():
        check_shard(shard, source)
    return [str(shard) for shard in shards]


def is_shard(path: Path) -> bool:
    return path.name.lower().endswith(SHARD_SUFFIXES)


def shards_by_split(folder: Path) -> dict[str, list[Path]]:
    """The folder's shards (resolved paths) by split, as `load_dataset` splits them; splits without shards left out."""
    from datasets.data_files import DataFilesDict, get_data_patterns

    try:
        files_of_split = DataFilesDict.from_patterns(get_data_patterns(str(folder)), str(folder))
    except FileNotFoundError:  # datasets' EmptyDatasetError: no file at all (hidden ones do not count)
        files_of_split = {}
    shards_of_split = {str(name): sorted(Path(file).resolve() for file in files if is_shard(Path(file)))
                       for name, files in files_of_split.items()}
    return {name: shards for name, shards in shards_of_split.items() if shards}


def check_no_shard_left_out(folder: Path, shards_of_split: dict[str, list[Path]]) -> None:
    """Every shard under the folder is in some split. datasets' split patterns leave out, unsaid, a shard named for no
    split as soon as another shard's name matches one (`extra-00000.tar` beside `train-*.tar`; a word such as `test`
    inside a name is enough), and its file listing skips hidden names and `__` folders (`.00002.tar`, `__batch2/`).
    Refused rather than added to `train`: such a shard may be a leftover or another set, and `load_dataset` on the
    same folder (a user's own check, an evaluation) would still leave it out; only its owner can say where it goes."""
    in_a_split = {shard for shards in shards_of_split.values() for shard in shards}
    left_out = [shard for shard in every_shard_under(folder) if shard.resolve() not in in_a_split]
    if not left_out:
        return
    hidden = [shard for shard in left_out if is_hidden_for_datasets(shard.relative_to(folder))]
    if hidden:
        raise ValueError(f"{hidden[0]}: datasets skips shards whose name or folder starts with '.', or whose folder "
                         f"starts with '__', as hidden files, so this shard would be left out unsaid"
                         f"{and_more(hidden[1:], folder)}; rename it (or its folder) or move it out of {folder}.")
    named = ", ".join(repr(name) for name in shards_of_split)
    example = next(iter(shards_of_split.values()))[0].relative_to(folder.resolve()) if shards_of_split else None
    raise ValueError(f"{left_out[0]}: this shard's name and folders name no split, while other shards' do ({named}, "
                     f"e.g. {example}: datasets' split naming), so it would be left out of every split unsaid"
                     f"{and_more(left_out[1:], folder)}; name it for its split (e.g. train-00002.tar) or move it out "
                     f"of {folder}.")


def every_shard_under(folder: Path) -> list[Path]:
    """Every shard file under the folder, hidden ones included (pathlib lists them; datasets does not)."""
    return sorted(path for path in folder.rglob("*") if is_shard(path) and path.is_file())


def is_hidden_for_datasets(relative: Path) -> bool:
    """datasets' rule for data files (`data_files.py`): a part starting with '.' anywhere, or a folder with '__'."""
    return (any(part.startswith(".") and set(part) != {"."} for part in relative.parts)
            or any(part.startswith("__") for part in relative.parent.parts))


def and_more(others: list[Path], folder: Path, shown: int = 3) -> str:
    if not others:
        return ""
    names = ", ".join(str(path.relative_to(folder)) for path in others[:shown])
    return f" (and {len(others)} more: {names}{'...' if len(others) > shown else ''})"


def check_shard(shard: Path, source: str | Path) -> None:
    """Reads every member header of the shard, refusing in one line what datasets would stream short unsaid.

    datasets reads a shard with `tarfile.open(mode="r|*")`, which raises only for a bad header at the very start: a
    damaged header further on, or a file cut exactly between two members, reads as the archive's end, and the samples
    after it are gone without a word. So each header is read here, and the archive must end with tar's zero blocks.
    In an uncompressed shard the data is skipped (a seek per member); a compressed one (`.tar.gz`, `.tgz`) can only be walked by
    decompressing it whole, which is accepted: videos barely compress, so such shards are rare and better rebuilt
    as `.tar`. Member names datasets would skip (`check_member_names`) are refused too.
    """
    try:
        archive = tarfile.open(shard)
    except tarfile.ReadError as error:
        if shard.stat().st_size == 0:  # an empty file: no tar header at all
            raise ValueError(no_samples_message(shard)) from None
        # Not tarfile's message: it lists each compression it tried, over several lines.
        raise ValueError(f"{shard}: not a readable tar archive; rebuild the shard or remove it from the folder."
                         ) from error
    with archive:
        members = read_every_header(shard, archive, source)
    check_member_names(shard, members)
    if not any(member.isreg() for member in members):
        raise ValueError(no_samples_message(shard))


def no_samples_message(shard: Path) -> str:
    # datasets stops at an empty first shard with "Must pass at least one table", naming none, and skips a later one.
    return f"{shard}: this shard holds no samples (an empty tar archive); rebuild it or remove it from the folder."


# What reading a damaged or cut archive raises: tarfile's errors, and the decompressor's for a compressed shard
# (gzip's EOFError when cut, BadGzipFile, an OSError, or zlib.error when damaged).
ARCHIVE_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)


def read_every_header(shard: Path, archive: tarfile.TarFile, source: str | Path) -> list[tarfile.TarInfo]:
    """The archive's members, read to its end-of-archive blocks (`check_archive_end`). What tarfile itself raises (a
    member's data running past the end of the file, a compressed shard cut short) is what the stream raised when it
    got there (`next_batch`): the same line, now before the model loads, with the shard and member named in it."""
    members: list[tarfile.TarInfo] = []
    try:
        while (member := archive.next()) is not None:
            members.append(member)
        check_archive_end(shard, archive, members[-1] if members else None)
    except ARCHIVE_READ_ERRORS as error:
        where = f"past member {members[-1].name}" if members else "at its first member"
        name = os.path.relpath(shard, Path(source).resolve())
        raise StreamingDataError(f"{source}: a shard could not be read to its end ({name}, {where}: {error}): a "
                                 "truncated or damaged tar archive; rebuild it or remove it from the folder.") from None
    return members


def check_archive_end(shard: Path, archive: tarfile.TarFile, last: tarfile.TarInfo | None) -> None:
    """tarfile's `next()` returns None at tar's end-of-archive (a zero block) but also at a damaged header or at the
    file's end; its `offset` is then where it stopped. Only a zero block there, and nothing but zeros after it (no
    second archive appended, which every reader would ignore), is a whole archive."""
    end = archive.offset
    after = f"after member {last.name}" if last is not None else "at its start"
    # The decompressed stream of a compressed shard is seekable too; this step back of one block stays, but for a
    # block astride two of gzip's 128 KiB reads, inside its buffer (no second decompression: measured, none).
    stream = archive.fileobj
    stream.seek(end)
    block = stream.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE:
        raise ValueError(f"{shard}: the archive stops at byte {end}, {after}, with neither a tar header nor the "
                         "end-of-archive blocks there: the shard was cut short (an interrupted write or copy?), and "
                         "the samples after that point would be missing unsaid; rebuild or re-copy the shard, or "
                         "remove it from the folder.")
    if block.count(0) != len(block):
        raise ValueError(f"{shard}: damaged tar header at byte {end}, {after} ({header_problem(block)}): tar readers "
                         "take it for the archive's end, so the samples after it would be left out unsaid; rebuild the "
                         "shard or remove it from the folder.")
    trailing = first_non_zero_byte(stream)
    if trailing is not None:
        raise ValueError(f"{shard}: more data at byte {end + tarfile.BLOCKSIZE + trailing}, past the archive's end "
                         f"(its end-of-archive blocks at byte {end}, {after}): archives appended one after another? "
                         "tar readers stop at the first end, so the samples after it would be left out unsaid; "
                         "rebuild the shard as one archive.")


def header_problem(block: bytes) -> str:
    try:
        tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError as error:
        return str(error)
    return "not a tar header"


def first_non_zero_byte(stream, chunk_size: int = 1 << 16) -> int | None:
    """Where, from the stream's position, the first byte other than zero is (None: zeros to the end). The end blocks
    and the record padding after them are a few KiB, so this reads little unless something follows."""
    read = 0
    while chunk := stream.read(chunk_size):
        stripped = chunk.lstrip(b"\0")
        if stripped:
            return read + len(chunk) - len(stripped)
        read += len(chunk)
    return None


def check_member_names(shard: Path, members: list[tarfile.TarInfo]) -> None:
    """datasets' tar reader (`ArchiveIterable._iter_tar`) skips, unsaid, every file whose base name starts with '.' or
    '__' (hidden files, `__pycache__`) and every member that is not a regular file (a link). A Kinetics key is the
    YouTube id, which may start with `__` (`__NrybzYzUg_000001_000011.mp4`): such samples would vanish. macOS metadata
    (`._<name>`, `.DS_Store`, `__MACOSX/`: bsdtar adds `._` files for extended attributes) is nobody's sample, and
    datasets skipping it is right: it is let through."""
    hidden = [member for member in members if member.isreg() and is_hidden_member(member.name)]
    if hidden:
        suggestion = "k" + posixpath.basename(hidden[0].name).lstrip(".")  # a key without the prefix's dot
        more = f" (one of {len(hidden)} such files in this shard)" if len(hidden) > 1 else ""
        raise ValueError(f"{shard}: member {hidden[0].name}{more}: datasets skips files whose name starts with '.' or "
                         "'__' as hidden, so this sample would be left out unsaid; rename its key so that it starts "
                         f"with neither (e.g. {suggestion}) and rebuild the shard.")
    links = [member for member in members if member.issym() or member.islnk()]
    if links:
        kind = "symbolic" if links[0].issym() else "hard"
        more = f" (one of {len(links)} links in this shard)" if len(links) > 1 else ""
        raise ValueError(f"{shard}: member {links[0].name}{more} is a {kind} link (to {links[0].linkname}): datasets "
                         "reads regular files only and would skip it unsaid; rebuild the shard with the files "
                         "themselves (GNU tar: --dereference --hard-dereference).")


def is_hidden_member(name: str) -> bool:
    base = posixpath.basename(name)
    if not base.startswith((".", "__")):
        return False
    macos_metadata = base == ".DS_Store" or base.startswith("._") or "__MACOSX" in PurePosixPath(name).parts
    return not macos_metadata  # nobody's sample (see `check_member_names`)


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
    video = {"bytes": row[videos[0]], "path": name} if videos else None
    return {"video": video, "label": labels[0] if labels else None, "sample": f"{row['__url__']}: {name}",
            "problem": problem}


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
