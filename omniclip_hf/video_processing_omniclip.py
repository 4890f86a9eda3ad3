# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Video processor for OmniCLIP: decodes real files, samples frames, builds multi-view clips and augments them.

The decoder reads only what the sampled frame indices need. Frame `i` always means the `i`-th frame a full
sequential decode of the file returns; `tests/test_video_processing.py` checks that pixel for pixel.
"""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as tvF
from transformers.image_processing_utils import BatchFeature, get_size_dict
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling
from transformers.processing_utils import VideosKwargs
from transformers.utils import logging
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata


logger = logging.get_logger(__name__)

VIDEO_FILE_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")
SAMPLING_STRATEGIES = ("segment", "uniform", "dense")
DECODER_BACKENDS = ("pyav", "torchcodec")
# Containers whose packet timestamps are real presentation times, so frame i is the packet with the i-th smallest
# pts. AVI stores decode-order timestamps only: frames there are counted in decoder output order instead.
_PTS_INDEXED_FORMATS = ("mov", "mp4", "matroska", "webm")
_INTERPOLATION_BY_RESAMPLE = {
    int(PILImageResampling.NEAREST): tvF.InterpolationMode.NEAREST,
    int(PILImageResampling.BILINEAR): tvF.InterpolationMode.BILINEAR,
    int(PILImageResampling.BICUBIC): tvF.InterpolationMode.BICUBIC,
}


class OmniCLIPVideoProcessorKwargs(VideosKwargs, total=False):
    r"""
    sampling (`str`, *optional*, defaults to `"segment"`):
        How frames are picked: `"segment"` (TSN: `num_frames` equal segments, a random frame of each in training,
        the middle one in evaluation), `"uniform"` (evenly spaced, a random common phase in training) or `"dense"`
        (`num_frames` consecutive frames `frame_stride` apart, a random window in training, the central one in
        evaluation).
    frame_stride (`int`, *optional*, defaults to 4):
        Gap between two sampled frames for `sampling="dense"`.
    num_temporal_clips (`int`, *optional*, defaults to 1):
        Clips taken along time per video (multi-view evaluation).
    num_spatial_crops (`int`, *optional*, defaults to 1):
        1 (centre crop) or 3 (left/centre/right or top/centre/bottom crops along the long side).
    do_augment (`bool`, *optional*, defaults to `False`):
        Training mode: random sampling and the paper's augmentations (random resized crop, horizontal flip,
        colour jitter, grayscale), drawn once per clip and applied to every frame of it.
    video_backend (`str`, *optional*, defaults to `"pyav"`):
        Decoder for files and bytes: `"pyav"` or `"torchcodec"` (when installed).
    decoder_threading (`bool`, *optional*, defaults to `True`):
        Frame-threaded PyAV decoding for frames of VGA size and up. Turn off where every core is already busy,
        e.g. in DataLoader workers: FFmpeg's default (slice threads only) then applies.
    augment_resize_shortest_edge (`int`, *optional*, defaults to 256):
        Training first scales frames down so their short side is this long (X-CLIP's `scale_resize`, 256 for
        224 px crops), then crops; besides matching that recipe it keeps augmentation of 1080p clips cheap. 0 crops
        from the full-resolution frames.
    augment_crop_scale (`list[float]`, *optional*, defaults to `[0.08, 1.0]`):
        Area range of the random resized crop, as a fraction of the frame.
    augment_crop_ratio (`list[float]`, *optional*, defaults to `[3/4, 4/3]`):
        Aspect-ratio range of the random resized crop.
    flip_prob (`float`, *optional*, defaults to 0.5):
        Probability of a horizontal flip of the clip.
    color_jitter_prob (`float`, *optional*, defaults to 0.8):
        Probability of colour jitter of the clip.
    color_jitter (`list[float]`, *optional*, defaults to `[0.4, 0.4, 0.2, 0.1]`):
        Brightness, contrast, saturation and hue strengths of the colour jitter.
    grayscale_prob (`float`, *optional*, defaults to 0.2):
        Probability of turning the clip to grayscale (kept as 3 channels).
    """

    sampling: str | None
    frame_stride: int | None
    num_temporal_clips: int | None
    num_spatial_crops: int | None
    do_augment: bool | None
    video_backend: str | None
    decoder_threading: bool | None
    augment_resize_shortest_edge: int | None
    augment_crop_scale: list[float] | tuple[float, ...] | None
    augment_crop_ratio: list[float] | tuple[float, ...] | None
    flip_prob: float | None
    color_jitter_prob: float | None
    color_jitter: list[float] | tuple[float, ...] | None
    grayscale_prob: float | None


# Keyword arguments a call may carry that are not saved settings.
_CALL_ONLY_KWARGS = ("train", "generator", "backend", "return_tensors")


@dataclass
class OmniCLIPVideoMetadata(VideoMetadata):
    r"""
    [`~video_utils.VideoMetadata`] of one processed video, plus where it came from and the exact frame times.

    `frames_indices` lists, for each temporal clip, the indices of its frames (a list of `num_frames` ints per clip;
    spatial crops of a clip share them). `timestamps` gives the same nesting in seconds, read from the decoded frames'
    presentation timestamps where the file has them, else `index / fps`.
    """

    source: str | None = None
    frames_timestamps: list[list[float]] | None = field(default=None, repr=False)

    @property
    def timestamps(self) -> list[list[float]]:
        if self.frames_timestamps is not None:
            return self.frames_timestamps
        if self.fps is None or self.frames_indices is None:
            raise ValueError("Cannot infer video `timestamps` when `fps` or `frames_indices` is None.")
        return [[index / self.fps for index in clip] for clip in self.frames_indices]


# ---------------------------------------------------------------------------------------------------------------------
# Frame sampling
# ---------------------------------------------------------------------------------------------------------------------


def _random_uniform(count: int, generator: torch.Generator | None) -> np.ndarray:
    return torch.rand(count, generator=generator, dtype=torch.float64).numpy()


def _clip_to_range(positions: np.ndarray, num_total: int) -> list[int]:
    # floor() of positions in [0, num_total) keeps the order, so a short video repeats frames in order.
    return np.clip(np.floor(positions), 0, num_total - 1).astype(np.int64).tolist()


def sample_segment_indices(
    num_total: int,
    num_frames: int,
    clip_index: int = 0,
    num_clips: int = 1,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> list[int]:
    """
    TSN sampling: `num_frames` equal segments of the video, one frame from each.

    In training the frame is random within its segment; in evaluation clip `k` of `num_clips` takes the point at
    fraction `(k + 0.5) / num_clips` of every segment, so one clip takes the middle frames.
    """
    segment_length = num_total / num_frames
    starts = np.arange(num_frames) * segment_length
    offsets = _random_uniform(num_frames, generator) if train else np.full(num_frames, (clip_index + 0.5) / num_clips)
    return _clip_to_range(starts + offsets * segment_length, num_total)


def sample_uniform_indices(
    num_total: int,
    num_frames: int,
    clip_index: int = 0,
    num_clips: int = 1,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> list[int]:
    """
    Evenly spaced frames `num_total / num_frames` apart, starting at the first frame (as transformers'
    `default_sample_indices_fn`). Clip `k` of `num_clips` is shifted by `k / num_clips` of the spacing; in training
    the shift is one random phase shared by all frames.
    """
    spacing = num_total / num_frames
    phase = float(_random_uniform(1, generator)[0]) if train else clip_index / num_clips
    return _clip_to_range(np.arange(num_frames) * spacing + phase * spacing, num_total)


def sample_dense_indices(
    num_total: int,
    num_frames: int,
    frame_stride: int,
    clip_index: int = 0,
    num_clips: int = 1,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> list[int]:
    """
    `num_frames` frames `frame_stride` apart from one window. Evaluation windows are evenly spread over the video
    (one clip: the central window); training draws the window start at random. A video shorter than the window
    gives evenly spaced frames over the whole video instead, repeating frames in order when needed.
    """
    window = (num_frames - 1) * frame_stride + 1
    if window > num_total:
        return sample_uniform_indices(num_total, num_frames)
    slack = num_total - window
    if train:
        start = int(torch.randint(slack + 1, (1,), generator=generator).item())
    elif num_clips == 1:
        start = slack // 2
    else:
        start = round(clip_index * slack / (num_clips - 1))
    return (start + np.arange(num_frames) * frame_stride).tolist()


def sample_clip_indices(
    num_total: int,
    num_frames: int,
    sampling: str = "segment",
    frame_stride: int = 4,
    num_clips: int = 1,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """
    Frame indices of `num_clips` clips of `num_frames` frames each from a video of `num_total` frames.

    Returns:
        `list[list[int]]`: one list of `num_frames` indices in `[0, num_total)` per clip.
    """
    if num_total < 1:
        raise ValueError("cannot sample frames from a video with no frames")
    clips = []
    for clip_index in range(num_clips):
        if sampling == "segment":
            clips.append(sample_segment_indices(num_total, num_frames, clip_index, num_clips, train, generator))
        elif sampling == "uniform":
            clips.append(sample_uniform_indices(num_total, num_frames, clip_index, num_clips, train, generator))
        elif sampling == "dense":
            clips.append(
                sample_dense_indices(num_total, num_frames, frame_stride, clip_index, num_clips, train, generator)
            )
        else:
            raise ValueError(f"sampling={sampling!r} is not supported; use one of {SAMPLING_STRATEGIES}.")
    return clips


# ---------------------------------------------------------------------------------------------------------------------
# Decoding with PyAV
# ---------------------------------------------------------------------------------------------------------------------


def describe_source(source: Any) -> str:
    """A short name for a video source, used in error messages and metadata."""
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
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            head = handle.read(512)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:512])
    else:
        return ""
    text = ""
    for cut in range(4):  # the 512-byte window may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    if text and all(character.isprintable() or character.isspace() for character in text):
        return f"It holds plain text ({text[:40].strip()!r}...), not video. "
    return ""


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
            raise ValueError(f"Video path {label} is not a file.")
        if path.stat().st_size == 0:
            raise ValueError(f"Video file {label} is empty (0 bytes); re-download or re-encode it.")
        target: Any = str(path)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ValueError("Video bytes are empty (0 bytes); pass the content of a video file.")
        target = io.BytesIO(bytes(source))
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


@dataclass
class VideoStreamIndex:
    """What one demuxing pass (no decoding) learns about a video stream."""

    packet_pts: list[int | None]  # per non-empty packet, in file order
    keyframe_pts: list[int]
    num_frames: int
    fps: float | None
    width: int
    height: int
    pts_indexed: bool  # frame i is the packet with the i-th smallest pts
    from_header: bool = False  # num_frames read from the container header, no demuxing pass made

    @property
    def sorted_pts(self) -> list[int]:
        return sorted(self.packet_pts)  # only meaningful when pts_indexed


def _first_video_stream(container: Any, label: str) -> Any:
    if not container.streams.video:
        kinds = sorted({stream.type for stream in container.streams}) or ["none"]
        raise ValueError(
            f"Video {label} has no video stream (its streams: {', '.join(kinds)}); pass a file with video in it."
        )
    return container.streams.video[0]


def _has_presentation_timestamps(container: Any) -> bool:
    return any(name in _PTS_INDEXED_FORMATS for name in container.format.name.split(","))


def _index_from_header(stream: Any) -> VideoStreamIndex:
    rate = stream.average_rate or stream.guessed_rate
    return VideoStreamIndex(
        packet_pts=[],
        keyframe_pts=[],
        num_frames=stream.frames,
        fps=float(rate) if rate else None,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        pts_indexed=False,
        from_header=True,
    )


def index_video_stream(container: Any, stream: Any, label: str) -> VideoStreamIndex:
    """Demuxes the stream once, without decoding, to count frames and find timestamps and key frames."""
    import av

    packet_pts: list[int | None] = []
    keyframe_pts: list[int] = []
    try:
        for packet in container.demux(stream):
            # size 0: the demuxer's end-of-stream marker; is_discard: cut by an edit list, the decoder drops it.
            if packet.size == 0 or packet.is_discard:
                continue
            packet_pts.append(packet.pts)
            if packet.is_keyframe and packet.pts is not None:
                keyframe_pts.append(packet.pts)
    except av.error.FFmpegError as error:
        raise ValueError(
            f"Video {label} is corrupt or truncated: reading it failed with '{_ffmpeg_message(error)}'."
        ) from None
    if not packet_pts:
        raise ValueError(f"Video {label} has a video stream with no frames in it (truncated or empty file).")
    rate = stream.average_rate or stream.guessed_rate
    _check_not_truncated(container, stream, len(packet_pts), float(rate) if rate else None, label)
    pts_indexed = (
        _has_presentation_timestamps(container)
        and None not in packet_pts
        and len(set(packet_pts)) == len(packet_pts)
    )
    return VideoStreamIndex(
        packet_pts=packet_pts,
        keyframe_pts=sorted(keyframe_pts),
        num_frames=len(packet_pts),
        fps=float(rate) if rate else None,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        pts_indexed=pts_indexed,
    )


def _looks_truncated(num_present: int, num_announced: int) -> bool:
    # Headers are sometimes a frame or two off; a file missing over a tenth of its frames was cut.
    return num_present < 0.9 * num_announced


def _truncated_message(label: str, num_announced: int, num_present: int) -> str:
    return (
        f"Video {label} is truncated: its header announces {num_announced} frames but only {num_present} are in "
        "the file. Re-download or re-encode it."
    )


def _check_not_truncated(container: Any, stream: Any, num_packets: int, fps: float | None, label: str) -> None:
    """
    Raises `ValueError` when the file holds clearly fewer frames than its header announces: under 90% of a frame
    count (mp4, avi), or (containers without a count, e.g. webm) under 3/4 of the frames its duration implies.
    Demuxers stop silently at a cut, so this is where a truncated file shows.
    """
    announced = stream.frames
    if announced and _looks_truncated(num_packets, announced):
        raise ValueError(_truncated_message(label, announced, num_packets))
    if announced or not fps:
        return
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    else:
        return
    expected = duration * fps
    if num_packets < 0.75 * expected - 2:
        raise ValueError(
            f"Video {label} looks truncated: its duration of {duration:.2f} s at {fps:.2f} fps implies about "
            f"{expected:.0f} frames but only {num_packets} are in the file. Re-download or re-encode it."
        )


class _RGBConverter:
    """
    Converts decoded frames to `(H, W, 3)` uint8 arrays with one swscale context reused across frames (PyAV's
    `frame.to_ndarray` sets up a new one per frame), giving the same pixels as `frame.to_ndarray(format="rgb24")`.
    """

    def __init__(self):
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()

    def __call__(self, frame: Any) -> np.ndarray:
        return self._reformatter.reformat(frame, format="rgb24").to_ndarray()


# Frame threading pays for itself from about VGA size up; below, decoding a frame is cheaper than handing it over.
_FRAME_THREADING_MIN_PIXELS = 640 * 480


def _configure_threads(stream: Any, threading: bool) -> None:
    # Frame and slice threads: the decoder works ahead on other cores while this thread converts wanted frames.
    # Without, FFmpeg's default applies (slice threads only), as in transformers' `load_video`.
    if threading and stream.codec_context.width * stream.codec_context.height >= _FRAME_THREADING_MIN_PIXELS:
        stream.thread_type = "AUTO"


def _decode_by_pts(container: Any, stream: Any, index: VideoStreamIndex, wanted: list[int]) -> dict[int, Any]:
    """
    Decodes the frames `wanted` (sorted unique indices) of a pts-indexed stream: seeks to the key frame before the
    first one, tells the decoder to skip non-reference frames that are not wanted, converts only wanted frames to RGB
    and stops after the last one.
    """
    sorted_pts = index.sorted_pts
    index_of_pts = {pts: i for i, pts in enumerate(sorted_pts)}
    wanted_pts = {sorted_pts[i] for i in wanted}
    first_pts = sorted_pts[wanted[0]]
    # Every wanted frame shows at or after this key frame, so decoding from it reaches them all.
    keyframes_before = [pts for pts in index.keyframe_pts if pts <= first_pts]
    seek_pts = keyframes_before[-1] if keyframes_before else index.packet_pts[0]
    container.seek(seek_pts, stream=stream, backward=True, any_frame=False)

    frames: dict[int, Any] = {}
    codec = stream.codec_context
    to_rgb = _RGBConverter()

    def collect(decoded_frames: list) -> bool:
        for frame in decoded_frames:
            if frame.pts in wanted_pts and index_of_pts[frame.pts] not in frames:
                frames[index_of_pts[frame.pts]] = (to_rgb(frame), frame.time)
        return len(frames) == len(wanted)

    skip_mode = None
    for packet in container.demux(stream):
        if packet.size != 0:
            # Non-reference frames nobody wants need not be decoded at all: no other frame depends on them. The
            # setting travels with each packet to the decoder threads.
            wanted_mode = "DEFAULT" if packet.pts in wanted_pts else "NONREF"
            if wanted_mode != skip_mode:
                codec.skip_frame = skip_mode = wanted_mode
        if collect(stream.decode(packet if packet.size != 0 else None)):
            return frames
    collect(stream.decode(None))
    return frames


def _decode_in_order(container: Any, stream: Any, wanted: list[int]) -> tuple[dict[int, Any], int]:
    """Decodes from the start, counting frames in output order; converts only the wanted ones, stops after the last."""
    wanted_set = set(wanted)
    last = wanted[-1]
    frames: dict[int, Any] = {}
    count = 0
    to_rgb = _RGBConverter()
    for frame in container.decode(stream):
        if count in wanted_set:
            # Containers like AVI carry decode-order timestamps, so the time is left to index / fps.
            frames[count] = (to_rgb(frame), None)
        count += 1
        if count > last:
            break
    return frames, count


def read_video_pyav(
    source: Any,
    sample_indices_fn,
    threading: bool = True,
) -> tuple[np.ndarray, list[float | None], list[int], dict[str, Any]]:
    """
    Decodes the frames a sampling function asks for, reading no more of the file than it needs.

    Args:
        source (`str`, `os.PathLike`, `bytes` or binary file object):
            The video file.
        sample_indices_fn (`Callable[[int], list[int]]`):
            Maps the number of frames in the video to the frame indices wanted (any order, repeats allowed).
        threading (`bool`, *optional*, defaults to `True`):
            Frame-threaded decoding for frames of VGA size and up; turn off where every core is already busy
            (e.g. inside many DataLoader workers).

    Returns:
        `tuple`: the frames `(N, H, W, 3)` uint8 in the order of the indices, their timestamps in seconds, the
        indices, and a dict with `total_num_frames`, `fps`, `width`, `height`, `duration`.
    """
    import av

    label = describe_source(source)
    try:
        with open_video_container(source) as container:
            stream = _first_video_stream(container, label)
            _configure_threads(stream, threading)
            if _has_presentation_timestamps(container) or not stream.frames:
                index = index_video_stream(container, stream, label)
            else:
                # AVI and the like: the header's frame count is all sampling needs, and the decode below counts
                # frames in output order itself, so no separate demuxing pass.
                index = _index_from_header(stream)
            indices = _checked_indices(sample_indices_fn(index.num_frames), index.num_frames, label)
            wanted = sorted(set(indices))
            if index.pts_indexed:
                frames = _decode_by_pts(container, stream, index, wanted)
            elif index.from_header:
                frames, num_decoded = _decode_in_order(container, stream, wanted)
                if len(frames) < len(wanted) and _looks_truncated(num_decoded, index.num_frames):
                    raise ValueError(_truncated_message(label, index.num_frames, num_decoded))
            else:
                frames = {}
        if len(frames) < len(wanted):
            # Timestamps that do not describe the decoder's output, or a header a little off: count frames in
            # decoder output order, which is what a full sequential decode numbers them by.
            frames, num_decoded = _decode_in_order_from_start(source, wanted, threading)
            if len(frames) < len(wanted):
                # Fewer frames decode than the file announces: sample again from the real count.
                if num_decoded == 0:
                    raise ValueError(f"Video {label} has no decodable frames (corrupt or truncated file).")
                index.num_frames = num_decoded
                indices = _checked_indices(sample_indices_fn(num_decoded), num_decoded, label)
                wanted = sorted(set(indices))
                frames, _ = _decode_in_order_from_start(source, wanted, threading)
    except av.error.FFmpegError as error:
        raise ValueError(
            f"Video {label} is corrupt or truncated: decoding failed with '{_ffmpeg_message(error)}'."
        ) from None
    rgb = np.stack([frames[i][0] for i in indices])
    times = [frames[i][1] for i in indices]
    info = {
        "total_num_frames": index.num_frames,
        "fps": index.fps,
        "width": index.width,
        "height": index.height,
        "duration": index.num_frames / index.fps if index.fps else None,
    }
    return rgb, times, indices, info


def _checked_indices(indices: Sequence[int], num_frames: int, label: str) -> list[int]:
    indices = [int(index) for index in indices]
    if not indices:
        raise ValueError(f"Video {label}: the sampling function returned no frame indices.")
    out_of_range = [index for index in indices if not 0 <= index < num_frames]
    if out_of_range:
        raise ValueError(
            f"Video {label} has {num_frames} frames; frame indices {out_of_range[:5]} are out of range."
        )
    return indices


def _decode_in_order_from_start(source: Any, wanted: list[int], threading: bool) -> tuple[dict[int, Any], int]:
    if hasattr(source, "seek"):
        source.seek(0)
    with open_video_container(source) as container:
        stream = container.streams.video[0]
        _configure_threads(stream, threading)
        return _decode_in_order(container, stream, wanted)


def read_video_torchcodec(
    source: Any,
    sample_indices_fn,
    threading: bool = True,
) -> tuple[np.ndarray, list[float | None], list[int], dict[str, Any]]:
    """
    Same contract as [`read_video_pyav`], decoding with torchcodec's exact-seek `VideoDecoder` (which manages its
    own threads: `threading` is accepted for a common signature and ignored).
    """
    try:
        from torchcodec.decoders import VideoDecoder
    except ImportError:
        raise ImportError(
            "video_backend='torchcodec' needs the torchcodec package: `pip install torchcodec`, or use "
            "video_backend='pyav' (the default)."
        ) from None
    label = describe_source(source)
    if isinstance(source, (str, os.PathLike)) and not Path(source).exists():
        raise FileNotFoundError(f"Video file {label} does not exist. Check the path.")
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = bytes(source)
    try:
        decoder = VideoDecoder(str(source) if isinstance(source, os.PathLike) else source, seek_mode="exact")
        num_total = decoder.metadata.num_frames
        indices = list(sample_indices_fn(num_total))
        batch = decoder.get_frames_at(indices=indices)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"torchcodec could not decode video {label}: {error}") from None
    rgb = batch.data.permute(0, 2, 3, 1).numpy()
    fps = decoder.metadata.average_fps
    info = {
        "total_num_frames": num_total,
        "fps": fps,
        "width": decoder.metadata.width,
        "height": decoder.metadata.height,
        "duration": num_total / fps if fps else None,
    }
    return rgb, batch.pts_seconds.tolist(), indices, info


# ---------------------------------------------------------------------------------------------------------------------
# In-memory videos
# ---------------------------------------------------------------------------------------------------------------------


def _is_frame(value: Any) -> bool:
    return isinstance(value, Image.Image) or (isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 3)


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


def video_to_tensor(video: Any, label: str) -> torch.Tensor:
    """
    Converts an in-memory video to a `(T, 3, H, W)` tensor.

    Accepts a numpy array `(T, H, W, C)`, a torch tensor `(T, C, H, W)` or a list of frames (PIL images, `(H, W, C)`
    arrays or `(C, H, W)` tensors), with C = 1 (grayscale, repeated) or 3.
    """
    if isinstance(video, (list, tuple)):
        if not video:
            raise ValueError(f"Video {label} is an empty list of frames.")
        frames = []
        for frame in video:
            if isinstance(frame, Image.Image):
                frame = torch.from_numpy(np.array(frame.convert("RGB"))).permute(2, 0, 1)
            elif isinstance(frame, np.ndarray):
                frame = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1) if frame.ndim == 3 else frame
            frames.append(frame)
        shapes = {tuple(frame.shape) for frame in frames}
        if len(shapes) != 1:
            raise ValueError(f"Video {label}: its frames differ in size ({sorted(shapes)}); all frames must match.")
        return video_to_tensor(torch.stack(frames), label)
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
    if video.shape[1] == 1:
        video = video.expand(-1, 3, -1, -1)
    return video


# ---------------------------------------------------------------------------------------------------------------------
# Spatial transforms
# ---------------------------------------------------------------------------------------------------------------------


def _size_get(size: Any, key: str) -> int | None:
    return None if size is None else size.get(key)


def _as_size_dict(size: Any, param_name: str) -> Any:
    if size is None or hasattr(size, "get"):
        return size
    return get_size_dict(size, default_to_square=param_name == "crop_size", param_name=param_name)


def _interpolation(resample: Any) -> tvF.InterpolationMode:
    if isinstance(resample, tvF.InterpolationMode):
        return resample
    if resample is None:
        return tvF.InterpolationMode.BICUBIC
    try:
        return _INTERPOLATION_BY_RESAMPLE[int(resample)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"resample={resample!r} is not supported for videos; use PILImageResampling.BICUBIC, BILINEAR or NEAREST."
        ) from None


def resize_short_side(video: torch.Tensor, size: Any, interpolation: tvF.InterpolationMode) -> torch.Tensor:
    """Resizes `(..., H, W)` so its short side is `size["shortest_edge"]`, or to `size["height"] x size["width"]`."""
    shortest_edge = _size_get(size, "shortest_edge")
    if shortest_edge is not None:
        return tvF.resize(video, [int(shortest_edge)], interpolation=interpolation, antialias=True)
    height, width = _size_get(size, "height"), _size_get(size, "width")
    if height is None or width is None:
        raise ValueError(f"size={size!r} must give 'shortest_edge', or 'height' and 'width'.")
    return tvF.resize(video, [int(height), int(width)], interpolation=interpolation, antialias=True)


def spatial_crops(video: torch.Tensor, crop_height: int, crop_width: int, num_crops: int) -> list[torch.Tensor]:
    """
    One centre crop, or three crops along the long side: left/centre/right for a landscape frame, top/centre/bottom
    for a portrait one. Frames smaller than the crop are padded by `center_crop` first.
    """
    if num_crops == 1:
        return [tvF.center_crop(video, [crop_height, crop_width])]
    height, width = video.shape[-2:]
    if height < crop_height or width < crop_width:
        video = tvF.center_crop(video, [max(height, crop_height), max(width, crop_width)])
        height, width = video.shape[-2:]
    if width >= height:
        top = (height - crop_height) // 2
        lefts = [0, (width - crop_width) // 2, width - crop_width]
        return [tvF.crop(video, top, left, crop_height, crop_width) for left in lefts]
    left = (width - crop_width) // 2
    tops = [0, (height - crop_height) // 2, height - crop_height]
    return [tvF.crop(video, top, left, crop_height, crop_width) for top in tops]


def build_augmentation(
    crop_height: int,
    crop_width: int,
    interpolation: tvF.InterpolationMode,
    crop_scale: Sequence[float],
    crop_ratio: Sequence[float],
    flip_prob: float,
    color_jitter_prob: float,
    color_jitter: Sequence[float],
    grayscale_prob: float,
) -> v2.Compose:
    """The paper's training augmentations; applied to a `tv_tensors.Video`, one draw covers every frame."""
    brightness, contrast, saturation, hue = color_jitter
    return v2.Compose(
        [
            v2.RandomResizedCrop(
                (crop_height, crop_width),
                scale=tuple(crop_scale),
                ratio=tuple(crop_ratio),
                interpolation=interpolation,
                antialias=True,
            ),
            v2.RandomHorizontalFlip(p=flip_prob),
            v2.RandomApply(
                [v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)],
                p=color_jitter_prob,
            ),
            v2.RandomGrayscale(p=grayscale_prob),
        ]
    )


def augment_clip(clip: torch.Tensor, augmentation: v2.Compose, generator: torch.Generator | None) -> torch.Tensor:
    """
    Applies `augmentation` to a `(T, 3, H, W)` clip with the same random parameters for every frame.

    torchvision's transforms draw from the global RNG; with a `generator` they run inside a forked RNG seeded from
    it, so results follow the generator and the caller's global RNG state is left untouched.
    """
    video = tv_tensors.Video(clip)
    if generator is None:
        return augmentation(video).as_subclass(torch.Tensor)
    seed = int(torch.randint(2**62, (1,), generator=generator).item())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return augmentation(video).as_subclass(torch.Tensor)


# ---------------------------------------------------------------------------------------------------------------------
# The processor
# ---------------------------------------------------------------------------------------------------------------------


class OmniCLIPVideoProcessor(BaseVideoProcessor):
    r"""
    Turns videos into OmniCLIP's `pixel_values_videos`: decodes files (PyAV, or torchcodec), samples `num_frames`
    frames per clip, resizes the short side, crops, rescales and normalises with CLIP's mean and std.

    Videos can be paths (mp4, avi, webm, mkv, mov, ...), `bytes`, binary file objects, numpy arrays `(T, H, W, C)`,
    torch tensors `(T, C, H, W)` or lists of PIL images; a list of these is a batch.

    Output `pixel_values_videos` is `(B, T, 3, H, W)`, or `(B, V, T, 3, H, W)` with
    `V = num_temporal_clips * num_spatial_crops` views (clip-major: the crops of clip 0 first) when `V > 1`.

    Args:
        num_frames (`int`, *optional*, defaults to 8):
            Frames per clip. Videos with fewer frames repeat frames in order.
        sampling (`str`, *optional*, defaults to `"segment"`):
            `"segment"` (TSN, the paper's), `"uniform"` or `"dense"`; see [`OmniCLIPVideoProcessorKwargs`].
        frame_stride (`int`, *optional*, defaults to 4):
            Frame gap of dense sampling.
        num_temporal_clips (`int`, *optional*, defaults to 1):
            Temporal views per video.
        num_spatial_crops (`int`, *optional*, defaults to 1):
            1 or 3 spatial views per clip.
        do_augment (`bool`, *optional*, defaults to `False`):
            Training mode (random sampling and augmentations). A call can also pass `train=True`.
        video_backend (`str`, *optional*, defaults to `"pyav"`):
            `"pyav"` or `"torchcodec"`. A call can also pass `backend=`.
        size (`dict[str, int]`, *optional*, defaults to `{"shortest_edge": 224}`):
            Resize target in evaluation.
        crop_size (`dict[str, int]`, *optional*, defaults to `{"height": 224, "width": 224}`):
            Output frame size.
        image_mean, image_std (`list[float]`, *optional*, default to CLIP's):
            Normalisation.

    A call also accepts `generator` (a `torch.Generator` seeding training sampling and augmentation) and
    `return_metadata` (adds `video_metadata`: one [`OmniCLIPVideoMetadata`] per video with the sampled frame
    indices and timestamps).

    Example:

    ```python
    >>> from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor

    >>> processor = OmniCLIPVideoProcessor(num_frames=8)
    >>> batch = processor(["clip_a.mp4", "clip_b.avi"], return_tensors="pt")
    >>> batch["pixel_values_videos"].shape
    torch.Size([2, 8, 3, 224, 224])
    ```"""

    valid_kwargs = OmniCLIPVideoProcessorKwargs
    model_input_names = ["pixel_values_videos"]

    resample = PILImageResampling.BICUBIC
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"shortest_edge": 224}
    crop_size = {"height": 224, "width": 224}
    default_to_square = False
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True
    do_sample_frames = True
    num_frames = 8
    sampling = "segment"
    frame_stride = 4
    num_temporal_clips = 1
    num_spatial_crops = 1
    do_augment = False
    video_backend = "pyav"
    decoder_threading = True
    augment_resize_shortest_edge = 256
    augment_crop_scale = [0.08, 1.0]
    augment_crop_ratio = [3 / 4, 4 / 3]
    flip_prob = 0.5
    color_jitter_prob = 0.8
    color_jitter = [0.4, 0.4, 0.2, 0.1]
    grayscale_prob = 0.2

    def __init__(self, **kwargs) -> None:
        if "backend" in kwargs:
            kwargs["video_backend"] = kwargs.pop("backend")
        if "train" in kwargs:
            kwargs["do_augment"] = kwargs.pop("train")
        super().__init__(**kwargs)
        self._check_settings({key: getattr(self, key) for key in self.valid_kwargs.__annotations__})

    # ------------------------------------------------------------------ settings
    @staticmethod
    def _check_settings(settings: dict[str, Any]) -> None:
        """Raises `ValueError` naming the setting, its value and what is allowed."""
        num_frames = settings.get("num_frames")
        is_count = isinstance(num_frames, int) and not isinstance(num_frames, bool)
        if num_frames is not None and (not is_count or num_frames < 1):
            raise ValueError(f"num_frames={num_frames!r} is invalid: it must be an integer >= 1.")
        if settings.get("sampling") not in SAMPLING_STRATEGIES:
            raise ValueError(f"sampling={settings.get('sampling')!r} is invalid: use one of {SAMPLING_STRATEGIES}.")
        stride = settings.get("frame_stride")
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"frame_stride={stride!r} is invalid: it must be an integer >= 1.")
        clips = settings.get("num_temporal_clips")
        if not isinstance(clips, int) or clips < 1:
            raise ValueError(f"num_temporal_clips={clips!r} is invalid: it must be an integer >= 1.")
        if settings.get("num_spatial_crops") not in (1, 3):
            raise ValueError(
                f"num_spatial_crops={settings.get('num_spatial_crops')!r} is invalid: use 1 (centre) or 3 "
                "(left/centre/right or top/centre/bottom)."
            )
        if settings.get("video_backend") not in DECODER_BACKENDS:
            raise ValueError(
                f"video_backend={settings.get('video_backend')!r} is invalid: use one of {DECODER_BACKENDS}."
            )
        if settings.get("fps") is not None:
            raise ValueError("fps-based sampling is not supported by OmniCLIPVideoProcessor; set num_frames instead.")

    def _resolve_call_settings(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if "backend" in kwargs:
            kwargs["video_backend"] = kwargs.pop("backend")
        if "train" in kwargs:
            kwargs["do_augment"] = kwargs.pop("train")
        unknown = sorted(set(kwargs) - set(self.valid_kwargs.__annotations__) - set(_CALL_ONLY_KWARGS))
        if unknown:
            raise TypeError(f"OmniCLIPVideoProcessor got unexpected keyword arguments {unknown}.")
        settings = {key: kwargs.get(key, getattr(self, key, None)) for key in self.valid_kwargs.__annotations__}
        for key in _CALL_ONLY_KWARGS:
            settings[key] = kwargs.get(key)
        if settings["num_frames"] is None:
            settings["num_frames"] = type(self).num_frames
        settings["size"] = _as_size_dict(settings["size"], "size")
        settings["crop_size"] = _as_size_dict(settings["crop_size"], "crop_size")
        self._check_settings(settings)
        return settings

    # ------------------------------------------------------------------ main entry
    def preprocess(self, videos: Any, **kwargs) -> BatchFeature:
        r"""
        Args:
            videos (`str`, `os.PathLike`, `bytes`, file object, `np.ndarray`, `torch.Tensor`, list of PIL images, or a
                list of these):
                One video or a batch.
            train (`bool`, *optional*):
                Alias of `do_augment`.
            generator (`torch.Generator`, *optional*):
                Seeds training sampling and augmentation.
            backend (`str`, *optional*):
                Alias of `video_backend`.
            return_metadata (`bool`, *optional*, defaults to `False`):
                Also return `video_metadata`, one [`OmniCLIPVideoMetadata`] per video.
            return_tensors (`str` or [`~utils.TensorType`], *optional*):
                `"pt"` (a stacked tensor), `"np"`, or `None` (a list of per-video tensors).
            kwargs:
                Any setting of [`OmniCLIPVideoProcessorKwargs`] or transformers' `VideosKwargs`, for this call.

        Returns:
            [`BatchFeature`] with `pixel_values_videos` (and `video_metadata` when asked).
        """
        settings = self._resolve_call_settings(dict(kwargs))
        items = split_video_batch(videos)
        outputs, metadata = [], []
        for item_index, video in enumerate(items):
            try:
                pixels, video_metadata = self._process_one(video, settings)
            except (ValueError, FileNotFoundError, ImportError) as error:
                if len(items) == 1:
                    raise
                raise type(error)(f"videos[{item_index}] (item {item_index} of the batch): {error}") from None
            outputs.append(pixels)
            metadata.append(video_metadata)

        return_tensors = settings["return_tensors"]
        if return_tensors is not None:
            shapes = {tuple(output.shape) for output in outputs}
            if len(shapes) != 1:
                raise ValueError(f"Cannot stack videos of different shapes {sorted(shapes)}; pass return_tensors=None.")
            data = {"pixel_values_videos": torch.stack(outputs)}
        else:
            data = {"pixel_values_videos": outputs}
        batch = BatchFeature(data=data, tensor_type=return_tensors)
        if settings["return_metadata"]:
            batch["video_metadata"] = metadata
        return batch

    # ------------------------------------------------------------------ one video
    def _process_one(self, video: Any, settings: dict[str, Any]) -> tuple[torch.Tensor, OmniCLIPVideoMetadata]:
        train = bool(settings["do_augment"])
        generator = settings["generator"]
        num_clips = settings["num_temporal_clips"]

        def clip_indices(num_total: int) -> list[list[int]]:
            if not settings["do_sample_frames"]:
                return [list(range(num_total))] * num_clips
            return sample_clip_indices(
                num_total,
                settings["num_frames"],
                settings["sampling"],
                settings["frame_stride"],
                num_clips,
                train,
                generator,
            )

        clips_indices: list[list[int]] = []
        unique_indices: list[int] = []

        def indices_to_decode(num_total: int) -> list[int]:
            # The decoder calls this once it knows the frame count (again if fewer frames decode than announced).
            # Each distinct frame is decoded and resized once, however many clips or repeats use it.
            clips_indices[:] = clip_indices(num_total)
            unique_indices[:] = sorted({index for clip in clips_indices for index in clip})
            return unique_indices

        if _is_file_source(video):
            reader = read_video_torchcodec if settings["video_backend"] == "torchcodec" else read_video_pyav
            rgb, unique_times, _, info = reader(video, indices_to_decode, bool(settings["decoder_threading"]))
            frames = torch.from_numpy(rgb).permute(0, 3, 1, 2)
            backend = settings["video_backend"]
        else:
            all_frames = video_to_tensor(video, "given as " + type(video).__name__)
            frames = all_frames[indices_to_decode(all_frames.shape[0])]
            unique_times = [None] * len(unique_indices)
            height, width = all_frames.shape[-2:]
            info = {"total_num_frames": all_frames.shape[0], "fps": None, "width": width, "height": height}
            backend = None

        position = {index: row for row, index in enumerate(unique_indices)}
        clip_rows = torch.tensor([[position[index] for index in clip] for clip in clips_indices])
        views = self._make_views(frames, clip_rows, settings, train, generator)
        pixels = torch.stack(views) if len(views) > 1 else views[0]
        if settings["device"] is not None:
            pixels = pixels.to(settings["device"])

        frame_times = None
        if all(time is not None for time in unique_times):
            frame_times = [[float(unique_times[position[index]]) for index in clip] for clip in clips_indices]
        metadata = OmniCLIPVideoMetadata(
            total_num_frames=info["total_num_frames"],
            fps=info["fps"],
            width=info["width"],
            height=info["height"],
            duration=info.get("duration"),
            video_backend=backend,
            frames_indices=clips_indices,
            source=describe_source(video) if _is_file_source(video) else None,
            frames_timestamps=frame_times,
        )
        return pixels, metadata

    def _make_views(
        self,
        frames: torch.Tensor,
        clip_rows: torch.Tensor,
        settings: dict[str, Any],
        train: bool,
        generator: torch.Generator | None,
    ) -> list[torch.Tensor]:
        """
        Spatial views of every clip as normalised float `(T, 3, h, w)` tensors, clip-major.

        Args:
            frames (`torch.Tensor`): the distinct decoded frames, `(U, 3, H, W)` uint8.
            clip_rows (`torch.Tensor`): `(K, T)` rows of `frames` making up each clip.
        """
        crop_size = settings["crop_size"]
        interpolation = _interpolation(settings["resample"])
        views = []
        if train:
            if crop_size is None:
                raise ValueError("Training augmentation needs crop_size (the output frame size).")
            augmentation = build_augmentation(
                int(_size_get(crop_size, "height")),
                int(_size_get(crop_size, "width")),
                interpolation,
                settings["augment_crop_scale"],
                settings["augment_crop_ratio"],
                settings["flip_prob"],
                settings["color_jitter_prob"],
                settings["color_jitter"],
                settings["grayscale_prob"],
            )
            resize_to = settings["augment_resize_shortest_edge"]
            if resize_to and min(frames.shape[-2:]) > resize_to:  # 0 (or None in a call): crop at full size
                frames = tvF.resize(frames, [int(resize_to)], interpolation=interpolation, antialias=True)
            for rows in clip_rows:
                for _ in range(settings["num_spatial_crops"]):
                    views.append(augment_clip(frames[rows], augmentation, generator))
        else:
            if settings["do_resize"]:
                frames = resize_short_side(frames, settings["size"], interpolation)
            for rows in clip_rows:
                clip = frames[rows]
                if settings["do_center_crop"] and crop_size is not None:
                    height, width = int(_size_get(crop_size, "height")), int(_size_get(crop_size, "width"))
                    views.extend(spatial_crops(clip, height, width, settings["num_spatial_crops"]))
                elif settings["num_spatial_crops"] == 1:
                    views.append(clip)
                else:
                    raise ValueError("num_spatial_crops=3 needs do_center_crop=True and a crop_size.")
        return [self._rescale_and_normalize(view, settings) for view in views]

    @staticmethod
    def _rescale_and_normalize(view: torch.Tensor, settings: dict[str, Any]) -> torch.Tensor:
        view = view.to(torch.float32)
        if settings["do_rescale"]:
            view = view * settings["rescale_factor"]
        if settings["do_normalize"]:
            view = tvF.normalize(view, mean=list(settings["image_mean"]), std=list(settings["image_std"]))
        return view

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        # Tuples become lists in JSON anyway; keep the saved file free of call-only state.
        for key in _CALL_ONLY_KWARGS:
            output.pop(key, None)
        return output


__all__ = [
    "OmniCLIPVideoMetadata",
    "OmniCLIPVideoProcessor",
    "OmniCLIPVideoProcessorKwargs",
    "read_video_pyav",
    "sample_clip_indices",
]
