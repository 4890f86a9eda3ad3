"""What colouring a training batch costs the device, at once and clip by clip. Not a test.

    python benchmarks/bench_color_augmentation.py                 # on CUDA when there is a GPU, else this CPU
    python benchmarks/bench_color_augmentation.py --repeats 21

`apply_color_augmentation` (what `OmniCLIPVideoProcessor.finish_views` and the training loop's
`--color_augmentation_on device` run) with the whole batch at once, four clips at a time and a clip at a time, against
torchvision's own kernels clip by clip (`color_augmentation_clip_by_clip`, how a batch was coloured before
2026-12-06); the four take turns, and each figure is a median. Rows drawn with the training recipe's probabilities
(jitter 0.8, grayscale 0.2) from random uint8 clips of 8 frames: at 224 px, what the work costs; at 2x2 px, where
little but launching the operators is left, what that costs the training thread. Also the operators each way
dispatches (counted with a `TorchDispatchMode`).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torchvision.transforms import v2

from omniclip_hf.video_color_augmentation import (
    apply_color_augmentation,
    color_augmentation_clip_by_clip,
    draw_color_augmentation,
)

from _arguments import at_least, torch_device


class OperatorCount(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def ways_to_colour(batch_size: int) -> dict:
    ways = {"at once": lambda clips, rows: apply_color_augmentation(clips, rows, clips_at_once=batch_size)}
    if batch_size > 4:
        ways["4 at a time"] = lambda clips, rows: apply_color_augmentation(clips, rows, clips_at_once=4)
    ways["a clip at a time"] = lambda clips, rows: apply_color_augmentation(clips, rows, clips_at_once=1)
    ways["torchvision, clip by clip"] = color_augmentation_clip_by_clip
    return ways


def medians_ms(ways: dict, clips: torch.Tensor, rows: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median milliseconds of each way, taking turns (an order rotated every round), after one warm-up round; on
    CUDA each call is timed to the end of its kernels."""
    times = {name: [] for name in ways}
    names = list(ways)
    for round_index in range(repeats + 1):
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            if clips.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            ways[name](clips, rows)
            if clips.device.type == "cuda":
                torch.cuda.synchronize()
            if round_index:
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * sorted(values)[len(values) // 2] for name, values in times.items()}


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    at_least(parser, 1, {"--repeats": args.repeats})  # 0 leaves no call to take the median of
    device = torch_device(parser, args.device)
    torch.manual_seed(args.seed)
    jitter = v2.ColorJitter(0.4, 0.4, 0.4, 0.1)
    print(f"# colouring a batch of 8-frame uint8 clips on {device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}); "
          f"torch {torch.__version__}; medians of {args.repeats}, taking turns")
    print("| frames | clips | way | ms | operators |")
    print("|---|---|---|---|---|")
    for side, batch_size in ((224, 32), (2, 32), (2, 128)):
        clips = torch.randint(0, 256, (batch_size, 8, 3, side, side), dtype=torch.uint8, device=device)
        rows = torch.stack([draw_color_augmentation(0.8, jitter, 0.2) for _ in range(batch_size)])
        ways = ways_to_colour(batch_size)
        for name, milliseconds in medians_ms(ways, clips, rows, args.repeats).items():
            with OperatorCount() as counter:
                ways[name](clips, rows)
            print(f"| {side}x{side} | {batch_size} | {name} | {milliseconds:.1f} | {counter.count} |", flush=True)


if __name__ == "__main__":
    main()
