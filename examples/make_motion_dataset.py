#!/usr/bin/env python
# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Write the synthetic motion set: mp4 clips where only the order of frames tells the classes apart.

    python examples/make_motion_dataset.py --output_dir demo_output/motion --train_per_class 40 --test_per_class 10

Layout: <output_dir>/labels.txt, <output_dir>/dataset_info.json, <output_dir>/{train,test}/<class name>/<id>.mp4.
See docs/motion_benchmark.md.
"""

import argparse
import sys
import time
from collections import Counter
from typing import Optional, Sequence

from omniclip_hf.motion_benchmark.motion_data import CLASS_NAMES, write_motion_dataset


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="demo_output/motion", help="folder to write (created if missing)")
    parser.add_argument("--train_per_class", type=int, default=40, help="training clips per class")
    parser.add_argument("--test_per_class", type=int, default=10, help="test clips per class")
    parser.add_argument("--num_frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--size", type=int, default=64, help="frame side in pixels (even, at least 32)")
    parser.add_argument("--fps", type=int, default=8, help="frame rate written into the mp4 files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", nargs="+", default=list(CLASS_NAMES), metavar="CLASS",
                        help="subset of classes, each with its time-reversed partner (quote names with spaces)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = build_arg_parser().parse_args(argv)
    start = time.time()
    info = write_motion_dataset(args.output_dir, num_train_per_class=args.train_per_class,
                                num_test_per_class=args.test_per_class, num_frames=args.num_frames, size=args.size,
                                seed=args.seed, fps=args.fps, classes=args.classes, progress=sys.stderr.isatty())
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
    try:
        main()
    except ValueError as error:  # bad flag values: one clear line, not a traceback
        sys.exit(f"error: {error}")
