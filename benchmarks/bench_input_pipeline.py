"""How many CPU cores of decoding and augmentation keep one GPU fed? Not a test.

    python benchmarks/bench_input_pipeline.py                          # the shared clips, 1 and 2 workers
    python benchmarks/bench_input_pipeline.py --workers 1 2 4 8 14     # on a machine with more cores
    python benchmarks/bench_input_pipeline.py --gpu_clips_per_second 413 520
    python benchmarks/bench_input_pipeline.py --frames                 # also from frame folders of the same clips
    python benchmarks/bench_input_pipeline.py --frames --color_on_device   # and colour augmentation on the device

Measures training clips/s of the whole input side of `examples/train.py` (decode with PyAV + TSN segment sampling
+ clip-consistent augmentation at 224 px + collate), exactly as `VideoClipDataset` and `collate_video_batch` run
it, first in this process on one core (one torch thread, no decoder threads), then through a `DataLoader` with
each number of workers. It prints the cores needed to feed each GPU rate given: the frozen B/16 encoder with SPG
tokens trains at about 413 clips/s on an H200 (8 frames, bf16); `bench_model.py --device cuda` gives OmniCLIP's.
With `--frames` the same clips are first extracted into frame folders (`examples/extract_frames.py`, in a temporary
folder) and the same rows are measured reading those instead of decoding the videos. With `--color_on_device` the
workers leave colour jitter, grayscale and normalisation to the training device (`--color_augmentation_on device`
of train.py): for each source a one-core row and a row with the most workers, and the time the device then takes
to finish a batch (`OmniCLIPVideoProcessor.finish_views`, on CUDA when there is a GPU, else on this CPU).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from omniclip_hf.training.data import (
    VIDEO_EXTENSIONS,
    VideoClassificationData,
    VideoClipDataset,
    _make_dataset,
    collate_video_batch,
)
from omniclip_hf.training.loader import default_num_workers, loader_settings
from omniclip_hf.training.loop import build_video_processor
from omniclip_hf.video_frame_folders import write_frame_folder

from _arguments import above, at_least, video_files

DEFAULT_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"


def clip_list(videos: list[Path], count: int) -> list[str]:
    return [str(videos[index % len(videos)]) for index in range(count)]


def frame_folders_of(videos: list[str], out: Path) -> list[str]:
    """The same list of clips, each extracted once into a frame folder under `out`."""
    # Named by the whole file name, not the stem as extract_frames.py does: two shared clips differ only in suffix.
    folders = {video: out / Path(video).name for video in dict.fromkeys(videos)}
    for video, folder in folders.items():
        write_frame_folder(video, folder)
    return [str(folders[video]) for video in videos]


def training_dataset(videos: list[str], image_size: int, num_frames: int, color_on_device: bool = False
                     ) -> VideoClipDataset:
    data = VideoClassificationData(_make_dataset(videos, [0] * len(videos), ["any"]), ["any"], "benchmark")
    deferred = {"defer_color_augmentation": True} if color_on_device else {}
    return VideoClipDataset(data, build_video_processor(image_size, num_frames), train=True, seed=0, strict=True,
                            **deferred)


def device_finish_ms(dataset: VideoClipDataset, batch_size: int, repeats: int = 5) -> tuple[str, float]:
    """Median milliseconds the training device takes to finish one deferred batch (colour, rescale, normalise)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = collate_video_batch([dataset[index % len(dataset)] for index in range(batch_size)])
    pixels, colors = batch["pixel_values_videos"].to(device), batch["color_augmentation"].to(device)
    times = []
    for _ in range(repeats + 1):  # the first call warms up (CUDA kernels, allocator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        dataset.video_processor.finish_views(pixels, colors)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return device.type, 1000 * sorted(times[1:])[len(times[1:]) // 2]


def one_core_clips_per_second(dataset: VideoClipDataset, batch_size: int) -> float:
    """Items and collation in this process with one torch thread and no decoder threads: the per-core rate."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dataset.processor_kwargs["decoder_threading"] = False
    try:
        collate_video_batch([dataset[0]])  # warm-up: imports, codec set-up
        start = time.perf_counter()
        for first in range(0, len(dataset), batch_size):
            collate_video_batch([dataset[index] for index in range(first, min(first + batch_size, len(dataset)))])
        return len(dataset) / (time.perf_counter() - start)
    finally:
        dataset.processor_kwargs.pop("decoder_threading")
        torch.set_num_threads(threads)


def loader_clips_per_second(dataset: VideoClipDataset, workers: int, batch_size: int) -> float:
    """Clips/s of the second pass over the data with training's loader settings, except that workers persist here,
    so their start-up is paid in the first, untimed pass."""
    settings = {**loader_settings(workers), "persistent_workers": workers > 0}
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         collate_fn=collate_video_batch, **settings)
    for _ in loader:  # warm-up pass
        pass
    start = time.perf_counter()
    clips = sum(batch["pixel_values_videos"].shape[0] for batch in loader)
    return clips / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS, help="folder of video files")
    parser.add_argument("--clips", type=int, default=None,
                        help="clips per measurement (default: 4 batches per worker of the largest --workers, at least "
                             "96; with fewer batches than workers, the rate shows the shortage, not a ceiling)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_frames", type=int, default=8)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--workers", type=int, nargs="+", default=sorted({1, 2, default_num_workers()} - {0}),
                        help="DataLoader worker counts, 0 for the main process (default: 1, 2 and train.py's "
                             "default for this machine)")
    parser.add_argument("--gpu_clips_per_second", type=float, nargs="+", default=[413.0],
                        help="training rates to feed (default: the frozen B/16 + SPG encoder on one H200)")
    parser.add_argument("--frames", action="store_true",
                        help="also measure reading the clips from frame folders (examples/extract_frames.py)")
    parser.add_argument("--color_on_device", action="store_true",
                        help="also measure the workers with colour augmentation left to the training device")
    args = parser.parse_args()
    at_least(parser, 1, {"--clips": args.clips, "--batch_size": args.batch_size, "--num_frames": args.num_frames,
                         "--image_size": args.image_size})
    at_least(parser, 0, {"--workers": args.workers})
    above(parser, 0, {"--gpu_clips_per_second": args.gpu_clips_per_second})
    args.clips = args.clips or max(96, 4 * args.batch_size * max(args.workers))

    videos = clip_list(video_files(parser, args.videos, lambda path: path.suffix.lower() in VIDEO_EXTENSIONS),
                       args.clips)
    print(f"# {args.clips} clips from {args.videos} ({len(set(videos))} files), {args.num_frames} frames, train "
          f"augmentation at {args.image_size} px, batch {args.batch_size}; {os.cpu_count()} CPU cores; "
          f"torch {torch.__version__}")
    print("| input pipeline | clips/s | per worker |")
    print("|---|---|---|", flush=True)
    sources = {"videos": videos}
    with tempfile.TemporaryDirectory() as folder:
        if args.frames:
            sources["frame folders"] = frame_folders_of(videos, Path(folder))
        per_core, finishing = {}, {}
        for source, clips in sources.items():
            prefix = "" if source == "videos" else f"{source}, "
            per_core[source] = measure_rows(prefix, training_dataset(clips, args.image_size, args.num_frames),
                                            args.workers, args)
            if args.color_on_device:
                deferred = training_dataset(clips, args.image_size, args.num_frames, color_on_device=True)
                name = f"{source}, colour on device"
                per_core[name] = measure_rows(f"{name}, ", deferred, [max(args.workers)], args)
                finishing[name] = device_finish_ms(deferred, args.batch_size)
    print("\ncores needed (measured one-core rate; a real run also needs a core for the training process):")
    for target in args.gpu_clips_per_second:
        needed = ", ".join(f"{target / rate:.1f} cores from {source}" for source, rate in per_core.items())
        print(f"  {target:.0f} clips/s: {needed}")
    if args.frames:
        print(f"frame folders / videos, one core: {per_core['frame folders'] / per_core['videos']:.2f}x")
    for name, (device, milliseconds) in finishing.items():
        source = name.removesuffix(", colour on device")
        print(f"{name} / {source}, one core: {per_core[name] / per_core[source]:.2f}x; the device finishes a batch "
              f"of {args.batch_size} in {milliseconds:.1f} ms on {device} (median of 5)")


def measure_rows(prefix: str, dataset: VideoClipDataset, worker_counts: list[int], args: argparse.Namespace) -> float:
    """Prints the one-core row and one row per worker count; returns the one-core clips/s."""
    per_core = one_core_clips_per_second(dataset, args.batch_size)
    print(f"| {prefix}in-process, 1 core | {per_core:.1f} | {per_core:.1f} |", flush=True)
    for workers in worker_counts:
        rate = loader_clips_per_second(dataset, workers, args.batch_size)
        # With 0 workers the main process loads the batches: it is the one worker.
        print(f"| {prefix}DataLoader, {workers} worker{'' if workers == 1 else 's'} | {rate:.1f} | "
              f"{rate / max(workers, 1):.1f} |", flush=True)
    return per_core


if __name__ == "__main__":
    main()
