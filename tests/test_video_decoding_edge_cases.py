# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""
Files the decoders met in the wild and got wrong: streams that start before their first key frame, headers whose
duration is not the video's (audio longer than video, variable frame rate, a late start, an MP4 edit list), the
frame rate each backend reports, datasets' AVI decoders, file objects that cannot seek, channels-last torchcodec
decoders and cover art taken for video. Clips are written with PyAV into `tmp_path`, a few dozen tiny frames each.
"""

from __future__ import annotations

import fractions
import os
import struct
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from omniclip_hf.video_decoding import (
    _decode_by_pts,
    _first_video_stream,
    _RGBConverter,
    index_video_stream,
    read_video_pyav,
    read_video_torchcodec,
)
from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor

from .test_video_torchcodec import CLIPS, SMALL_CLIP, VIDEOS_DIR, video_decoder_class  # noqa: F401 (fixture)

AVI_CLIP = VIDEOS_DIR / "mmaction2_tests_test.avi"
needs_videos = pytest.mark.skipif(not VIDEOS_DIR.is_dir(), reason=f"shared test videos not found at {VIDEOS_DIR}")


# ------------------------------------------------------------------------------------------------ clip writers
WIDTH, HEIGHT = 64, 48


def frame_image(i: int) -> np.ndarray:
    """Frame `i`: its red level and the width of a green bar (i + 1 pixels) say which frame it is."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[..., 0] = (i * 5) % 256
    image[:, : (i % WIDTH) + 1, 1] = 255
    return image


def write_clip(
    path: Path,
    num_frames: int = 24,
    rate: int = 24,
    codec: str = "libx264",
    options: dict | None = None,
    audio_seconds: float | None = None,
    frame_pts: list[int] | None = None,
    drop_first_packets: int = 0,
    container_options: dict | None = None,
) -> Path:
    """A clip of `frame_image` frames; `frame_pts` in milliseconds for variable rates or a late start."""
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"bf": "0", **(options or {})} if codec == "libx264" else (options or {})
        if frame_pts is not None:
            stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        audio = container.add_stream("libopus" if path.suffix in (".webm", ".mkv") else "aac", rate=48000) if (
            audio_seconds
        ) else None
        packets = []
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_image(i), format="rgb24")
            if frame_pts is not None:
                frame.pts, frame.time_base = frame_pts[i], fractions.Fraction(1, 1000)
            packets += stream.encode(frame)
        packets += stream.encode()
        for packet in packets[drop_first_packets:]:
            container.mux(packet)
        if audio is not None:
            _write_silence(container, audio, audio_seconds)
    return path


def _write_silence(container, audio, seconds: float) -> None:
    done, total = 0, int(seconds * 48000)
    while done < total:
        samples = min(960, total - done)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, done
        container.mux(audio.encode(frame))
        done += samples
    container.mux(audio.encode())


def sequential_decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def ends_and_middle(total: int) -> list[int]:
    return [0, 1, total // 2, total - 1]


def assert_sequential_frames(path, frames, indices, info) -> None:
    reference = sequential_decode(path)
    assert info["total_num_frames"] == len(reference)
    for position, index in enumerate(indices):
        np.testing.assert_array_equal(frames[position], reference[index])


# ------------------------------------------------------------------ A. streams that start before a key frame
@pytest.fixture(scope="module", params=["mp4", "mkv"])
def starts_with_p(request, tmp_path_factory):
    # A clip cut out of a longer one without re-encoding: its first packets (a key frame and 4 P-frames) are gone,
    # so the file starts with P-frames whose references are missing.
    path = tmp_path_factory.mktemp("starts_with_p") / f"starts_with_p.{request.param}"
    options = {"g": "10", "keyint_min": "10", "sc_threshold": "0"}
    write_clip(path, num_frames=40, rate=25, options=options, drop_first_packets=5)
    with av.open(str(path)) as container:
        packets = [packet for packet in container.demux(video=0) if packet.size]
    assert len(packets) == 35 and not packets[0].is_keyframe
    assert len(sequential_decode(path)) < len(packets)  # the leading P-frames do not decode
    return path


def test_stream_starting_with_p_frames_decodes_as_a_sequential_decode(starts_with_p):
    # Used to fail with "corrupt or truncated: ... 'Operation not permitted'" (mp4: the seek found no key frame)
    # or "... 'End of file'" (mkv: the decoder flushed twice).
    frames, _, indices, info = read_video_pyav(str(starts_with_p), ends_and_middle)
    assert_sequential_frames(starts_with_p, frames, indices, info)


def test_exact_seek_gives_up_quietly_for_the_in_order_decode(starts_with_p):
    # The seek refused (no key frame before frame 0) and the end-of-stream flush done once: what did not decode is
    # missing from the result, which sends read_video_pyav to its in-order decode, instead of an FFmpeg error.
    label = str(starts_with_p)
    with av.open(label) as container:
        stream = _first_video_stream(container, label)
        index = index_video_stream(container, stream, label)
        decoded = _decode_by_pts(container, stream, index, [0, index.num_frames - 1], _RGBConverter(label))
    assert len(decoded) < 2


def test_torchcodec_hands_streams_starting_with_p_frames_to_pyav(video_decoder_class, starts_with_p):
    # torchcodec repeated later frames for the leading undecodable ones (mkv) or failed to seek (mp4).
    frames, _, indices, info = read_video_torchcodec(str(starts_with_p), ends_and_middle)
    assert_sequential_frames(starts_with_p, frames, indices, info)


# --------------------------------------------------------------------- B. what the header announces
def _with_edit_list(path: Path, skipped_frames: int, rate: int) -> Path:
    """The MP4 with its edit list changed to hide its first `skipped_frames` frames (as a trimmed phone clip)."""
    data = bytearray(path.read_bytes())
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        track_scale, total = 1 / stream.time_base, stream.frames
    movie_scale = struct.unpack_from(">I", data, data.find(b"mvhd") + 16)[0]  # version 0 mvhd
    shown = total - skipped_frames
    elst = data.find(b"elst")
    struct.pack_into(
        ">II", data, elst + 12, round(shown * movie_scale / rate), round(skipped_frames * track_scale / rate)
    )
    path.write_bytes(bytes(data))
    return path


HEADER_CASES = {
    # the segment's duration covers the longer audio track (2 s); the video's own lasts 1 s
    "audio_longer.webm": dict(codec="libvpx", audio_seconds=2.0),
    "audio_longer.mkv": dict(audio_seconds=2.0),
    # 20 frames at 10 fps, then 20 at 40 fps: the header's rate is that of the fast part
    "variable_rate.mkv": dict(num_frames=40, rate=40, frame_pts=[i * 100 if i < 20 else 2000 + (i - 20) * 25
                                                                 for i in range(40)]),
    # the first frame shows at 2 s: the DURATION tag is the track's end time, 3 s
    "late_start.mkv": dict(frame_pts=[2000 + i * 1000 // 24 for i in range(24)]),
}


@pytest.mark.parametrize("name", sorted(HEADER_CASES))
def test_valid_files_whose_header_duration_is_not_the_videos_are_not_called_truncated(
    video_decoder_class, tmp_path, name
):
    path = write_clip(tmp_path / name, **HEADER_CASES[name])
    for reader in (read_video_pyav, read_video_torchcodec):
        frames, _, indices, info = reader(str(path), ends_and_middle)
        assert_sequential_frames(path, frames, indices, info)


def test_mp4_with_an_edit_list_is_not_called_truncated(video_decoder_class, tmp_path):
    # The header's frame count includes the 10 samples the edit list hides; the stream's duration does not.
    path = write_clip(tmp_path / "trimmed.mp4", num_frames=40, rate=25, options={"g": "25"})
    _with_edit_list(path, skipped_frames=10, rate=25)
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 40
    assert len(sequential_decode(path)) == 30
    for reader in (read_video_pyav, read_video_torchcodec):
        frames, _, indices, info = reader(str(path), ends_and_middle)
        assert_sequential_frames(path, frames, indices, info)


def test_webm_cut_in_half_is_truncated_for_both_backends(video_decoder_class, tmp_path):
    # Noise frames, so that bytes and frames are spread alike; torchcodec used to accept the cut file silently.
    path = tmp_path / "noise.webm"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx", rate=24)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(48):
            image = np.random.default_rng(i).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    data = path.read_bytes()
    cut = tmp_path / "half.webm"
    cut.write_bytes(data[: len(data) // 2])
    with av.open(str(cut)) as container:
        assert sum(1 for packet in container.demux(video=0) if packet.size) < 0.9 * 48
    for reader in (read_video_pyav, read_video_torchcodec):
        with pytest.raises(ValueError, match="half.webm is truncated: its header announces 48 frames"):
            reader(str(cut), ends_and_middle)


# ------------------------------------------------------------------------------- C. the frame rate
def fps_sampler(total: int, fps: float | None = None) -> list[int]:
    """Two frames a second, as `fps=` sampling takes them: which frames depends on the rate reported."""
    step = fps / 2 if fps else 1
    return sorted({min(total - 1, round(k * step)) for k in range(int(total / step) + 1)})


@needs_videos
@pytest.mark.parametrize("name", CLIPS)
def test_backends_report_the_same_frame_rate(video_decoder_class, name):
    path = str(VIDEOS_DIR / name)
    _, _, pyav_indices, pyav_info = read_video_pyav(path, fps_sampler)
    _, _, codec_indices, codec_info = read_video_torchcodec(path, fps_sampler)
    assert codec_info["fps"] == pytest.approx(pyav_info["fps"])
    assert codec_info["duration"] == pytest.approx(pyav_info["duration"])
    assert codec_indices == pyav_indices


@needs_videos
def test_fps_sampling_takes_as_many_frames_with_either_backend(video_decoder_class):
    # torchcodec measured 29.09 fps (1.1 s) on this 30 fps clip of 32 frames, where PyAV reads 30 (1.067 s).
    processor = OmniCLIPVideoProcessor(do_resize=False, do_center_crop=False)
    outputs = [
        processor(str(SMALL_CLIP), fps=29, backend=backend, return_tensors="pt", return_metadata=True)
        for backend in ("pyav", "torchcodec")
    ]
    assert outputs[1]["pixel_values_videos"].shape == outputs[0]["pixel_values_videos"].shape
    assert outputs[1]["video_metadata"][0].fps == outputs[0]["video_metadata"][0].fps == 30


# ------------------------------------------------------------------------ D. datasets' decoders of AVI files
@needs_videos
def test_datasets_video_cell_of_an_avi_gives_the_paths_frames(video_decoder_class):
    from datasets import Dataset, Features, Video

    dataset = Dataset.from_dict({"video": [str(AVI_CLIP)]}, features=Features({"video": Video()}))
    cell = dataset[0]["video"]
    assert type(cell).__name__ == "VideoDecoder"
    indices = [3, 40, 81, 122, 160]
    expected, _, _, _ = read_video_pyav(str(AVI_CLIP), lambda total: indices)
    frames, _, _, _ = read_video_torchcodec(cell, lambda total: indices)
    np.testing.assert_array_equal(frames, expected)


# ------------------------------------------------------------------------- E. file objects that cannot seek
@needs_videos
@pytest.mark.parametrize("clip", [SMALL_CLIP, AVI_CLIP], ids=lambda path: path.suffix)
@pytest.mark.parametrize("backend", ["pyav", "torchcodec"])
def test_a_pipe_decodes_as_the_file(video_decoder_class, clip, backend):
    # An HTTP response or a pipe: used to end in io.UnsupportedOperation: seek, or a valid MP4 called corrupt.
    read, write = os.pipe()
    data = clip.read_bytes()

    def feed():
        with os.fdopen(write, "wb") as pipe:
            pipe.write(data)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    reader = read_video_pyav if backend == "pyav" else read_video_torchcodec
    with os.fdopen(read, "rb") as pipe:
        assert not pipe.seekable()
        frames, _, indices, info = reader(pipe, ends_and_middle)
    feeder.join(timeout=10)
    expected, _, expected_indices, expected_info = read_video_pyav(str(clip), ends_and_middle)
    assert indices == expected_indices and info["total_num_frames"] == expected_info["total_num_frames"]
    np.testing.assert_array_equal(frames, expected)


# -------------------------------------------------------------------------- F. channels-last torchcodec decoders
@needs_videos
def test_channels_last_torchcodec_decoder(video_decoder_class):
    expected, _, _, _ = read_video_torchcodec(video_decoder_class(str(SMALL_CLIP)), ends_and_middle)
    frames, _, _, info = read_video_torchcodec(
        video_decoder_class(str(SMALL_CLIP), dimension_order="NHWC"), ends_and_middle
    )
    assert (info["width"], info["height"]) == (340, 256)
    np.testing.assert_array_equal(frames, expected)


# -------------------------------------------------------------------------------- G. cover art is no video
def test_audio_file_with_cover_art_has_no_video_stream(video_decoder_class, tmp_path):
    path = tmp_path / "song_with_cover.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        audio = container.add_stream("aac", rate=48000)
        cover = container.add_stream("mjpeg")
        cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        container.mux(cover.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")))
        container.mux(cover.encode())
        _write_silence(container, audio, 1.0)
    for reader in (read_video_pyav, read_video_torchcodec):
        with pytest.raises(ValueError, match=r"song_with_cover.m4a has no video stream \(its streams: audio, cover"):
            reader(str(path), ends_and_middle)


@pytest.mark.parametrize("name", sorted(HEADER_CASES))
def test_frame_folders_of_valid_files_whose_header_duration_is_not_the_videos(tmp_path, name):
    """Extraction read the header's duration and rate alone: a variable-rate MKV was refused as truncated though
    both readers decode it; it counts as the readers do now."""
    from omniclip_hf.video_frame_folders import write_frame_folder

    path = write_clip(tmp_path / name, **HEADER_CASES[name])
    manifest = write_frame_folder(str(path), tmp_path / "frames", short_side=32)
    assert manifest["num_frames"] == len(sequential_decode(path))
