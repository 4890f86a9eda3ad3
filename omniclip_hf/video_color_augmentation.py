# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""
Colour augmentation of training clips in two steps: drawn per clip where the clip is decoded (a DataLoader worker,
from the example's seed), then applied where the clips are: a whole batch at once on the training GPU, clip by clip
on a CPU.
"""

from __future__ import annotations

import torch
from torchvision.transforms import ColorJitter
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as tvF


try:  # torchvision's own RGB <-> HSV conversions (private, identical in 0.26 and 0.29); see `_adjust_hue`.
    from torchvision.transforms.v2.functional._color import _hsv_to_rgb, _rgb_to_hsv
except ImportError:  # a torchvision that moved them: hue one clip at a time, with its public kernel
    _hsv_to_rgb = _rgb_to_hsv = None


# One clip's colour augmentation as a row of numbers: [jitter applied (0/1), the order of brightness, contrast,
# saturation and hue (4 entries, 0-3), their factors (NaN: not jittered), grayscale (0/1)].
COLOR_AUGMENTATION_SIZE = 10
_JITTER_APPLIED, _ORDER, _FACTORS, _GRAYSCALE = 0, slice(1, 5), slice(5, 9), 9
_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE, _TO_GRAYSCALE = range(5)


def no_color_augmentation() -> torch.Tensor:
    """The colour row that changes nothing (evaluation views); draws nothing from any RNG."""
    row = torch.full((COLOR_AUGMENTATION_SIZE,), float("nan"), dtype=torch.float32)
    row[_JITTER_APPLIED] = row[_GRAYSCALE] = 0.0
    row[_ORDER] = torch.arange(4, dtype=torch.float32)
    return row


def draw_color_augmentation(color_jitter_prob: float, jitter: v2.ColorJitter, grayscale_prob: float) -> torch.Tensor:
    """
    Draws one clip's colour jitter (with probability `color_jitter_prob`: brightness, contrast, saturation and hue
    factors in a random order, as `jitter` draws them) and grayscale (with probability `grayscale_prob`) from torch's
    global RNG, exactly as `RandomApply([jitter], color_jitter_prob)` then `RandomGrayscale(grayscale_prob)` draw.
    Returns the `(COLOR_AUGMENTATION_SIZE,)` float32 row `apply_color_augmentation` takes.
    """
    row = no_color_augmentation()
    applied = bool(torch.rand(1) < color_jitter_prob)
    row[_JITTER_APPLIED] = float(applied)
    if applied:
        order, *factors = ColorJitter.get_params(jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)
        row[_ORDER] = order.to(torch.float32)
        row[_FACTORS] = torch.tensor([float("nan") if f is None else f for f in factors], dtype=torch.float32)
    row[_GRAYSCALE] = float(bool(torch.rand(1) < grayscale_prob))
    return row


# The colour kernels below take one factor per clip, `(n, 1, 1, 1, 1)`, where torchvision's take one float per call:
# called clip by clip on a GPU, torchvision's cost about 70 kernel launches per clip on the training thread (and a
# host-to-device copy per hue call). Each is torchvision's kernel's arithmetic with the float made a tensor, so the
# results are torchvision's (within two grey levels on under 0.1% of pixels, where its blend fuses a multiply and an
# add and so rounds once where this rounds twice); kornia's batched kernels use other formulas (an additive
# brightness, for one).


def _max_value(clips: torch.Tensor) -> float:
    return 1.0 if clips.is_floating_point() else float(torch.iinfo(clips.dtype).max)


def _clamped_like(values: torch.Tensor, clips: torch.Tensor) -> torch.Tensor:
    values = values.clamp_(0, _max_value(clips))
    return values if clips.is_floating_point() else values.to(clips.dtype)


def _blend(clips: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    return _clamped_like(torch.addcmul(clips.mul(ratio), other, 1.0 - ratio), clips)


def _grayscale_values(clips: torch.Tensor) -> torch.Tensor:
    # torchvision's luma in float; for integer frames floored, as torchvision's contrast and saturation take it.
    return tvF.rgb_to_grayscale(clips, num_output_channels=1).to(torch.float32)


def _adjust_brightness(clips: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return _clamped_like(clips.mul(factors), clips)


def _adjust_contrast(clips: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    frame_means = _grayscale_values(clips).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(clips, frame_means, factors)


def _adjust_saturation(clips: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return _blend(clips, _grayscale_values(clips), factors)


def _adjust_hue(clips: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    if _rgb_to_hsv is None:  # see the import
        return torch.stack([tvF.adjust_hue(clip, float(f)) for clip, f in zip(clips, factors.flatten().tolist())])
    hue, saturation, value = _rgb_to_hsv(tvF.to_dtype(clips, torch.float32, scale=True)).unbind(dim=-3)
    hue = hue.add_(factors.squeeze(-3)).remainder_(1.0)
    rgb = _hsv_to_rgb(torch.stack((hue, saturation, value), dim=-3))
    return tvF.to_dtype(rgb, clips.dtype, scale=True)


def _to_grayscale(clips: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return tvF.rgb_to_grayscale(clips, num_output_channels=3).contiguous()


_KERNELS = (_adjust_brightness, _adjust_contrast, _adjust_saturation, _adjust_hue, _to_grayscale)


def _plan(rows: torch.Tensor) -> list[tuple[int, list[int], list[float]]]:
    """
    The steps that apply `(N, COLOR_AUGMENTATION_SIZE)` host `rows`: (kernel, the clips it applies to, their
    factors), in an order that gives every clip its own order. A clip takes one property at each of the four
    positions of its order, so the clips of one step never meet twice within a position; grayscale comes last.
    """
    steps = []
    values = rows.tolist()
    for position in range(4):
        for kernel in (_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE):
            clips, factors = [], []
            for clip, row in enumerate(values):
                factor = row[_FACTORS][kernel]
                if row[_JITTER_APPLIED] and int(row[_ORDER][position]) == kernel and factor == factor:  # not NaN
                    clips.append(clip)
                    factors.append(factor)
            if clips:
                steps.append((kernel, clips, factors))
    grayscale = [clip for clip, row in enumerate(values) if row[_GRAYSCALE]]
    if grayscale:
        steps.append((_TO_GRAYSCALE, grayscale, [0.0] * len(grayscale)))
    return steps


def apply_color_augmentation(
    clips: torch.Tensor, rows: torch.Tensor, clips_at_once: int | None = None
) -> torch.Tensor:
    """
    Applies drawn colour augmentations (`draw_color_augmentation`) to a batch of clips, each clip its own row, every
    frame alike, on the clips' device and in their dtype: the jittered properties in each clip's drawn order, then
    grayscale kept as 3 channels. On a GPU a few hundred small kernels for the whole batch however many clips it
    holds (clip by clip, torchvision's kernels launch about 70 per clip); on a CPU clip by clip. Each clip's result
    is the same whichever clips share its batch.

    Args:
        clips (`torch.Tensor`): `(N, T, 3, H, W)`, uint8 (0-255) or float (0-1).
        rows (`torch.Tensor`): `(N, COLOR_AUGMENTATION_SIZE)` float32, on any device (read on the host).
        clips_at_once (`int`, *optional*): how many clips go through the kernels together; by default the whole
            batch on a GPU and one on a CPU (below). The pixels do not depend on it.

    Returns:
        `torch.Tensor`: `(N, T, 3, H, W)` in `clips`' dtype (`clips` itself when no row changes anything).
    """
    rows = rows.detach().cpu()
    if not (rows[:, _JITTER_APPLIED].any() or rows[:, _GRAYSCALE].any()):
        return clips
    per_chunk = max(1, clips_at_once or _clips_at_once(clips))
    if len(clips) > per_chunk:
        return torch.cat([_apply_to_batch(clips[start : start + per_chunk], rows[start : start + per_chunk])
                          for start in range(0, len(clips), per_chunk)])
    return _apply_to_batch(clips, rows)


# On a CPU one clip at a time: a clip's float copies stay in cache and a batch's do not (32 clips of 8 frames at
# 224 px, `benchmarks/bench_color_augmentation.py` on the 2-core development machine: all at once about twice the
# time of a clip at a time). On a GPU the whole batch at once: there the kernels are small and launching them is
# what costs.
def _clips_at_once(clips: torch.Tensor) -> int:
    return 1 if clips.device.type == "cpu" else len(clips)


def _on_device(values: list, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """`values` on `device`; to a GPU from page-locked memory without waiting for the work already queued there (a
    blocking copy from pageable memory makes torch synchronise the stream)."""
    host = torch.tensor(values, dtype=dtype)
    if device.type == "cuda":
        host = host.pin_memory()
    return host.to(device, non_blocking=True)


def _apply_to_batch(clips: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    steps = _plan(rows)
    if not steps:
        return clips
    # One copy to the device for every step's clip indices and one for their factors, not one per step.
    indices = _on_device([clip for _, clip_ids, _ in steps for clip in clip_ids], torch.long, clips.device)
    factors = _on_device([f for _, _, step_factors in steps for f in step_factors], torch.float32, clips.device)
    sizes = [len(clip_ids) for _, clip_ids, _ in steps]
    copied = False  # the kernels return new tensors; the caller's clips are copied only before one is written into
    for (kernel, _, _), step_indices, step_factors in zip(steps, indices.split(sizes), factors.split(sizes)):
        step_factors = step_factors.view(-1, 1, 1, 1, 1)
        if len(step_indices) == len(clips):  # every clip, in order (one clip on its own, always)
            clips, copied = _KERNELS[kernel](clips, step_factors), True
            continue
        if not copied:
            clips, copied = clips.clone(), True
        clips.index_copy_(0, step_indices, _KERNELS[kernel](clips.index_select(0, step_indices), step_factors))
    return clips


_TORCHVISION_ADJUSTMENTS = (tvF.adjust_brightness, tvF.adjust_contrast, tvF.adjust_saturation, tvF.adjust_hue)


def color_augmentation_clip_by_clip(clips: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """
    What `apply_color_augmentation` computes, done as torchvision's transforms do it: clip by clip, one call of
    torchvision's kernel per property with the clip's factor. The reference the batched kernels are tested and
    benchmarked against (`tests/test_video_color_augmentation.py`, `benchmarks/bench_input_pipeline.py`).
    """
    coloured = []
    for clip, row in zip(clips, rows.detach().cpu().tolist()):
        if row[_JITTER_APPLIED]:
            factors = row[_FACTORS]
            for kernel in row[_ORDER]:
                factor = factors[int(kernel)]
                if factor == factor:  # not NaN: this property is jittered
                    clip = _TORCHVISION_ADJUSTMENTS[int(kernel)](clip, factor)
        if row[_GRAYSCALE]:
            clip = tvF.rgb_to_grayscale(clip, num_output_channels=3)
        coloured.append(clip)
    return torch.stack(coloured) if coloured else clips
