"""Decode a training set once into JPEG frame folders, so each epoch reads JPEGs instead of decoding video.

    python examples/extract_frames.py --data data/hmdb51/hmdb51_train_split_1_videos.txt \\
        --labels_file labels/hmdb51.txt --data_root data/hmdb51/videos --out data/hmdb51/frames
    accelerate launch -q --config_file examples/accelerate_configs/single.yaml examples/train.py ... \\
        --train_data data/hmdb51/frames/hmdb51_train_split_1_videos.csv --data_root data/hmdb51/frames \\
        --eval_data_root data/hmdb51/videos

`--data` is what `examples/train.py --train_data` takes locally: an annotation file or a folder of class
sub-folders. Each video becomes a folder of JPEG frames (upright, short side at most `--short_side`) under `--out`,
and `OUT/<name>.csv` lists them with the same labels: train from it with `--data_root OUT` (and, without
`--labels_file`, `--labels_file OUT/<name>.labels.txt`, every class of the data in order, so a class whose videos
all fail to decode keeps its place). Frames keep the video's frame numbering and rate (unless `--max_fps`), so
sampling, augmentation and evaluation work as on the video. Running again skips the folders already complete; a
video that cannot be decoded is left out and listed. `--out` goes outside a `--data` folder, and never writes over
a file an earlier extraction did not write (the annotation file read, for one). See docs/data.md, "Decoding once:
frame folders".
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omniclip_hf.training.data import ANNOTATION_EXTENSIONS, load_annotation_file, load_folder
from omniclip_hf.training.frame_extraction import ExtractionResult, extract_frame_folders
from omniclip_hf.training.loader import cpus_per_process
from omniclip_hf.training.loop import run_script
from omniclip_hf.processing_omniclip import load_label_names
from omniclip_hf.video_frame_folders import DEFAULT_JPEG_QUALITY, DEFAULT_SHORT_SIDE


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid: it must be >= 1")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} is invalid: it must be > 0")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path,
                        help="annotation file (CSV, split file or JSON lines) or folder of class sub-folders of videos")
    parser.add_argument("--out", required=True, type=Path, help="where the frame folders and OUT/<name>.csv go")
    parser.add_argument("--labels_file", type=Path, help="class names, one a line (needed for index labels)")
    parser.add_argument("--data_root", type=Path, help="the folder the annotation's paths are relative to "
                        "(default: the annotation file's folder)")
    parser.add_argument("--short_side", type=positive_int, default=DEFAULT_SHORT_SIDE,
                        help="frames are stored with their short side at most this (default: %(default)s, the "
                             "training augmentation's first resize)")
    parser.add_argument("--quality", type=positive_int, default=DEFAULT_JPEG_QUALITY, help="JPEG quality, 1-100 "
                        "(default: %(default)s)")
    parser.add_argument("--max_fps", type=positive_float, help="keep at most this many frames a second (every "
                        "ceil(fps / max_fps)-th frame; default: every frame), to save disk")
    parser.add_argument("--workers", type=positive_int, default=cpus_per_process(),
                        help="videos decoded at once (default: this process's CPUs, %(default)s)")
    args = parser.parse_args(argv)
    if args.quality > 100:
        parser.error(f"argument --quality: {args.quality} is invalid: it must be between 1 and 100")
    return args


def check_out_outside_data_folder(data: Path, out: Path) -> None:
    """
    Inside a `--data` folder, `--out` (or the folder holding it) is one more sub-folder, read as a class: the next run
    (a resumed extraction) and training from the videos would stop on it ("this class folder holds no video files").
    Refused before anything is written, rather than after the first run.
    """
    if not data.is_dir():
        return
    data_folder, out_folder = data.resolve(), out.resolve()
    if out_folder != data_folder and out_folder.is_relative_to(data_folder):
        raise ValueError(
            f"--out {out} is inside --data {data}, whose sub-folders are read as classes (by the next run, and by "
            f"training from {data}): pick an --out outside {data}."
        )


def report(result: ExtractionResult, out: Path, labels_file: Path | None) -> None:
    print(f"wrote {result.num_videos - len(result.undecodable)} frame folders under {out} and "
          f"{result.annotation_file} ({result.num_rows} rows)")
    if result.undecodable:
        print(f"WARNING: {len(result.undecodable)} of {result.num_videos} videos could not be decoded and are left "
              f"out of {result.annotation_file}: listed in {result.undecodable_file}")
    for name in result.lost_classes:  # still a class (labels file), but one training has no example of
        print(f"WARNING: class {name} has no frame folder: none of its videos could be decoded")
    labels_file = labels_file or result.labels_file
    labels = f" --labels_file {labels_file}" if labels_file else ""
    print(f"train from them with: --train_data {result.annotation_file} --data_root {out}{labels}")


def main() -> None:
    args = parse_args()
    check_out_outside_data_folder(args.data, args.out)
    class_names = load_label_names(args.labels_file) if args.labels_file else None
    if args.data.is_dir():
        data, data_root = load_folder(args.data, class_names), args.data
    elif args.data.is_file() and args.data.suffix.lower() in ANNOTATION_EXTENSIONS:
        data = load_annotation_file(args.data, class_names, args.data_root)
        data_root = args.data_root or args.data.parent
    else:
        raise FileNotFoundError(
            f"--data {args.data}: no such folder or annotation file ({', '.join(ANNOTATION_EXTENSIONS)})."
        )
    result = extract_frame_folders(
        data, data_root, args.out, f"{args.data.stem if args.data.is_file() else args.data.name}.csv",
        labels_as_indices=args.labels_file is not None, short_side=args.short_side, quality=args.quality,
        max_fps=args.max_fps, workers=args.workers,
    )
    report(result, args.out, args.labels_file)


if __name__ == "__main__":
    run_script(main)
