# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Video sources: naming them, opening containers with PyAV, and in-memory videos (arrays, tensors, PIL frames)."""

from __future__ import annotations

import io
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image, ImageMode


VIDEO_FILE_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")

class DownloadedVideo(bytes):
    """The bytes downloaded from a URL, still named by it: errors about the content name the URL, not `<N bytes>`."""

    url: str

    def __new__(cls, content: bytes, url: str) -> "DownloadedVideo":
        downloaded = super().__new__(cls, content)
        downloaded.url = url
        return downloaded

    def __reduce__(self) -> tuple:
        # Copies and pickles (DataLoader workers) keep the URL; bytes' own reduction would call __new__ without it.
        return type(self), (bytes(self), self.url)


def describe_source(source: Any) -> str:
    """A short name for a video source, used in error messages and metadata."""
    if isinstance(source, DownloadedVideo):
        return source.url
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    name = getattr(source, "name", None)
    return f"<file object {name}>" if isinstance(name, str) else "<file object>"


def _ffmpeg_message(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


def _guess_why_unreadable(source: Any) -> str:
    """A hint for a file FFmpeg cannot open: text renamed to a video extension is a common mistake."""
    if not isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        return ""
    head = read_head(source, 512)
    text = ""
    for cut in range(4):  # the 512-byte window may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    if text.lstrip().lower().startswith(("<!doctype html", "<html")):
        # What a URL of a web page (not of the video file itself) or a server's error page sends.
        return "It holds an HTML page, not video: pass the address of the video file itself. "
    if text and all(character.isprintable() or character.isspace() for character in text):
        return f"It holds plain text ({text[:40].strip()!r}...), not video. "
    return ""


def _mode_text(source: Any) -> str:
    # A file object's `mode` is a string like "rb"; some (gzip) use ints and BytesIO has none: binary then.
    mode = getattr(source, "mode", "b")
    return mode if isinstance(mode, str) else "b"


def read_head(source: Any, num_bytes: int) -> bytes:
    """The first bytes of a path, bytes or seekable binary file object (left where it was); b"" if unreadable."""
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as handle:
                return handle.read(num_bytes)
        if isinstance(source, (bytes, bytearray, memoryview)):
            return bytes(source[:num_bytes])
        if hasattr(source, "seek") and hasattr(source, "tell"):
            position = source.tell()
            head = source.read(num_bytes)
            source.seek(position)
            return head if isinstance(head, bytes) else b""
    except OSError:
        pass
    return b""


def _is_seekable(source: Any) -> bool:
    seekable = getattr(source, "seekable", None)
    if callable(seekable):
        try:
            return bool(seekable())
        except (OSError, ValueError):  # a closed file says so when asked; it is refused when read
            return True
    return hasattr(source, "seek") and hasattr(source, "tell")


class _BufferedVideo(io.BytesIO):
    """The content of a file object that cannot seek, read into memory, still named as that object was."""

    def __init__(self, content: bytes, name: str | None):
        super().__init__(content)
        if name is not None:
            self.name = name


def buffer_unseekable(source: Any) -> Any:
    """
    A binary file object that cannot seek (an HTTP response, a pipe) read once into memory: FFmpeg and torchcodec
    seek while probing and again to rewind, and PyAV cannot seek such a stream back. Any other source as it is.
    """
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) or not hasattr(source, "read"):
        return source
    if isinstance(source, io.TextIOBase) or "b" not in _mode_text(source) or _is_seekable(source):
        return source  # a text-mode object is refused with its own message when opened
    name = getattr(source, "name", None)
    name = name if isinstance(name, str) else getattr(source, "url", None)  # urllib's responses know their URL
    content = source.read()
    if not isinstance(content, bytes):
        raise ValueError(
            f"Video {describe_source(source)}: reading it gave {type(content).__name__}, not bytes; open it in "
            "binary mode."
        )
    return _BufferedVideo(content, name if isinstance(name, str) else None)


def is_avi(source: Any) -> bool:
    """Whether the source is an AVI file (RIFF header with form type AVI)."""
    head = read_head(source, 12)
    return head[:4] == b"RIFF" and head[8:12] == b"AVI "


URL_DOWNLOAD_TIMEOUT_S = 30


def _has_scheme(value: Any, schemes: tuple[str, ...]) -> bool:
    # URL schemes are case-insensitive (RFC 3986): HTTP://... is a URL as much as http://...
    return isinstance(value, str) and value[:10].lower().startswith(schemes)


def is_url(value: Any) -> bool:
    """An http(s) URL, downloaded before decoding."""
    return _has_scheme(value, ("http://", "https://"))


def is_file_url(value: Any) -> bool:
    """A file:// URL, read as the local path it names."""
    return _has_scheme(value, ("file://",))


def file_url_to_path(url: str) -> str:
    """
    The local path a `file://` URL names (percent-escapes decoded). A URL naming another host is refused in one line:
    only local files can be read.
    """
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"Video {url} names a file on host {parts.netloc!r}; only local files can be read: pass the file's path."
        )
    return url2pathname(parts.path)


def download_video(url: str) -> bytes:
    """
    The content at an http(s) URL, for decoding from memory.

    Raises:
        `ValueError`: the server does not answer, answers with an error, or sends nothing.
    """
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=URL_DOWNLOAD_TIMEOUT_S) as response:
            content = response.read()
    except urllib.error.HTTPError as error:
        raise ValueError(f"Could not download video {url}: the server answered {error.code} {error.reason}.") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ValueError(
            f"Could not download video {url}: {reason}. Check the address, or download the file and pass its path."
        ) from None
    if not content:
        raise ValueError(f"Could not download video {url}: the server sent 0 bytes.")
    return DownloadedVideo(content, url)


def resolve_video_source(video: Any) -> Any:
    """
    Turns the sources transformers and datasets hand around into what the decoders read: a datasets `Video` cell
    (`{"bytes": ..., "path": ...}`, bytes preferred) into its bytes or path, an http(s) URL into the downloaded
    bytes (still named by the URL in errors), a `file://` URL into its path. Everything else is returned as it is
    (torchcodec `VideoDecoder`s, which datasets' `Video` feature yields when decoding, go to the torchcodec backend).

    Raises:
        `ValueError`: a cell with neither bytes nor path, a URL that cannot be downloaded, a `file://` URL of another
        host.
    """
    if isinstance(video, dict):
        if video.get("bytes") is not None:
            return video["bytes"]
        if video.get("path") is not None:
            return resolve_video_source(video["path"])
        raise ValueError(
            f"Video cell {sorted(video)!r} has neither 'bytes' nor 'path'; a datasets Video cell needs one of them "
            "(cast the column with datasets.Video(decode=False) to get such cells)."
        )
    if is_url(video):
        return download_video(video)
    if is_file_url(video):
        return file_url_to_path(video)
    return video


@contextmanager
def open_video_container(source: Any) -> Iterator[Any]:
    """
    Opens a path, bytes or binary file object with PyAV and yields the container, closed on every path.

    Raises:
        `FileNotFoundError`: the path does not exist.
        `ValueError`: the source is empty or FFmpeg cannot read it as a media file.
    """
    import av

    label = describe_source(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"Video file {label} does not exist. Check the path.")
        if not path.is_file():
            if path.is_dir():
                # A frame folder (`video_frame_folders`) is read by its own reader; this one lacks its frames.json.
                raise ValueError(
                    f"Video path {label} is a folder but not a complete frame folder (no frames.json): pass a video "
                    "file, or a folder written by examples/extract_frames.py (an interrupted extraction: run it again)."
                )
            raise ValueError(f"Video path {label} is not a file.")
        if path.stat().st_size == 0:
            raise ValueError(f"Video file {label} is empty (0 bytes); re-download or re-encode it.")
        target: Any = str(path)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ValueError("Video bytes are empty (0 bytes); pass the content of a video file.")
        target = io.BytesIO(bytes(source))
    elif isinstance(source, io.TextIOBase) or "b" not in _mode_text(source):
        raise ValueError(
            f"Video {label} is a file opened in text mode; open it in binary mode: open(path, 'rb')."
        )
    elif hasattr(source, "read"):
        target = source
    else:
        raise ValueError(f"Cannot decode a video from a {type(source).__name__}.")
    try:
        container = av.open(target, mode="r")
    except av.error.FFmpegError as error:
        raise ValueError(
            f"Could not open video {label}: FFmpeg says '{_ffmpeg_message(error)}'. {_guess_why_unreadable(source)}"
            f"The file is truncated, corrupt or not a video; supported containers include "
            f"{', '.join(VIDEO_FILE_EXTENSIONS)}."
        ) from None
    try:
        yield container
    finally:
        container.close()


def _is_frame(value: Any) -> bool:
    # A 2-D array is a grayscale frame (as a PIL "L" image): never a video, which has 4 dims.
    return isinstance(value, Image.Image) or (isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim in (2, 3))


def _is_file_source(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(value, "read")


def split_video_batch(videos: Any) -> list[Any]:
    """
    Turns the `videos` argument into a list of single videos.

    A path, bytes, file object, 4D array/tensor or list of frames (PIL images or 3D arrays) is one video; a 5D
    array/tensor or a list of any of these is a batch.
    """
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:
        return list(videos)
    if isinstance(videos, (list, tuple)):
        if len(videos) == 0:
            raise ValueError("`videos` is an empty list; pass at least one video.")
        if all(_is_frame(item) for item in videos):
            return [list(videos)]
        return list(videos)
    return [videos]


def _is_high_depth_mode(mode: str) -> bool:
    # Modes whose pixels are one number wider than a byte: I;16 (16-bit), I (int32), F (float32).
    return ImageMode.getmode(mode).typestr[-2:] not in ("u1", "b1")


def pil_frame_to_tensor(frame: Image.Image) -> torch.Tensor:
    """
    A PIL frame as a `(C, H, W)` tensor: 8-bit modes (RGB, L, P, RGBA, CMYK, ...) converted to RGB by PIL; 16-bit,
    int32 and float modes (I;16, I, F) as their numbers, `(1, H, W)` in their own dtype, so the pixel scale rule of
    arrays applies to them (`pixel_scale_of`): PIL's own conversion to RGB would saturate 16-bit values at 255 and
    turn floats in [0, 1] black.
    """
    if not _is_high_depth_mode(frame.mode):
        return torch.from_numpy(np.array(frame.convert("RGB"))).permute(2, 0, 1)
    values = np.array(frame)
    values = values.astype(values.dtype.newbyteorder("="))  # I;16B is big-endian; torch takes native order only
    return torch.from_numpy(values)[None]


def _stack_frames(frames: list[Any], label: str) -> torch.Tensor:
    """Frames of one video stacked; frames differing in pixel type (one scale per video) or in size are refused."""
    # Stacking would promote mixed types silently (uint8 with float keeps 0-255 values beside [0, 1] ones) or fail
    # inside torch (uint8 with uint16). Checked first: a 16-bit PIL frame beside an RGB one differs in both.
    dtypes = sorted({str(frame.dtype).replace("torch.", "") for frame in frames})
    if len(dtypes) != 1:
        raise ValueError(
            f"Video {label}: its frames mix pixel types ({', '.join(dtypes)}); give every frame the same type "
            "(the same PIL mode, or arrays of one dtype)."
        )
    shapes = {tuple(frame.shape) for frame in frames}
    if len(shapes) != 1:
        raise ValueError(f"Video {label}: its frames differ in size ({sorted(shapes)}); all frames must match.")
    return torch.stack(frames)


def video_to_tensor(video: Any, label: str) -> torch.Tensor:
    """
    Converts an in-memory video to a `(T, 3, H, W)` tensor.

    Accepts a numpy array `(T, H, W, C)`, a torch tensor `(T, C, H, W)` or a list of frames (PIL images, `(H, W, C)`
    arrays or `(C, H, W)` tensors, `(H, W)` grayscale arrays or tensors), with C = 1 (grayscale, repeated) or 3.
    """
    if isinstance(video, (list, tuple)):
        if not video:
            raise ValueError(f"Video {label} is an empty list of frames.")
        frames = []
        for frame in video:
            if isinstance(frame, Image.Image):
                frame = pil_frame_to_tensor(frame)
            elif isinstance(frame, np.ndarray):
                frame = torch.from_numpy(np.ascontiguousarray(frame))
                frame = frame.permute(2, 0, 1) if frame.ndim == 3 else frame
            if isinstance(frame, torch.Tensor) and frame.ndim == 2:  # grayscale (H, W): one channel, repeated later
                frame = frame[None]
            frames.append(frame)
        return video_to_tensor(_stack_frames(frames, label), label)
    if isinstance(video, np.ndarray):
        if video.ndim != 4:
            raise ValueError(
                f"Video {label}: a numpy video must have 4 dims (T, H, W, C), got shape {tuple(video.shape)}."
            )
        if video.shape[-1] not in (1, 3):
            raise ValueError(
                f"Video {label}: a numpy video is (T, H, W, C) with C = 3 (RGB) or 1, got {video.shape[-1]} "
                f"channels in shape {tuple(video.shape)}."
            )
        video = torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2)
    elif isinstance(video, torch.Tensor):
        if video.ndim != 4:
            raise ValueError(
                f"Video {label}: a torch video must have 4 dims (T, C, H, W), got shape {tuple(video.shape)}."
            )
        if video.shape[1] not in (1, 3):
            raise ValueError(
                f"Video {label}: a torch video is (T, C, H, W) with C = 3 (RGB) or 1, got {video.shape[1]} "
                f"channels in shape {tuple(video.shape)}."
            )
    else:
        raise ValueError(
            f"Video {label}: unsupported input type {type(video).__name__}. Pass a path, bytes, a binary file "
            "object, a numpy array (T, H, W, C), a torch tensor (T, C, H, W) or a list of PIL images."
        )
    if video.shape[0] < 1:
        raise ValueError(f"Video {label} has no frames.")
    if video.shape[-2] < 1 or video.shape[-1] < 1:
        raise ValueError(
            f"Video {label} has empty frames ({video.shape[-2]}x{video.shape[-1]} pixels); every frame needs at "
            "least one pixel."
        )
    if video.shape[1] == 1:
        video = video.expand(-1, 3, -1, -1)
    return video


# Float frames are taken as [0, 1] up to this maximum, values above 1 clipped: resizing [0, 1] frames with a bicubic
# or Lanczos filter rings past the range (docs/video_processing.md measures 1.087 and -0.087 at an edge), and the other reading,
# 0-255 pixels, would make a video whose brightest pixel is 2/255 black anyway. Below 0 nothing is clipped: negative
# values are also what frames normalised with CLIP's mean and std hold (a bright video's lowest may be above -0.25),
# and reading those as [0, 1] would be wrong with nothing said; they are refused, the message saying to clip.
UNIT_RANGE_MAX = 2.0


def pixel_scale_of(video: torch.Tensor, label: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """
    Judges the pixel scale of in-memory frames by dtype and range, as transformers' processors do, and returns the
    conversion to uint8 (0-255) or float32 in [0, 1] for any frames of this video: floats in [0, 1] are taken as
    already rescaled (never divided by 255 again), and so are floats that overshoot it a little (all values in
    [0, `UNIT_RANGE_MAX`], as resizing [0, 1] frames gives), clipped to [0, 1]; other non-negative
    floats up to 255 are 0-255 pixel values; uint16 is 16-bit video, bool black and white, other integers must hold
    0-255. The range is judged on the whole video (so a dark stretch of a 0-255 video is not taken as [0, 1]) in one
    pass without a converted copy; only the frames given to the returned function are converted.

    Raises:
        `ValueError`: NaN or inf, or values no scale explains (negative values: frames already normalised;
        integers above 255 that are not uint16).
    """
    if video.dtype == torch.uint8:
        return lambda frames: frames
    if video.dtype == torch.bool:
        return lambda frames: frames.to(torch.uint8) * 255
    if video.dtype == torch.uint16:
        return lambda frames: frames.to(torch.float32) / 65535.0
    low, high = torch.aminmax(video)  # NaN and inf show in the extremes: one pass, no mask
    if not video.is_floating_point():
        low, high = int(low), int(high)
        if low < 0 or high > 255:
            raise ValueError(
                f"Video {label}: {str(video.dtype).replace('torch.', '')} frames hold values {low}..{high}; integer "
                "frames must hold 0..255 (uint8), or be uint16 for 16-bit video."
            )
        return lambda frames: frames.to(torch.uint8)
    # Judged as float32, the type frames are converted to (rounding to it keeps the order, so these are the
    # extremes of the converted video).
    low, high = float(low.to(torch.float32)), float(high.to(torch.float32))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"Video {label} holds NaN or infinite values; pass finite pixel values.")
    if 0 <= low and high <= 1.0:
        return lambda frames: frames.to(torch.float32)
    if 0 <= low and high <= UNIT_RANGE_MAX:
        # [0, 1] frames that ring past the range (a resize): clipped, out of place (the caller's frames stay).
        return lambda frames: frames.to(torch.float32).clamp(0.0, 1.0)
    if low < 0 or high > 255:
        raise ValueError(
            f"Video {label}: float frames hold values {low:.3g}..{high:.3g}; pass pixels in [0, 1] or [0, 255] "
            "(negative values suggest frames already normalised: pass them before normalisation; or [0, 1] frames "
            "that a resize rang below 0: clip them to [0, 1])."
        )
    return lambda frames: frames.to(torch.float32) / 255.0


def to_pixel_scale(video: torch.Tensor, label: str) -> torch.Tensor:
    """A whole in-memory video brought to uint8 (0-255) or float32 in [0, 1]; see [`pixel_scale_of`]."""
    return pixel_scale_of(video, label)(video)
