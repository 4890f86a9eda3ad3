# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Frames as a player shows them: the container's display matrix turns decoded frames, for every backend."""

from __future__ import annotations

import logging
import math
import struct
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from omniclip_hf.video_decoding import read_video_pyav
from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor


VIDEOS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
ROTATED_CLIP = VIDEOS_DIR / "askanything_yoga_rotated90.mp4"
SMALL_CLIP = VIDEOS_DIR / "mmaction2_rawvideo_part_0.mp4"  # 340x256, 32 frames

pytestmark = pytest.mark.skipif(not VIDEOS_DIR.is_dir(), reason=f"shared test videos not found at {VIDEOS_DIR}")


def stored_frames(path: Path, keep: list[int]) -> tuple[dict[int, np.ndarray], float]:
    """The reference: a full sequential decode with plain PyAV, frames as stored, and the angle PyAV reports."""
    kept, rotation = {}, 0.0
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            rotation = frame.rotation
            if index in keep:
                kept[index] = frame.to_ndarray(format="rgb24")
    return kept, rotation


def with_display_matrix(source: Path, target: Path, a: float, b: float, c: float, d: float) -> Path:
    """
    Copies an MP4 with the display matrix [a, b, 0; c, d, 0; 0, 0, 1] in its track header (16.16 fixed point, the
    order FFmpeg reads: a stored pixel (x, y) shows at (a x + c y, b x + d y)).
    """
    data = bytearray(source.read_bytes())
    box = data.find(b"tkhd")
    assert box > 0 and data.count(b"tkhd") == 1 and data[box + 4] == 0, "expects one version-0 track header"
    matrix_offset = box + 4 + 24 + 16  # type, version/flags/times/track id/duration, reserved/layer/group/volume
    a, b, c, d = (round(value * 65536) for value in (a, b, c, d))
    data[matrix_offset : matrix_offset + 36] = struct.pack(">9i", a, b, 0, c, d, 0, 0, 0, 1 << 30)
    target.write_bytes(bytes(data))
    return target


def with_display_rotation(source: Path, target: Path, clockwise_degrees: float) -> Path:
    """
    Copies an MP4 with a display matrix in its track header that tells players to turn it `clockwise_degrees`
    (the matrix [cos, sin, 0; -sin, cos, 0; 0, 0, 1] that phones write).
    """
    radians = math.radians(clockwise_degrees)
    return with_display_matrix(source, target, math.cos(radians), math.sin(radians), -math.sin(radians), math.cos(radians))


# The four display matrices with a mirror (determinant -1), and the stored frame as a player shows it under each,
# written out by hand from FFmpeg's definition (x, y) -> (a x + c y, b x + d y): what `ffmpeg` itself does with
# them (hflip; vflip; transpose=cclock_flip; transpose=clock_flip).
MIRRORS = {
    "mirrored": ((-1, 0, 0, 1), lambda frame: frame[:, ::-1]),
    "upside_down_mirrored": ((1, 0, 0, -1), lambda frame: frame[::-1]),
    "transposed": ((0, 1, 1, 0), lambda frame: frame.transpose(1, 0, 2)),
    "anti_transposed": ((0, -1, -1, 0), lambda frame: frame[::-1, ::-1].transpose(1, 0, 2)),
}


def raw_pixels(**kwargs) -> OmniCLIPVideoProcessor:
    return OmniCLIPVideoProcessor(do_resize=False, do_center_crop=False, do_rescale=False, do_normalize=False, **kwargs)


def test_shared_rotated_clip_comes_out_turned_by_the_angle_pyav_reports():
    indices = [0, 37, 150, 299]
    reference, rotation = stored_frames(ROTATED_CLIP, set(indices))
    assert rotation == -90  # what the videos README says; the test means nothing without it
    frames, _, _, info = read_video_pyav(str(ROTATED_CLIP), lambda total: indices)
    for position, index in enumerate(indices):
        upright = np.rot90(reference[index], k=round(rotation / 90))  # counter-clockwise by the reported angle
        np.testing.assert_array_equal(frames[position], upright, err_msg=f"frame {index}")
    stored_height, stored_width = reference[0].shape[:2]
    assert (info["width"], info["height"]) == (stored_height, stored_width) == (320, 568)

    output = raw_pixels(num_frames=4)(str(ROTATED_CLIP), return_tensors="pt", return_metadata=True)
    metadata = output["video_metadata"][0]
    assert (metadata.width, metadata.height) == (320, 568)
    for position, index in enumerate(metadata.frames_indices[0]):
        pixels = output["pixel_values_videos"][0, position].permute(1, 2, 0).numpy()
        upright = np.rot90(reference.get(index, stored_frames(ROTATED_CLIP, {index})[0][index]), k=-1)
        np.testing.assert_array_equal(pixels, upright.astype(np.float32))


def test_rotation_is_applied_before_resizing_and_cropping():
    # A portrait clip resized and centre-cropped: the same as turning first, then the usual evaluation transforms.
    processor = OmniCLIPVideoProcessor(num_frames=2)
    turned = processor(str(ROTATED_CLIP), return_tensors="pt", return_metadata=True)
    indices = turned["video_metadata"][0].frames_indices[0]
    reference, _ = stored_frames(ROTATED_CLIP, set(indices))
    upright = np.stack([np.ascontiguousarray(np.rot90(reference[index], k=-1)) for index in indices])
    expected = processor(upright, return_tensors="pt")["pixel_values_videos"]
    torch.testing.assert_close(turned["pixel_values_videos"], expected, rtol=0, atol=0)


@pytest.mark.parametrize("clockwise", [90, 180, 270])
def test_clips_written_with_each_rotation(tmp_path, clockwise):
    path = with_display_rotation(SMALL_CLIP, tmp_path / f"turned_{clockwise}.mp4", clockwise)
    indices = [0, 5, 17, 31]
    reference, rotation = stored_frames(path, set(indices))
    assert round(rotation) % 360 == (-clockwise) % 360
    frames, _, _, info = read_video_pyav(str(path), lambda total: indices)
    for position, index in enumerate(indices):
        np.testing.assert_array_equal(frames[position], np.rot90(reference[index], k=-clockwise // 90))
    expected_size = (256, 340) if clockwise in (90, 270) else (340, 256)
    assert (info["width"], info["height"]) == expected_size
    assert info["rotation"] == (-clockwise) % 360


def test_unrotated_clip_is_unchanged():
    indices = [0, 16, 31]
    reference, rotation = stored_frames(SMALL_CLIP, set(indices))
    assert rotation == 0
    frames, _, _, info = read_video_pyav(str(SMALL_CLIP), lambda total: indices)
    for position, index in enumerate(indices):
        np.testing.assert_array_equal(frames[position], reference[index])
    assert (info["width"], info["height"], info["rotation"]) == (340, 256, 0)


def test_rotation_between_quarter_turns_takes_the_nearest_and_says_so_once(tmp_path, caplog):
    path = with_display_rotation(SMALL_CLIP, tmp_path / "tilted.mp4", 100)  # nearest quarter turn: 90 clockwise
    reference, rotation = stored_frames(path, {0})
    assert -101 <= rotation <= -99  # PyAV rounds the matrix angle to whole degrees
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            frames, _, _, _ = read_video_pyav(str(path), lambda total: [0])
    np.testing.assert_array_equal(frames[0], np.rot90(reference[0], k=-1))
    said = [record.getMessage() for record in caplog.records if "tilted.mp4" in record.getMessage()]
    # The angle the file asks for, read from its matrix (PyAV's `frame.rotation` truncates it to whole degrees).
    assert len(said) == 1 and "nearest multiple of 90" in said[0] and "rotation of -100 degrees" in said[0]


def test_bytes_and_file_objects_are_turned_too():
    indices = [3, 200]
    from_path, _, _, _ = read_video_pyav(str(ROTATED_CLIP), lambda total: indices)
    from_bytes, _, _, _ = read_video_pyav(ROTATED_CLIP.read_bytes(), lambda total: indices)
    with ROTATED_CLIP.open("rb") as handle:
        from_file, _, _, _ = read_video_pyav(handle, lambda total: indices)
    assert from_path.shape[1:] == (568, 320, 3)
    np.testing.assert_array_equal(from_bytes, from_path)
    np.testing.assert_array_equal(from_file, from_path)


@pytest.mark.parametrize("name", sorted(MIRRORS))
def test_mirrored_display_matrices_are_applied(tmp_path, name):
    matrix, as_displayed = MIRRORS[name]
    path = with_display_matrix(SMALL_CLIP, tmp_path / f"{name}.mp4", *matrix)
    indices = [0, 5, 17, 31]
    reference, rotation = stored_frames(path, set(indices))
    frames, _, _, info = read_video_pyav(str(path), lambda total: indices)
    for position, index in enumerate(indices):
        np.testing.assert_array_equal(frames[position], as_displayed(reference[index]), err_msg=f"frame {index}")
    # PyAV's angle alone would turn a mirrored clip (a horizontal mirror reads as 180 degrees, an upside-down
    # mirror as 0): the test means something only where that differs from the mirror.
    turned_only = np.rot90(reference[0], k=round(rotation / 90))
    assert turned_only.shape != frames[0].shape or not np.array_equal(turned_only, frames[0])
    transposed = matrix[0] == 0
    assert (info["width"], info["height"]) == ((256, 340) if transposed else (340, 256))
    assert info["mirrored"] is True

    output = raw_pixels(num_frames=4)(str(path), return_tensors="pt", return_metadata=True)
    metadata = output["video_metadata"][0]
    assert (metadata.width, metadata.height) == (info["width"], info["height"])
    for position, index in enumerate(metadata.frames_indices[0]):
        pixels = output["pixel_values_videos"][0, position].permute(1, 2, 0).numpy()
        stored = stored_frames(path, {index})[0][index]
        np.testing.assert_array_equal(pixels, as_displayed(stored).astype(np.float32))


def test_mirror_is_applied_before_resizing_and_cropping(tmp_path):
    matrix, as_displayed = MIRRORS["transposed"]
    path = with_display_matrix(SMALL_CLIP, tmp_path / "transposed.mp4", *matrix)
    processor = OmniCLIPVideoProcessor(num_frames=3, num_spatial_crops=3)
    shown = processor(str(path), return_tensors="pt", return_metadata=True)
    indices = shown["video_metadata"][0].frames_indices[0]
    reference, _ = stored_frames(path, set(indices))
    displayed = np.stack([np.ascontiguousarray(as_displayed(reference[index])) for index in indices])
    expected = processor(displayed, return_tensors="pt")["pixel_values_videos"]
    torch.testing.assert_close(shown["pixel_values_videos"], expected, rtol=0, atol=0)


def test_unrotated_clip_reports_no_mirror():
    _, _, _, info = read_video_pyav(str(SMALL_CLIP), lambda total: [0])
    assert (info["rotation"], info["mirrored"]) == (0, False)


def test_mirror_with_an_angle_between_quarter_turns_keeps_the_mirror(tmp_path, caplog):
    # A horizontal mirror followed by a 100-degree clockwise turn: mirrored, then turned by the nearest quarter (90).
    theta = math.radians(-100)
    path = with_display_matrix(
        SMALL_CLIP, tmp_path / "mirrored_tilted.mp4", -math.cos(theta), math.sin(theta), math.sin(theta), math.cos(theta)
    )
    reference, _ = stored_frames(path, {0})
    with caplog.at_level(logging.WARNING):
        frames, _, _, info = read_video_pyav(str(path), lambda total: [0])
    np.testing.assert_array_equal(frames[0], np.rot90(reference[0][:, ::-1], k=-1))
    assert (info["rotation"], info["mirrored"]) == (270, True)
    assert any("rotation of -100 degrees" in record.getMessage() for record in caplog.records)
