# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Decoding throughput: sampling 8 frames (TSN segment sampling, evaluation) from each shared clip.

Compares this package's decoder (`read_video_pyav`: seek, skip unneeded non-reference frames, convert only the
sampled frames, stop after the last one; with its default frame threading for frames of VGA size and up, and
without), a full sequential PyAV decode that converts every frame, and transformers' `load_video` (PyAV backend)
given the same indices. Prints a markdown table; not a test.

    .venv/bin/python benchmarks/bench_decode.py [--videos ../shared/videos] [--repeats 7] [--num-frames 8]

clips/s is wall-clock throughput of one process; clips/CPU-s divides by the CPU time of all its threads, i.e. the
throughput per busy core. Each figure is the best of `--repeats` rounds (default 7).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import av
import numpy as np
from transformers.video_utils import load_video


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from omniclip_hf.video_processing_omniclip import read_video_pyav, sample_clip_indices  # noqa: E402


DEFAULT_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"


def segment_indices(num_total: int, num_frames: int) -> list[int]:
    return sample_clip_indices(num_total, num_frames, sampling="segment")[0]


def decode_with_processor(path: Path, num_frames: int) -> np.ndarray:
    frames, _, _, _ = read_video_pyav(str(path), lambda total: segment_indices(total, num_frames))
    return frames


def decode_with_processor_unthreaded(path: Path, num_frames: int) -> np.ndarray:
    frames, _, _, _ = read_video_pyav(str(path), lambda total: segment_indices(total, num_frames), threading=False)
    return frames


def decode_everything(path: Path, num_frames: int) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return np.stack([frames[i] for i in segment_indices(len(frames), num_frames)])


def decode_with_load_video(path: Path, num_frames: int) -> np.ndarray:
    def sample(metadata, **kwargs):
        return np.array(segment_indices(metadata.total_num_frames, num_frames))

    frames, _ = load_video(str(path), backend="pyav", sample_indices_fn=sample)
    return frames


METHODS = {
    "processor": decode_with_processor,
    "processor, no frame threads": decode_with_processor_unthreaded,
    "full decode": decode_everything,
    "load_video": decode_with_load_video,
}


def best_rates(path: Path, num_frames: int, repeats: int) -> dict[str, tuple[float, float] | None]:
    """
    Best (clips per second, clips per CPU-second) of each method over `repeats` rounds, or None where a method
    fails. Rounds run the methods in turn, so a burst of load from other processes hits all of them alike.
    """
    best = {name: [float("inf"), float("inf")] for name in METHODS}
    failed = set()
    for _ in range(repeats):
        for name, method in METHODS.items():
            if name in failed:
                continue
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                method(path, num_frames)
            except Exception as error:  # a method that cannot read a clip is reported, not fatal
                print(f"  {name} failed on {path.name}: {type(error).__name__}: {error}")
                failed.add(name)
                continue
            best[name][0] = min(best[name][0], time.perf_counter() - wall)
            best[name][1] = min(best[name][1], time.process_time() - cpu)
    return {
        name: None if name in failed else (1 / wall, 1 / max(cpu, 1e-9)) for name, (wall, cpu) in best.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--num-frames", type=int, default=8)
    args = parser.parse_args()

    paths = sorted(p for p in args.videos.iterdir() if p.suffix in {".mp4", ".avi", ".webm", ".mkv", ".mov"})
    header = (
        "| clip | size | processor clips/s (/CPU-s) | processor, no frame threads | full decode clips/s (/CPU-s) "
        "| load_video clips/s (/CPU-s) | processor vs full decode (/CPU-s) | processor vs load_video (/CPU-s) |"
    )
    rows = []
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            size = f"{stream.codec_context.width}x{stream.codec_context.height}"
        rates = best_rates(path, args.num_frames, args.repeats)
        cells = [f"{rate[0]:.1f} ({rate[1]:.1f})" if rate else "fails" for rate in rates.values()]
        mine = rates["processor"]
        ratios = [
            f"{mine[0] / rates[other][0]:.2f}x ({mine[1] / rates[other][1]:.2f}x)" if mine and rates[other] else "n/a"
            for other in ("full decode", "load_video")
        ]
        rows.append(f"| {path.name} | {size} | " + " | ".join(cells + ratios) + " |")
    print(header)
    print("|" + "---|" * 8)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
