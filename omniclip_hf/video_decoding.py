# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""
Decoding video files: the stream index (one demuxing pass), exact seeking, the PyAV and torchcodec backends.

Frame `i` always means the `i`-th frame a full sequential decode of the file returns;
`tests/test_video_processing.py` checks that pixel for pixel.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from transformers.utils import logging

from .video_sources import _ffmpeg_message, buffer_unseekable, describe_source, is_avi, open_video_container


DECODER_BACKENDS = ("pyav", "torchcodec")
# Containers whose packet timestamps are real presentation times, so frame i is the packet with the i-th smallest
# pts. AVI stores decode-order timestamps only: frames there are counted in decoder output order instead.
_PTS_INDEXED_FORMATS = ("mov", "mp4", "matroska", "webm")

logger = logging.get_logger(__name__)

# Still-image demuxers: FFmpeg opens a PNG or JPEG as a one-frame "video". OmniCLIP models motion, so such files are
# refused; a caller who wants a still scored anyway passes its frames in memory ([PIL.Image.open(path)]).
_IMAGE_FORMAT_SUFFIX = "_pipe"
_IMAGE_FORMATS = ("image2", "image2pipe")
# One rule for every container: a file holding under this share of the frames its header announces was cut.
# Headers are sometimes a frame or two off, never a tenth.
MIN_PRESENT_SHARE = 0.9


@dataclass
class VideoStreamIndex:
    """What one demuxing pass (no decoding) learns about a video stream."""

    packet_pts: list[int | None]  # per non-empty packet, in file order
    keyframe_pts: list[int]
    num_frames: int
    fps: float | None
    pts_indexed: bool  # frame i is the packet with the i-th smallest pts
    num_announced: int | None = None  # what the header says (a frame count, or duration x fps), None if nothing
    starts_with_key_frame: bool = True  # False: the frames before the first key frame may not decode at all

    @property
    def sorted_pts(self) -> list[int]:
        return sorted(self.packet_pts)  # only meaningful when pts_indexed


def _is_attached_picture(stream: Any) -> bool:
    # Cover art of an audio file (an .m4a, an .mp3) is stored as a one-picture "video" stream with this disposition.
    from av.stream import Disposition

    return stream.type == "video" and bool(stream.disposition & Disposition.attached_pic)


def _first_video_stream(container: Any, label: str) -> Any:
    videos = [stream for stream in container.streams.video if not _is_attached_picture(stream)]
    if not videos:
        kinds = sorted(
            {"cover picture" if _is_attached_picture(stream) else stream.type for stream in container.streams}
        ) or ["none"]
        raise ValueError(
            f"Video {label} has no video stream (its streams: {', '.join(kinds)}); pass a file with video in it."
        )
    format_names = container.format.name.split(",")
    if any(name.endswith(_IMAGE_FORMAT_SUFFIX) or name in _IMAGE_FORMATS for name in format_names):
        raise ValueError(
            f"Video {label} is a still image ({container.format.name.replace('_pipe', '')}), not a video: OmniCLIP "
            "models motion. To score a still anyway, pass its frames in memory, e.g. [PIL.Image.open(path)]."
        )
    return videos[0]


def _has_presentation_timestamps(container: Any) -> bool:
    return any(name in _PTS_INDEXED_FORMATS for name in container.format.name.split(","))


def stream_fps(stream: Any) -> float | None:
    """The stream's frame rate (average, else FFmpeg's guess), None where the file states none."""
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None


@dataclass(frozen=True)
class AnnouncedDuration:
    """How long the header says the video lasts, in seconds from its first frame."""

    seconds: float
    # True: only the container's duration was stated, and other streams share it: it covers the longest stream
    # (an audio track may outlast the video), so it bounds the video's length instead of stating it.
    whole_container: bool = False


def _matroska_duration_tag(stream: Any) -> float | None:
    # Matroska muxers store each track's end time as a DURATION tag ("HH:MM:SS.nnnnnnnnn"); FFmpeg leaves the
    # stream's own duration unset there, and the segment's duration covers the longest track.
    value = next((value for key, value in stream.metadata.items() if key.upper() == "DURATION"), None)
    try:
        hours, minutes, seconds = str(value).split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (AttributeError, ValueError):
        return None


def _stream_start_seconds(stream: Any) -> float:
    if stream.start_time is None or not stream.time_base:
        return 0.0
    return float(stream.start_time * stream.time_base)


def announced_duration(container: Any, stream: Any) -> AnnouncedDuration | None:
    """
    The video's duration as the header states it, start time excluded: the track's Matroska DURATION tag (its end
    time), else the stream's duration (an MP4's respects its edit list), else the container's duration (its end
    time), marked `whole_container` where other streams share it. None where the header states nothing.
    """
    end_tag = _matroska_duration_tag(stream)
    if end_tag is not None:
        seconds, whole_container = end_tag - _stream_start_seconds(stream), False
    elif stream.duration and stream.time_base:
        seconds, whole_container = float(stream.duration * stream.time_base), False
    elif container.duration:
        start = (container.start_time or 0) / 1_000_000  # AV_TIME_BASE
        seconds, whole_container = container.duration / 1_000_000 - start, len(container.streams) > 1
    else:
        return None
    return AnnouncedDuration(seconds, whole_container) if seconds > 0 else None


def frames_announced(
    header_frames: int | None, duration: AnnouncedDuration | None, fps: float | None, measured_fps: float | None = None
) -> int | None:
    """
    The frame count a header announces: the lower of its frame count (an MP4's also counts frames its edit list
    hides) and its duration times the frame rate. Where it states no count (Matroska), the rate is the lower of the
    header's and the one the frames in the file keep (`measured_fps`): a variable-rate file's header rate may be
    that of its fastest stretch, while a cut file keeps its rate.
    """
    counts = [int(header_frames)] if header_frames else []
    rates = [rate for rate in (fps, None if header_frames else measured_fps) if rate]
    if duration is not None and rates:
        counts.append(round(duration.seconds * min(rates)))
    return min(counts) if counts else None


def announced_frame_count(
    container: Any,
    stream: Any,
    fps: float | None,
    measured_fps: float | None = None,
    others_end: float | None = None,
) -> int | None:
    """
    The frame count the header announces (see `frames_announced`). `others_end`, the seconds the file's other
    streams reach, says whether a container-wide duration is theirs: where they fill it, the file is whole and the
    video's own length is not stated (None); where they stop short too, the file was cut and the duration counts.
    """
    duration = _duration_beside_count(container, stream)
    if duration is not None and duration.whole_container and others_end is not None:
        if others_end >= MIN_PRESENT_SHARE * duration.seconds:
            duration = None
    return frames_announced(stream.frames, duration, fps, measured_fps)


def _duration_beside_count(container: Any, stream: Any) -> AnnouncedDuration | None:
    # Where the header counts frames, its duration matters only in MP4/MKV (an edit list hides counted frames). An
    # AVI's duration is rebuilt from the frames present when its index was cut off, so it would hide the cut.
    if stream.frames and not _has_presentation_timestamps(container):
        return None
    return announced_duration(container, stream)


def measured_frame_rate(packet_pts: Sequence[int | None], time_base: Any) -> float | None:
    """The frame rate the packets' timestamps keep on average, None where they cannot say (one frame, no pts)."""
    stamps = [pts for pts in packet_pts if pts is not None]
    if len(stamps) < 2 or not time_base:
        return None
    span = float((max(stamps) - min(stamps)) * time_base)
    return (len(stamps) - 1) / span if span > 0 else None


def check_against_header(label: str, num_announced: int | None, num_present: int) -> None:
    """
    Raises `ValueError` when the file holds fewer than `MIN_PRESENT_SHARE` of the frames its header announced, the
    same rule for every container. Demuxers and decoders stop silently at a cut, so this is where a truncated file
    shows. More frames than announced (a header that under-counts) are fine: what is in the file counts.
    """
    if num_announced and num_present < MIN_PRESENT_SHARE * num_announced:
        raise ValueError(
            f"Video {label} is truncated: its header announces {num_announced} frames but only {num_present} are in "
            "the file. Re-download or re-encode it."
        )


def index_video_stream(container: Any, stream: Any, label: str) -> VideoStreamIndex:
    """
    Demuxes the stream once, without decoding, to count frames and find timestamps and key frames. The count is
    what the file holds, checked against the header; the header's own count is never used for sampling.
    """
    import av

    packet_pts: list[int | None] = []
    keyframe_pts: list[int] = []
    first_is_key: bool | None = None
    duration = _duration_beside_count(container, stream)
    # Where only a container-wide duration is stated, how far the other streams reach tells a whole file from a cut.
    others = _OtherStreamsEnd(container) if duration is not None and duration.whole_container else None
    try:
        for packet in container.demux(*([] if others else [stream])):
            if packet.stream_index != stream.index:
                others.add(packet)
                continue
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            if first_is_key is None:  # edit-list-hidden packets count here: decoding starts from them
                first_is_key = bool(packet.is_keyframe)
            if packet.is_discard:  # cut by an edit list, the decoder drops it
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
    fps = stream_fps(stream)
    num_announced = announced_frame_count(
        container, stream, fps, measured_frame_rate(packet_pts, stream.time_base), others.end if others else None
    )
    check_against_header(label, num_announced, len(packet_pts))
    if stream.frames and len(packet_pts) > stream.frames + 1:
        # The header's frame count under-counts (an AVI whose header says 10 frames holding 164): trust what is in
        # the file. (Its duration times a variable rate is only an estimate: not worth a note.)
        logger.warning_once(
            f"Video {label}: its header announces {stream.frames} frames but the file holds {len(packet_pts)}; "
            "sampling from the frames in the file."
        )
    pts_indexed = (
        _has_presentation_timestamps(container)
        and None not in packet_pts
        and len(set(packet_pts)) == len(packet_pts)
    )
    return VideoStreamIndex(
        packet_pts=packet_pts,
        keyframe_pts=sorted(keyframe_pts),
        num_frames=len(packet_pts),
        fps=fps,
        pts_indexed=pts_indexed,
        num_announced=num_announced,
        starts_with_key_frame=bool(first_is_key),
    )


class _OtherStreamsEnd:
    """The latest end time, in seconds from the container's start, that the packets of the other streams reach."""

    def __init__(self, container: Any):
        self._start = (container.start_time or 0) / 1_000_000  # AV_TIME_BASE
        self.end = 0.0

    def add(self, packet: Any) -> None:
        if packet.size == 0 or packet.pts is None or not packet.time_base:
            return
        end = float((packet.pts + (packet.duration or 0)) * packet.time_base) - self._start
        self.end = max(self.end, end)


# ---------------------------------------------------------------------------------------------------------------------
# Orientation
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Orientation:
    """
    How a player shows a stored frame: one of the 8 axis-aligned turns and mirrors a display matrix can ask for,
    applied to an `(H, W, C)` array as an optional transpose followed by optional flips of rows and columns.
    `rotation` (counter-clockwise degrees, 0/90/180/270) and `mirrored` describe it as a horizontal mirror (when
    `mirrored`) followed by that turn.
    """

    transpose: bool = False
    flip_rows: bool = False
    flip_columns: bool = False
    rotation: int = 0
    mirrored: bool = False

    def apply(self, rgb: np.ndarray, batched: bool = False) -> np.ndarray:
        """The frame `(H, W, C)` as displayed, or every frame of `(N, H, W, C)` with `batched` (a view; no copy)."""
        rows = 1 if batched else 0
        if self.transpose:
            axes = list(range(rgb.ndim))
            axes[rows], axes[rows + 1] = axes[rows + 1], axes[rows]
            rgb = rgb.transpose(axes)
        if self.flip_rows:
            rgb = np.flip(rgb, rows)
        if self.flip_columns:
            rgb = np.flip(rgb, rows + 1)
        return rgb


UPRIGHT = Orientation()


def _orientation_of_signs(a: int, b: int, c: int, d: int, rotation: int, mirrored: bool) -> Orientation:
    # FFmpeg maps a stored pixel (x, y) to the displayed (a x + c y, b x + d y) (display.h; y points down). With
    # b = c = 0 that is a flip of columns where a < 0 and of rows where d < 0; with a = d = 0 the axes swap (a
    # transpose), then displayed rows follow x (flipped where b < 0) and columns follow y (flipped where c < 0).
    if a != 0:
        return Orientation(False, d < 0, a < 0, rotation, mirrored)
    return Orientation(True, b < 0, c < 0, rotation, mirrored)


def orientation_from_display_matrix(matrix: Sequence[int] | None, label: str) -> Orientation:
    """
    The orientation a display matrix (FFmpeg's 9 int32 values, 16.16 fixed point in the 2x2 part) asks for. The
    matrix is read whole, so mirrors are kept (PyAV's `frame.rotation` and torchcodec's `rotation` read only the
    angle: a horizontal mirror shows there as a 180-degree turn). Angles between multiples of 90 degrees take the
    nearest one, said once in the log.
    """
    if matrix is None:
        return UPRIGHT
    a, b, c, d = (float(matrix[i]) for i in (0, 1, 3, 4))
    if not math.hypot(a, c) or not math.hypot(b, d):
        return UPRIGHT  # a degenerate matrix (a zero column) has no orientation: frames are taken as stored
    mirrored = a * d - b * c < 0
    if mirrored:  # M = F R with F the horizontal mirror diag(-1, 1): R = F M negates M's first row
        a, b = -a, -b
    angle = math.degrees(math.atan2(c, a))  # R = [[cos, -sin], [sin, cos]], counter-clockwise (FFmpeg's sign)
    turns = round(angle / 90)
    if abs(angle - 90 * turns) > 1e-3:
        logger.warning_once(
            f"Video {label} asks for a display rotation of {round(angle, 2):g} degrees; frames are turned by the "
            f"nearest multiple of 90 ({90 * turns} degrees) instead."
        )
    cos, sin = round(math.cos(math.radians(90 * turns))), round(math.sin(math.radians(90 * turns)))
    ra, rb, rc, rd = cos, -sin, sin, cos
    if mirrored:  # back to M = F R
        ra, rb = -ra, -rb
    return _orientation_of_signs(ra, rb, rc, rd, (90 * turns) % 360, mirrored)


def frame_display_matrix(frame: Any) -> np.ndarray | None:
    """The display matrix a decoded PyAV frame carries (FFmpeg hands the container's to every frame), or None."""
    from av.sidedata.sidedata import Type

    side_data = frame.side_data.get(Type.DISPLAYMATRIX)
    return None if side_data is None else np.frombuffer(bytes(side_data), dtype=np.int32)


def residual_after_rotation(orientation: Orientation, applied_rotation: float | None) -> Orientation:
    """
    What is left to apply to frames a decoder already turned by `applied_rotation` (counter-clockwise degrees, as
    torchcodec does from the same matrix, mirrors dropped) so they end as `orientation` asks: `R^T M`.
    """
    turns = round((applied_rotation or 0) / 90) % 4
    cos, sin = round(math.cos(math.radians(90 * turns))), round(math.sin(math.radians(90 * turns)))
    wanted = np.array(_signs_of(orientation))
    applied = np.array([[cos, -sin], [sin, cos]])
    (a, b), (c, d) = applied.T @ wanted
    return _orientation_of_signs(int(a), int(b), int(c), int(d), orientation.rotation, orientation.mirrored)


def _signs_of(orientation: Orientation) -> list[list[int]]:
    """The 2x2 matrix [[a, b], [c, d]] with entries in {-1, 0, 1} of an orientation (inverse of `_orientation_of_signs`)."""
    rows, columns = (-1 if orientation.flip_rows else 1), (-1 if orientation.flip_columns else 1)
    if orientation.transpose:
        return [[0, rows], [columns, 0]]
    return [[columns, 0], [0, rows]]


class _RGBConverter:
    """
    Converts decoded frames to displayed `(H, W, 3)` uint8 arrays: one swscale context reused across frames (PyAV's
    `frame.to_ndarray` sets up a new one per frame), giving the same pixels as `frame.to_ndarray(format="rgb24")`,
    then turned and mirrored as the frame's display matrix says, so frames come out as a player shows them.
    """

    def __init__(self, label: str):
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()
        self._label = label
        self._orientations: dict[bytes, Orientation] = {}
        self.orientation = UPRIGHT

    def __call__(self, frame: Any) -> np.ndarray:
        matrix = frame_display_matrix(frame)
        key = b"" if matrix is None else matrix.tobytes()
        if key not in self._orientations:
            self._orientations[key] = orientation_from_display_matrix(matrix, self._label)
        self.orientation = self._orientations[key]
        return self.orientation.apply(self._reformatter.reformat(frame, format="rgb24").to_ndarray())


# Frame threading pays for itself from about VGA size up; below, decoding a frame is cheaper than handing it over.
_FRAME_THREADING_MIN_PIXELS = 640 * 480


def _configure_threads(stream: Any, threading: bool) -> None:
    # Frame and slice threads: the decoder works ahead on other cores while this thread converts wanted frames.
    # Without, FFmpeg's default applies (slice threads only), as in transformers' `load_video`.
    if threading and stream.codec_context.width * stream.codec_context.height >= _FRAME_THREADING_MIN_PIXELS:
        stream.thread_type = "AUTO"


def _decode_by_pts(
    container: Any, stream: Any, index: VideoStreamIndex, wanted: list[int], to_rgb: _RGBConverter
) -> dict[int, Any]:
    """
    Decodes the frames `wanted` (sorted unique indices) of a pts-indexed stream: seeks to the key frame before the
    first one, tells the decoder to skip non-reference frames that are not wanted, converts only wanted frames to RGB
    and stops after the last one. Returns what it found: fewer frames than wanted (the seek refused, frames that did
    not decode) send the caller to its in-order decode.
    """
    import av

    sorted_pts = index.sorted_pts
    index_of_pts = {pts: i for i, pts in enumerate(sorted_pts)}
    wanted_pts = {sorted_pts[i] for i in wanted}
    first_pts = sorted_pts[wanted[0]]
    # Every wanted frame shows at or after this key frame, so decoding from it reaches them all.
    keyframes_before = [pts for pts in index.keyframe_pts if pts <= first_pts]
    seek_pts = keyframes_before[-1] if keyframes_before else index.packet_pts[0]
    try:
        container.seek(seek_pts, stream=stream, backward=True, any_frame=False)
    except av.error.FFmpegError:
        # No key frame at or before the wanted frame (a stream that starts with P-frames): FFmpeg refuses (EPERM).
        return {}

    frames: dict[int, Any] = {}
    codec = stream.codec_context

    def collect(decoded_frames: list) -> bool:
        for frame in decoded_frames:
            if frame.pts in wanted_pts and index_of_pts[frame.pts] not in frames:
                # From the stream time base: frames flushed at the end carry no time base of their own.
                frames[index_of_pts[frame.pts]] = (to_rgb(frame), float(frame.pts * stream.time_base))
        return len(frames) == len(wanted)

    skip_mode = None
    flushed = False
    for packet in container.demux(stream):
        if packet.size != 0:
            # Non-reference frames nobody wants need not be decoded at all: no other frame depends on them. The
            # setting travels with each packet to the decoder threads.
            wanted_mode = "DEFAULT" if packet.pts in wanted_pts else "NONREF"
            if wanted_mode != skip_mode:
                codec.skip_frame = skip_mode = wanted_mode
        flushed = flushed or packet.size == 0  # the demuxer's end marker flushes the decoder
        if collect(stream.decode(packet if packet.size != 0 else None)):
            return frames
    if not flushed:  # a second flush raises EOFError: a flushed decoder has nothing more to give
        collect(stream.decode(None))
    return frames


def _decode_in_order(
    container: Any, stream: Any, wanted: list[int], to_rgb: _RGBConverter
) -> tuple[dict[int, Any], int]:
    """Decodes from the start, counting frames in output order; converts only the wanted ones, stops after the last."""
    wanted_set = set(wanted)
    last = wanted[-1]
    frames: dict[int, Any] = {}
    count = 0
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
            Maps the number of frames in the video to the frame indices wanted (any order, repeats allowed). A function
            with an `fps` keyword also gets the video's frame rate (None where the file states none).
        threading (`bool`, *optional*, defaults to `True`):
            Frame-threaded decoding for frames of VGA size and up; turn off where every core is already busy
            (e.g. inside many DataLoader workers).

    Returns:
        `tuple`: the frames `(N, H, W, 3)` uint8 in the order of the indices, turned upright by the display matrix,
        their timestamps in seconds, the indices, and a dict with `total_num_frames`, `fps`, `width` and `height`
        (as displayed), `duration` and `rotation` (the counter-clockwise turn applied, in degrees).
    """
    import av

    source = buffer_unseekable(source)
    label = describe_source(source)
    to_rgb = _RGBConverter(label)
    try:
        with open_video_container(source) as container:
            stream = _first_video_stream(container, label)
            _configure_threads(stream, threading)
            index = index_video_stream(container, stream, label)
            if not index.starts_with_key_frame:
                _count_decodable_frames(container, stream, source, index, label, to_rgb)
            indices = _checked_indices(_ask_sampler(sample_indices_fn, index.num_frames, index.fps), index.num_frames, label)
            wanted = sorted(set(indices))
            frames = _decode_by_pts(container, stream, index, wanted, to_rgb) if index.pts_indexed else {}
            if len(frames) < len(wanted):
                # AVI and the like (decode-order timestamps), or timestamps that do not describe the decoder's
                # output: count frames in decoder output order, which is what a full sequential decode numbers them
                # by. The file stays open: the container is rewound, not opened a second time.
                frames, num_decoded = _decode_in_order_from_start(container, stream, source, wanted, to_rgb)
                if len(frames) < len(wanted):
                    # Fewer frames decode than the file holds packets for: check the real count against the header
                    # (the same rule as for packets), then sample again from it.
                    if num_decoded == 0:
                        raise ValueError(f"Video {label} has no decodable frames (corrupt or truncated file).")
                    check_against_header(label, index.num_announced, num_decoded)
                    index.num_frames = num_decoded
                    indices = _checked_indices(
                        _ask_sampler(sample_indices_fn, num_decoded, index.fps), num_decoded, label
                    )
                    wanted = sorted(set(indices))
                    frames, _ = _decode_in_order_from_start(container, stream, source, wanted, to_rgb)
    except av.error.FFmpegError as error:
        raise ValueError(
            f"Video {label} is corrupt or truncated: decoding failed with '{_ffmpeg_message(error)}'."
        ) from None
    rgb = np.stack([frames[i][0] for i in indices])
    times = [frames[i][1] for i in indices]
    info = {
        "total_num_frames": index.num_frames,
        "fps": index.fps,
        # As displayed: a clip stored 568x320 with a 90-degree display matrix is 320 wide and 568 high.
        "width": int(rgb.shape[2]),
        "height": int(rgb.shape[1]),
        "duration": index.num_frames / index.fps if index.fps else None,
        "rotation": to_rgb.orientation.rotation,
        "mirrored": to_rgb.orientation.mirrored,
    }
    return rgb, times, indices, info


def _count_decodable_frames(
    container: Any, stream: Any, source: Any, index: VideoStreamIndex, label: str, to_rgb: _RGBConverter
) -> None:
    """
    For a stream whose first packet is no key frame (a clip cut out of a longer one without re-encoding): the
    frames before its first key frame may not decode, so a sequential decode numbers frames differently from the
    packets. Counts what decodes (converting nothing) and makes the index count frames in decoder output order.
    The header was checked against the packets: frames lost before the first key frame are no sign of a cut.
    """
    _, num_decoded = _decode_in_order_from_start(container, stream, source, [index.num_frames], to_rgb)
    if num_decoded == 0:
        raise ValueError(f"Video {label} has no decodable frames (corrupt or truncated file).")
    index.num_frames = num_decoded
    index.pts_indexed = False


def _ask_sampler(sample_indices_fn, num_frames: int, fps: float | None) -> Sequence[int]:
    """Calls the sampling function with the frame count, and the frame rate too where it takes an `fps` keyword."""
    try:
        takes_fps = "fps" in inspect.signature(sample_indices_fn).parameters
    except (TypeError, ValueError):  # builtins and some callables have no signature
        takes_fps = False
    return sample_indices_fn(num_frames, fps=fps) if takes_fps else sample_indices_fn(num_frames)


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


def _decode_in_order_from_start(
    container: Any, stream: Any, source: Any, wanted: list[int], to_rgb: _RGBConverter
) -> tuple[dict[int, Any], int]:
    """
    Decodes `wanted` frames in output order from the start of the open container, rewound by a seek to its first
    packet (the seek also flushes the decoder). Where the demuxer cannot seek (FFmpeg refuses), the file is opened
    again instead.
    """
    import av

    try:
        container.seek(0, backward=True, any_frame=False)
    except av.error.FFmpegError:
        if hasattr(source, "seek"):
            source.seek(0)
        with open_video_container(source) as reopened:
            restream = reopened.streams[stream.index]  # the same stream (not an attached picture before it)
            restream.thread_type = stream.thread_type
            return _decode_in_order(reopened, restream, wanted, to_rgb)
    stream.codec_context.skip_frame = "DEFAULT"  # a pts-ordered attempt may have left the decoder skipping frames
    return _decode_in_order(container, stream, wanted, to_rgb)


def is_torchcodec_decoder(value: Any) -> bool:
    """A torchcodec `VideoDecoder` (what datasets' `Video` feature yields), recognised without importing torchcodec."""
    return type(value).__name__ == "VideoDecoder" and type(value).__module__.startswith("torchcodec")


def read_video_torchcodec(
    source: Any,
    sample_indices_fn,
    threading: bool = True,
) -> tuple[np.ndarray, list[float | None], list[int], dict[str, Any]]:
    """
    Same contract as [`read_video_pyav`], decoding with torchcodec's exact-seek `VideoDecoder` (which manages its
    own threads: `threading` is accepted for a common signature and ignored). `source` may also be a `VideoDecoder`
    (datasets' `Video` cells). torchcodec turns frames by the angle of the display matrix but drops its mirrors;
    for files, the matrix is read whole with PyAV and what torchcodec left undone (a mirror) is applied here, so
    frames come out as with PyAV; the frame rate and the header check come from the same PyAV probe, so both
    backends agree on them. Files torchcodec does not decode exactly (AVI, a stream that starts before its first
    key frame) go to PyAV. A `VideoDecoder` from a datasets column is treated as the file it was built from; one
    built by the caller gives no access to its file: its frames are torchcodec's (turned, never mirrored).
    """
    source = buffer_unseekable(source)
    if is_torchcodec_decoder(source):
        decoder, file_source = source, torchcodec_decoder_file(source)
        label = "<torchcodec VideoDecoder>" if file_source is None else describe_source(file_source)
        if file_source is None:
            logger.warning_once(
                "A torchcodec VideoDecoder built outside datasets gives no access to its file: its frames are "
                "torchcodec's, which seeks AVI files inexactly. For exact frames pass the file's path or bytes "
                "(for a datasets column, cast it with datasets.Video(decode=False))."
            )
    else:
        decoder, file_source, label = None, source, describe_source(source)
    probe = None
    if file_source is not None:
        if is_avi(file_source):
            # torchcodec seeks AVI by its decode-order timestamps and lands on other frames than a sequential decode
            # numbers (measured on the shared AVI clips: 21% of sampled pixels differ). PyAV counts frames exactly.
            logger.warning_once(
                "video_backend='torchcodec' does not seek AVI files exactly; AVI files are decoded with PyAV instead."
            )
            return read_video_pyav(file_source, sample_indices_fn, threading)
        # The container checks PyAV's reader makes, with its messages: torchcodec takes a PNG as a one-frame video and
        # answers a JPEG or an audio-only file with internal errors ("This should never happen...").
        probe = probe_video_file(file_source)
        if not probe.starts_with_key_frame:
            # Frames before the first key frame do not decode; torchcodec repeats later frames in their place.
            logger.warning_once(
                f"Video {label} starts before its first key frame, which torchcodec does not decode exactly; such "
                "files are decoded with PyAV instead."
            )
            return read_video_pyav(file_source, sample_indices_fn, threading)
    if decoder is None:
        decoder, label = _open_torchcodec_decoder(_torchcodec_video_decoder_class(), source)
    return _decode_with_torchcodec(decoder, label, probe, sample_indices_fn)


def _decode_with_torchcodec(
    decoder: Any, label: str, probe: VideoProbe | None, sample_indices_fn
) -> tuple[np.ndarray, list[float | None], list[int], dict[str, Any]]:
    """Samples and decodes with an open `VideoDecoder`, then turns frames as the probe's display matrix says."""
    metadata = decoder.metadata
    fps = _torchcodec_fps(metadata, probe)
    try:
        num_total = len(decoder)
        check_against_header(label, _torchcodec_announced_frames(metadata, probe), num_total)
        indices = _checked_indices(_ask_sampler(sample_indices_fn, num_total, fps), num_total, label)
        batch = decoder.get_frames_at(indices=indices)
    except RuntimeError as error:
        raise ValueError(f"torchcodec could not decode video {label}: {error}") from None
    rgb = _channels_last(batch.data, metadata).cpu().numpy()
    applied_rotation = getattr(metadata, "rotation", None)
    if probe is not None and probe.display_matrix is not None:
        orientation = orientation_from_display_matrix(probe.display_matrix, label)
        rgb = np.ascontiguousarray(residual_after_rotation(orientation, applied_rotation).apply(rgb, batched=True))
    else:
        orientation = Orientation(rotation=(round((applied_rotation or 0) / 90) % 4) * 90)
    info = {
        "total_num_frames": num_total,
        "fps": fps,
        "width": int(rgb.shape[2]),
        "height": int(rgb.shape[1]),
        "duration": num_total / fps if fps else None,
        "rotation": orientation.rotation,
        "mirrored": orientation.mirrored,
    }
    return rgb, batch.pts_seconds.tolist(), indices, info


def _torchcodec_fps(metadata: Any, probe: VideoProbe | None) -> float | None:
    # The header's rate, as PyAV reports it: torchcodec's `average_fps` is measured from the frames' timestamps (a
    # clip of 32 frames at 30 fps reads 29.09), so `fps=` sampling would take other frames than with PyAV.
    if probe is not None:
        return probe.fps
    return metadata.average_fps_from_header or metadata.average_fps


def _torchcodec_announced_frames(metadata: Any, probe: VideoProbe | None) -> int | None:
    """The header's frame count by the rule `index_video_stream` applies (torchcodec's own would miss cut WebMs)."""
    measured = metadata.average_fps  # what the frames present keep (torchcodec scanned them)
    if probe is not None:
        return frames_announced(probe.header_frames, probe.duration, probe.fps, measured)
    seconds = metadata.duration_seconds_from_header
    duration = AnnouncedDuration(float(seconds)) if seconds else None
    return frames_announced(metadata.num_frames_from_header, duration, metadata.average_fps_from_header, measured)


def _channels_last(data: Any, metadata: Any) -> Any:
    """
    Frames `(N, H, W, C)` from a batch in either of torchcodec's dimension orders: a decoder built with
    `dimension_order="NHWC"` (as datasets' `Video(dimension_order=...)` builds) returns them so already.
    """
    sizes = {(metadata.height, metadata.width), (metadata.width, metadata.height)}  # turned frames swap them
    if tuple(data.shape[1:3]) in sizes and tuple(data.shape[2:4]) not in sizes:
        return data
    return data.permute(0, 2, 3, 1)


def torchcodec_decoder_file(decoder: Any) -> Any:
    """
    The file a datasets `Video` cell's `VideoDecoder` was built from (datasets keeps it as `_hf_encoded`): its
    bytes, or its path where that is a local file; None for a decoder built elsewhere.
    """
    encoded = getattr(decoder, "_hf_encoded", None)
    if not isinstance(encoded, dict):
        return None
    if encoded.get("bytes"):
        return encoded["bytes"]
    path = encoded.get("path")
    return path if isinstance(path, (str, os.PathLike)) and os.path.isfile(path) else None


@dataclass
class VideoProbe:
    """What PyAV reads from a file's header and first frame, for the torchcodec backend."""

    display_matrix: np.ndarray | None
    fps: float | None
    header_frames: int | None
    duration: AnnouncedDuration | None
    starts_with_key_frame: bool = True


def probe_video_file(source: Any) -> VideoProbe:
    """
    Checks a file source as [`read_video_pyav`] does before decoding (it exists, opens, has a video stream, is not a
    still image), raising the same one-line errors, and reads with PyAV what torchcodec reports differently or not
    at all: the display matrix of the first frame (torchcodec reports only its angle), the header's frame rate,
    frame count and duration, and whether the stream starts with a key frame. A frame that fails to decode is left
    to the decoder that reads the file next to report. A file object is left where it was.

    Raises:
        `FileNotFoundError`: the path does not exist.
        `ValueError`: the source is empty, unreadable, has no video stream or is a still image.
    """
    import av

    label = describe_source(source)
    position = source.tell() if hasattr(source, "tell") and hasattr(source, "seek") else None
    try:
        with open_video_container(source) as container:
            stream = _first_video_stream(container, label)
            duration = _duration_beside_count(container, stream)
            probe = VideoProbe(None, stream_fps(stream), int(stream.frames) or None, duration)
            try:
                probe.starts_with_key_frame, probe.display_matrix = _first_frame_facts(container, stream)
                if duration is not None and duration.whole_container:
                    probe.duration = _unless_other_streams_fill(container, stream, duration)
            except av.error.FFmpegError:
                pass
            return probe
    finally:
        if position is not None:
            source.seek(position)


def _first_frame_facts(container: Any, stream: Any) -> tuple[bool, np.ndarray | None]:
    """Whether the stream's first packet is a key frame, and the display matrix of its first decoded frame."""
    starts_with_key_frame = None
    for packet in container.demux(stream):
        if starts_with_key_frame is None and packet.size:
            starts_with_key_frame = bool(packet.is_keyframe)
        for frame in stream.decode(packet if packet.size else None):
            return bool(starts_with_key_frame), frame_display_matrix(frame)
    return starts_with_key_frame is not False, None


def _unless_other_streams_fill(container: Any, stream: Any, duration: AnnouncedDuration) -> AnnouncedDuration | None:
    """A container-wide duration, or None where the other streams fill it (a whole file; see announced_frame_count)."""
    container.seek(0, backward=True, any_frame=False)
    others = _OtherStreamsEnd(container)
    for packet in container.demux(*[other for other in container.streams if other.index != stream.index]):
        others.add(packet)
    return None if others.end >= MIN_PRESENT_SHARE * duration.seconds else duration


def probe_display_matrix(source: Any) -> np.ndarray | None:
    """The display matrix of the first video frame, read with PyAV, after the checks of [`probe_video_file`]."""
    return probe_video_file(buffer_unseekable(source)).display_matrix


def select_video_reader(source: Any, backend: str) -> tuple[str, Callable]:
    """
    The backend that decodes a file source and its reader (same contract for all): a frame folder (a video decoded
    once into JPEGs, `video_frame_folders`) is read from its JPEGs, and a torchcodec `VideoDecoder` (datasets'
    decoding `Video` cells) by torchcodec, whatever was asked; otherwise `backend`.
    """
    from .video_frame_folders import is_frame_folder, read_frame_folder  # it builds on this module

    if is_frame_folder(source):
        return "frames", read_frame_folder
    if is_torchcodec_decoder(source) or backend == "torchcodec":
        return "torchcodec", read_video_torchcodec
    return "pyav", read_video_pyav


def _torchcodec_video_decoder_class() -> type:
    """torchcodec's `VideoDecoder`, or an `ImportError` saying what to install."""
    try:
        from torchcodec.decoders import VideoDecoder
    except (ImportError, RuntimeError):  # RuntimeError: torchcodec present but FFmpeg's libraries are not
        raise ImportError(
            "video_backend='torchcodec' needs the torchcodec package and FFmpeg's shared libraries: `make install` "
            "(or `pip install torchcodec` plus your system's FFmpeg 4-7 libraries), or use video_backend='pyav'."
        ) from None
    return VideoDecoder


def _open_torchcodec_decoder(VideoDecoder: type, source: Any) -> tuple[Any, str]:
    # `probe_display_matrix` has already checked the source (a missing path, no video stream, a still image).
    label = describe_source(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = bytes(source)
    try:
        return VideoDecoder(str(source) if isinstance(source, os.PathLike) else source, seek_mode="exact"), label
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"torchcodec could not open video {label}: {error}") from None


