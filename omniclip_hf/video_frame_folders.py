# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""
Frame folders: a video decoded once into JPEG frames, read back like a video file.

Decoding is most of the cost of a training clip on the CPU (`docs/training.md`, "Keeping the GPU fed"): a frame
folder is decoded once (`examples/extract_frames.py`), and every epoch afterwards reads only the JPEGs of the sampled
frames. A folder holds `000000.jpg`, `000001.jpg`, ... (frame `i` is the `i`-th frame of a full sequential decode,
or with `max_fps` the `i * step`-th, upright as a player shows it, the short side resized to at most `short_side`)
and `frames.json`, written last, which says how many frames there are, their frame rate and the settings. A folder
without `frames.json` is not a frame folder: an extraction that was stopped half-way is never read.

The video processor reads a frame folder wherever it reads a video file (`read_frame_folder` has the decoders'
contract, and `select_video_reader` picks it), so training and evaluation take one in place of the file. Not the
`omniclip` command, which classifies video files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .video_decoding import (
    _RGBConverter,
    _ask_sampler,
    _checked_indices,
    _configure_threads,
    _first_video_stream,
    check_against_header,
    index_video_stream,
    stream_fps,
)
from .video_sources import _ffmpeg_message, buffer_unseekable, describe_source, open_video_container


MANIFEST_NAME = "frames.json"
FRAME_FOLDER_FORMAT = "omniclip-hf frame folder"
FRAME_FOLDER_VERSION = 1
# The training augmentation's first step resizes the short side to 256 (`augment_resize_shortest_edge`): frames
# stored at that size train as the video would, and decode several times faster than full-size ones.
DEFAULT_SHORT_SIDE = 256
DEFAULT_JPEG_QUALITY = 90


class FrameFolderOutputError(ValueError):
    """The output side is at fault, not the video: the folder holds another video's frames, frames made with other
    settings or something unrelated, or it cannot be written (a full or read-only disk, no permission). An extraction
    run stops on it rather than skip the video."""


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise FrameFolderOutputError(
            f"cannot write {path}: {error.strerror or error}; check the output folder's disk space and permissions."
        ) from None


def frame_file_name(index: int) -> str:
    return f"{index:06d}.jpg"


def is_frame_folder(source: Any) -> bool:
    """True for a path to a folder that holds a `frames.json` (a complete frame folder)."""
    return isinstance(source, (str, os.PathLike)) and (Path(source) / MANIFEST_NAME).is_file()


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's `frames.json`, checked; `ValueError` naming the folder if it is not one this package wrote."""
    path = Path(folder) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"Frame folder {folder}: {MANIFEST_NAME} is unreadable ({error}); extract the video again."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FRAME_FOLDER_FORMAT:
        raise ValueError(f"Frame folder {folder}: {MANIFEST_NAME} was not written by examples/extract_frames.py.")
    if manifest.get("version") != FRAME_FOLDER_VERSION:
        raise ValueError(
            f"Frame folder {folder} has format version {manifest.get('version')!r}; this omniclip-hf reads version "
            f"{FRAME_FOLDER_VERSION}. Extract the video again, or use the omniclip-hf that wrote it."
        )
    num_frames = manifest.get("num_frames")
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"Frame folder {folder}: {MANIFEST_NAME} gives num_frames={num_frames!r}; extract again.")
    fps = manifest.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0):
        raise ValueError(f"Frame folder {folder}: {MANIFEST_NAME} gives fps={fps!r}; extract again.")
    return manifest


def _decode_frame_file(folder: Path, index: int, num_frames: int) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_jpeg

    path = folder / frame_file_name(index)
    try:
        data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Frame folder {folder}: frame file {path.name} is missing ({MANIFEST_NAME} lists {num_frames} frames); "
            "extract the video again."
        ) from None
    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB)
    except RuntimeError as error:  # libjpeg's message for a truncated or non-JPEG file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "not a JPEG"
        raise ValueError(
            f"Frame folder {folder}: frame file {path.name} is not a readable JPEG ({first_line}); extract the video "
            "again."
        ) from None


def read_frame_folder(
    source: str | os.PathLike, sample_indices_fn, threading: bool = True
) -> tuple[np.ndarray, list[float | None], list[int], dict[str, Any]]:
    """
    Reads the frames a sampling function asks for from a frame folder: only their JPEG files are opened.

    Same contract as `read_video_pyav` (`threading` is accepted and unused: one JPEG decodes in under a
    millisecond).

    Returns:
        `tuple`: the frames `(N, H, W, 3)` uint8 in the order of the indices, their timestamps in seconds (index over
        the source's frame rate; None where it had none), the indices, and a dict with `total_num_frames`, `fps`,
        `width`, `height`, `duration`, `rotation` (0: the frames were stored upright) and `mirrored`.
    """
    folder = Path(source)
    manifest = read_manifest(folder)
    num_frames, fps = manifest["num_frames"], manifest.get("fps")
    label = describe_source(source)
    indices = _checked_indices(_ask_sampler(sample_indices_fn, num_frames, fps), num_frames, label)
    decoded = {index: _decode_frame_file(folder, index, num_frames) for index in sorted(set(indices))}
    shapes = {tuple(frame.shape) for frame in decoded.values()}
    if len(shapes) != 1:
        raise ValueError(f"Frame folder {folder}: its frames differ in size {sorted(shapes)}; extract the video again.")
    # (N, 3, H, W) -> (N, H, W, 3) as a view: the processor turns it back to channels-first without a copy.
    rgb = torch.stack([decoded[index] for index in indices]).permute(0, 2, 3, 1).numpy()
    times = [index / fps if fps else None for index in indices]
    info = {
        "total_num_frames": num_frames,
        "fps": fps,
        "width": int(rgb.shape[2]),
        "height": int(rgb.shape[1]),
        "duration": num_frames / fps if fps else None,
        "rotation": 0,
        "mirrored": False,
    }
    return rgb, times, indices, info


def source_identity(source: Any) -> list[Any] | None:
    """
    What tells, on resuming an extraction, that a folder holds this video's frames: a video file's name and size,
    or for bytes (a URL's download included) their length and SHA-256. `None` for a source with nothing to identify
    it by (a file object, which is read once and may not seek back): `write_frame_folder` then never reuses a folder.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        content = memoryview(source).cast("B")  # bytes of any memoryview format, hashed without a copy
        return ["<bytes>", content.nbytes, hashlib.sha256(content).hexdigest()]
    if not isinstance(source, (str, os.PathLike)) or not Path(source).is_file():
        return None
    return [Path(source).name, Path(source).stat().st_size]


def _resized_to_short_side(frame: torch.Tensor, short_side: int) -> torch.Tensor:
    # As the training augmentation's first step (`make_views`) resizes with the default resample: never up.
    from torchvision.transforms.v2 import functional as tvF

    from .video_transforms import resize_short_side

    if min(frame.shape[-2:]) <= short_side:
        return frame
    return resize_short_side(frame, {"shortest_edge": short_side}, tvF.InterpolationMode.BICUBIC)


def frame_step(fps: float | None, max_fps: float | None) -> int:
    """Every how many frames one is kept so that at most `max_fps` remain a second (1: all; also without a rate)."""
    if not fps or not max_fps:
        return 1
    return max(1, math.ceil(fps / max_fps - 1e-9))  # 29.97 / 9.99 is 3, not 4


def _announced_frames(source: Any, label: str) -> int | None:
    """The frame count the header announces, by the readers' rule (`index_video_stream`: the video's own duration,
    the rate its frames keep, whether other streams fill a container-wide duration), from one demux pass; a file
    object is rewound after it. The header alone called valid files truncated (a variable-rate MKV, a WebM whose
    audio outlasts its video)."""
    import av

    try:
        with open_video_container(source) as container:
            return index_video_stream(container, _first_video_stream(container, label), label).num_announced
    except av.error.FFmpegError as error:
        raise ValueError(
            f"Video {label} is corrupt or truncated: reading it failed with '{_ffmpeg_message(error)}'."
        ) from None
    finally:
        if hasattr(source, "seek"):
            source.seek(0)


def _write_frames(
    source: Any, folder: Path, short_side: int, quality: int, max_fps: float | None, threading: bool
) -> dict[str, Any]:
    """Decodes `source` from start to end into `folder`, one frame at a time (memory holds one frame)."""
    import av
    from torchvision.io import encode_jpeg

    source = buffer_unseekable(source)
    label = describe_source(source)
    to_rgb = _RGBConverter(label)
    count, size = 0, None
    num_announced = _announced_frames(source, label)
    try:
        with open_video_container(source) as container:
            stream = _first_video_stream(container, label)
            fps = stream_fps(stream)
            step = frame_step(fps, max_fps)
            _configure_threads(stream, threading)
            for frame in container.decode(stream):
                if count % step == 0:
                    # A turned frame comes with negative strides, which torch does not take.
                    rgb = torch.from_numpy(np.ascontiguousarray(to_rgb(frame))).permute(2, 0, 1)
                    size = (int(rgb.shape[2]), int(rgb.shape[1]))
                    stored = _resized_to_short_side(rgb, short_side)
                    jpeg = encode_jpeg(stored, quality=quality).numpy().tobytes()
                    path = folder / frame_file_name(count // step)
                    with _writing(path):
                        path.write_bytes(jpeg)
                count += 1
    except av.error.FFmpegError as error:
        raise ValueError(
            f"Video {label} is corrupt or truncated: decoding failed with '{_ffmpeg_message(error)}'."
        ) from None
    if count == 0:
        raise ValueError(f"Video {label} has no decodable frames (corrupt or truncated file).")
    check_against_header(label, num_announced, count)
    height, width = stored.shape[-2:]
    return {
        "format": FRAME_FOLDER_FORMAT,
        "version": FRAME_FOLDER_VERSION,
        "num_frames": (count + step - 1) // step,
        "fps": fps / step if fps else None,
        "width": int(width),
        "height": int(height),
        "source": label,
        "source_identity": source_identity(source),
        "source_width": size[0],
        "source_height": size[1],
        "source_num_frames": count,
        "source_fps": fps,
        "frame_step": step,
        **extraction_settings(short_side, quality, max_fps),
    }


def extraction_settings(short_side: int, quality: int, max_fps: float | None) -> dict[str, Any]:
    return {"short_side": short_side, "jpeg_quality": quality, "max_fps": max_fps}


def write_frame_folder(
    source: Any,
    folder: str | os.PathLike,
    short_side: int = DEFAULT_SHORT_SIDE,
    quality: int = DEFAULT_JPEG_QUALITY,
    max_fps: float | None = None,
    threading: bool = True,
) -> dict[str, Any]:
    """
    Decodes a video once into the frame folder `folder` and returns its manifest.

    Frames are stored upright with their short side at most `short_side`, as JPEG at `quality`; every frame, or with
    `max_fps` every `ceil(fps / max_fps)`-th frame from the first (the folder's frame rate is then the source's over
    that step, and its frame `i` is the video's frame `i * step`).

    All or nothing: the frames go to a `.partial` sibling folder, `frames.json` is written last, and the folder is
    renamed into place, so `folder` either does not exist or is complete. A complete `folder` of the same video (same
    file name and size, or same bytes: `source_identity`) is left as it is (an interrupted extraction resumes where
    it stopped); a `.partial` left by a stopped run is removed first. A file object has no identity: a complete
    folder is never taken for its frames.

    Raises:
        `ValueError` or `FileNotFoundError`: the video cannot be decoded, or does not exist (naming it).
        `FrameFolderOutputError` (a `ValueError`): `folder` exists and is not a complete frame folder, holds another
        video's frames (or the video's cannot be told: a file object) or frames made with other settings, or cannot
        be written.
    """
    folder = Path(folder)
    _check_video_exists(source)
    if is_frame_folder(folder):
        manifest = read_manifest(folder)
        _check_same_source(folder, manifest, source)
        wanted = extraction_settings(short_side, quality, max_fps)
        stored = {key: manifest.get(key) for key in wanted}
        if stored != wanted:
            raise FrameFolderOutputError(
                f"{folder} was extracted with {_settings_text(stored)}, not {_settings_text(wanted)}: remove it, or "
                "extract with the settings it was made with."
            )
        return manifest
    if folder.exists():
        raise FrameFolderOutputError(
            f"{folder} exists and is not a complete frame folder (no {MANIFEST_NAME}); remove it first."
        )
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with _writing(partial):
        partial.mkdir(parents=True)
    try:
        manifest = _write_frames(source, partial, short_side, quality, max_fps, threading)
        with _writing(folder):
            (partial / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
            os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def _check_video_exists(source: Any) -> None:
    """A video path that does not exist is refused before its folder is looked at: a complete folder an earlier run
    made of it (the video deleted since) was refused as one "whether it holds the frames ... cannot be told", which
    stopped the run, where a first run lists the same missing video as undecodable; and no `.partial` (nor its class
    folder) is made for it."""
    if isinstance(source, (str, os.PathLike)) and not Path(source).exists():
        raise FileNotFoundError(f"Video file {describe_source(source)} does not exist. Check the path.")


def _check_same_source(folder: Path, manifest: dict[str, Any], source: Any) -> None:
    """Refuses to take a complete folder for `source`'s frames unless both have an identity and they are equal: two
    sources without one (two file objects, or bytes before they had one) compared equal as `None == None`."""
    identity, stored = source_identity(source), manifest.get("source_identity")
    if identity is None or stored is None:
        unknown = describe_source(source) if identity is None else f"the video it holds ({manifest.get('source')})"
        raise FrameFolderOutputError(
            f"{folder} is a complete frame folder, but whether it holds the frames of {describe_source(source)} "
            f"cannot be told ({unknown} has no name and size or content hash to compare): remove it, or extract "
            "into another folder."
        )
    if stored != identity:
        raise FrameFolderOutputError(
            f"{folder} already holds the frames of another video ({manifest.get('source')}), not of "
            f"{describe_source(source)}; remove it or extract into another folder."
        )


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in settings.items())


__all__ = ["FrameFolderOutputError", "is_frame_folder", "read_frame_folder", "read_manifest", "write_frame_folder"]
