# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""
Decoding video files: the stream index (one demuxing pass), exact seeking, the PyAV and torchcodec backends.

Frame `i` always means the `i`-th frame a full sequential decode of the file returns;
`tests/test_video_processing.py` checks that pixel for pixel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .video_sources import _ffmpeg_message, describe_source, open_video_container


DECODER_BACKENDS = ("pyav", "torchcodec")
# Containers whose packet timestamps are real presentation times, so frame i is the packet with the i-th smallest
# pts. AVI stores decode-order timestamps only: frames there are counted in decoder output order instead.
_PTS_INDEXED_FORMATS = ("mov", "mp4", "matroska", "webm")

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


