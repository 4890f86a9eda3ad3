# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Video classification data for training and evaluation, as Hugging Face `datasets`.

Three sources give the same thing, a `datasets.Dataset` with a `video` column (a path, or a dict with
`bytes`/`path` for Hub datasets) and a `label` column (`ClassLabel`), plus the class names:

- a folder of class sub-folders of videos (`root/<class name>/<clip>.mp4`);
- an annotation file: CSV (`path,label`), space-separated split files as HMDB51/UCF101/Kinetics/SSv2 ship
  them (`path label`), or JSON lines (`{"path": ..., "label": ...}`, or one JSON list of them); labels are class
  indices or names; paths are relative to the file's folder unless `data_root` says otherwise. A header row, a BOM
  and repeated rows are handled as `docs/training.md` ("Data") describes;
- a dataset name on the Hub (online), with `video_column` and `label_column`.

Decoding happens lazily in DataLoader workers through the package's video processor (`VideoClipDataset`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from datasets import ClassLabel, Dataset, Features, Value

from ..processing_omniclip import label_to_text, load_label_names


logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg")
ANNOTATION_EXTENSIONS = (".csv", ".txt", ".tsv", ".jsonl", ".json")


@dataclass
class VideoClassificationData:
    """A video classification split: `dataset` has columns `video` and `label`; `class_names[label]` names it."""

    dataset: Dataset
    class_names: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.dataset)


def _make_dataset(videos: list[Any], labels: list[int], class_names: list[str]) -> Dataset:
    features = Features({"video": Value("string"), "label": ClassLabel(names=list(class_names))})
    return Dataset.from_dict({"video": videos, "label": labels}, features=features)


def _class_index(label: str, class_names: list[str], lookup: dict[str, int], where: str,
                 names_only: bool = False) -> int:
    """The class `label` names, else (unless `names_only`) the class at index `label`.

    A label that is one of the class names (exact, or after natural-text normalisation) is that class, even when it is
    also a number: classes may be named by numbers (folders `0` ... `11`, a labels file of `1`, `2`, ...), and their
    names sort as text (`0`, `1`, `10`, `11`, `2`, ...), so the name `10` and the index 10 are two different classes.
    Reading an index first gave the folder `10` (and every row naming class `10`) the class at position 10, `8`:
    silently the wrong class, with the wrong prompt. A number is read as an index only when it names no class.
    `names_only` (class folders) reads no index at all: a folder's name is its class's name by definition.
    """
    text = label.strip()
    try:
        key = _normalise_name(text)
    except ValueError:  # no letters or digits (`___`): no class has that name
        key = None
    if key is not None and key in lookup:
        return lookup[key]
    if not names_only and text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(class_names):
            raise ValueError(f"{where}: label index {index} is out of range for {len(class_names)} classes (indices "
                             "count from 0 in the class list's order): fix it, or pass the --labels_file it counts in.")
        return index
    if names_only:
        raise ValueError(
            f"{where}: the class folder {label!r} is not one of the {len(class_names)} class names (first ones: "
            f"{class_names[:5]}); a class folder is named by its class's name, never by an index: rename it, or "
            "pass the --labels_file that lists it."
        )
    raise ValueError(
        f"{where}: label {label!r} is not one of the {len(class_names)} class names "
        f"(first ones: {class_names[:5]}); pass --labels_file with the dataset's class list."
    )


def _number_read_as_name(label: str, index: int, class_names: Sequence[str]) -> bool:
    """True when `label` (read as the class `index`) is also a valid class index of another class: a row of an
    index-labelled file whose classes are numbers listed in another order would be read as the wrong class."""
    text = label.strip()
    return text.lstrip("-").isdigit() and 0 <= int(text) < len(class_names) and int(text) != index


def _normalise_name(name: str) -> str:
    """Folder, annotation and label-file spellings of a class compare equal (`brush_hair`, `BrushHair`, `brush hair`)."""
    return label_to_text(name.replace("-", " "))


class DuplicateClassNamesError(ValueError):
    """Two class names that are one class once normalised (`moving up`, `Moving_Up`); `load_video_dataset` adds the
    file or data set they came from."""


def _name_lookup(class_names: Sequence[str]) -> dict[str, int]:
    """Normalised name -> class index. Two names that normalise alike are refused: a lookup would keep one of them,
    and the other (same prompt text, so the same text embedding) would be a class that can never be predicted."""
    lookup: dict[str, int] = {}
    for index, name in enumerate(class_names):
        key = _normalise_name(name)
        if key in lookup:
            raise DuplicateClassNamesError(
                f"class names {class_names[lookup[key]]!r} and {name!r} are the same class once spelled as text "
                f"({key!r}), so one of them could never be predicted: keep one of them."
            )
        lookup[key] = index
    return lookup


def labels_in_class_order(dataset, label_column: str, class_names: list[str], source: str):
    """`dataset` (a `Dataset` or an `IterableDataset`) with its `ClassLabel` column re-indexed by name into
    `class_names`. The column's indices count in its own names' order, and a --labels_file may list the same classes
    in another: used as they are, every label would mean the class at its index in the file (silently the wrong
    class). A class name the file does not have is refused in one line; a column that is no ClassLabel is kept."""
    feature = (dataset.features or {}).get(label_column)
    if not isinstance(feature, ClassLabel):
        return dataset
    lookup = _name_lookup(class_names)
    order = [_class_index(name, class_names, lookup, f"{source}: class {name!r} of the {label_column!r} ClassLabel")
             for name in feature.names]
    if order == list(range(len(order))):
        return dataset

    def reindex(batch):  # -1 (no label) stays, to be refused as out of range where the sample is read
        return {label_column: [order[label] if label is not None and 0 <= label < len(order) else label
                               for label in batch[label_column]]}

    return dataset.cast_column(label_column, Value("int64")).map(reindex, batched=True)


def load_folder(root: str | Path, class_names: list[str] | None = None) -> VideoClassificationData:
    """
    A folder of class sub-folders of videos, read with datasets' `videofolder` builder (labels from the sub-folder
    names, as a `ClassLabel`). Without `class_names`, the sorted sub-folder names are the classes. A sub-folder's name
    is its class's name, never an index: folder `10` is the class named `10` wherever `class_names` lists it.
    """
    root = Path(root)
    folders = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not folders:
        raise ValueError(f"{root}: no class sub-folders found; expected {root}/<class name>/<video files>.")
    names = class_names or [folder.name for folder in folders]
    lookup = _name_lookup(names)
    label_of_folder = {folder.name: _class_index(folder.name, names, lookup, where=str(folder), names_only=True)
                       for folder in folders}
    videos_of_folder = {
        folder: sorted(str(path) for path in folder.iterdir() if path.suffix.lower() in VIDEO_EXTENSIONS)
        for folder in folders
    }
    videos = [video for folder in folders for video in videos_of_folder[folder]]
    if not videos:
        raise ValueError(f"{root}: the class sub-folders hold no video files ({', '.join(VIDEO_EXTENSIONS)}).")
    _check_no_empty_class_folder(videos_of_folder)
    _warn_of_videos_outside_class_folders(root, folders)
    folder_of_video = _videofolder_labels(videos)
    # datasets' videofolder skips some extensions (.webm, .m4v, .mpg): those files take their folder's label too.
    labels = [label_of_folder[folder_of_video.get(video, Path(video).parent.name)] for video in videos]
    return VideoClassificationData(_make_dataset(videos, labels, names), list(names), str(root))


def _check_no_empty_class_folder(videos_of_folder: dict[Path, list[str]]) -> None:
    """A class sub-folder without videos is a mistake (a failed copy, a typo), not a class with no examples."""
    empty = [folder for folder, videos in videos_of_folder.items() if not videos]
    if empty:
        more = f" (and {len(empty) - 1} more)" if len(empty) > 1 else ""
        raise ValueError(f"{empty[0]}: this class folder holds no video files{more}; add its videos or remove it.")


def _warn_of_videos_outside_class_folders(root: Path, folders: list[Path]) -> None:
    """One warning counting the video files that are not directly in a class sub-folder (`root/clip.mp4`,
    `root/jump/deep/clip.mp4`): they are not used, and were left out with nothing said. A warning, as for a class
    folder's other files, rather than a refusal: a folder may hold more than the data set (hidden folders, such as an
    extraction's `.partial` ones, are not looked into)."""
    unused = [path for path in root.iterdir() if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS]
    for folder in folders:
        for sub_folder in sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")):
            unused += sorted(path for path in sub_folder.rglob("*") if path.suffix.lower() in VIDEO_EXTENSIONS
                             and path.is_file() and not any(part.startswith(".") for part in
                                                           path.relative_to(folder).parts))
    if unused:
        logger.warning(f"{root}: {len(unused)} video file{'s are' if len(unused) > 1 else ' is'} not directly in a "
                       f"class sub-folder and not used (e.g. {unused[0].relative_to(root).as_posix()}); a class "
                       f"folder's videos are read from it alone: move them into {root}/<class name>/ to use them.")


def _videofolder_labels(videos: list[str]) -> dict[str, str]:
    """The class (sub-folder name) datasets' `videofolder` builder gives each file it reads."""
    from datasets import Video, load_dataset
    from datasets.packaged_modules.videofolder.videofolder import VideoFolder

    readable = [video for video in videos if Path(video).suffix.lower() in VideoFolder.EXTENSIONS]
    if not readable:
        return {}
    dataset = load_dataset("videofolder", data_files={"train": readable}, drop_labels=False, split="train")
    dataset = dataset.cast_column("video", Video(decode=False))  # paths; decoding happens in our workers
    folder_names = dataset.features["label"].names
    return {cell["path"]: folder_names[label] for cell, label in zip(dataset["video"], dataset["label"])}


def load_annotation_file(
    path: str | Path, class_names: list[str] | None = None, data_root: str | Path | None = None
) -> VideoClassificationData:
    """An annotation file of `path,label` rows; labels are indices (then `class_names` are required) or names."""
    # Imported here: that module reads rows with this one's class-name spelling (`_normalise_name`).
    from .annotation_files import (
        ANNOTATION_FORMATS,
        is_index,
        read_annotation_rows,
        where_in_file,
        without_duplicate_rows,
        without_header_row,
    )

    path = Path(path)
    base = Path(data_root) if data_root else path.parent
    rows = without_header_row(path, read_annotation_rows(path), base, class_names)
    if not rows:
        raise ValueError(f"{path}: no annotation rows found; write {ANNOTATION_FORMATS}.")
    numeric = all(is_index(row.label) for row in rows)
    given = class_names is not None
    if class_names is None:
        if numeric:
            raise ValueError(f"{path}: labels are class indices; pass --labels_file with the class names.")
        class_names = sorted({row.label for row in rows})
    lookup = _name_lookup(class_names)
    # A label that is a class name is that class, also when it is a number that is a valid index of another class
    # (classes named `0` ... `11`, listed as text sorts them: `0`, `1`, `10`, ...). Such a row cannot say which it
    # means, and a name is what examples/extract_frames.py writes for these classes and what a folder of them is
    # labelled by, so the name is read (see `_class_index`); reading the index first gave those rows, silently, the
    # class at that position. With a given class list, one warning names the first such row: for a file that meant
    # indices, the only sign of it.
    labels = [_class_index(row.label, class_names, lookup, where_in_file(path, row)) for row in rows]
    read_as_names = [(row, label) for row, label in zip(rows, labels)
                     if given and _number_read_as_name(row.label, label, class_names)]
    if read_as_names:
        row, label = read_as_names[0]
        logger.warning(
            "%s: %d label%s both a class name and the index of another class (e.g. %r: the class named %r, not the "
            "class at index %s, %r); a label that is a class name is read as that class. If this file's labels are "
            "class indices, write the class names instead.", where_in_file(path, row), len(read_as_names),
            "s are" if len(read_as_names) > 1 else " is", row.label, class_names[label], row.label.strip(),
            class_names[int(row.label)])
    rows, labels = without_duplicate_rows(path, base, rows, labels)
    videos = [str(base / row.video) for row in rows]
    return VideoClassificationData(_make_dataset(videos, labels, class_names), list(class_names), str(path))


def load_hub_dataset(
    name: str,
    split: str,
    video_column: str = "video",
    label_column: str = "label",
    class_names: list[str] | None = None,
) -> VideoClassificationData:
    """A dataset on the Hub (needs a connection) with a video column and a label column."""
    from datasets import Video, load_dataset

    dataset = load_dataset(name, split=split)
    for column in (video_column, label_column):
        if column not in dataset.column_names:
            raise ValueError(
                f"dataset {name!r} (split {split!r}) has no column {column!r}; its columns are "
                f"{dataset.column_names}. Set --video_column / --label_column."
            )
    if isinstance(dataset.features[video_column], Video):
        dataset = dataset.cast_column(video_column, Video(decode=False))  # decode in our workers, our way
    feature = dataset.features[label_column]
    if class_names is None:
        if not isinstance(feature, ClassLabel):
            raise ValueError(f"dataset {name!r}: column {label_column!r} is not a ClassLabel; pass --labels_file.")
        class_names = list(feature.names)
    dataset = labels_in_class_order(dataset, label_column, class_names, f"dataset {name!r}")
    dataset = dataset.select_columns([video_column, label_column])
    dataset = dataset.rename_columns({video_column: "video", label_column: "label"})
    return VideoClassificationData(dataset, list(class_names), name)


def load_video_dataset(
    source: str | Path,
    labels_file: str | Path | None = None,
    split: str = "train",
    video_column: str = "video",
    label_column: str = "label",
    data_root: str | Path | None = None,
    class_names: Sequence[str] | None = None,
) -> VideoClassificationData:
    """Loads a folder, an annotation file or a Hub dataset; `labels_file` gives the class names (one a line), or
    else `class_names` (e.g. the classes a model was trained on), or else the data's own labels."""
    if labels_file:
        class_names = load_label_names(labels_file)
        try:
            _name_lookup(class_names)  # here, so the message names the labels file rather than the data
        except DuplicateClassNamesError as error:
            raise ValueError(f"{labels_file}: {error}") from None
    elif class_names is not None:
        class_names = list(class_names)
    try:
        return _load_video_dataset(source, class_names, split, video_column, label_column, data_root)
    except DuplicateClassNamesError as error:  # names from the class folders, the annotation rows or a ClassLabel
        raise ValueError(f"{source}: {error}") from None


def _load_video_dataset(source, class_names, split, video_column, label_column, data_root) -> VideoClassificationData:
    path = Path(source)
    if path.is_dir():
        return load_folder(path, class_names)
    if path.is_file():
        if path.suffix.lower() not in ANNOTATION_EXTENSIONS:
            raise ValueError(f"{path}: not an annotation file ({', '.join(ANNOTATION_EXTENSIONS)}) nor a folder.")
        return load_annotation_file(path, class_names, data_root)
    if looks_like_a_local_path(source):
        raise FileNotFoundError(f"{source}: no such folder or annotation file.")
    try:
        return load_hub_dataset(str(source), split, video_column, label_column, class_names)
    except ValueError:
        raise
    except Exception as error:  # datasets' and huggingface_hub's own error types (not found, offline, no access)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FileNotFoundError(
            f"{source}: no such local folder or annotation file, and loading it as a Hub dataset failed ({reason})."
        ) from error


def looks_like_a_local_path(source: str | Path) -> bool:
    """True when `source` cannot be a Hub dataset id (`owner/name`): a file suffix, `./`, `/`, `~`, more than one
    `/`, a name huggingface_hub refuses as an id (a trailing `/`), or a first component that is a local folder
    (`data/nothere` when `data/` exists is a mistyped path)."""
    from ..modeling_omniclip import is_hub_repo_id

    text = str(source)
    if Path(text).suffix or text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        return True
    if not is_hub_repo_id(text):  # `k400_shards/`: no Hub id ends in a slash (huggingface_hub's own rule)
        return True
    return "/" in text and Path(text.split("/")[0]).is_dir()


def few_shot_indices(labels: Sequence[int], shots: int, seed: int, num_classes: int,
                     class_names: Sequence[str] | None = None, videos: Sequence[str] | None = None) -> list[int]:
    """Exactly `shots` examples per class, drawn without replacement with `seed`; sorted indices. With `videos`
    (each row's path), each class's videos are put in path order before the draw, so the same videos and seed give
    the same selection whatever the order of the annotation file's rows (drawn in row order, shuffling the rows
    changed which K videos a --shots run trained on)."""
    if shots < 1:
        raise ValueError(f"--shots={shots} is invalid: it must be >= 1.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(num_classes):
        members = np.flatnonzero(labels == label)
        if len(members) < shots:
            name = f"class {class_names[label]!r}" if class_names else f"class {label}"
            raise ValueError(f"{name} has only {len(members)} training videos, fewer than --shots {shots}: lower "
                             "--shots, or add videos of that class.")
        if videos is not None:
            members = np.asarray(sorted(members, key=lambda index: (videos[index], index)))
        chosen += rng.choice(members, size=shots, replace=False).tolist()
    return sorted(chosen)


def _video_paths(data: VideoClassificationData) -> list[str] | None:
    """Each row's video path, for a data set whose `video` column holds paths (folders and annotation files); None
    for a Hub dataset's video cells (bytes: reading them all to sort by would load the data set), whose order is
    the data set's own."""
    feature = (data.dataset.features or {}).get("video")
    if isinstance(feature, Value) and feature.dtype == "string":
        return list(data.dataset["video"])
    return None


def few_shot_subset(data: VideoClassificationData, shots: int, seed: int) -> tuple[VideoClassificationData, list[int]]:
    try:
        indices = few_shot_indices(data.dataset["label"], shots, seed, len(data.class_names), data.class_names,
                                   _video_paths(data))
    except ValueError as error:
        raise ValueError(f"{data.source}: {error}") from None
    return VideoClassificationData(data.dataset.select(indices), data.class_names, data.source), indices


def _video_source(value: Any) -> Any:
    """A path string, or the bytes / path of a Hub `Video(decode=False)` cell (or a shard's member).

    The path is used only when there are no bytes (`None`): a cell or tar member whose bytes are empty (`b""`, a
    zero-byte file) is an undecodable video of that sample. Read as missing, its bare member name (`clip.mp4`) went
    to the decoder as a path, relative to the working folder: a file of that name there was trained on under the
    sample's label, silently, and without one the error said "no such file".

    Raises:
        `ValueError`: the bytes are empty, or the cell has neither bytes nor a path.
    """
    if isinstance(value, dict):
        content = value.get("bytes")
        if content is None:
            if value.get("path") is None:
                raise ValueError("the video cell has neither bytes nor a path")
            return value["path"]
        if len(content) == 0:
            raise ValueError("the video is empty (0 bytes), so it cannot be decoded; re-create the sample's video "
                             "or remove the sample")
        return content
    return value


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("path") or "<bytes>")
    return str(value)


def example_seed(seed: int, epoch: int, index: int) -> int:
    """A seed per (run seed, epoch, example): augmentation does not depend on workers, order or resumption."""
    digest = hashlib.sha256(f"{seed}/{epoch}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class VideoClipDataset(torch.utils.data.Dataset):
    """Decodes and processes one video per item with an `OmniCLIPVideoProcessor`, in DataLoader workers.

    A video that fails to decode gives an item with `error` set (path and message) instead of pixels, unless
    `strict`; `collate_video_batch` drops such items so the run goes on and counts them.
    """

    def __init__(self, data: VideoClassificationData, video_processor, train: bool, seed: int = 0,
                 strict: bool = False, **processor_kwargs):
        self.data = data
        self.video_processor = video_processor
        # `do_augment` among the settings decides, e.g. {"do_augment": false} trains without augmentation.
        self.train = bool(processor_kwargs.pop("do_augment", train))
        self.seed = seed
        self.strict = strict
        self.processor_kwargs = processor_kwargs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.data.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.data.dataset[int(index)]
        try:
            views = process_training_clip(self.video_processor, row["video"], self.train, self.seed, self.epoch,
                                          int(index), self.processor_kwargs)
        except (ValueError, FileNotFoundError, OSError) as error:
            if self.strict:
                raise ValueError(f"{_describe(row['video'])}: {error} (run without --strict to skip it)") from error
            return {"index": int(index), "error": f"{_describe(row['video'])}: {error}"}
        return {"index": int(index), **views, "labels": int(row["label"])}


def process_training_clip(video_processor, video: Any, train: bool, seed: int, epoch: int, index: int,
                          processor_kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """One example's `pixel_values_videos` (`(frames, 3, H, W)`, or `(views, frames, 3, H, W)`), augmented with the
    seed of `(seed, epoch, index)`: the same for the map-style and the streamed datasets, whatever the workers, order
    or resumption. With `defer_color_augmentation` among `processor_kwargs`, also its `color_augmentation`."""
    generator = torch.Generator().manual_seed(example_seed(seed, epoch, index))
    settings = dict(processor_kwargs)
    if torch.utils.data.get_worker_info() is not None:
        # The DataLoader's workers already use the cores; PyAV's frame threads on top only add overhead.
        settings.setdefault("decoder_threading", False)
    outputs = video_processor(_video_source(video), train=train, generator=generator, return_tensors="pt", **settings)
    return {key: outputs[key][0] for key in ("pixel_values_videos", "color_augmentation") if key in outputs}


def blank_clip(config, device: torch.device | str = "cpu") -> torch.Tensor:
    """`(1, T, 3, H, W)` zeros shaped for the model of `config` (an `OmniCLIPConfig`). With several processes, one
    whose batch held no decodable video runs this instead, with no weight in the result: its forward then takes part
    in the collectives the other processes' forwards start (DDP's buffer broadcast, FSDP's parameter all-gathers),
    where skipping it would leave them waiting."""
    size = config.vision_config.image_size
    return torch.zeros(1, config.num_frames, 3, size, size, device=device)


def collate_video_batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacks the good items; failed ones are returned as `errors` (a list of messages) for the caller to count,
    with their dataset indices in `error_indices`.
    `decoded` says, item by item in the loader's order, which ones the stacked tensors hold."""
    good = [item for item in items if "error" not in item]
    batch: dict[str, Any] = {"errors": [item["error"] for item in items if "error" in item],
                             # Dataset indices of the failed items: two samples can fail with one message (two
                             # empty byte cells), so the index, not the text, tells them from Accelerate's repeats.
                             "error_indices": [item["index"] for item in items if "error" in item],
                             "decoded": torch.tensor(["error" not in item for item in items])}
    if good:
        batch["pixel_values_videos"] = torch.stack([item["pixel_values_videos"] for item in good])
        if "color_augmentation" in good[0]:  # deferred to the training device (`--color_augmentation_on`)
            batch["color_augmentation"] = torch.stack([item["color_augmentation"] for item in good])
        batch["labels"] = torch.tensor([item["labels"] for item in good], dtype=torch.long)
        batch["indices"] = torch.tensor([item["index"] for item in good], dtype=torch.long)
    return batch


__all__ = [
    "VideoClassificationData",
    "VideoClipDataset",
    "blank_clip",
    "collate_video_batch",
    "few_shot_indices",
    "few_shot_subset",
    "labels_in_class_order",
    "load_annotation_file",
    "load_folder",
    "load_hub_dataset",
    "load_video_dataset",
    "process_training_clip",
]
