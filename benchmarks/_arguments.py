"""Checks of the benchmark scripts' arguments, right after parsing: a bad value ends the script with one line of
`parser.error` (usage, `error: ...`, exit status 2) that names the flag, instead of a traceback from deep inside
torch or PyAV, or a table measured from nothing. Not a benchmark."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from omniclip_hf.cli_checks import above, at_least  # noqa: F401 (the benchmarks' checks)


def torch_device(parser: argparse.ArgumentParser, value: str, flag: str = "--device"):
    """`value` as a `torch.device` the benchmarks run on: cpu, or cuda where a GPU is there (torch's own error for a
    missing GPU comes only once a model is built, as a traceback)."""
    from omniclip_hf.training.loop import check_device_name

    try:
        parsed = check_device_name(value, flag)
    except ValueError as error:
        parser.error(str(error))
    if parsed.type not in ("cpu", "cuda"):
        parser.error(f"{flag} {value}: the benchmarks run on cpu or cuda")
    return parsed


def video_files(parser: argparse.ArgumentParser, folder: Path, is_video: Callable[[Path], bool],
                flag: str = "--videos") -> list[Path]:
    """The sorted files of `folder` that `is_video` picks, each checked to open and decode a first frame with PyAV:
    a missing or empty folder would otherwise give a traceback or an empty table, and a broken file a traceback in
    the middle of a measurement."""
    import av

    if not folder.is_dir():
        parser.error(f"{flag} {folder}: {'not a folder' if folder.exists() else 'no such folder'}; "
                     "pass a folder of video files")
    paths = sorted(path for path in folder.iterdir() if path.is_file() and is_video(path))
    if not paths:
        parser.error(f"{flag} {folder}: holds no video files; pass a folder of video files")
    for path in paths:
        try:
            with av.open(str(path)) as container:
                next(container.decode(video=0))
        except Exception as error:  # whatever PyAV raises (no video stream, no frame, not a container): unreadable
            parser.error(f"{flag} {folder}: {path.name} is not a video PyAV can decode ({type(error).__name__}); "
                         "remove it or pass another folder")
    return paths
