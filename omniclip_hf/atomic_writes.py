# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Folders written under a temporary name and renamed into place when complete, with ordinary permissions.

A kill or a full disk never leaves half a model, checkpoint or data folder where a later step would read it
(`write_folder_atomically`). `tempfile.mkstemp`/`mkdtemp` create 0600 files and 0700 folders, and safetensors >= 0.8 writes each weights file 0600
(a temporary file renamed; safetensors issue #782); a rename keeps those modes, so a model, a frame list or a data
split would be unreadable to the rest of a group on a shared machine. These give what `open()` and `mkdir()` would
have given under the process's umask. No library exposes the umask without setting it, hence this module.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path
from typing import Callable


def current_umask() -> int:
    """The process's umask. Linux shows it in /proc/self/status (proc(5)); elsewhere it can only be read by setting
    it, so it is set and put back at once (a file another thread creates in between would get the wrong mode)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ordinary_file_mode() -> int:
    """The mode `open(path, "w")` gives a new file: 0o666 less the umask (0o644 under the usual 022)."""
    return 0o666 & ~current_umask()


def give_ordinary_modes(folder: Path) -> None:
    """`folder` and everything in it get the modes `mkdir` and `open` would have given them (0o755 and 0o644 under
    umask 022), before the folder is renamed into place. A folder's special bits (a set-group-ID inherited from its
    parent, which keeps a shared folder's group) are kept; links are left alone."""
    umask = current_umask()
    for path in (folder, *folder.rglob("*")):
        if path.is_symlink():
            continue
        if path.is_dir():
            special = stat.S_IMODE(path.stat().st_mode) & ~0o777
            os.chmod(path, special | (0o777 & ~umask))
        else:
            os.chmod(path, 0o666 & ~umask)


def no_space_message(target: Path, error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return f"{target}: no space left on device; nothing was written (the partial folder was removed). Free space and rerun."
    return f"{target}: writing failed ({error}); nothing was written (the partial folder was removed)."


def write_folder_atomically(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Calls `write(temporary_folder)`, flushes it, and renames it to `target` (replacing an older one) when complete.

    A failure inside `write` leaves neither `target` changed nor a temporary folder behind, and raises one OSError line.
    """
    target = Path(target)
    partial = target.parent / f".partial-{target.name}"
    write_staged(target, partial, write, durable=True)
    replace_folder(partial, target)
    return target


def write_staged(target: Path, staging: Path, write: Callable[[Path], None], durable: bool) -> None:
    """Calls `write(staging)` (which makes `staging`, a folder that does not exist yet) and gives its files ordinary
    modes (and, `durable`, flushes them to disk). A failure inside `write` leaves no staging folder behind, and an OSError is raised as one line
    naming `target`; any other failure, an interrupt included, leaves nothing behind either."""
    staging.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write(staging)
        give_ordinary_modes(staging)  # safetensors writes its files 0600, which a rename would keep
        if durable:
            fsync_tree(staging)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise OSError(no_space_message(target, error)) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_files_into_folder(target: str | Path, write: Callable[[Path], None],
                            stale: Callable[[set[str]], list[str]] = lambda written: [],
                            last: tuple[str, ...] = ("config.json",)) -> list[str]:
    """Calls `write(staging)` on an empty folder beside `target`; when it returns, moves the files it wrote into
    `target` (made if missing; the folder's other files are kept), those named in `last` after the rest, then removes
    the files of `target` that `stale(names written)` lists. Returns the names written.

    For a folder that holds more than what is written (a model folder beside its tokenizer, metrics, card), where
    `write_folder_atomically` would replace it all. A failure inside `write` (a full disk, an interrupt) leaves
    `target` as it was: a model written into it straight had its new config.json beside its old weights, and loaded
    as a mix of the two models with nothing said. Renames within one file system need no space, so the moves do not
    fail as the writing did.
    """
    target = Path(target)
    if target.is_file():
        raise NotADirectoryError(f"{target} is a file: a model is saved into a folder; pass another path.")
    # Beside the folder itself (a link to a folder on another disk included): the moves are renames on one disk.
    real = target.resolve()
    staging = real.parent / f".partial-{real.name}-{os.getpid()}"
    def write_into_new_folder(folder: Path) -> None:
        folder.mkdir()
        write(folder)

    write_staged(target, staging, write_into_new_folder, durable=False)  # a caller's own staging (training's) flushes
    written = sorted(path.relative_to(staging) for path in staging.rglob("*") if not path.is_dir())
    target.mkdir(exist_ok=True)
    for relative in sorted(written, key=lambda path: path.name in last):
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / relative, target / relative)
    shutil.rmtree(staging, ignore_errors=True)
    names = {str(relative) for relative in written}
    for name in stale(names):
        if name not in names and (target / name).is_file():
            os.remove(target / name)
    return sorted(names)


def replace_folder(new: Path, target: Path) -> None:
    """Swaps `new` in for `target`: the old folder is moved aside first, so a kill leaves one complete folder."""
    old = target.parent / f".old-{target.name}"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
