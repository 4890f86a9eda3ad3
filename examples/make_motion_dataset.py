#!/usr/bin/env python
# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Write the synthetic motion set: mp4 clips where only the order of frames tells the classes apart.

    python examples/make_motion_dataset.py --output_dir demo_output/motion --train_per_class 40 --test_per_class 10

Layout: <output_dir>/labels.txt, <output_dir>/dataset_info.json, <output_dir>/{train,test}/<class name>/<id>.mp4.
See docs/motion_benchmark.md. A non-empty --output_dir is refused: a rerun into it would mix two sets' clips and
classes. --overwrite replaces an earlier motion set there as a whole; the new set is written beside it and renamed
into place, so an interrupted run leaves the old set (or nothing), never half of one.
"""

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

from omniclip_hf.motion_benchmark.motion_data import CLASS_NAMES, MIN_FRAME_SIZE, check_classes, not_a_motion_set
from omniclip_hf.motion_benchmark.runner import at_least, write_motion_dataset_in_place_of
from omniclip_hf.training.loop import run_script


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="demo_output/motion",
                        help="folder to write (created if missing; must be empty unless --overwrite)")
    parser.add_argument("--train_per_class", type=int, default=40, help="training clips per class")
    parser.add_argument("--test_per_class", type=int, default=10, help="test clips per class")
    parser.add_argument("--num_frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--size", type=int, default=64, help="frame side in pixels (even, at least 32)")
    parser.add_argument("--fps", type=int, default=8, help="frame rate written into the mp4 files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", nargs="+", default=list(CLASS_NAMES), metavar="CLASS",
                        help="subset of classes, each with its time-reversed partner (quote names with spaces)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the motion set already in --output_dir (a folder holding anything else is kept)")
    return parser


def check_output_dir(output_dir: Path, overwrite: bool) -> None:
    """Refuses a file, and a non-empty folder unless --overwrite and it holds only an earlier motion set."""
    for folder in (output_dir, *output_dir.parents):
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"--output_dir {output_dir}: {folder} is a file; give a folder.")
    if not output_dir.is_dir() or not any(output_dir.iterdir()):
        return
    if not overwrite:
        raise ValueError(f"--output_dir {output_dir} is not empty: give a new folder, or pass --overwrite to replace "
                         "the motion set there (writing into it would mix the two sets' clips and classes).")
    # Entry names alone (labels.txt, train/, test/) are the layout of any folder data set: the dataset_info.json
    # this script writes, with its name, is what marks a folder it wrote.
    why = not_a_motion_set(output_dir)
    if why is not None:
        raise ValueError(f"--output_dir {output_dir} {why}: --overwrite replaces only a folder this script wrote; "
                         "give a new folder.")


def check_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Each bad value refused in one usage error naming its flag (numpy's answer to --seed -1 named none)."""
    at_least(parser, 1, {"--train_per_class": args.train_per_class, "--test_per_class": args.test_per_class,
                         "--fps": args.fps})
    at_least(parser, 2, {"--num_frames": args.num_frames})
    at_least(parser, MIN_FRAME_SIZE, {"--size": args.size})
    at_least(parser, 0, {"--seed": args.seed})
    if args.size % 2:
        parser.error(f"--size {args.size}: must be even (yuv420p video)")
    try:
        check_classes(args.classes)
    except ValueError as error:
        parser.error(f"--classes: {error}")


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = build_arg_parser()
    args = parser.parse_args(argv)
    check_numbers(parser, args)
    start = time.time()
    check_output_dir(Path(args.output_dir), args.overwrite)
    info = write_motion_dataset_in_place_of(
        args.output_dir, num_train_per_class=args.train_per_class, num_test_per_class=args.test_per_class,
        num_frames=args.num_frames, size=args.size, seed=args.seed, fps=args.fps, classes=args.classes,
        progress=sys.stderr.isatty())
    settings = info["settings"]
    print(f"wrote {args.output_dir} in {time.time() - start:.1f}s: {len(info['classes'])} classes, "
          f"{settings['num_frames']} frames of {settings['size']}x{settings['size']} at {settings['fps']} fps, "
          f"codec {settings['codec']} ({settings['encoding']})")
    for split, split_info in info["splits"].items():
        per_class = Counter(entry["class_name"] for entry in split_info["files"])
        print(f"  {split}: {split_info['num_clips']} clips ({per_class.most_common(1)[0][1]} per class)")
    for name in info["classes"]:
        print(f"  {name!r:26} <-> time reversal {info['reversal_pairs'][name]!r}")
    print(f"  labels: {args.output_dir}/labels.txt, description: {args.output_dir}/dataset_info.json")
    return info


if __name__ == "__main__":
    run_script(main)
