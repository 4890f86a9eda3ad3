# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""
Decoding a training set once into frame folders (`omniclip_hf.video_frame_folders`), with an annotation file that
trains from them with the same flags.

Decoding the video is most of a training clip's CPU cost; a frame folder is read several times faster
(`benchmarks/bench_input_pipeline.py --frames`), so fewer cores keep a GPU fed. The extraction is resumable: every
folder is written all or nothing, and a second run skips the folders that are complete. It replaces only files an
earlier extraction wrote: never the annotation file it reads, nor a user's file of the same name.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic_writes import write_files_into_folder
from ..video_frame_folders import (
    DEFAULT_JPEG_QUALITY,
    DEFAULT_SHORT_SIDE,
    FrameFolderOutputError,
    is_frame_folder,
    write_frame_folder,
)
from .data import VideoClassificationData, _class_index, _name_lookup


@dataclass
class ExtractionResult:
    """What an extraction wrote: the annotation file of frame folders, and the videos that could not be decoded."""

    annotation_file: Path
    num_rows: int
    num_videos: int
    undecodable: list[str] = field(default_factory=list)  # "path: why", one per video left out
    undecodable_file: Path | None = None
    labels_file: Path | None = None  # the class names in index order, written when the rows' labels are names
    lost_classes: list[str] = field(default_factory=list)  # classes with videos, none of which could be decoded


def _lexical_absolute(path: Path) -> Path:
    """`path` made absolute with `..` folded away, symlinks left as they are (the tree as the user sees it)."""
    return Path(os.path.normpath(os.path.abspath(path)))


def _folders_resolved(path: Path) -> Path:
    """`path` with its folders' symlinks followed but not the file's own: a video that is a link keeps its name."""
    return path.parent.resolve() / path.name


def _relative_to_root(path: Path, root: Path) -> Path | None:
    """
    `path` under `root`, or None when it lies outside. As written first, so a tree of class folders whose files are
    symlinks to shared storage keeps its own layout (following a file's link would leave the root: flattened to
    `OUT/<name>`, or two classes' `a.mp4` refused as one folder). Then with the folders' links followed, so a root
    given through a symlink still holds rows written with the real path (or the other way round).
    """
    for file, folder in ((_lexical_absolute(path), _lexical_absolute(root)), (_folders_resolved(path), root.resolve())):
        try:
            return file.relative_to(folder)
        except ValueError:
            continue
    return None


def frame_folder_paths(videos: list[str], data_root: Path, out: Path) -> dict[str, Path]:
    """
    Where each video's frames go: its path under the data's root, without the extension, inside `out`
    (`<root>/brush_hair/clip.avi` -> `<out>/brush_hair/clip`); a video outside the root goes by its name alone.
    A video file that is a symlink goes by its own path, not its target's.

    Raises:
        `ValueError`: two videos would share a folder (`clip.mp4` and `clip.avi` side by side).
    """
    folders: dict[str, Path] = {}
    owner: dict[Path, str] = {}
    for video in dict.fromkeys(videos):
        path = Path(video)
        relative = _relative_to_root(path, data_root) or Path(path.name)
        folder = out / relative.with_suffix("")
        if folder in owner:
            raise ValueError(
                f"{owner[folder]} and {video} would both be extracted to {folder}: rename one of them first."
            )
        owner[folder] = video
        folders[video] = folder
    return folders


def _extract_one(job: tuple[str, str, dict[str, Any], bool]) -> tuple[str, str | None]:
    """One video into its folder; the error message instead when it cannot be decoded."""
    video, folder, settings, threading = job
    try:
        write_frame_folder(video, folder, **settings, threading=threading)
    except FrameFolderOutputError:
        raise  # the output side's fault (another video's folder, other settings, a full disk): the run stops
    except (ValueError, FileNotFoundError, OSError) as error:
        return video, str(error)
    return video, None


def _one_thread_per_worker() -> None:
    import torch

    torch.set_num_threads(1)  # the workers already use the cores


def _run_jobs(jobs: list[tuple], workers: int) -> dict[str, str | None]:
    from tqdm.auto import tqdm

    results: dict[str, str | None] = {}
    with tqdm(total=len(jobs), unit="video", desc="extracting frames", disable=None) as bar:
        if workers <= 1:
            for job in jobs:
                video, error = _extract_one(job)
                results[video] = error
                bar.update()
            return results
        import multiprocessing

        # Spawned, not forked: the parent may already hold torch's threads and FFmpeg state.
        with multiprocessing.get_context("spawn").Pool(workers, initializer=_one_thread_per_worker) as pool:
            for video, error in pool.imap_unordered(_extract_one, jobs):
                results[video] = error
                bar.update()
    return results


def _nothing_read_message(folders: dict[str, Path], errors: dict[str, str | None], data_root: Path) -> str:
    """Why no video could be extracted, the videos that do not exist counted apart: all of them missing is most often
    a wrong --data_root, not videos that cannot be decoded."""
    missing = [video for video in folders if not Path(video).exists()]
    broken = [video for video in folders if errors[video] is not None and Path(video).exists()]
    parts = []
    if missing:
        parts.append(f"{len(missing)} do not exist (first: {missing[0]}; paths are read relative to {data_root}: is "
                     "--data_root right?)")
    if broken:
        parts.append(f"{len(broken)} could not be decoded (first: {errors[broken[0]].splitlines()[0]})")
    return f"none of the {len(folders)} videos could be extracted: {'; '.join(parts)}. No frame folder or list written."


def _write_lists(out: Path, annotation_file: Path, rows: list[tuple[str, str]], labels_file: Path | None,
                 class_names: list[str], undecodable: list[str]) -> None:
    """The annotation file, its labels file and the list of undecodable videos, written as one set (staged, then
    moved into `out`, the annotation file last; an earlier run's list of undecodable videos that no longer holds is
    removed): written one after the other, a kill between them left a labels file that disagreed with the list."""
    def write(folder: Path) -> None:
        with open(folder / annotation_file.name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label"])
            writer.writerows(rows)
        if labels_file is not None:
            (folder / labels_file.name).write_text(labels_text(class_names))
        if undecodable:
            (folder / undecodable_name).write_text("\n".join(undecodable) + "\n")

    undecodable_name = annotation_file.with_suffix(".undecodable.txt").name
    write_files_into_folder(out, write, stale=lambda written: [undecodable_name], last=(annotation_file.name,))


def labels_text(class_names: list[str]) -> str:
    """A labels file (`--labels_file`): one class name a line, in index order."""
    return "".join(f"{name}\n" for name in class_names)


def _not_a_frame_folder_list(annotation_file: Path, out: Path) -> str | None:
    """
    Why `annotation_file` is not the list of frame folders an earlier extraction into `out` wrote, or None when it is:
    a `path,label` header, then rows naming complete frame folders relative to `out`.
    """
    number = 0
    try:
        with annotation_file.open(newline="") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if number == 1:
                    if row != ["path", "label"]:
                        return "line 1 is not a 'path,label' header"
                elif len(row) != 2 or Path(row[0]).is_absolute() or not is_frame_folder(out / row[0]):
                    return f"line {number} does not name a frame folder under {out}"
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        return f"it cannot be read as one: {error}"
    return None if number else "it is empty"


def _is_same_file(path: Path, other: str) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:  # either does not exist (a Hub dataset's name, a file not written yet)
        return False


def _check_outputs_replaceable(
    data: VideoClassificationData, out: Path, annotation_file: Path, labels_file: Path | None
) -> None:
    """
    Refuses, before anything is written, to replace a file an earlier extraction did not write: with `--out` the
    annotation file's own folder, `out/<name>.csv` can be the very file being read, or the user's own list of the
    videos. Replacing it would lose its rows, and a rerun would then read frame folders as videos.
    """
    if annotation_file.exists():
        if _is_same_file(annotation_file, data.source):
            raise ValueError(
                f"--out {out} would write its list of frame folders over {annotation_file}, the annotation file being "
                "extracted (--data): pick another --out."
            )
        why = _not_a_frame_folder_list(annotation_file, out)
        if why is not None:
            raise ValueError(
                f"{annotation_file} already exists and is not an earlier extraction's list of frame folders ({why}): "
                "pick another --out, or move that file away."
            )
    # The class names an earlier extraction wrote beside its list may be replaced (a class folder added since);
    # another file of that name only when it already says the same.
    if labels_file is not None and labels_file.exists() and not annotation_file.exists():
        try:
            same = labels_file.read_text() == labels_text(data.class_names)
        except (OSError, UnicodeDecodeError):
            same = False
        if not same:
            raise ValueError(
                f"{labels_file} already exists and is not an earlier extraction's class names (it lists other "
                "classes): pick another --out, or move that file away."
            )


def _indices_read_as_other_classes(class_names: list[str]) -> bool:
    """True when some class index, written as a label, would be read back as another class: a label that is a class
    name is that class (`data._class_index`), so with classes named by numbers in another order (`0`, `1`, `10`,
    ...) the index 2 reads back as the class named `2`. Such data is listed by class names, which read back as
    written."""
    lookup = _name_lookup(class_names)
    return any(_class_index(str(index), class_names, lookup, "") != index for index in range(len(class_names)))


def _lost_classes(data: VideoClassificationData, labels: list[int], decoded: list[bool]) -> list[str]:
    """The classes that have videos but none decoded: training from the frame folders sees no example of them."""
    kept = {label for label, ok in zip(labels, decoded) if ok}
    return [data.class_names[label] for label in sorted(set(labels) - kept)]


def extract_frame_folders(
    data: VideoClassificationData,
    data_root: Path,
    out: Path,
    annotation_name: str,
    labels_as_indices: bool,
    short_side: int = DEFAULT_SHORT_SIDE,
    quality: int = DEFAULT_JPEG_QUALITY,
    max_fps: float | None = None,
    workers: int = 1,
) -> ExtractionResult:
    """
    Decodes every video of `data` into a frame folder under `out` and writes `out/<annotation_name>`: `path,label`
    rows with the folders relative to `out` (the data root to train with), labels as class indices when
    `labels_as_indices` (the data's labels file then names them), else as class names, all of `data`'s classes then
    listed in index order in `out/<annotation_name stem>.labels.txt` (to train with as `--labels_file`: a class whose
    videos all fail to decode keeps its place). Classes named by numbers whose indices would read back as other
    classes (names `0`, `1`, `10`, ... listed as text sorts them: a label that is a class name is that class) are
    written as class names even when `labels_as_indices`, so reading the file back gives every video its class.
    `short_side`, `quality` and `max_fps` are `write_frame_folder`'s.

    A video that cannot be decoded, or does not exist, is left out of the annotation file, listed with its reason in
    `out/<annotation_name stem>.undecodable.txt`, and counted in the result; the others are extracted. The
    annotation file, its labels file and that list are written as one set.

    Raises:
        `ValueError`: `out/<annotation_name>` (or the labels file) exists and is not an earlier extraction's, the
        annotation file being read for one; nothing is written. Or no video could be extracted (the missing ones
        counted apart from the undecodable ones); no list is written.
        `FrameFolderOutputError`: a video's folder holds another video's frames or frames made with other settings,
        or cannot be written; nothing more is extracted and no annotation file is written.
    """
    videos = [str(video) for video in data.dataset["video"]]  # local paths (folders and annotation files)
    labels = list(data.dataset["label"])
    folders = frame_folder_paths(videos, data_root, out)
    annotation_file = out / annotation_name
    labels_file = None if labels_as_indices else annotation_file.with_suffix(".labels.txt")
    _check_outputs_replaceable(data, out, annotation_file, labels_file)
    settings = {"short_side": short_side, "quality": quality, "max_fps": max_fps}
    jobs = [(video, str(folder), settings, workers <= 1) for video, folder in folders.items()]
    errors = _run_jobs(jobs, workers)
    write_indices = labels_as_indices and not _indices_read_as_other_classes(data.class_names)
    rows = [
        (folders[video].relative_to(out).as_posix(), str(label) if write_indices else data.class_names[label])
        for video, label in zip(videos, labels)
        if errors[video] is None
    ]
    undecodable = [f"{video}: {errors[video]}" for video in folders if errors[video] is not None]  # data order
    if not rows:
        raise ValueError(_nothing_read_message(folders, errors, data_root))
    undecodable_file = annotation_file.with_suffix(".undecodable.txt") if undecodable else None
    _write_lists(out, annotation_file, rows, labels_file, data.class_names, undecodable)
    lost_classes = _lost_classes(data, labels, [errors[video] is None for video in videos])
    return ExtractionResult(
        annotation_file, len(rows), len(folders), undecodable, undecodable_file, labels_file, lost_classes
    )


__all__ = ["ExtractionResult", "extract_frame_folders", "frame_folder_paths"]
