# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""
Decoding a training set once into frame folders (`omniclip_hf.video_frame_folders`), with an annotation file that
trains from them with the same flags.

Decoding the video is most of a training clip's CPU cost; a frame folder is read several times faster
(`benchmarks/bench_input_pipeline.py --frames`), so fewer cores keep a GPU fed. The extraction is resumable: every
folder is written all or nothing, and a second run skips the folders that are complete.
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..video_frame_folders import (
    DEFAULT_JPEG_QUALITY,
    DEFAULT_SHORT_SIDE,
    FrameFolderOutputError,
    write_frame_folder,
)
from .data import VideoClassificationData


@dataclass
class ExtractionResult:
    """What an extraction wrote: the annotation file of frame folders, and the videos that could not be decoded."""

    annotation_file: Path
    num_rows: int
    num_videos: int
    undecodable: list[str] = field(default_factory=list)  # "path: why", one per video left out
    undecodable_file: Path | None = None


def frame_folder_paths(videos: list[str], data_root: Path, out: Path) -> dict[str, Path]:
    """
    Where each video's frames go: its path under the data's root, without the extension, inside `out`
    (`<root>/brush_hair/clip.avi` -> `<out>/brush_hair/clip`); a video outside the root goes by its name alone.

    Raises:
        `ValueError`: two videos would share a folder (`clip.mp4` and `clip.avi` side by side).
    """
    folders: dict[str, Path] = {}
    owner: dict[Path, str] = {}
    root = data_root.resolve()
    for video in dict.fromkeys(videos):
        path = Path(video)
        try:
            relative = path.resolve().relative_to(root)
        except ValueError:
            relative = Path(path.name)
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


def _write_csv_atomically(path: Path, rows: list[tuple[str, str]]) -> None:
    """`path,label` rows, written whole or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".partial",
                                     delete=False, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    os.replace(handle.name, path)


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
    `labels_as_indices` (the data's labels file then names them), else as class names. `short_side`, `quality` and
    `max_fps` are `write_frame_folder`'s.

    A video that cannot be decoded is left out of the annotation file, listed with its reason in
    `out/<annotation_name stem>.undecodable.txt`, and counted in the result; the others are extracted.

    Raises:
        `FrameFolderOutputError`: a video's folder holds another video's frames or frames made with other settings,
        or cannot be written; nothing more is extracted and no annotation file is written.
    """
    videos = [str(video) for video in data.dataset["video"]]  # local paths (folders and annotation files)
    labels = list(data.dataset["label"])
    folders = frame_folder_paths(videos, data_root, out)
    settings = {"short_side": short_side, "quality": quality, "max_fps": max_fps}
    jobs = [(video, str(folder), settings, workers <= 1) for video, folder in folders.items()]
    errors = _run_jobs(jobs, workers)
    rows = [
        (folders[video].relative_to(out).as_posix(), str(label) if labels_as_indices else data.class_names[label])
        for video, label in zip(videos, labels)
        if errors[video] is None
    ]
    annotation_file = out / annotation_name
    undecodable = [f"{video}: {errors[video]}" for video in folders if errors[video] is not None]  # data order
    undecodable_file = annotation_file.with_suffix(".undecodable.txt")
    if undecodable:
        undecodable_file.write_text("\n".join(undecodable) + "\n")
    else:
        undecodable_file.unlink(missing_ok=True)  # an earlier run's list no longer holds
        undecodable_file = None
    if not rows:
        raise ValueError(
            f"none of the {len(folders)} videos could be decoded (listed in {undecodable_file}); nothing written."
        )
    _write_csv_atomically(annotation_file, rows)
    return ExtractionResult(annotation_file, len(rows), len(folders), undecodable, undecodable_file)


__all__ = ["ExtractionResult", "extract_frame_folders", "frame_folder_paths"]
