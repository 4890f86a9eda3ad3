"""How many CPU cores of decoding and augmentation keep one GPU fed? Not a test.

    python benchmarks/bench_input_pipeline.py                          # the shared clips, 1 and 2 workers
    python benchmarks/bench_input_pipeline.py --workers 1 2 4 8 14     # on a machine with more cores
    python benchmarks/bench_input_pipeline.py --gpu_clips_per_second 413 520
    python benchmarks/bench_input_pipeline.py --frames                 # also from frame folders of the same clips
    python benchmarks/bench_input_pipeline.py --frames --color_on_device   # and colour augmentation on the device

Measures training clips/s of the whole input side of `examples/train.py` (decode with PyAV + TSN segment sampling
+ clip-consistent augmentation at 224 px + collate), exactly as `VideoClipDataset` and `collate_video_batch` run
it, first in this process on one core (one torch thread, no decoder threads), then through a `DataLoader` with
each number of workers (training's loader settings, map-style dataset: a listed folder as `--train_data` gives;
`--streaming` tar shards are not measured).

Each row is timed twice: by the wall clock (clips/s, what the machine gave while it ran) and by CPU time (the CPU
seconds the work took: `time.process_time` of this process for the in-process row, and the summed CPU time of the
DataLoader worker processes for a loader row, each worker reading its own `time.process_time` as it hands over a
batch). Other load on a shared machine lowers clips/s; it changes CPU seconds per clip far less (not at all for the
waiting for a core, somewhat through the caches the jobs share); "cores busy" (CPU seconds over wall seconds) shows
how much of the machine a row got.

It prints the cores needed to feed each GPU rate given, as that rate times the CPU seconds per clip, twice: as
measured in the DataLoader workers with the most workers (the path training runs: what to plan with) and in-process
(a floor: no worker processes, no handing batches over). The frozen B/16 encoder with SPG tokens trains at about
413 clips/s on an H200 (8 frames, bf16); `bench_model.py --device cuda` gives OmniCLIP's.

The plain rows apply colour augmentation in the workers (`--color_augmentation_on workers`, what `auto` picks on a
CPU). With `--color_on_device` the workers leave colour jitter, grayscale and normalisation to the training device
(`--color_augmentation_on device`, what `auto` picks on a GPU, so the rows to plan a GPU run with): for each source
a one-core row and a row with the most workers, and the time the device then takes to finish a batch
(`OmniCLIPVideoProcessor.finish_views`, on CUDA when there is a GPU, else on this CPU). With `--frames` the same
clips are first extracted into frame folders (`examples/extract_frames.py`, in a temporary folder) and the same rows
are measured reading those instead of decoding the videos.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
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


class Measurement:
    """One timed pass: `clips` prepared in `wall_seconds`, using `cpu_seconds` of CPU in the processes that prepared
    them (this process in-process, the workers through a DataLoader) by `processes` of them; for a pass with workers,
    `main_cpu_seconds` is what this (the training) process spent meanwhile, receiving the batches. (A plain class: a
    dataclass needs its module in `sys.modules`, which the tests' `load_benchmark` does not register.)"""

    def __init__(self, clips: int, wall_seconds: float, cpu_seconds: float, processes: int,
                 main_cpu_seconds: float = 0.0):
        self.clips, self.wall_seconds, self.cpu_seconds = clips, wall_seconds, cpu_seconds
        self.processes, self.main_cpu_seconds = processes, main_cpu_seconds

    def __repr__(self) -> str:
        return (f"Measurement(clips={self.clips}, wall_seconds={self.wall_seconds:.3f}, cpu_seconds="
                f"{self.cpu_seconds:.3f}, processes={self.processes}, main_cpu_seconds={self.main_cpu_seconds:.3f})")

    @property
    def clips_per_second(self) -> float:
        return self.clips / self.wall_seconds

    @property
    def per_process(self) -> float:
        return self.clips_per_second / self.processes

    @property
    def cpu_seconds_per_clip(self) -> float:
        return self.cpu_seconds / self.clips

    @property
    def clips_per_cpu_second(self) -> float:
        return self.clips / self.cpu_seconds

    @property
    def cores_busy(self) -> float:
        return self.cpu_seconds / self.wall_seconds

    def cores_needed(self, clips_per_second: float) -> float:
        """Cores kept fully busy preparing `clips_per_second`, at this pass's CPU seconds per clip."""
        return clips_per_second * self.cpu_seconds_per_clip


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
    # The colour rows stay on the host, as training keeps them (loader.HOST_KEYS): moved to the device, every timed
    # call also paid a device-to-host copy that training does not make.
    pixels, colors = batch["pixel_values_videos"].to(device), batch["color_augmentation"]
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


def one_core(dataset, batch_size: int, collate_fn: Callable = collate_video_batch) -> Measurement:
    """Items and collation in this process with one torch thread and no decoder threads: the per-core cost, by the
    wall clock and by this process's CPU time."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dataset.processor_kwargs["decoder_threading"] = False
    try:
        collate_fn([dataset[0]])  # warm-up: imports, codec set-up
        wall, cpu = time.perf_counter(), time.process_time()
        for first in range(0, len(dataset), batch_size):
            collate_fn([dataset[index] for index in range(first, min(first + batch_size, len(dataset)))])
        return Measurement(len(dataset), time.perf_counter() - wall, time.process_time() - cpu, 1)
    finally:
        dataset.processor_kwargs.pop("decoder_threading")
        torch.set_num_threads(threads)


class CollateWithCpuTime:
    """The training collate function, run where the batch is made (a worker), that also hands over which worker made
    it and that process's CPU seconds so far (`time.process_time`: all its threads, the queue's feeder included)."""

    def __init__(self, collate_fn: Callable = collate_video_batch):
        self.collate_fn = collate_fn

    def __call__(self, items: list) -> tuple[object, int, float]:
        worker = torch.utils.data.get_worker_info()
        return self.collate_fn(items), -1 if worker is None else worker.id, time.process_time()


def loader_pass(dataset, workers: int, batch_size: int, collate_fn: Callable = collate_video_batch
                ) -> Measurement:
    """The second pass over the data with training's loader settings, except that workers persist here, so their
    start-up is paid in the first, untimed pass. Its CPU time is the workers' (each one's CPU seconds at its last
    batch of the timed pass less those at its last batch of the first pass), or this process's with 0 workers."""
    settings = {**loader_settings(workers), "persistent_workers": workers > 0}
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         collate_fn=CollateWithCpuTime(collate_fn), **settings)
    before: dict[int, float] = {}
    for _, worker, cpu in loader:  # warm-up pass
        before[worker] = cpu
    after: dict[int, float] = {}
    clips = 0
    wall, main_cpu = time.perf_counter(), time.process_time()
    for batch, worker, cpu in loader:
        clips += len(batch["pixel_values_videos"])
        after[worker] = cpu
    wall, main_cpu = time.perf_counter() - wall, time.process_time() - main_cpu
    if workers == 0:  # the main process loads the batches: it is the one worker
        return Measurement(clips, wall, main_cpu, 1)
    # A worker without a batch in the first pass (fewer batches than workers) counts from its start (0 s: a child
    # process's CPU time starts at zero).
    cpu = sum(seconds - before.get(worker, 0.0) for worker, seconds in after.items())
    return Measurement(clips, wall, cpu, workers, main_cpu_seconds=main_cpu)


def row(name: str, measured: Measurement) -> str:
    return (f"| {name} | {measured.clips_per_second:.1f} | {measured.per_process:.1f} | "
            f"{measured.clips_per_cpu_second:.1f} | {measured.cores_busy:.2f} |")


def measure_rows(prefix: str, dataset: VideoClipDataset, worker_counts: list[int], batch_size: int
                 ) -> tuple[Measurement, Measurement]:
    """Prints the one-core row and one row per worker count; returns the one-core pass and that of the most
    workers."""
    in_process = one_core(dataset, batch_size)
    print(row(f"{prefix}in-process, 1 core", in_process), flush=True)
    passes = {}
    for workers in worker_counts:
        passes[workers] = loader_pass(dataset, workers, batch_size)
        print(row(f"{prefix}DataLoader, {workers} worker{'' if workers == 1 else 's'}", passes[workers]), flush=True)
    return in_process, passes[max(worker_counts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS, help="folder of video files")
    parser.add_argument("--clips", type=int, default=None,
                        help="clips per measurement (default: 4 batches per worker of the largest --workers, at least "
                             "96; with fewer batches than workers, clips/s shows the shortage, not a ceiling, while "
                             "the CPU seconds per clip still hold)")
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
                        help="also measure the workers with colour augmentation left to the training device (what "
                             "train.py does on a GPU)")
    args = parser.parse_args()
    at_least(parser, 1, {"--clips": args.clips, "--batch_size": args.batch_size, "--num_frames": args.num_frames,
                         "--image_size": args.image_size})
    at_least(parser, 0, {"--workers": args.workers})
    above(parser, 0, {"--gpu_clips_per_second": args.gpu_clips_per_second})
    args.clips = args.clips or max(96, 4 * args.batch_size * max(args.workers))

    videos = clip_list(video_files(parser, args.videos, lambda path: path.suffix.lower() in VIDEO_EXTENSIONS),
                       args.clips)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    load = f", load average {os.getloadavg()[0]:.2f} at the start" if hasattr(os, "getloadavg") else ""
    print(f"# {args.clips} clips from {args.videos} ({len(set(videos))} files), {args.num_frames} frames, train "
          f"augmentation at {args.image_size} px, batch {args.batch_size}; {os.cpu_count()} CPU cores ({usable} "
          f"usable{load}); torch {torch.__version__}")
    print("# map-style dataset, training's loader settings; colour augmentation in the workers unless a row says "
          "'colour on device'")
    print("| input pipeline | clips/s (wall) | per worker (wall) | clips per CPU-second | cores busy |")
    print("|---|---|---|---|---|", flush=True)
    sources = {"videos": videos}
    with tempfile.TemporaryDirectory() as folder:
        if args.frames:
            sources["frame folders"] = frame_folders_of(videos, Path(folder))
        measured, finishing = {}, {}
        for source, clips in sources.items():
            prefix = "" if source == "videos" else f"{source}, "
            measured[source] = measure_rows(prefix, training_dataset(clips, args.image_size, args.num_frames),
                                            args.workers, args.batch_size)
            if args.color_on_device:
                deferred = training_dataset(clips, args.image_size, args.num_frames, color_on_device=True)
                name = f"{source}, colour on device"
                measured[name] = measure_rows(f"{name}, ", deferred, [max(args.workers)], args.batch_size)
                finishing[name] = device_finish_ms(deferred, args.batch_size)
    most = max(args.workers)
    in_loader = f"{most} worker{'' if most == 1 else 's'}" if most else "0 workers: the main process"
    print(f"\ncores needed = clips/s to feed x CPU seconds per clip, by CPU time (it leaves out waiting for a core, so "
          f"other load on this machine changes it far less than clips/s).\n'workers': as measured in the DataLoader "
          f"workers ({in_loader}), the path training runs: plan with it. 'in-process': one core without worker "
          f"processes, a floor.\nTraining also needs CPU in its own process, where the batches arrive ('receiving'), "
          f"and a core for the training loop.")
    targets = [f"{target:.0f} clips/s" for target in args.gpu_clips_per_second]
    print("| source | CPU ms per clip, workers | CPU ms per clip, in-process | workers / in-process | "
          + " | ".join(f"cores for {target}, workers | cores for {target}, in-process" for target in targets)
          + " | receiving, CPU ms per clip |")
    print("|---" * (5 + 2 * len(targets)) + "|")
    for source, (single, loader) in measured.items():
        cores = " | ".join(f"{loader.cores_needed(target):.1f} | {single.cores_needed(target):.1f}"
                           for target in args.gpu_clips_per_second)
        print(f"| {source} | {1000 * loader.cpu_seconds_per_clip:.0f} | {1000 * single.cpu_seconds_per_clip:.0f} | "
              f"{loader.cpu_seconds_per_clip / single.cpu_seconds_per_clip:.2f}x | {cores} | "
              f"{f'{1000 * loader.main_cpu_seconds / loader.clips:.1f}' if most else '-'} |")
    if not args.color_on_device:
        print("(colour augmentation ran in the workers; on a GPU train.py's default `auto` runs it on the device: "
              "pass --color_on_device for those rows)")
    if args.frames:
        print(f"frame folders / videos, clips per CPU-second: "
              f"{measured['frame folders'][0].clips_per_cpu_second / measured['videos'][0].clips_per_cpu_second:.2f}x "
              f"in-process, "
              f"{measured['frame folders'][1].clips_per_cpu_second / measured['videos'][1].clips_per_cpu_second:.2f}x "
              f"in the workers")
    for name, (device, milliseconds) in finishing.items():
        source = name.removesuffix(", colour on device")
        ratios = [measured[name][index].clips_per_cpu_second / measured[source][index].clips_per_cpu_second
                  for index in (0, 1)]
        print(f"{name} / {source}, clips per CPU-second: {ratios[0]:.2f}x in-process, {ratios[1]:.2f}x in the "
              f"workers; the device finishes a batch of {args.batch_size} in {milliseconds:.1f} ms on {device} "
              f"(median of 5)")


if __name__ == "__main__":
    main()
