# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Frame sampling: which frame indices a clip takes (TSN segments, uniform spacing, dense windows)."""

from __future__ import annotations

import numpy as np
import torch


SAMPLING_STRATEGIES = ("segment", "uniform", "dense")

def _random_uniform(count: int, generator: torch.Generator | None) -> np.ndarray:
    return torch.rand(count, generator=generator, dtype=torch.float64).numpy()


def _clip_to_range(positions: np.ndarray, num_total: int) -> list[int]:
    # floor() of positions in [0, num_total) keeps the order, so a short video repeats frames in order.
    return np.clip(np.floor(positions), 0, num_total - 1).astype(np.int64).tolist()


def sample_segment_indices(
    num_total: int,
    num_frames: int,
    clip_index: int = 0,
    num_clips: int = 1,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> list[int]:
    """
    TSN sampling: `num_frames` equal segments of the video, one frame from each.

    In training the frame is random within its segment; in evaluation clip `k` of `num_clips` takes the point at
    fraction `(k + 0.5) / num_clips` of every segment, so one clip takes the middle frames.
    """
    segment_length = num_total / num_frames
    starts = np.arange(num_frames) * segment_length
    offsets = _random_uniform(num_frames, generator) if train else np.full(num_frames, (clip_index + 0.5) / num_clips)
    return _clip_to_range(starts + offsets * segment_length, num_total)


def sample_uniform_indices(
    num_total: int,
    num_frames: int,
    clip_index: int = 0,
    num_clips: int = 1,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> list[int]:
    """
    Evenly spaced frames `num_total / num_frames` apart, starting at the first frame (as transformers'
    `default_sample_indices_fn`). Clip `k` of `num_clips` is shifted by `k / num_clips` of the spacing; in training
    the shift is one random phase shared by all frames.
    """
    spacing = num_total / num_frames
    phase = float(_random_uniform(1, generator)[0]) if train else clip_index / num_clips
    return _clip_to_range(np.arange(num_frames) * spacing + phase * spacing, num_total)


def sample_dense_indices(
    num_total: int,
    num_frames: int,
    frame_stride: int,
    clip_index: int = 0,
    num_clips: int = 1,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> list[int]:
    """
    `num_frames` frames `frame_stride` apart from one window. Evaluation windows are evenly spread over the video
    (one clip: the central window); training draws the window start at random. A video shorter than the window
    gives evenly spaced frames over the whole video instead (`sample_uniform_indices`, repeating frames in order
    when needed), shifted per evaluation clip or by a random phase in training as uniform sampling shifts them.
    """
    window = (num_frames - 1) * frame_stride + 1
    if window > num_total:
        # The clip and training arguments go along: without them every evaluation clip of a short video was the
        # same view, and training drew the same frames from it every epoch.
        return sample_uniform_indices(num_total, num_frames, clip_index, num_clips, train, generator)
    slack = num_total - window
    if train:
        start = int(torch.randint(slack + 1, (1,), generator=generator).item())
    elif num_clips == 1:
        start = slack // 2
    else:
        start = round(clip_index * slack / (num_clips - 1))
    return (start + np.arange(num_frames) * frame_stride).tolist()


def sample_clip_indices(
    num_total: int,
    num_frames: int,
    sampling: str = "segment",
    frame_stride: int = 4,
    num_clips: int = 1,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """
    Frame indices of `num_clips` clips of `num_frames` frames each from a video of `num_total` frames.

    Returns:
        `list[list[int]]`: one list of `num_frames` indices in `[0, num_total)` per clip.
    """
    if num_total < 1:
        raise ValueError("cannot sample frames from a video with no frames")
    clips = []
    for clip_index in range(num_clips):
        if sampling == "segment":
            clips.append(sample_segment_indices(num_total, num_frames, clip_index, num_clips, train, generator))
        elif sampling == "uniform":
            clips.append(sample_uniform_indices(num_total, num_frames, clip_index, num_clips, train, generator))
        elif sampling == "dense":
            clips.append(
                sample_dense_indices(num_total, num_frames, frame_stride, clip_index, num_clips, train, generator)
            )
        else:
            raise ValueError(f"sampling={sampling!r} is not supported; use one of {SAMPLING_STRATEGIES}.")
    return clips

