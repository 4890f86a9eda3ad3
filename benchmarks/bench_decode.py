# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Decoding throughput: sampling 8 frames (TSN segment sampling, evaluation) from each shared clip.

Compares this package's decoder (`read_video_pyav`: seek, skip unneeded non-reference frames, convert only the
sampled frames, stop after the last one; with its default frame threading for frames of VGA size and up, and
without), a full sequential PyAV decode that converts every frame, transformers' `load_video` (PyAV backend) given
the same indices, and torchcodec's exact-seek `VideoDecoder` (transformers' default video backend; skipped when
torchcodec or FFmpeg's shared libraries are missing; on AVI it is fast but not exact, see docs/video_processing.md).
Prints a markdown table; not a test.

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

from _arguments import at_least, video_files  # noqa: E402


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


def decode_with_torchcodec(path: Path, num_frames: int) -> np.ndarray:
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(path), seek_mode="exact")
    return decoder.get_frames_at(indices=segment_indices(len(decoder), num_frames)).data.numpy()


def torchcodec_available() -> bool:
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except (ImportError, RuntimeError):
        return False
    return True


METHODS = {
    "processor": decode_with_processor,
    "processor, no frame threads": decode_with_processor_unthreaded,
    "full decode": decode_everything,
    "load_video": decode_with_load_video,
}
if torchcodec_available():
    METHODS["torchcodec"] = decode_with_torchcodec


def decode_cpu_seconds(path: Path, skip_nonref: bool, convert: bool, stop_after: int | None = None) -> float:
    """CPU seconds of one sequential decode (no frame threads): optionally skipping non-reference frames, converting
    every output frame to RGB or not, stopping after `stop_after` output frames."""
    start = time.process_time()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        for count, frame in enumerate(container.decode(stream), start=1):
            if convert:
                frame.to_ndarray(format="rgb24")
            if stop_after is not None and count >= stop_after:
                break
    return time.process_time() - start


def where_time_goes(paths: list[Path], num_frames: int, repeats: int) -> None:
    """
    For clips of 9 s or more: CPU seconds of a full decode with and without RGB conversion, of decoding only the
    reference frames up to the last sampled frame (what an exact decoder cannot skip for these streams), and of
    this package's decoder without frame threads. `floor` is the best ratio to a full decode an exact decoder
    could reach per CPU-second: full decode / reference frames up to the last sampled frame.
    """
    print("| clip | full decode + RGB CPU-s | full decode, no RGB | reference frames to the last sampled, no RGB "
          "| processor (no frame threads) | processor vs full decode | floor |")
    print("|" + "---|" * 7)
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            seconds = float(stream.duration * stream.time_base) if stream.duration else container.duration / 1e6
        if seconds < 9:
            continue
        with av.open(str(path)) as container:
            total = sum(1 for _ in container.decode(video=0))
        last = max(segment_indices(total, num_frames)) + 1
        full = min(decode_cpu_seconds(path, False, True) for _ in range(repeats))
        no_rgb = min(decode_cpu_seconds(path, False, False) for _ in range(repeats))
        # NONREF drops frames from the output, so count by time: stop at the first frame past the last sampled one.
        references = min(_reference_cpu_seconds(path, last) for _ in range(repeats))
        mine = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            decode_with_processor_unthreaded(path, num_frames)
            mine = min(mine, time.process_time() - start)
        print(f"| {path.name} | {full:.3f} | {no_rgb:.3f} | {references:.3f} | {mine:.3f} | {full / mine:.2f}x "
              f"| {full / references:.2f}x |")


def _reference_cpu_seconds(path: Path, num_output_frames: int) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        last_pts = sorted(p.pts for p in container.demux(stream) if p.size)[num_output_frames - 1]
    start = time.process_time()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        for frame in container.decode(stream):
            if frame.pts is not None and frame.pts >= last_pts:
                break
    return time.process_time() - start


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
    parser.add_argument("--where-time-goes", action="store_true",
                        help="instead of the throughput table: CPU time of a full decode, its RGB conversion, the "
                             "reference frames an exact decoder must decode, and this decoder, for clips of 9 s+")
    args = parser.parse_args()
    # --repeats 0 would print 0 clips/s for every method, --num-frames 0 a table of "fails".
    at_least(parser, 1, {"--repeats": args.repeats, "--num-frames": args.num_frames})

    paths = video_files(parser, args.videos, lambda p: p.suffix in {".mp4", ".avi", ".webm", ".mkv", ".mov"})
    if args.where_time_goes:
        where_time_goes(paths, args.num_frames, args.repeats)
        return
    if "torchcodec" not in METHODS:
        print("torchcodec (or FFmpeg's shared libraries) missing: no torchcodec column; `make install` installs both.")
    compared = [(mine, other) for mine in ("processor", "torchcodec") for other in ("full decode", "load_video")]
    compared = [(mine, other) for mine, other in compared if mine in METHODS]
    header = (
        "| clip | size | "
        + " | ".join(f"{name} clips/s (/CPU-s)" for name in METHODS)
        + " | "
        + " | ".join(f"{mine} vs {other} (/CPU-s)" for mine, other in compared)
        + " |"
    )
    rows = []
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            size = f"{stream.codec_context.width}x{stream.codec_context.height}"
        rates = best_rates(path, args.num_frames, args.repeats)
        cells = [f"{rate[0]:.1f} ({rate[1]:.1f})" if rate else "fails" for rate in rates.values()]
        ratios = [
            f"{rates[mine][0] / rates[other][0]:.2f}x ({rates[mine][1] / rates[other][1]:.2f}x)"
            if rates[mine] and rates[other]
            else "n/a"
            for mine, other in compared
        ]
        rows.append(f"| {path.name} | {size} | " + " | ".join(cells + ratios) + " |")
    print(header)
    print("|" + "---|" * (2 + len(METHODS) + len(compared)))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
