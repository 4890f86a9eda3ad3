"""The paper's ablations (Tables 7, 8, 10, 11) on the offline motion benchmark. Prints a table; not a test.

    python benchmarks/bench_ablation.py --seeds 0 1 2                 # every row, 3 seeds (long on a CPU)
    python benchmarks/bench_ablation.py --rows full pta_only spg_only --seeds 0

Each row trains OmniCLIP with `examples/train.py` on the same motion set and the same frozen tiny CLIP
(pretrained once, as in `make demo`, with the demo's defaults: 4 pairs, 64 training clips a class, 12 epochs,
lr 3e-3; `--work_dir demo_output` reuses the demo's data and tiny CLIP) and reports mean and standard deviation
over seeds of top-1 on the test split and top-1 within reversal pairs. Rows:

- Table 7: `full` (PTA + SPG), `pta_only`, `spg_only`, `neither` (temporal embedding + video head only)
- Table 8: `ratio_1/8`, `ratio_1/4` (= full), `ratio_1/2`, `ratio_1`
- Table 10: PTA in layer groups of the 4-layer tiny ViT: `layers_0`, `layers_0-1`, `layers_0-2`, all (= full)
- Table 11: `cascade`, `attention_parallel`, `parallel` (= full)
- `head_only`: video head only (no temporal embedding, PTA or SPG)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from omniclip_hf.motion_benchmark import (
    DEMO_EPOCHS,
    DEMO_LR,
    DEMO_PAIRS,
    DEMO_TEST_PER_CLASS,
    DEMO_TRAIN_PER_CLASS,
    first_pairs_classes,
    load_split,
    omniclip_scores,
    train_omniclip,
)
from omniclip_hf.motion_data import write_motion_dataset

ROWS = {
    "full": {},
    "pta_only": {"use_spg": False},
    "spg_only": {"use_pta": False},
    "neither": {"use_pta": False, "use_spg": False},
    "ratio_1/8": {"pta_ratio": 0.125},
    "ratio_1/2": {"pta_ratio": 0.5},
    "ratio_1": {"pta_ratio": 1.0},
    "layers_0": {"pta_layers": [0]},
    "layers_0-1": {"pta_layers": [0, 1]},
    "layers_0-2": {"pta_layers": [0, 1, 2]},
    "cascade": {"pta_mode": "cascade"},
    "attention_parallel": {"pta_mode": "attention_parallel"},
    "head_only": {"use_pta": False, "use_spg": False, "use_temporal_embedding": False},
}


def summarise(values: list[float]) -> str:
    mean = statistics.mean(values)
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--work_dir", default=None, help="keeps data, the tiny CLIP and runs (default: a temp dir)")
    parser.add_argument("--clip", default=None, help="a CLIP folder to use instead of pretraining the tiny one")
    parser.add_argument("--pairs", type=int, default=DEMO_PAIRS, help="reversal pairs, as `examples/demo.py --pairs`")
    parser.add_argument("--train_per_class", type=int, default=DEMO_TRAIN_PER_CLASS)
    parser.add_argument("--test_per_class", type=int, default=DEMO_TEST_PER_CLASS)
    parser.add_argument("--epochs", type=int, default=DEMO_EPOCHS)
    parser.add_argument("--lr", type=float, default=DEMO_LR)
    parser.add_argument("--num_frames", type=int, default=8)
    args = parser.parse_args(argv)
    try:
        classes = first_pairs_classes(args.pairs)
    except ValueError as error:
        parser.error(f"--{error}")

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.work_dir or scratch)
        data_dir = work / "motion_data"
        if not (data_dir / "labels.txt").exists():
            write_motion_dataset(data_dir, num_train_per_class=args.train_per_class,
                                 num_test_per_class=args.test_per_class, num_frames=args.num_frames, seed=0,
                                 classes=classes)
        clip = args.clip or str(work / "tiny_clip")
        if not args.clip and not (work / "tiny_clip" / "config.json").exists():
            from omniclip_hf.tiny_clip import pretrain_tiny_clip

            pretrain_tiny_clip(clip, seed=0, verbose=False)
        test = load_split(data_dir, "test")
        results = {}
        for row in args.rows:
            scores = []
            for seed in args.seeds:
                run_dir = work / "runs" / row.replace("/", "_") / f"seed{seed}"
                train_omniclip(clip, data_dir, run_dir, epochs=args.epochs, num_frames=args.num_frames, seed=seed,
                               lr=args.lr, model_overrides=ROWS[row])
                scores.append(omniclip_scores(run_dir / "model", test))
                print(f"  {row} seed {seed}: top-1 {scores[-1]['top1']:.3f}, pair {scores[-1]['pair_top1']:.3f}",
                      flush=True)
            results[row] = scores

    print(f"\n| row | overrides | trainable params | top-1 (%) | top-1 within pairs (%) |  seeds: {args.seeds}")
    print("|---|---|---|---|---|")
    for row, scores in results.items():
        print(f"| {row} | `{json.dumps(ROWS[row])}` | {scores[0]['trainable_params']:,} | "
              f"{summarise([s['top1'] for s in scores])} | {summarise([s['pair_top1'] for s in scores])} |")


if __name__ == "__main__":
    main()
