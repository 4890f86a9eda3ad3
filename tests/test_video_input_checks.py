# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Input checks that used to fail silently or from inside a library: misspelt processor keywords, 16-bit and float
PIL frames, float frames that overshoot [0, 1], still images and audio with torchcodec, odd settings and URLs."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from omniclip_hf.processing_omniclip import OmniCLIPProcessor
from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor
from omniclip_hf.video_sources import pixel_scale_of


VIDEOS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
SMALL_CLIP = VIDEOS_DIR / "mmaction2_rawvideo_part_0.mp4"  # 32 frames, 340x256

needs_videos = pytest.mark.skipif(not VIDEOS_DIR.is_dir(), reason=f"shared test videos not found at {VIDEOS_DIR}")


def small_processor(**kwargs) -> OmniCLIPVideoProcessor:
    settings = {"num_frames": 2, "size": {"shortest_edge": 8}, "crop_size": {"height": 8, "width": 8}}
    return OmniCLIPVideoProcessor(**{**settings, **kwargs})


def pixels(processor: OmniCLIPVideoProcessor, video, **kwargs) -> torch.Tensor:
    return processor(video, return_tensors="pt", **kwargs)["pixel_values_videos"]


def assert_one_line(excinfo) -> None:
    assert "\n" not in str(excinfo.value)


@pytest.fixture(scope="module")
def ramp() -> np.ndarray:
    """An 8x8 grey ramp in [0, 1], float32."""
    return np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)


# ------------------------------------------------------------------------------------------------ processor keywords
@pytest.fixture(scope="module")
def processor(clip_tokenizer) -> OmniCLIPProcessor:
    return OmniCLIPProcessor(small_processor(), clip_tokenizer)


@pytest.mark.parametrize("typo, suggestion", [("num_frame", "num_frames"), ("n_frames", "num_frames"),
                                              ("sample_rate", None)])
@pytest.mark.parametrize("with_text", [False, True])
def test_processor_refuses_keywords_nobody_takes(processor, typo, suggestion, with_text):
    text = ["a video of yoga action"] if with_text else None
    with pytest.raises(TypeError, match=rf"unexpected keyword arguments \['{typo}'\]") as excinfo:
        processor(text=text, videos=np.zeros((4, 8, 8, 3), np.uint8), return_tensors="pt", **{typo: 8})
    assert_one_line(excinfo)
    if suggestion:
        assert f"did you mean '{suggestion}'" in str(excinfo.value)


def test_processor_refuses_misplaced_keywords_in_modality_dicts(processor):
    video = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(TypeError, match=r"in videos_kwargs \['num_frame'\]"):
        processor(videos=video, videos_kwargs={"num_frame": 8})
    with pytest.raises(TypeError, match=r"in text_kwargs \['num_frames'\]"):
        processor(text=["a video of yoga action"], text_kwargs={"num_frames": 8})


def test_processor_still_routes_tokenizer_and_video_keywords(processor):
    video = np.zeros((4, 8, 8, 3), np.uint8)
    # Tokenizer arguments without text are allowed (and unused), as in transformers.
    alone = processor(videos=video, padding="max_length", truncation=True, max_length=10, return_tensors="pt")
    assert alone["pixel_values_videos"].shape == (1, 2, 3, 8, 8)
    both = processor(text=["a video of yoga action"], videos=video, padding="max_length", max_length=12,
                     num_frames=3, return_tensors="np")
    assert both["input_ids"].shape == (1, 12)
    assert both["pixel_values_videos"].shape == (1, 3, 3, 8, 8)
    common = processor(videos=video, common_kwargs={"return_tensors": "pt"})
    assert isinstance(common["pixel_values_videos"], torch.Tensor)


# ------------------------------------------------------------------------------------------------ PIL modes
def test_16_bit_and_float_pil_frames_match_the_same_numbers_as_arrays(ramp):
    processor = small_processor(do_normalize=False)
    sixteen_bit = (ramp * 65535).astype(np.uint16)
    as_array = pixels(processor, np.stack([sixteen_bit] * 2)[..., None])
    assert as_array.mean().item() == pytest.approx(0.5, abs=1e-3)  # not saturated at 255
    torch.testing.assert_close(pixels(processor, [Image.fromarray(sixteen_bit)] * 2), as_array, rtol=0, atol=0)
    big_endian = Image.frombytes("I;16B", (8, 8), sixteen_bit.astype(">u2").tobytes())
    torch.testing.assert_close(pixels(processor, [big_endian] * 2), as_array, rtol=0, atol=0)

    unit_floats = pixels(processor, np.stack([ramp] * 2)[..., None])
    float_frames = [Image.fromarray(ramp)] * 2  # mode F
    torch.testing.assert_close(pixels(processor, float_frames), unit_floats, rtol=0, atol=0)  # not black

    int32_8_bit = (ramp * 255).astype(np.int32)  # mode I holding 0-255
    torch.testing.assert_close(pixels(processor, [Image.fromarray(int32_8_bit)] * 2),
                               pixels(processor, np.stack([int32_8_bit.astype(np.uint8)] * 2)[..., None]),
                               rtol=0, atol=0)


def test_int32_pil_frames_outside_0_255_and_mixed_modes_are_refused(ramp):
    sixteen_bit = (ramp * 65535).astype(np.uint16)
    with pytest.raises(ValueError, match=r"int32 frames hold values 0..65535; integer frames must hold 0..255") as info:
        small_processor()([Image.fromarray(sixteen_bit.astype(np.int32))] * 2)  # as the same int32 array is
    assert_one_line(info)
    with pytest.raises(ValueError, match=r"frames mix pixel types \(uint16, uint8\)"):
        small_processor()([Image.fromarray(sixteen_bit), Image.fromarray((ramp * 255).astype(np.uint8))])


# ------------------------------------------------------------------------------------------------ float overshoot
def test_float_frames_overshooting_0_1_are_clipped_not_divided_by_255():
    frames = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)
    processor = small_processor(do_normalize=False)
    # A 0.1% gain (max 1.001): the same video within the gain, not a black one (divided by 255 it was).
    torch.testing.assert_close(pixels(processor, frames * 1.001), pixels(processor, frames), rtol=0, atol=2e-3)
    # A bicubic resize's ringing above 1 (1.1 at an edge): read as [0, 1], the excess clipped.
    rung = frames.copy()
    rung[2, 0, 0, 0] = 1.1
    torch.testing.assert_close(pixels(processor, rung), pixels(processor, np.clip(rung, 0, 1)), rtol=0, atol=0)
    # Below 0 it is refused (normalised frames hold negative values too): the message says to clip.
    rung[3, 0, 0, 0] = -0.1
    with pytest.raises(ValueError, match=r"already normalised.*or \[0, 1\] frames that a resize rang below 0: clip"):
        pixels(processor, rung)


def test_overshoot_rule_leaves_0_255_and_normalised_frames_as_before():
    rng = np.random.default_rng(1)
    video = torch.from_numpy(rng.random((4, 3, 8, 8), dtype=np.float32))
    bumped = video * 1.5
    clipped = pixel_scale_of(bumped, "test")(bumped)
    torch.testing.assert_close(clipped, bumped.clamp(0, 1), rtol=0, atol=0)
    assert bumped.max() > 1  # the caller's frames are not clipped in place
    scaled = video * 255
    torch.testing.assert_close(pixel_scale_of(scaled, "test")(scaled), scaled / 255, rtol=0, atol=0)
    with pytest.raises(ValueError, match="already normalised"):
        pixel_scale_of(video - 0.5, "test")
    # A brightish video (no pixel darker than 45% grey) normalised with CLIP's mean and std: -0.12..1.74, which a
    # tolerance below 0 for a resize's ringing would read as [0, 1] frames with nothing said.
    normalised = (video * 0.5 + 0.45 - 0.48145466) / 0.26862954
    assert -0.25 < normalised.min() < 0
    with pytest.raises(ValueError, match="already normalised"):
        pixel_scale_of(normalised, "test")


# ------------------------------------------------------------------------------------------------ torchcodec
@pytest.fixture(scope="module")
def torchcodec_available():
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except (ImportError, RuntimeError) as error:  # RuntimeError: FFmpeg's libraries missing
        pytest.skip(f"torchcodec unavailable ({type(error).__name__}); run `make install`")


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for index in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize("name", ["still.png", "still.jpg", "audio_only.mp4"])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_torchcodec_refuses_stills_and_audio_as_pyav_does(torchcodec_available, tmp_path, name, as_bytes):
    path = tmp_path / name
    if name.startswith("still"):
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)).save(path)
    else:
        write_audio_only(path)
    source = path.read_bytes() if as_bytes else str(path)
    processor = small_processor()
    with pytest.raises(ValueError) as pyav_error:
        processor(source, backend="pyav")
    with pytest.raises(ValueError) as torchcodec_error:
        processor(source, backend="torchcodec")
    assert str(torchcodec_error.value) == str(pyav_error.value)
    assert "still image" in str(torchcodec_error.value) or "has no video stream" in str(torchcodec_error.value)
    assert_one_line(torchcodec_error)


# ------------------------------------------------------------------------------------------------ settings
def test_single_number_mean_and_std_apply_to_every_channel():
    video = np.random.default_rng(2).integers(0, 256, (2, 8, 8, 3), np.uint8)
    processor = small_processor()
    torch.testing.assert_close(pixels(processor, video, image_mean=0.5, image_std=0.5),
                               pixels(processor, video, image_mean=[0.5] * 3, image_std=[0.5] * 3), rtol=0, atol=0)
    torch.testing.assert_close(pixels(small_processor(image_mean=0.5, image_std=0.5), video),
                               pixels(processor, video, image_mean=[0.5] * 3, image_std=[0.5] * 3), rtol=0, atol=0)


@pytest.mark.parametrize(
    "setting, phrase",
    [
        ({"image_mean": [0.5, 0.5]}, r"image_mean=\[0.5, 0.5\] is invalid: give one number, or three"),
        ({"image_std": 0.0}, r"image_std=0.0 is invalid: standard deviations must be > 0"),
        ({"device": "gpu"}, r"device='gpu' is invalid"),
    ],
)
def test_bad_settings_name_themselves_in_one_line(setting, phrase):
    with pytest.raises(ValueError, match=phrase) as excinfo:
        small_processor()(np.zeros((2, 8, 8, 3), np.uint8), **setting)
    assert_one_line(excinfo)


def test_numpy_integers_are_accepted_as_counts(tmp_path):
    video = np.zeros((6, 8, 8, 3), np.uint8)
    assert pixels(small_processor(), video, num_frames=np.int64(5)).shape[1] == 5
    saved = small_processor(num_frames=np.int64(3), size={"shortest_edge": np.int64(8)})
    saved.save_pretrained(tmp_path)  # JSON takes no numpy scalars
    assert OmniCLIPVideoProcessor.from_pretrained(tmp_path).num_frames == 3


# ------------------------------------------------------------------------------------------------ URLs
@pytest.fixture(scope="module")
def local_server():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(VIDEOS_DIR))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@needs_videos
def test_url_schemes_are_case_insensitive_and_file_urls_are_paths(local_server):
    processor = small_processor()
    expected = pixels(processor, str(SMALL_CLIP))
    torch.testing.assert_close(pixels(processor, f"HTTP://{local_server}/{SMALL_CLIP.name}"), expected, rtol=0, atol=0)
    torch.testing.assert_close(pixels(processor, SMALL_CLIP.as_uri()), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="names a file on host 'example.com'.*pass the file's path"):
        processor(f"file://example.com{SMALL_CLIP}")


@needs_videos
def test_a_url_serving_html_is_named_by_its_url(local_server):
    url = f"http://{local_server}/"  # a directory listing: an HTML page
    with pytest.raises(ValueError, match=rf"Could not open video {url}: .*HTML page") as excinfo:
        small_processor()(url)
    assert "bytes>" not in str(excinfo.value)
    assert_one_line(excinfo)


def test_downloaded_bytes_keep_their_url_through_copies():
    # Copies (transformers deep-copies call arguments) and pickles (DataLoader workers) must keep the name.
    import copy
    import pickle

    from omniclip_hf.video_sources import DownloadedVideo, describe_source

    downloaded = DownloadedVideo(b"\x00\x01", "https://example.com/clip.mp4")
    for copied in (copy.deepcopy(downloaded), pickle.loads(pickle.dumps(downloaded))):
        assert copied == b"\x00\x01" and describe_source(copied) == "https://example.com/clip.mp4"


def test_a_saved_cuda_device_loads_where_there_is_no_gpu(tmp_path, monkeypatch):
    """A processor saved with device='cuda' (on a GPU machine) could not be loaded on a CPU one: its saved settings
    were checked as if the call had asked for the device. A call that asks for a missing GPU is still refused."""
    from omniclip_hf import OmniCLIPVideoProcessor

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    small_processor(device="cuda").save_pretrained(tmp_path)
    loaded = OmniCLIPVideoProcessor.from_pretrained(tmp_path)
    assert loaded.device == "cuda"
    with pytest.raises(ValueError, match=r"device='cuda' is not available here"):
        small_processor()(np.zeros((2, 8, 8, 3), np.uint8), device="cuda")
