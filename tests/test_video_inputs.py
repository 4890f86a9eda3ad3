# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Inputs that used to give silent wrong results: pixel scales, non-finite values, lying headers, odd shapes."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor


REPO_ROOT = Path(__file__).resolve().parents[1]
VIDEOS_DIR = REPO_ROOT.parent / "shared" / "videos"
AVI_CLIP = VIDEOS_DIR / "mmaction2_tests_test.avi"  # 164 frames, 25 fps
WEBM_CLIP = VIDEOS_DIR / "moviepy_big_buck_bunny_432_433.webm"  # 24 frames, no frame count in the header

needs_videos = pytest.mark.skipif(not VIDEOS_DIR.is_dir(), reason=f"shared test videos not found at {VIDEOS_DIR}")


def unnormalised(**kwargs) -> OmniCLIPVideoProcessor:
    """Frames kept at 224 px (no resizing), rescaled to [0, 1], not normalised: what the scale decision affects."""
    return OmniCLIPVideoProcessor(num_frames=4, do_resize=False, do_normalize=False, **kwargs)


@pytest.fixture(scope="module")
def video_uint8() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(6, 224, 224, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ pixel scales
def test_float_frames_in_0_1_are_not_divided_by_255_again(video_uint8):
    expected = unnormalised()(video_uint8, return_tensors="pt")["pixel_values_videos"]
    as_unit_floats = (video_uint8 / 255.0).astype(np.float32)
    got = unnormalised()(as_unit_floats, return_tensors="pt")["pixel_values_videos"]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    as_tensor = torch.from_numpy(as_unit_floats).permute(0, 3, 1, 2)
    torch.testing.assert_close(unnormalised()(as_tensor, return_tensors="pt")["pixel_values_videos"], expected,
                               rtol=0, atol=1e-6)


def test_float_frames_in_0_255_are_rescaled(video_uint8):
    expected = unnormalised()(video_uint8, return_tensors="pt")["pixel_values_videos"]
    got = unnormalised()(video_uint8.astype(np.float64), return_tensors="pt")["pixel_values_videos"]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_uint16_and_bool_frames_are_converted_to_their_real_scale(video_uint8):
    expected = unnormalised()(video_uint8, return_tensors="pt")["pixel_values_videos"]
    sixteen_bit = video_uint8.astype(np.uint16) * 257  # 255 -> 65535
    torch.testing.assert_close(unnormalised()(sixteen_bit, return_tensors="pt")["pixel_values_videos"], expected,
                               rtol=0, atol=1e-6)
    mask = video_uint8 > 127
    black_white = unnormalised()(mask, return_tensors="pt")["pixel_values_videos"]
    as_uint8 = unnormalised()(mask.astype(np.uint8) * 255, return_tensors="pt")["pixel_values_videos"]
    torch.testing.assert_close(black_white, as_uint8, rtol=0, atol=0)
    assert black_white.max() == 1.0


@pytest.mark.parametrize(
    "make, phrase",
    [
        (lambda v: np.where(v > 250, np.nan, v / 255.0).astype(np.float32), "NaN or infinite"),
        (lambda v: np.where(v > 250, np.inf, v / 255.0), "NaN or infinite"),
        (lambda v: v / 255.0 - 0.5, "already normalised"),
        (lambda v: v.astype(np.int32) * 4, "integer frames must hold 0..255"),
    ],
)
def test_values_no_scale_explains_are_refused(video_uint8, make, phrase):
    with pytest.raises(ValueError, match=phrase) as excinfo:
        OmniCLIPVideoProcessor(num_frames=4)(make(video_uint8), return_tensors="pt")
    assert "\n" not in str(excinfo.value)


def test_empty_frames_and_zero_sizes_are_refused():
    with pytest.raises(ValueError, match="empty frames"):
        OmniCLIPVideoProcessor(num_frames=4)(np.zeros((4, 0, 0, 3), np.uint8))
    with pytest.raises(ValueError, match="size=.*shortest_edge must be an integer >= 1"):
        OmniCLIPVideoProcessor(size={"shortest_edge": 0})
    with pytest.raises(ValueError, match="crop_size=.*width must be an integer >= 1"):
        OmniCLIPVideoProcessor(num_frames=4)(np.zeros((4, 8, 8, 3), np.uint8), crop_size={"height": 8, "width": 0})


def test_memory_follows_the_output_size_for_extreme_aspect_ratios():
    # A 2x8192 frame with its short side resized to 224 would be 224x917504 (about 4 GiB as float for 8 frames).
    script = (
        "import resource, numpy as np, torch\n"
        "from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor\n"
        "processor = OmniCLIPVideoProcessor(num_frames=8)\n"
        "processor(np.zeros((2, 16, 16, 3), np.uint8))\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "video = np.random.default_rng(0).integers(0, 256, (8, 2, 8192, 3), dtype=np.uint8)\n"
        "out = processor(video, return_tensors='pt')['pixel_values_videos']\n"
        "assert out.shape == (1, 8, 3, 224, 224), out.shape\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    grown_mib = int(result.stdout.strip().splitlines()[-1])
    assert grown_mib < 256, f"preprocessing a 2x8192 clip grew memory by {grown_mib} MiB"


def test_ordinary_aspect_ratios_are_not_cut(video_uint8):
    # 21:9 frames keep their full width before the centre crop: the same pixels as resizing the whole frame.
    from torchvision.transforms.v2 import functional as tvF

    wide = np.random.default_rng(1).integers(0, 256, size=(2, 96, 224, 3), dtype=np.uint8)
    output = OmniCLIPVideoProcessor(num_frames=2, do_normalize=False, do_rescale=False)(wide, return_tensors="pt")
    frames = torch.from_numpy(wide).permute(0, 3, 1, 2)
    resized = tvF.resize(frames, [224], interpolation=tvF.InterpolationMode.BICUBIC, antialias=True)
    expected = tvF.center_crop(resized, [224, 224]).float()
    torch.testing.assert_close(output["pixel_values_videos"][0], expected, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------ sources
@needs_videos
def test_text_mode_file_object_gets_one_line():
    with open(AVI_CLIP) as handle:  # text mode by mistake
        with pytest.raises(ValueError, match=r"text mode; open it in binary mode") as excinfo:
            OmniCLIPVideoProcessor(num_frames=4)(handle)
    assert "mmaction2_tests_test.avi" in str(excinfo.value)


@pytest.mark.parametrize("suffix, image_format", [(".png", "PNG"), (".jpg", "JPEG")])
def test_image_file_is_not_a_video(tmp_path, suffix, image_format):
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(np.full((64, 80, 3), 120, np.uint8)).save(path, format=image_format)
    processor = OmniCLIPVideoProcessor(num_frames=8)
    with pytest.raises(ValueError, match="still image.*not a video") as excinfo:
        processor(str(path))
    assert path.name in str(excinfo.value)
    with pytest.raises(ValueError, match="still image"):
        processor(path.read_bytes())
    # The documented opt-in: a still passed as frames in memory.
    with Image.open(path) as image:
        still = processor([image], return_tensors="pt")["pixel_values_videos"]
    assert still.shape == (1, 8, 3, 224, 224)


# ------------------------------------------------------------------------------------------------ headers
def _with_avi_frame_count(source: Path, target: Path, count: int) -> Path:
    """Copies an AVI with every frame count in its headers (avih, the video strh, OpenDML dmlh) set to `count`."""
    data = bytearray(source.read_bytes())
    avih = data.find(b"avih")
    data[avih + 8 + 16 : avih + 8 + 20] = struct.pack("<I", count)  # dwTotalFrames
    vids = data.find(b"vids")
    data[vids + 32 : vids + 36] = struct.pack("<I", count)  # strh dwLength
    dmlh = data.find(b"dmlh")
    if dmlh > 0:
        data[dmlh + 8 : dmlh + 12] = struct.pack("<I", count)
    target.write_bytes(bytes(data))
    return target


@needs_videos
def test_avi_whose_header_undercounts_is_sampled_from_what_decodes(tmp_path):
    path = _with_avi_frame_count(AVI_CLIP, tmp_path / "undercounted.avi", 10)
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 10  # the header lies
        reference = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(reference) == 164
    processor = OmniCLIPVideoProcessor(num_frames=8, do_resize=False, do_center_crop=False, do_rescale=False,
                                       do_normalize=False)
    output = processor(str(path), return_tensors="pt", return_metadata=True)
    metadata = output["video_metadata"][0]
    assert metadata.total_num_frames == 164
    assert metadata.duration == pytest.approx(164 / 25)
    (indices,) = metadata.frames_indices
    assert indices[-1] > 150  # sampled over the whole file, not its first 10 frames
    for position, index in enumerate(indices):
        pixels = output["pixel_values_videos"][0, position].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(pixels, reference[index].astype(np.float32))


@needs_videos
def test_one_truncation_rule_for_every_container(tmp_path):
    # A WebM missing a third of its frames (16 of 24 left) used to pass a 75% rule; MP4 and AVI were held to 90%.
    data = WEBM_CLIP.read_bytes()
    cut = tmp_path / "two_thirds.webm"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    with av.open(str(cut)) as container:
        assert sum(1 for packet in container.demux(video=0) if packet.size) == 16
    with pytest.raises(ValueError, match="two_thirds.webm is truncated: its header announces 24 frames but only 16"):
        OmniCLIPVideoProcessor(num_frames=4)(str(cut))
    # The same share missing from an AVI's header count is refused with the same words.
    overcounted = _with_avi_frame_count(AVI_CLIP, tmp_path / "overcounted.avi", 246)
    with pytest.raises(ValueError, match="overcounted.avi is truncated: its header announces 246 frames but only 164"):
        OmniCLIPVideoProcessor(num_frames=4)(str(overcounted))
    # Within the tolerance (a frame or two off) a file passes.
    slightly_off = _with_avi_frame_count(AVI_CLIP, tmp_path / "slightly_off.avi", 170)
    output = OmniCLIPVideoProcessor(num_frames=4)(str(slightly_off), return_metadata=True)
    assert output["video_metadata"][0].total_num_frames == 164


def test_bytes_io_is_a_binary_file_object():
    # BytesIO has no `mode`; it must not be mistaken for a text-mode file.
    if not VIDEOS_DIR.is_dir():
        pytest.skip("shared videos missing")
    output = OmniCLIPVideoProcessor(num_frames=2)(io.BytesIO(AVI_CLIP.read_bytes()), return_tensors="pt")
    assert output["pixel_values_videos"].shape == (1, 2, 3, 224, 224)


def test_pipeline_scores_float_frames_like_the_same_uint8_frames(tiny_omniclip_dir):
    from transformers import pipeline

    import omniclip_hf  # noqa: F401  (registers the pipeline)

    classifier = pipeline("zero-shot-video-classification", model=str(tiny_omniclip_dir))
    labels = ["archery", "yoga", "surfing"]
    video = np.random.default_rng(2).integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)
    unit_floats = (video / 255.0).astype(np.float32)
    for extra in ({}, {"segment_seconds": 0.5, "video_fps": 8}):
        expected = classifier(video, candidate_labels=labels, **extra)
        got = classifier(unit_floats, candidate_labels=labels, **extra)
        black = classifier(np.zeros_like(unit_floats), candidate_labels=labels, **extra)
        windows = zip(expected, got, black) if extra else [(expected, got, black)]
        for expected_scores, got_scores, black_scores in windows:
            if extra:
                expected_scores, got_scores, black_scores = (w["labels"] for w in (expected_scores, got_scores,
                                                                                  black_scores))
            as_dict = lambda scores: {entry["label"]: entry["score"] for entry in scores}  # noqa: E731
            for label in labels:
                assert as_dict(got_scores)[label] == pytest.approx(as_dict(expected_scores)[label], abs=1e-5)
            assert max(abs(as_dict(got_scores)[l] - as_dict(black_scores)[l]) for l in labels) > 1e-4


@needs_videos
def test_pipeline_windows_cover_an_undercounted_avi(tiny_omniclip_dir, tmp_path):
    from transformers import pipeline

    import omniclip_hf  # noqa: F401  (registers the pipeline)

    path = _with_avi_frame_count(AVI_CLIP, tmp_path / "undercounted.avi", 10)
    classifier = pipeline("zero-shot-video-classification", model=str(tiny_omniclip_dir))
    windows = classifier(str(path), candidate_labels=["archery", "yoga"], segment_seconds=2.0)
    assert [window["start"] for window in windows] == pytest.approx([0.0, 2.0, 4.0, 6.0])
    assert windows[-1]["end"] == pytest.approx(164 / 25)  # 6.56 s, not the 0.4 s the header implies


@pytest.mark.parametrize(
    "video",
    [
        torch.cat([torch.full((3, 3, 4, 4), 0.5, dtype=torch.float64), torch.full((3, 3, 4, 4), 200.0, dtype=torch.float64)]),
        torch.cat([torch.zeros(3, 3, 4, 4, dtype=torch.int32), torch.full((3, 3, 4, 4), 250, dtype=torch.int32)]),
        torch.arange(6 * 3 * 16, dtype=torch.int64).reshape(6, 3, 4, 4).to(torch.uint16) * 300,
        torch.rand(6, 3, 4, 4) > 0.5,
    ],
    ids=["dark_start_of_a_0_255_float_video", "int32", "uint16", "bool"],
)
def test_pixel_scale_is_judged_on_the_whole_video_and_applied_to_the_sampled_frames(video):
    # Only the frames a clip takes are converted; the scale still comes from the whole video: the first three
    # frames of the float video alone (all 0.5) would read as already rescaled.
    from omniclip_hf.video_sources import pixel_scale_of, to_pixel_scale

    convert = pixel_scale_of(video, "test")
    sampled = [0, 2, 5]
    torch.testing.assert_close(convert(video[sampled]), to_pixel_scale(video, "test")[sampled], rtol=0, atol=0)
    if video.is_floating_point():
        torch.testing.assert_close(convert(video[:3]), video[:3].float() / 255, rtol=0, atol=0)


def test_a_list_of_2d_frames_is_one_grayscale_video(video_uint8):
    """2-D arrays or tensors are grayscale frames, as PIL "L" images are: the list was read as a batch of 2-D
    "videos" and refused as 'a numpy video must have 4 dims'."""
    expected = unnormalised()(video_uint8[..., :1], return_tensors="pt")["pixel_values_videos"]
    for frames in ([frame[..., 0] for frame in video_uint8], [torch.from_numpy(frame[..., 0]) for frame in video_uint8],
                   [Image.fromarray(frame[..., 0], mode="L") for frame in video_uint8]):
        got = unnormalised()(frames, return_tensors="pt")["pixel_values_videos"]
        assert got.shape == expected.shape == (1, 4, 3, 224, 224)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
