# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Settings of the video processor that must mean what CLIP means, or be refused when given: the centre crop's
offset, `size["longest_edge"]`, the training augmentation's settings and `crop_size`, and the seeded augmentation's
effect on the global RNGs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import CLIPImageProcessor

from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor


RAW_PIXELS = {"do_rescale": False, "do_normalize": False}


def column_video(height: int, width: int, num_frames: int = 2) -> np.ndarray:
    """`(T, H, W, 3)` uint8 frames whose every pixel holds its column index (mod 256): a crop's first value is its
    left offset."""
    columns = np.arange(width).astype(np.uint8)
    return np.broadcast_to(columns[None, None, :, None], (num_frames, height, width, 3)).copy()


def random_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def clip_pixels(frame: np.ndarray, **kwargs) -> torch.Tensor:
    """transformers' CLIPImageProcessor on one `(H, W, 3)` frame, given as a channels-first tensor."""
    image = torch.from_numpy(frame).permute(2, 0, 1)
    return CLIPImageProcessor(**kwargs)(image, return_tensors="pt")["pixel_values"][0]


# ------------------------------------------------------------------ centre crop offset


def test_single_centre_crop_takes_the_floor_offset_like_clip():
    # 299 - 224 = 75: torchvision's center_crop rounds 37.5 to 38, CLIP and the 3-crop centre view take 37.
    video = column_video(224, 299)
    processor = OmniCLIPVideoProcessor(num_frames=2, do_resize=False, **RAW_PIXELS)
    single = processor(video, return_tensors="pt")["pixel_values_videos"][0]
    centre = processor(video, num_spatial_crops=3, return_tensors="pt")["pixel_values_videos"][0, 1]
    clip = clip_pixels(video[0], do_resize=False, **RAW_PIXELS)
    assert single[0, 0, 0, 0].item() == 37
    torch.testing.assert_close(single, centre, atol=0, rtol=0)
    torch.testing.assert_close(single[0], clip.float(), atol=0, rtol=0)


@pytest.mark.parametrize("height, width", [(224, 299), (299, 224), (240, 428), (100, 299), (299, 150), (150, 100)])
def test_single_centre_crop_equals_the_centre_of_three_crops(height, width):
    # Includes frames smaller than the crop on one side or both (padded first, as center_crop pads).
    processor = OmniCLIPVideoProcessor(num_frames=2, do_resize=False, **RAW_PIXELS)
    video = np.stack([random_frame(height, width, seed) for seed in range(2)])
    single = processor(video, return_tensors="pt")["pixel_values_videos"][0]
    centre = processor(video, num_spatial_crops=3, return_tensors="pt")["pixel_values_videos"][0, 1]
    torch.testing.assert_close(single, centre, atol=0, rtol=0)


# ------------------------------------------------------------------ longest_edge


@pytest.mark.parametrize("height, width", [(240, 480), (480, 240), (227, 300), (224, 299), (100, 1000)])
@pytest.mark.parametrize("do_center_crop", [False, True])
def test_longest_edge_caps_the_long_side_as_clip_does(height, width, do_center_crop):
    size = {"shortest_edge": 224, "longest_edge": 300}
    frame = random_frame(height, width)
    ours = OmniCLIPVideoProcessor(num_frames=1, size=size, do_center_crop=do_center_crop)(
        frame[None], return_tensors="pt")["pixel_values_videos"][0, 0]
    clip = clip_pixels(frame, size=size, do_center_crop=do_center_crop)
    assert ours.shape == clip.shape
    torch.testing.assert_close(ours, clip, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ seeded augmentation and CUDA generators


def test_seeded_training_call_leaves_cuda_generators_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(seed))
    video = np.stack([random_frame(120, 160, seed) for seed in range(8)])
    OmniCLIPVideoProcessor(num_frames=4)(video, train=True, generator=torch.Generator().manual_seed(0),
                                         return_tensors="pt")
    assert calls == []


# ------------------------------------------------------------------ settings refused when given

BAD_SETTINGS = [
    ("flip_prob", {"flip_prob": 1.5}),
    ("flip_prob", {"flip_prob": None}),
    ("color_jitter", {"color_jitter": [0.4, 0.4, 0.2, 0.7]}),
    ("color_jitter", {"color_jitter": [0.4, 0.4, 0.2, 0.1, 0.1]}),
    ("color_jitter", {"color_jitter": 0.4}),
    ("color_jitter", {"color_jitter": [-0.4]}),
    ("augment_crop_scale", {"augment_crop_scale": [0.5]}),
    ("augment_crop_scale", {"augment_crop_scale": [1.0, 0.08]}),
    ("augment_crop_scale", {"augment_crop_scale": [0.5, 1.5]}),
    ("augment_crop_ratio", {"augment_crop_ratio": [0.0, 1.0]}),
    ("augment_resize_shortest_edge", {"augment_resize_shortest_edge": -5}),
    ("augment_resize_shortest_edge", {"augment_resize_shortest_edge": 100.5}),
    ("color_jitter_prob", {"color_jitter_prob": 2.0}),
    ("grayscale_prob", {"grayscale_prob": -1.0}),
    ("crop_size", {"crop_size": {"shortest_edge": 224}}),
    ("crop_size", {"crop_size": {"height": 224}}),
    # transformers refuses a lone longest_edge only when it resizes: here every video was refused at decoding.
    ("size", {"size": {"longest_edge": 224}}),
    ("size", {"size": {"max_height": 224, "max_width": 224}}),
]


@pytest.mark.parametrize("name, setting", BAD_SETTINGS, ids=[repr(setting) for _, setting in BAD_SETTINGS])
def test_bad_setting_is_refused_at_construction_naming_it(name, setting):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        OmniCLIPVideoProcessor(**setting)


@pytest.mark.parametrize("name, setting", BAD_SETTINGS, ids=[repr(setting) for _, setting in BAD_SETTINGS])
def test_bad_setting_is_refused_by_a_call_before_decoding(name, setting):
    # A path that does not exist: the setting is refused first, not reported as a missing (or undecodable) video.
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        OmniCLIPVideoProcessor(num_frames=4)("/nonexistent/video.mp4", train=True, **setting)


GOOD_SETTINGS = [
    {"flip_prob": 0},
    {"grayscale_prob": 1},
    {"color_jitter": [0.4]},
    {"color_jitter": (0.0, 0.0, 0.0, 0.5)},
    {"augment_crop_scale": [1.0, 1.0]},
    {"augment_crop_ratio": (1, 1)},
    {"augment_resize_shortest_edge": 0},
    {"augment_resize_shortest_edge": None},
]


@pytest.mark.parametrize("setting", GOOD_SETTINGS, ids=repr)
def test_good_augmentation_settings_train(setting):
    video = np.stack([random_frame(120, 160, seed) for seed in range(4)])
    output = OmniCLIPVideoProcessor(num_frames=4, **setting)(
        video, train=True, generator=torch.Generator().manual_seed(0), return_tensors="pt")
    assert output["pixel_values_videos"].shape == (1, 4, 3, 224, 224)
