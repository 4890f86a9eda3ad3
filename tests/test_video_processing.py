# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""OmniCLIPVideoProcessor on the real clips of ../shared/videos: decoding, exact seeking, sampling, views, errors."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from omniclip_hf.video_processing_omniclip import (
    OmniCLIPVideoProcessor,
    read_video_pyav,
    sample_clip_indices,
)


VIDEOS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
# Frame counts of a full sequential PyAV decode (../shared/videos/README.md).
FRAME_COUNTS = {
    "askanything_hitting_baseball.mp4": 300,
    "askanything_playing_guitar.mp4": 300,
    "askanything_yoga.mp4": 300,
    "mmaction2_demo.mp4": 280,
    "mmaction2_demo_skeleton.mp4": 72,
    "mmaction2_ntu_S001C001P001R001A001_rgb.avi": 103,
    "mmaction2_rawvideo_part_0.mp4": 32,
    "mmaction2_tests_test.avi": 164,
    "mmaction2_tests_test.mp4": 300,
    "moviepy_big_buck_bunny_432_433.webm": 24,
    "moviepy_chaplin.mp4": 241,
}
CLIPS = sorted(FRAME_COUNTS)
SMALL_CLIP = "mmaction2_rawvideo_part_0.mp4"  # 340x256, 32 frames: the cheapest real file
CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)

pytestmark = pytest.mark.skipif(
    not VIDEOS_DIR.is_dir(), reason=f"shared test videos not found at {VIDEOS_DIR} (clone the repo beside shared/)"
)


def clip_path(name: str) -> Path:
    return VIDEOS_DIR / name


def full_decode(path: Path, keep: set[int]) -> dict[int, np.ndarray]:
    """The reference: decode every frame in order with plain PyAV, keep the RGB of frames whose index is in `keep`."""
    kept = {}
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in keep:
                kept[index] = frame.to_ndarray(format="rgb24")
    return kept


def raw_pixels_processor(**kwargs) -> OmniCLIPVideoProcessor:
    """A processor that returns the decoded frames untouched (no resize, crop, rescale or normalisation)."""
    settings = {"do_resize": False, "do_center_crop": False, "do_rescale": False, "do_normalize": False, **kwargs}
    return OmniCLIPVideoProcessor(**settings)


def open_fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


# ------------------------------------------------------------------------------------------------ shapes, every clip
@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("num_frames", [8, 32])
def test_every_clip_decodes_to_expected_shapes(name, num_frames):
    processor = OmniCLIPVideoProcessor(num_frames=num_frames)
    path = str(clip_path(name))
    generator = torch.Generator().manual_seed(0)

    single = processor(path, return_tensors="pt", return_metadata=True)
    assert single["pixel_values_videos"].shape == (1, num_frames, 3, 224, 224)
    assert single["pixel_values_videos"].dtype == torch.float32
    metadata = single["video_metadata"][0]
    assert metadata.total_num_frames == FRAME_COUNTS[name]
    assert len(metadata.frames_indices) == 1 and len(metadata.frames_indices[0]) == num_frames

    # Training runs crop to 112 px: augmentation cost does not depend on the clip, and the 224 px training output
    # is checked in test_training_varies_with_seed_and_is_reproducible.
    small = {"crop_size": {"height": 112, "width": 112}}
    train = processor(path, train=True, generator=generator, return_tensors="pt", **small)
    assert train["pixel_values_videos"].shape == (1, num_frames, 3, 112, 112)

    multi = processor(path, num_temporal_clips=2, num_spatial_crops=3, return_tensors="pt", return_metadata=True)
    assert multi["pixel_values_videos"].shape == (1, 6, num_frames, 3, 224, 224)
    assert len(multi["video_metadata"][0].frames_indices) == 2

    multi_train = processor(
        path, do_augment=True, num_temporal_clips=2, num_spatial_crops=3, generator=generator, return_tensors="pt",
        **small,
    )
    assert multi_train["pixel_values_videos"].shape == (1, 6, num_frames, 3, 112, 112)
    # Values lie in CLIP's normalised range: rescaled to [0, 1], then normalised with CLIP's mean and std.
    low, high = ((0 - CLIP_MEAN) / CLIP_STD).min(), ((1 - CLIP_MEAN) / CLIP_STD).max()
    values = single["pixel_values_videos"]
    assert values.min() >= low - 1e-4 and values.max() <= high + 1e-4


# ------------------------------------------------------------------------------------------------ exact seeking
@pytest.mark.parametrize("name", CLIPS)
def test_sampled_frames_equal_full_sequential_decode(name):
    path = clip_path(name)
    total = FRAME_COUNTS[name]
    rng = np.random.default_rng(len(name))
    index_sets = [
        sample_clip_indices(total, 8, "segment")[0],  # what evaluation reads
        [0, total // 2, total - 1],  # first, middle, last frame
        sorted(rng.choice(total, size=min(5, total), replace=False).tolist()),  # arbitrary ones
        [total - 1, 0, total // 3, total // 3],  # any order, with a repeat
    ]
    reference = full_decode(path, {index for indices in index_sets for index in indices})

    for indices in index_sets:
        frames, times, returned, info = read_video_pyav(str(path), lambda num_total, wanted=indices: wanted)
        assert returned == indices and info["total_num_frames"] == total
        assert len(times) == len(indices)
        for position, index in enumerate(indices):
            np.testing.assert_array_equal(frames[position], reference[index], err_msg=f"{name} frame {index}")

    # Without frame threading (as in DataLoader workers) the frames are the same.
    frames, _, _, _ = read_video_pyav(str(path), lambda num_total: index_sets[2], threading=False)
    for position, index in enumerate(index_sets[2]):
        np.testing.assert_array_equal(frames[position], reference[index], err_msg=f"{name} frame {index}")

    # The processor's own output, before normalisation, holds the same pixels.
    output = raw_pixels_processor()(str(path), return_tensors="pt", return_metadata=True)
    (indices,) = output["video_metadata"][0].frames_indices
    assert indices == index_sets[0]
    for position, index in enumerate(indices):
        pixels = output["pixel_values_videos"][0, position].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(pixels, reference[index].astype(np.float32))


def test_bytes_and_file_objects_decode_like_paths():
    path = clip_path("mmaction2_tests_test.avi")
    processor = raw_pixels_processor(num_frames=4)
    from_path = processor(str(path), return_tensors="pt")["pixel_values_videos"]
    from_bytes = processor(path.read_bytes(), return_tensors="pt")["pixel_values_videos"]
    with path.open("rb") as handle:
        from_file = processor(handle, return_tensors="pt")["pixel_values_videos"]
    from_pathlib = processor(path, return_tensors="pt")["pixel_values_videos"]
    torch.testing.assert_close(from_bytes, from_path, rtol=0, atol=0)
    torch.testing.assert_close(from_file, from_path, rtol=0, atol=0)
    torch.testing.assert_close(from_pathlib, from_path, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------ sampling
def test_segment_sampling_takes_middle_frames_in_evaluation_and_one_per_segment_in_training():
    assert sample_clip_indices(80, 8, "segment") == [[5, 15, 25, 35, 45, 55, 65, 75]]
    generator = torch.Generator().manual_seed(3)
    for _ in range(20):
        (indices,) = sample_clip_indices(80, 8, "segment", train=True, generator=generator)
        assert [index // 10 for index in indices] == list(range(8))  # frame t lies in segment t


def test_uniform_and_dense_sampling():
    assert sample_clip_indices(80, 8, "uniform") == [[0, 10, 20, 30, 40, 50, 60, 70]]
    assert sample_clip_indices(100, 4, "dense", frame_stride=5) == [[42, 47, 52, 57]]  # the central window
    assert sample_clip_indices(100, 4, "dense", frame_stride=5, num_clips=2) == [[0, 5, 10, 15], [84, 89, 94, 99]]
    generator = torch.Generator().manual_seed(0)
    (window,) = sample_clip_indices(100, 4, "dense", frame_stride=5, train=True, generator=generator)
    assert np.all(np.diff(window) == 5) and 0 <= window[0] and window[-1] < 100


def test_multiple_temporal_clips_take_different_frames():
    clips = sample_clip_indices(90, 3, "segment", num_clips=3)
    assert clips == [[5, 35, 65], [15, 45, 75], [25, 55, 85]]


@pytest.mark.parametrize("sampling", ["segment", "uniform", "dense"])
def test_short_videos_repeat_frames_in_order(sampling):
    for num_total in (1, 3, 7):
        (indices,) = sample_clip_indices(num_total, 16, sampling, frame_stride=4)
        assert len(indices) == 16
        assert indices == sorted(indices)
        assert set(indices) == set(range(num_total))
    assert sample_clip_indices(1, 5, sampling) == [[0, 0, 0, 0, 0]]


@pytest.mark.parametrize("name", ["mmaction2_rawvideo_part_0.mp4", "moviepy_big_buck_bunny_432_433.webm"])
@pytest.mark.parametrize("train", [False, True])
def test_short_clips_at_64_frames(name, train):
    processor = raw_pixels_processor(num_frames=64)
    output = processor(str(clip_path(name)), train=train, crop_size={"height": 64, "width": 64},
                       generator=torch.Generator().manual_seed(0), return_tensors="pt", return_metadata=True)
    (indices,) = output["video_metadata"][0].frames_indices
    assert len(indices) == 64 and indices == sorted(indices)
    assert set(indices) == set(range(FRAME_COUNTS[name]))  # every frame used, repeated in order
    pixels = output["pixel_values_videos"]
    assert pixels.shape[:3] == (1, 64, 3)
    if not train:
        # Repeated indices give repeated frames.
        first_repeat = next(t for t in range(1, 64) if indices[t] == indices[t - 1])
        torch.testing.assert_close(pixels[0, first_repeat], pixels[0, first_repeat - 1], rtol=0, atol=0)


def test_one_frame_video_gives_copies():
    frame = np.random.default_rng(0).integers(0, 256, size=(1, 48, 64, 3), dtype=np.uint8)
    output = OmniCLIPVideoProcessor(num_frames=5)(frame, return_tensors="pt")["pixel_values_videos"]
    assert output.shape == (1, 5, 3, 224, 224)
    for t in range(1, 5):
        torch.testing.assert_close(output[0, t], output[0, 0], rtol=0, atol=0)


def test_evaluation_is_deterministic():
    processor = OmniCLIPVideoProcessor(num_frames=8, num_spatial_crops=3)
    path = str(clip_path(SMALL_CLIP))
    first = processor(path, return_tensors="pt", return_metadata=True)
    second = processor(path, return_tensors="pt", return_metadata=True)
    torch.testing.assert_close(first["pixel_values_videos"], second["pixel_values_videos"], rtol=0, atol=0)
    assert first["video_metadata"][0].frames_indices == second["video_metadata"][0].frames_indices


def test_training_varies_with_seed_and_is_reproducible():
    processor = OmniCLIPVideoProcessor(num_frames=8, do_augment=True)
    path = str(clip_path(SMALL_CLIP))

    def run(seed):
        output = processor(path, generator=torch.Generator().manual_seed(seed), return_tensors="pt",
                           return_metadata=True)
        return output["pixel_values_videos"], output["video_metadata"][0].frames_indices

    pixels_a, indices_a = run(0)
    pixels_b, indices_b = run(0)
    pixels_c, indices_c = run(1)
    torch.testing.assert_close(pixels_a, pixels_b, rtol=0, atol=0)
    assert indices_a == indices_b
    assert indices_a != indices_c
    assert not torch.equal(pixels_a, pixels_c)
    # Seeding through a generator leaves the global RNG alone.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run(5)
    torch.testing.assert_close(torch.rand(3), expected)


def test_augmentation_uses_same_parameters_for_every_frame():
    image = np.random.default_rng(0).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    video = np.stack([image] * 6)  # every frame identical: they stay identical only if every frame gets one draw
    processor = OmniCLIPVideoProcessor(num_frames=6, do_augment=True, color_jitter_prob=1.0, grayscale_prob=0.0)
    for seed in range(5):
        pixels = processor(video, generator=torch.Generator().manual_seed(seed), return_tensors="pt")[
            "pixel_values_videos"
        ][0]
        for t in range(1, 6):
            torch.testing.assert_close(pixels[t], pixels[0], rtol=0, atol=0)
    assert pixels.shape == (6, 3, 224, 224)


# ------------------------------------------------------------------------------------------------ inputs and views
def test_in_memory_inputs_and_batches():
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(10, 90, 120, 3), dtype=np.uint8)
    tensor = torch.from_numpy(array).permute(0, 3, 1, 2)
    images = [Image.fromarray(frame) for frame in array]
    processor = OmniCLIPVideoProcessor(num_frames=4)
    from_array = processor(array, return_tensors="pt")["pixel_values_videos"]
    from_tensor = processor(tensor, return_tensors="pt")["pixel_values_videos"]
    from_images = processor(images, return_tensors="pt")["pixel_values_videos"]
    assert from_array.shape == (1, 4, 3, 224, 224)
    torch.testing.assert_close(from_tensor, from_array, rtol=0, atol=0)
    torch.testing.assert_close(from_images, from_array, rtol=0, atol=0)

    batch = processor([array, str(clip_path(SMALL_CLIP)), images], return_tensors="pt")["pixel_values_videos"]
    assert batch.shape == (3, 4, 3, 224, 224)
    torch.testing.assert_close(batch[0], from_array[0], rtol=0, atol=0)

    grayscale = processor(array[..., :1], return_tensors="pt")["pixel_values_videos"]
    assert grayscale.shape == (1, 4, 3, 224, 224)

    as_list = processor([array, array], return_tensors=None)["pixel_values_videos"]
    assert isinstance(as_list, list) and len(as_list) == 2 and as_list[0].shape == (4, 3, 224, 224)


def test_portrait_and_landscape_three_crops():
    # Rows (portrait) or columns (landscape) carry their position, so each crop shows where it was cut.
    height, width = 448, 224
    portrait = np.broadcast_to(np.linspace(0, 255, height).astype(np.uint8)[None, :, None, None], (2, height, width, 3))
    views = raw_pixels_processor(num_frames=2, num_spatial_crops=3, do_center_crop=True, do_resize=True)(
        np.ascontiguousarray(portrait), return_tensors="pt"
    )["pixel_values_videos"]
    assert views.shape == (1, 3, 2, 3, 224, 224)
    top, centre, bottom = (views[0, v, 0, 0, :, 0].mean().item() for v in range(3))
    assert top < centre < bottom

    landscape = np.ascontiguousarray(portrait.transpose(0, 2, 1, 3))
    views = raw_pixels_processor(num_frames=2, num_spatial_crops=3, do_center_crop=True, do_resize=True)(
        landscape, return_tensors="pt"
    )["pixel_values_videos"]
    left, centre, right = (views[0, v, 0, 0, 0, :].mean().item() for v in range(3))
    assert left < centre < right

    single = OmniCLIPVideoProcessor(num_frames=2)(np.ascontiguousarray(portrait), return_tensors="pt")
    assert single["pixel_values_videos"].shape == (1, 2, 3, 224, 224)


def test_centre_view_of_three_crops_equals_single_view():
    processor = OmniCLIPVideoProcessor(num_frames=4)
    path = str(clip_path(SMALL_CLIP))
    single = processor(path, return_tensors="pt")["pixel_values_videos"]
    multi = processor(path, num_spatial_crops=3, return_tensors="pt")["pixel_values_videos"]
    torch.testing.assert_close(multi[:, 1], single, rtol=0, atol=0)


def test_metadata_has_indices_and_timestamps():
    output = OmniCLIPVideoProcessor(num_frames=4, num_temporal_clips=2)(
        str(clip_path("mmaction2_tests_test.mp4")), return_tensors="pt", return_metadata=True
    )
    metadata = output["video_metadata"][0]
    assert metadata.fps == pytest.approx(30.0) and metadata.total_num_frames == 300
    assert metadata.width == 340 and metadata.height == 256
    assert len(metadata.frames_indices) == 2 and len(metadata.timestamps) == 2
    for indices, times in zip(metadata.frames_indices, metadata.timestamps):
        assert times == pytest.approx([index / 30.0 for index in indices])
    assert metadata.source.endswith("mmaction2_tests_test.mp4")


def test_save_and_load_round_trip(tmp_path):
    from transformers import AutoVideoProcessor

    import omniclip_hf  # noqa: F401  (registers the Auto classes)

    processor = OmniCLIPVideoProcessor(num_frames=16, sampling="dense", frame_stride=2, num_spatial_crops=3,
                                       color_jitter=[0.1, 0.2, 0.3, 0.05])
    processor.save_pretrained(tmp_path)
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is OmniCLIPVideoProcessor
    assert loaded.to_dict() == processor.to_dict()
    assert (loaded.num_frames, loaded.sampling, loaded.frame_stride, loaded.num_spatial_crops) == (16, "dense", 2, 3)


def test_defaults_match_clip():
    processor = OmniCLIPVideoProcessor()
    assert processor.num_frames == 8 and processor.sampling == "segment"
    assert list(processor.image_mean) == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    assert list(processor.image_std) == pytest.approx([0.26862954, 0.26130258, 0.27577711])


# ------------------------------------------------------------------------------------------------ bad input
def _assert_clean_error(excinfo, *phrases):
    error = excinfo.value
    message = str(error)
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    assert not isinstance(error, av.error.FFmpegError), "a raw PyAV error escaped"
    # Either raised fresh, or raised `from None` so no PyAV traceback is chained to it.
    assert error.__context__ is None or (error.__cause__ is None and error.__suppress_context__)


def _write_audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for index in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _write_faststart_copy(source: Path, target: Path) -> None:
    """Remuxes `source` with the index (moov) first, so a cut file still opens and shows its damage later."""
    with av.open(str(source)) as reader, av.open(str(target), "w", options={"movflags": "faststart"}) as writer:
        out_stream = writer.add_stream_from_template(reader.streams.video[0])
        for packet in reader.demux(reader.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = out_stream
            writer.mux(packet)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_videos")
    mp4 = clip_path("mmaction2_tests_test.mp4").read_bytes()
    files = {"missing": folder / "missing.mp4", "empty": folder / "empty.mp4"}
    files["empty"].write_bytes(b"")
    files["text"] = folder / "notes.mp4"
    files["text"].write_text("these are meeting notes, not a video\n" * 50)
    files["audio"] = folder / "speech.m4a"
    _write_audio_only(files["audio"])
    files["truncated_mp4"] = folder / "cut.mp4"
    files["truncated_mp4"].write_bytes(mp4[: len(mp4) // 2])  # index at the end: cannot open
    faststart = folder / "faststart.mp4"
    _write_faststart_copy(clip_path("mmaction2_tests_test.mp4"), faststart)
    data = faststart.read_bytes()
    files["truncated_faststart"] = folder / "cut_faststart.mp4"
    files["truncated_faststart"].write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    rng = np.random.default_rng(0)
    for offset in range(len(corrupt) // 3, len(corrupt) - 1000, 20000):
        corrupt[offset : offset + 300] = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    files["corrupt"] = folder / "corrupt.mp4"
    files["corrupt"].write_bytes(bytes(corrupt))
    avi = clip_path("mmaction2_tests_test.avi").read_bytes()
    files["truncated_avi"] = folder / "cut.avi"
    files["truncated_avi"].write_bytes(avi[: len(avi) // 2])
    webm = clip_path("moviepy_big_buck_bunny_432_433.webm").read_bytes()
    files["truncated_webm"] = folder / "cut.webm"
    files["truncated_webm"].write_bytes(webm[: len(webm) // 2])
    return files


@pytest.mark.parametrize(
    "case, error_type, phrases",
    [
        ("missing", FileNotFoundError, ["missing.mp4", "does not exist"]),
        ("empty", ValueError, ["empty.mp4", "empty (0 bytes)"]),
        ("text", ValueError, ["notes.mp4", "plain text", "not a video"]),
        ("audio", ValueError, ["speech.m4a", "no video stream", "audio"]),
        ("truncated_mp4", ValueError, ["cut.mp4", "truncated"]),
        ("truncated_faststart", ValueError, ["cut_faststart.mp4", "truncated", "announces 300 frames"]),
        ("corrupt", ValueError, ["corrupt.mp4", "corrupt"]),
        ("truncated_avi", ValueError, ["cut.avi", "truncated", "announces 164 frames"]),
        ("truncated_webm", ValueError, ["cut.webm", "truncated"]),
    ],
)
def test_bad_files_give_clear_errors(bad_files, case, error_type, phrases):
    processor = OmniCLIPVideoProcessor(num_frames=4)
    with pytest.raises(error_type) as excinfo:
        processor(str(bad_files[case]), return_tensors="pt")
    _assert_clean_error(excinfo, *phrases)


def test_bad_item_in_batch_is_named(bad_files):
    processor = OmniCLIPVideoProcessor(num_frames=4)
    good = str(clip_path(SMALL_CLIP))
    with pytest.raises(ValueError) as excinfo:
        processor([good, str(bad_files["audio"]), good], return_tensors="pt")
    _assert_clean_error(excinfo, "videos[1]", "speech.m4a", "no video stream")
    with pytest.raises(FileNotFoundError) as excinfo:
        processor([good, good, str(bad_files["missing"])], return_tensors="pt")
    _assert_clean_error(excinfo, "videos[2]", "missing.mp4")
    with pytest.raises(ValueError) as excinfo:
        processor([np.zeros((4, 8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)], return_tensors="pt")
    _assert_clean_error(excinfo, "videos[1]", "4 dims")


def test_bad_bytes_and_arrays():
    processor = OmniCLIPVideoProcessor(num_frames=4)
    with pytest.raises(ValueError) as excinfo:
        processor(b"", return_tensors="pt")
    _assert_clean_error(excinfo, "empty")
    with pytest.raises(ValueError) as excinfo:
        processor(b"definitely not a video" * 20, return_tensors="pt")
    _assert_clean_error(excinfo, "bytes", "not a video")
    with pytest.raises(ValueError) as excinfo:
        processor(np.zeros((8, 8, 3), np.uint8), return_tensors="pt")
    _assert_clean_error(excinfo, "4 dims (T, H, W, C)", "(8, 8, 3)")
    with pytest.raises(ValueError) as excinfo:
        processor(np.zeros((4, 8, 8, 5), np.uint8), return_tensors="pt")
    _assert_clean_error(excinfo, "5 channels")
    with pytest.raises(ValueError) as excinfo:
        processor(torch.zeros(4, 8, 8, 3, dtype=torch.uint8), return_tensors="pt")  # channels last: wrong for torch
    _assert_clean_error(excinfo, "(T, C, H, W)", "8 channels")
    with pytest.raises(ValueError) as excinfo:
        processor(torch.zeros(2, 4, 3, 8, 8, 1), return_tensors="pt")
    _assert_clean_error(excinfo, "4 dims")


@pytest.mark.parametrize("num_frames", [0, -3])
def test_num_frames_below_one(num_frames):
    with pytest.raises(ValueError, match="num_frames"):
        OmniCLIPVideoProcessor(num_frames=num_frames)
    with pytest.raises(ValueError, match="num_frames"):
        OmniCLIPVideoProcessor()(np.zeros((4, 8, 8, 3), np.uint8), num_frames=num_frames)


def test_bad_settings():
    with pytest.raises(ValueError, match="sampling"):
        OmniCLIPVideoProcessor(sampling="random")
    with pytest.raises(ValueError, match="num_spatial_crops"):
        OmniCLIPVideoProcessor(num_spatial_crops=2)
    with pytest.raises(ValueError, match="video_backend"):
        OmniCLIPVideoProcessor(backend="decord")


def test_torchcodec_backend_without_torchcodec_says_how_to_install():
    try:
        import torchcodec  # noqa: F401

        pytest.skip("torchcodec is installed here; the missing-package error cannot be reached")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="pip install torchcodec"):
        OmniCLIPVideoProcessor()(str(clip_path(SMALL_CLIP)), backend="torchcodec")


def test_no_file_handles_left_open(bad_files):
    processor = OmniCLIPVideoProcessor(num_frames=4)
    paths = [str(path) for path in bad_files.values()] + [str(clip_path(SMALL_CLIP))]
    processor(paths[-1])  # warm up lazily loaded libraries before counting
    before = open_fd_count()
    for _ in range(2):
        for path in paths:
            try:
                processor(path, return_tensors="pt")
            except (ValueError, FileNotFoundError):
                pass
    assert open_fd_count() == before


@pytest.mark.skipif(not VIDEOS_DIR.is_dir(), reason=f"shared test videos not found at {VIDEOS_DIR}")
def test_avi_is_opened_once(monkeypatch):
    # The frame-count pass and the decode share one open container (rewound by a seek), with exact frames.

    path = str(VIDEOS_DIR / "mmaction2_tests_test.avi")
    with av.open(path) as container:
        reference = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *args, **kwargs: opened.append(args[0]) or real_open(*args, **kwargs))
    indices = [0, 1, 80, 162, 163]
    frames, _, _, info = read_video_pyav(path, lambda total: indices)
    assert len(opened) == 1 and info["total_num_frames"] == len(reference) == 164
    for position, index in enumerate(indices):
        np.testing.assert_array_equal(frames[position], reference[index])


def test_processor_and_pipeline_choose_the_backend_with_one_function():
    from omniclip_hf import pipeline_omniclip, video_processing_omniclip
    from omniclip_hf.video_decoding import read_video_pyav, read_video_torchcodec, select_video_reader

    assert pipeline_omniclip.select_video_reader is video_processing_omniclip.select_video_reader is select_video_reader
    assert select_video_reader("a.mp4", "pyav") == ("pyav", read_video_pyav)
    assert select_video_reader("a.mp4", "torchcodec") == ("torchcodec", read_video_torchcodec)
