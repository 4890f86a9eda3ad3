# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Spatial transforms of decoded clips: resizing, evaluation crops and clip-consistent training augmentation."""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as tvF
from transformers.image_transforms import get_size_with_aspect_ratio
from transformers.image_utils import PILImageResampling

from .configuration_omniclip import is_real_number
from .video_color_augmentation import apply_color_augmentation, draw_color_augmentation, no_color_augmentation


# PIL's NEAREST picks the source pixel under each output pixel's centre, as torch's NEAREST_EXACT does (and
# transformers' image processors map it so); torch's NEAREST is its legacy rule, off by up to a pixel.
_INTERPOLATION_BY_RESAMPLE = {
    int(PILImageResampling.NEAREST): tvF.InterpolationMode.NEAREST_EXACT,
    int(PILImageResampling.BILINEAR): tvF.InterpolationMode.BILINEAR,
    int(PILImageResampling.BICUBIC): tvF.InterpolationMode.BICUBIC,
}

def _size_get(size: Any, key: str) -> int | None:
    return None if size is None else size.get(key)


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


# Evaluation crops come from the centre of the resized frame; a frame longer than this many times its short side is
# cut to its central part first, so preprocessing memory follows the output size, not the input's shape. Real videos
# (up to 21:9) are never cut.
MAX_ASPECT_BEFORE_CROP = 4


def cut_to_aspect(video: torch.Tensor, max_aspect: float) -> torch.Tensor:
    """Centre-cuts the long side of `(..., H, W)` frames to at most `max_aspect` times the short side."""
    height, width = video.shape[-2:]
    short = min(height, width)
    limit = max(1, int(short * max_aspect))
    if max(height, width) <= limit:
        return video
    return tvF.center_crop(video, [min(height, limit), min(width, limit)])


def short_side_target(image_size: Sequence[int], shortest_edge: int, longest_edge: int | None) -> list[int]:
    """
    The `[height, width]` a frame is resized to for `{"shortest_edge"[, "longest_edge"]}`: the short side to
    `shortest_edge`, aspect kept, unless the long side would then pass `longest_edge`, which then caps it.
    """
    if longest_edge is None:
        # torchvision's own rule for one size (long side int(S * long / short)), the same as transformers'.
        return [int(shortest_edge)]
    # transformers' rule (CLIPImageProcessor with both keys), so the shapes match CLIP's exactly; torchvision's
    # `max_size` rounds the capped short side differently.
    return list(get_size_with_aspect_ratio(tuple(image_size), int(shortest_edge), int(longest_edge)))


def _unbounded_resize(size: Any) -> bool:
    """Whether resizing to `size` can make a frame's long side unboundedly long (`shortest_edge` alone): only then is
    it cut first (`cut_to_aspect`). A capped long side (`longest_edge`) or a fixed `height x width` bounds memory
    already, and cutting first would change their output (the cap and the squash see the whole frame)."""
    return _size_get(size, "shortest_edge") is not None and _size_get(size, "longest_edge") is None


def resize_short_side(video: torch.Tensor, size: Any, interpolation: tvF.InterpolationMode) -> torch.Tensor:
    """Resizes `(..., H, W)` so its short side is `size["shortest_edge"]` (the long side at most
    `size["longest_edge"]` when given, as transformers does), or to `size["height"] x size["width"]`."""
    shortest_edge = _size_get(size, "shortest_edge")
    if shortest_edge is not None:
        return tvF.resize(video, short_side_target(video.shape[-2:], shortest_edge, _size_get(size, "longest_edge")),
                          interpolation=interpolation, antialias=True)
    height, width = _size_get(size, "height"), _size_get(size, "width")
    if height is None or width is None:
        raise ValueError(f"size={size!r} must give 'shortest_edge', or 'height' and 'width'.")
    return tvF.resize(video, [int(height), int(width)], interpolation=interpolation, antialias=True)


def pad_to_crop(video: torch.Tensor, crop_height: int, crop_width: int) -> torch.Tensor:
    """Pads `(..., H, W)` frames smaller than the crop up to it on that side, as `center_crop` pads (zeros, centred);
    a side at least as long is left whole, for the caller to crop with its own offsets."""
    height, width = video.shape[-2:]
    if height >= crop_height and width >= crop_width:
        return video
    return tvF.center_crop(video, [max(height, crop_height), max(width, crop_width)])


def spatial_crops(video: torch.Tensor, crop_height: int, crop_width: int, num_crops: int) -> list[torch.Tensor]:
    """
    One centre crop, or three crops along the long side: left/centre/right for a landscape frame, top/centre/bottom
    for a portrait one. Frames smaller than the crop are padded first (`pad_to_crop`).
    """
    video = pad_to_crop(video, crop_height, crop_width)
    height, width = video.shape[-2:]
    if num_crops == 1:
        # Floor offsets, as the 3-crop centre view and transformers' CLIPImageProcessor: torchvision's center_crop
        # rounds half to even, one pixel off when the slack is 3 mod 4 (224x299, e.g. a 428x240 source).
        return [tvF.crop(video, (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width)]
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
) -> v2.Compose:
    """The paper's geometric training augmentations (random resized crop, flip); applied to a `tv_tensors.Video`,
    one draw covers every frame. The colour ones are `draw_color_augmentation` and `apply_color_augmentation`."""
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
        ]
    )


def augment_clip(
    clip: torch.Tensor, augmentation: v2.Compose, color_settings: Sequence[Any], generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Applies the geometric `augmentation` to a `(T, 3, H, W)` clip with the same random parameters for every frame,
    and draws its colour augmentation (`color_settings`: `draw_color_augmentation`'s arguments). Returns the cropped
    clip and the colour row, not yet applied (`apply_color_augmentation`).

    torchvision's transforms draw from the global RNG; with a `generator` they run inside a forked RNG seeded from
    it, so results follow the generator and the caller's global RNG state is left untouched.
    """

    def crop_and_draw() -> tuple[torch.Tensor, torch.Tensor]:
        return augmentation(tv_tensors.Video(clip)).as_subclass(torch.Tensor), draw_color_augmentation(*color_settings)

    if generator is None:
        return crop_and_draw()
    seed = int(torch.randint(2**62, (1,), generator=generator).item())
    with torch.random.fork_rng(devices=[]):
        # The CPU generator alone (what fork_rng restores): torch.manual_seed would also reseed every CUDA generator,
        # which fork_rng(devices=[]) leaves changed.
        torch.default_generator.manual_seed(seed)
        return crop_and_draw()


def check_size(name: str, size: Any) -> None:
    """Raises `ValueError` unless every side given in a size dict is a positive integer (numpy integers too)."""
    if size is None:
        return
    for key in ("shortest_edge", "longest_edge", "height", "width"):
        value = size.get(key) if hasattr(size, "get") else None
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise ValueError(f"{name}={dict(size)!r} is invalid: {key} must be an integer >= 1 (pixels).")


def check_resize_size(size: Any) -> None:
    """Raises `ValueError` unless a `size` dict gives what `resize_short_side` resizes to: `shortest_edge` (with an
    optional `longest_edge` cap), or `height` and `width`. Checked when the processor is made: found at decoding, it
    refused every video (and training skipped each as undecodable)."""
    if not hasattr(size, "get"):  # None, or an int transformers turns into a square
        return
    if _size_get(size, "shortest_edge") is None and None in (_size_get(size, "height"), _size_get(size, "width")):
        given = {key: value for key, value in dict(size).items() if value is not None}
        raise ValueError(f"size={given!r} is invalid: give shortest_edge (the short side, aspect kept; longest_edge "
                         "may cap the long side), or height and width, e.g. {'shortest_edge': 224}.")


def check_crop_size(crop_size: Any) -> None:
    """Raises `ValueError` unless a `crop_size` dict gives `height` and `width`: it is the output frame size of every
    crop (transformers also accepts `shortest_edge` there, which no crop here can use)."""
    if not hasattr(crop_size, "get"):  # None, or an int transformers turns into a square
        return
    if _size_get(crop_size, "height") is None or _size_get(crop_size, "width") is None:
        given = {key: value for key, value in dict(crop_size).items() if value is not None}
        raise ValueError(f"crop_size={given!r} is invalid: it must give height and width (the output frame size), "
                         "e.g. {'height': 224, 'width': 224}.")


def check_probability(name: str, value: Any) -> None:
    """Raises `ValueError` naming `name` unless `value` is a number in [0, 1]."""
    if not (is_real_number(value) and 0 <= value <= 1):
        raise ValueError(f"{name}={value!r} is invalid: it must be a probability, a number in [0, 1].")


def check_color_jitter(value: Any) -> None:
    """Raises `ValueError` unless `value` is 1 to 4 strengths (brightness, contrast, saturation, hue) that
    torchvision's ColorJitter takes: numbers >= 0, hue at most 0.5 (or (min, max) pairs)."""
    is_sequence = isinstance(value, Sequence) and not isinstance(value, (str, bytes))
    problem = None if is_sequence and 1 <= len(value) <= 4 else "give 1 to 4 strengths"
    if problem is None:
        try:  # ColorJitter's own checks, so whatever it refuses is refused here, before any video is decoded
            v2.ColorJitter(*value)
        except (TypeError, ValueError) as error:
            problem = str(error).rstrip(".")
    if problem is not None:
        raise ValueError(f"color_jitter={value!r} is invalid ({problem}): give brightness, contrast, saturation and "
                         "hue strengths, numbers >= 0 with hue at most 0.5, e.g. [0.4, 0.4, 0.2, 0.1].")


def check_crop_range(name: str, value: Any, upper: float | None = None) -> None:
    """Raises `ValueError` naming `name` unless `value` is two numbers `0 < low <= high` (`high <= upper` too)."""
    pair = isinstance(value, Sequence) and len(value) == 2 and all(is_real_number(number) and math.isfinite(number) for number in value)
    if not (pair and 0 < value[0] <= value[1] and (upper is None or value[1] <= upper)):
        within = f", high at most {upper}" if upper is not None else ""
        raise ValueError(f"{name}={value!r} is invalid: give two numbers, low <= high, both > 0{within}.")


def check_augment_resize(value: Any) -> None:
    """Raises `ValueError` unless `augment_resize_shortest_edge` is None or 0 (crop at full size) or pixels >= 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0):
        raise ValueError(f"augment_resize_shortest_edge={value!r} is invalid: it must be an integer >= 1 (pixels), "
                         "or 0 to crop from the full-size frames.")


def check_augmentation_settings(settings: dict[str, Any]) -> None:
    """Checks the training augmentation's settings, so a bad one fails when given, not at the first training call
    (after decoding, where a training dataset would report each video as undecodable)."""
    for name in ("flip_prob", "color_jitter_prob", "grayscale_prob"):
        check_probability(name, settings.get(name))
    check_color_jitter(settings.get("color_jitter"))
    check_crop_range("augment_crop_scale", settings.get("augment_crop_scale"), upper=1)
    check_crop_range("augment_crop_ratio", settings.get("augment_crop_ratio"))
    check_augment_resize(settings.get("augment_resize_shortest_edge"))


def per_channel(name: str, value: Any) -> list[float]:
    """
    `image_mean` or `image_std` as one number per RGB channel: a single number (transformers accepts one for image
    processors) applies to all three.

    Raises:
        `ValueError`: anything but one number or three, or a standard deviation of 0 or below.
    """
    values = [value] if isinstance(value, numbers.Real) and not isinstance(value, bool) else value
    try:
        values = [float(number) for number in values]
    except (TypeError, ValueError):
        values = None
    if values is None or len(values) not in (1, 3):
        raise ValueError(f"{name}={value!r} is invalid: give one number, or three (one per RGB channel).")
    if name == "image_std" and min(values) <= 0:
        raise ValueError(f"{name}={value!r} is invalid: standard deviations must be > 0 (frames are divided by them).")
    return values * 3 if len(values) == 1 else values


def make_views(
    frames: torch.Tensor,
    clip_rows: torch.Tensor,
    settings: dict[str, Any],
    train: bool,
    generator: torch.Generator | None,
    defer_color_augmentation: bool = False,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """
    Spatial views of every clip, clip-major: evaluation resize and crops, or clip-consistent training augmentation;
    then colour augmentation (training), rescale and normalise (`finish_views`).

    Args:
        frames (`torch.Tensor`): the distinct decoded frames, `(U, 3, H, W)` uint8.
        clip_rows (`torch.Tensor`): `(K, T)` rows of `frames` making up each clip.
        defer_color_augmentation (`bool`): return the views as cropped (uint8 for decoded frames), neither coloured
            nor normalised, for `finish_views` to do elsewhere.

    Returns:
        The `(T, 3, h, w)` views (normalised float32 unless deferred) and each view's colour row
        (`draw_color_augmentation`; one that changes nothing outside training).
    """
    crop_size = settings["crop_size"]
    interpolation = _interpolation(settings["resample"])
    views, colors = [], []
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
        )
        # v2.ColorJitter checks the strengths and turns them into ranges, once per call.
        color_settings = (settings["color_jitter_prob"], v2.ColorJitter(*settings["color_jitter"]),
                          settings["grayscale_prob"])
        resize_to = settings["augment_resize_shortest_edge"]
        if resize_to and min(frames.shape[-2:]) > resize_to:  # 0 (or None in a call): crop at full size
            frames = tvF.resize(frames, [int(resize_to)], interpolation=interpolation, antialias=True)
        for rows in clip_rows:
            for _ in range(settings["num_spatial_crops"]):
                view, color = augment_clip(frames[rows], augmentation, color_settings, generator)
                views.append(view)
                colors.append(color)
    else:
        if settings["do_resize"]:
            if settings["do_center_crop"] and crop_size is not None and _unbounded_resize(settings["size"]):
                # Memory follows the output: a 2x8192 frame would be 224x917504 after resizing its short side.
                frames = cut_to_aspect(frames, MAX_ASPECT_BEFORE_CROP)
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
        colors = [no_color_augmentation() for _ in views]
    if defer_color_augmentation:
        return views, colors
    # One clip's views share their shape: coloured and normalised together.
    finished = finish_views(torch.stack(views), torch.stack(colors), settings) if views else torch.empty(0)
    return list(finished.unbind(0)), colors


def finish_views(views: torch.Tensor, colors: torch.Tensor, settings: dict[str, Any]) -> torch.Tensor:
    """`(N, T, 3, H, W)` views' colour augmentation (`apply_color_augmentation`, one row of `(N, ...)` `colors` per
    view), then `rescale_and_normalize`."""
    return rescale_and_normalize(apply_color_augmentation(views, colors), settings)


def rescale_and_normalize(view: torch.Tensor, settings: dict[str, Any]) -> torch.Tensor:
    """Float32 `view`, rescaled (uint8 input only) and normalised as `settings` say."""
    # uint8 frames hold 0-255; float frames (from in-memory float or uint16 input) are already in [0, 1].
    already_rescaled = view.is_floating_point()
    view = view.to(torch.float32)
    if settings["do_rescale"] and not already_rescaled:
        view = view * settings["rescale_factor"]
    if settings["do_normalize"]:
        view = tvF.normalize(view, mean=per_channel("image_mean", settings["image_mean"]),
                             std=per_channel("image_std", settings["image_std"]))
    return view
