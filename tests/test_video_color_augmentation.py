"""`apply_color_augmentation` colours a whole batch at once, each clip by its own drawn row: every clip comes out as
it would alone and as torchvision's kernels colour it, with a number of kernels that does not grow with the batch
(what keeps the training GPU's thread free when the colours are applied there)."""

from __future__ import annotations


import pytest
import torch
from torchvision.transforms import v2

from omniclip_hf import video_color_augmentation
from omniclip_hf.video_color_augmentation import (
    apply_color_augmentation,
    color_augmentation_clip_by_clip,
    draw_color_augmentation,
)

from .conftest import load_benchmark


def drawn_rows(count: int, seed: int, jitter_prob: float = 1.0, grayscale_prob: float = 0.3) -> torch.Tensor:
    torch.manual_seed(seed)
    jitter = v2.ColorJitter(0.4, 0.4, 0.4, 0.1)
    return torch.stack([draw_color_augmentation(jitter_prob, jitter, grayscale_prob) for _ in range(count)])


def random_clips(count: int, frames: int, side: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (count, frames, 3, side, side), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_each_clip_of_a_batch_is_coloured_as_alone_and_as_torchvision_colours_it(dtype):
    clips = random_clips(20, 2, 224, seed=0)
    clips = clips if dtype == torch.uint8 else clips.to(dtype) / 255
    rows = drawn_rows(len(clips), seed=1)
    alone = apply_color_augmentation(clips, rows)  # on a CPU, a clip at a time
    batched = apply_color_augmentation(clips, rows, clips_at_once=len(clips))  # as on a GPU
    assert torch.equal(batched, alone)
    assert torch.equal(apply_color_augmentation(clips[7:9], rows[7:9]), alone[7:9])
    reference = color_augmentation_clip_by_clip(clips, rows)
    difference = (batched.double() - reference.double()).abs()
    if dtype == torch.uint8:
        # torchvision's blend fuses a multiply-add; where that rounds across a grey level the two part, rarely.
        assert difference.max() <= 2 and (difference > 0).double().mean() < 1e-3
    else:
        assert difference.max() < 1e-5
    changed = [not torch.equal(batched[i], clips[i]) for i in range(len(clips))]
    assert sum(changed) >= 18
    untouched = clips.clone()
    apply_color_augmentation(clips, rows)
    assert torch.equal(clips, untouched)  # the input is left as it was


def test_rows_that_change_nothing_return_the_clips_as_they_are():
    clips = random_clips(3, 2, 8, seed=0)
    rows = drawn_rows(3, seed=0, jitter_prob=0.0, grayscale_prob=0.0)
    assert apply_color_augmentation(clips, rows) is clips


# The benchmark's counter, so that the test and the figures in the docs count alike.
OperatorCount = load_benchmark("bench_color_augmentation").OperatorCount


def operators_dispatched(clips: torch.Tensor, rows: torch.Tensor) -> int:
    with OperatorCount() as counter:
        apply_color_augmentation(clips, rows)
    return counter.count


def test_the_kernels_launched_do_not_grow_with_the_batch():
    # On a device other than the CPU (torch's meta device here: the same operators, no data) a batch goes whole.
    # Both batches take every step: each of the four properties at each of the four positions, and grayscale.
    small, large = (drawn_rows(count, seed=3, grayscale_prob=0.5) for count in (48, 192))
    for rows in (small, large):
        orders = rows[:, 1:5].long()
        assert all((orders[:, position] == kernel).any() for position in range(4) for kernel in range(4))

    def clips(count):
        return torch.empty(count, 8, 3, 224, 224, dtype=torch.uint8, device="meta")

    assert operators_dispatched(clips(48), small) == operators_dispatched(clips(192), large) < 600


def test_hue_without_torchvisions_hsv_helpers_falls_back_to_its_public_kernel(monkeypatch):
    clips = random_clips(6, 2, 16, seed=0)
    rows = drawn_rows(6, seed=4)
    batched = apply_color_augmentation(clips, rows, clips_at_once=len(clips))
    monkeypatch.setattr(video_color_augmentation, "_rgb_to_hsv", None)
    assert torch.equal(apply_color_augmentation(clips, rows, clips_at_once=len(clips)), batched)
