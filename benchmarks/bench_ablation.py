"""The paper's ablations (Tables 7, 8, 10, 11) on the offline motion benchmark. Prints a table; not a test.

    python benchmarks/bench_ablation.py --seeds 0 1 2                 # every row, 3 seeds (long on a CPU)
    python benchmarks/bench_ablation.py --rows full pta_only spg_only --seeds 0
    python benchmarks/bench_ablation.py --work_dir demo_output --rows full --seeds 1 &   # two at once: each
    python benchmarks/bench_ablation.py --work_dir demo_output --rows full --seeds 2 &   # run uses one core

Each row trains OmniCLIP with `examples/train.py` on the same motion set and the same frozen tiny CLIP
(pretrained once, as in `make demo`, with the demo's defaults: 4 pairs, 64 training clips a class, 30 epochs,
lr 2e-3, 1 warm-up epoch, both prompt generators at 0.1x the learning rate; the `full` row is the demo's model;
`--work_dir demo_output` reuses the demo's data and tiny CLIP, and refuses them, naming the flag, where they were
made with other settings than the flags ask for, say by `make demo` with --pairs 1) and reports mean and standard
deviation over seeds of top-1 on the test split and top-1 within reversal pairs. Rows:

- Table 7: `full` (PTA + SPG), `pta_only`, `spg_only`, `neither` (temporal embedding + video head only)
- Table 8: `ratio_1/8`, `ratio_1/4` (= full), `ratio_1/2`, `ratio_1`
- Table 10: PTA in layer groups of the 4-layer tiny ViT: `layers_0`, `layers_0-1`, `layers_0-2`, all (= full)
- Table 11: `cascade` (ST-Adapter before the layer), `attention_parallel`, `parallel` (= full), and
  `cascade_attention` (the attention adapter after the layer: this package's `cascade` before issue 15)
- Table 9 / eq. 6: `spg_residual` (prompts `pooled + MLP(pooled)` instead of eq. 6's `Projector(Avg(V))`) and
  `spg_random_init` (eq. 6 with the projector at a random start instead of the identity)
- `head_only`: video head only (no temporal embedding, PTA or SPG)

A run whose folder (`<work_dir>/runs/<row>/seed<seed>`) already holds a trained model with the same training
options is not trained again (`--retrain` forces it); one trained with other options (another `--lr`, say) is an
error rather than silently replaced. Each run's scores go to `<work_dir>/ablation_results.json` (row -> seed ->
scores) as soon as it ends, so a table can be built up over several calls, or by several calls at once on different
rows or seeds (`accelerate launch` gives each training one torch thread, so two calls use both cores of a 2-core
machine); `--table` prints the table from that file, for runs whose folders show the recipe asked for (the
demo's by default; recipe flags such as `--epochs 12` select another), and refuses scores of another recipe. One
column counts the steps each run spent on the ln(C) plateau (`plateau_steps`; `benchmarks/probe_plateau.py` shows
what a run does meanwhile); the last counts the test errors of all seeds, and how many of them put a clip in its
time-reversed class (an error about the order of the frames; the others mix up kinds of motion).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from omniclip_hf.motion_benchmark.runner import (
    add_demo_recipe_arguments,
    check_clip_argument,
    check_recipe_numbers,
    check_replaceable_motion_set,
    first_pairs_classes,
    load_split,
    omniclip_scores,
    train_omniclip,
    write_motion_dataset_in_place_of,
)
from omniclip_hf.motion_benchmark.motion_data import INFO_FILE, read_motion_set_info

# The motion set this script writes into --work_dir, and the tiny CLIP it pretrains there: the demo's defaults
# (--seed 0, --frame_size 64), so that `--work_dir demo_output` can reuse what `make demo` made.
DATA_SEED = 0
FRAME_SIZE = 64

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
    "cascade_attention": {"pta_mode": "cascade_attention"},
    "attention_parallel": {"pta_mode": "attention_parallel"},
    "spg_residual": {"spg_residual": True},
    "spg_random_init": {"spg_projector_init": "random"},
    "head_only": {"use_pta": False, "use_spg": False, "use_temporal_embedding": False},
}


def recorded_options(run_dir: Path) -> dict | None:
    """The training options a finished run in `run_dir` recorded (paths resolved, overrides parsed), or None."""
    metrics = run_dir / "metrics.json"
    if not metrics.exists() or not (run_dir / "model" / "model.safetensors").exists():
        return None
    options = json.loads(metrics.read_text())["options"]
    return {**options, "model_overrides": json.loads(options["model_overrides"] or "{}"),
            "clip": str(Path(options["clip"]).resolve()), "train_data": str(Path(options["train_data"]).resolve())}


def differing_options(run_dir: Path, expected: dict) -> dict | None:
    """The options `run_dir`'s finished run recorded where they differ from `expected` (empty if none do); None where
    the folder holds no trained model."""
    recorded = recorded_options(run_dir)
    if recorded is None:
        return None
    return {key: recorded.get(key) for key, value in expected.items() if recorded.get(key) != value}


def finished_run(run_dir: Path, expected: dict) -> bool:
    """Whether `run_dir` holds a trained model whose recorded training options include `expected`.

    Raises where it holds one trained with other options: training again would replace it, and its scores.
    """
    differing = differing_options(run_dir, expected)
    if differing:
        raise FileExistsError(f"{run_dir} holds a run trained with other options {differing}; use another "
                              "--work_dir (with --clip to share the tiny CLIP), or --retrain to replace it")
    return differing is not None


def plateau_steps(train_losses: list[float], num_classes: int, window: int = 16) -> int | None:
    """Steps until the loss leaves the plateau at ln(num_classes), the loss of a uniform guess: the last step of the
    first `window` steps whose mean loss is below 0.9 ln(num_classes); None if the run never gets there."""
    threshold = 0.9 * math.log(num_classes)
    for start in range(len(train_losses) - window + 1):
        if statistics.mean(train_losses[start : start + window]) < threshold:
            return start + window
    return None


def recorded_scores(recorded: dict, row: str, seed: int) -> dict | None:
    """The complete scores of one run in a loaded `ablation_results.json`; None where the run has none, or has them
    from a version of this script that did not count the plateau."""
    scores = recorded.get(row, {}).get(str(seed))
    return scores if scores and "plateau_steps" in scores else None


def load_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def record_score(path: Path, row: str, seed: int, scores: dict) -> None:
    """Adds one run's scores to the JSON file at `path` (row -> seed -> scores); a lock lets calls run at once."""
    with FileLock(str(path) + ".lock"):
        merged = load_results(path)
        merged.setdefault(row, {})[str(seed)] = scores
        path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")


def read_table(path: Path, rows: list[str], seeds: list[int],
               expected_run: Callable[[str, int], tuple[Path, dict]]) -> dict[str, dict[int, dict]]:
    """The scores of `rows` x `seeds` from an `ablation_results.json`; a ValueError says which runs are missing.

    `expected_run(row, seed)` gives each run's folder and the options it must have been trained with: scores are
    printed only for runs of the recipe asked for, so a table never mixes recipes (say the 12 epochs the demo had
    before with the 30 it has now) without saying so.
    """
    recorded = load_results(path)
    missing = [f"{row} seed {seed}" for row in rows for seed in seeds if recorded_scores(recorded, row, seed) is None]
    if missing:
        raise ValueError(f"{path} has no scores for {', '.join(missing)}; run those rows and seeds without --table")
    for row in rows:
        for seed in seeds:
            run_dir, expected = expected_run(row, seed)
            differing = differing_options(run_dir, expected)
            if differing is None:
                raise ValueError(f"{path} has scores for {row} seed {seed} but {run_dir} holds no trained model to "
                                 "check their recipe against; run it again without --table")
            if differing:
                raise ValueError(f"{row} seed {seed} in {path} was trained with other options {differing}; give "
                                 "the recipe flags it was trained with (e.g. --epochs) to print its table")
    return {row: {seed: recorded[row][str(seed)] for seed in seeds} for row in rows}


def print_table(results: dict[str, dict[int, dict]], seeds: list[int]) -> None:
    print(f"\nseeds {', '.join(map(str, seeds))}: mean ± population standard deviation over them")
    print("| row | overrides | trainable params | top-1 (%) | top-1 within pairs (%) | top-1 per seed (%) | "
          "steps on the ln C plateau, per seed | test errors that chose the reverse class, all seeds |")
    print("|---|---|---|---|---|---|---|---|")
    for row, by_seed in results.items():
        scores = list(by_seed.values())
        per_seed_top1 = " / ".join(f"{100 * s['top1']:.1f}" for s in scores)
        plateau = " / ".join(str(s["plateau_steps"] or "never") for s in scores)  # never: ended on the plateau
        print(f"| {row} | `{json.dumps(ROWS[row])}` | {scores[0]['trainable_params']:,} | "
              f"{summarise([s['top1'] for s in scores])} | {summarise([s['pair_top1'] for s in scores])} | "
              f"{per_seed_top1} | {plateau} | {reverse_class_share(scores)} |")


def reverse_class_share(scores: list[dict]) -> str:
    """"r of e": of the e test errors of these runs, r put a clip in its time-reversed class (an order error, not a
    mix-up of kinds of motion); "not recorded" where a run was scored before this script counted them."""
    if any("reversal_errors" not in s for s in scores):
        return "not recorded"
    return f"{sum(s['reversal_errors'] for s in scores)} of {sum(s['errors'] for s in scores)}"


def summarise(values: list[float]) -> str:
    mean = statistics.mean(values)
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def expected_run(row: str, seed: int, args: argparse.Namespace, work: Path, clip: str) -> tuple[Path, dict]:
    """The folder of one row and seed, and the training options (the recipe flags of `args`) a run there must have."""
    run_dir = work / "runs" / row.replace("/", "_") / f"seed{seed}"
    expected = {"clip": str(Path(clip).resolve()), "train_data": str((work / "motion_data" / "train").resolve()),
                "epochs": args.epochs, "num_frames": args.num_frames, "seed": seed, "lr": args.lr,
                "warmup_epochs": min(args.warmup_epochs, args.epochs / 4), "spg_lr_scale": args.spg_lr_scale,
                "prompt_lr_scale": args.prompt_lr_scale, "model_overrides": ROWS[row]}
    return run_dir, expected


def run_row(row: str, seed: int, args: argparse.Namespace, work: Path, clip: str, test, results_path: Path) -> dict:
    """Trains one row and seed unless a matching run is there, and returns its scores (recorded as soon as known)."""
    data_dir = work / "motion_data"
    run_dir, expected = expected_run(row, seed, args, work, clip)
    reused = not args.retrain and finished_run(run_dir, expected)
    scores = recorded_scores(load_results(results_path), row, seed) if reused else None
    if not reused:
        train_omniclip(clip, data_dir, run_dir, epochs=args.epochs, num_frames=args.num_frames, seed=seed, lr=args.lr,
                       warmup_epochs=args.warmup_epochs, spg_lr_scale=args.spg_lr_scale,
                       prompt_lr_scale=args.prompt_lr_scale, model_overrides=ROWS[row])
    if scores is None:
        scores = omniclip_scores(run_dir / "model", test)
        losses = json.loads((run_dir / "metrics.json").read_text())["train_losses"]
        scores["plateau_steps"] = plateau_steps(losses, len(test.class_names))
        record_score(results_path, row, seed, scores)
    print(f"  {row} seed {seed}{' (reused)' if reused else ''}: top-1 {scores['top1']:.3f}, "
          f"pair {scores['pair_top1']:.3f}, plateau {scores['plateau_steps']} steps", flush=True)
    return scores


def motion_set_mismatch(data_dir: Path, args: argparse.Namespace, classes: list[str]) -> str | None:
    """Why the motion set in `data_dir` is not the one the flags ask for, or None where it is. Reused unchecked, a set
    written with other flags (by `make demo --pairs 1`, say) was trained and tested on, and its table printed as the
    one asked for, with nothing said."""
    info = read_motion_set_info(data_dir)
    if info is None:
        return (f"{data_dir} has no {INFO_FILE} of a motion set written by this script or examples/demo.py; give "
                "another --work_dir")
    settings = info.get("settings", {})
    written_classes = info.get("classes")
    differing = [f"--{flag} {settings.get(key)} (not {wanted})" for flag, key, wanted in (
        ("train_per_class", "num_train_per_class", args.train_per_class),
        ("test_per_class", "num_test_per_class", args.test_per_class),
        ("num_frames", "num_frames", args.num_frames)) if settings.get(key) != wanted]
    if written_classes != classes:
        differing.insert(0, f"the classes {written_classes} (--pairs {args.pairs} gives {classes})")
    fixed = [f"{name} {settings.get(key)} (this script writes {wanted})" for name, key, wanted in (
        ("frame size", "size", FRAME_SIZE), ("seed", "seed", DATA_SEED)) if settings.get(key) != wanted]
    if differing:
        return (f"{data_dir} was written with {', '.join(differing + fixed)}: give the flags it was written with to "
                "reuse it, or another --work_dir")
    if fixed:
        return (f"{data_dir} was written with {', '.join(fixed)} (examples/demo.py's --frame_size, --seed); give "
                "another --work_dir")
    return None


def tiny_clip_mismatch(clip_dir: Path) -> str | None:
    """Why `clip_dir` is not a tiny CLIP this script would reuse (None where it is one): anything but an earlier
    tiny CLIP, or one pretrained at another image size (by `make demo --frame_size 32`, say)."""
    from omniclip_hf.motion_benchmark.tiny_clip import check_output_dir

    try:
        check_output_dir(clip_dir)
        image_size = json.loads((clip_dir / "config.json").read_text())["vision_config"]["image_size"]
    except (ValueError, OSError, KeyError, TypeError) as error:
        return f"{clip_dir} is not a tiny CLIP to reuse ({error})"
    if image_size != FRAME_SIZE:
        return (f"{clip_dir} was pretrained at {image_size}x{image_size} pixels, not the {FRAME_SIZE} of this "
                "script's motion set; give another --work_dir, or --clip to use a CLIP folder as it is")
    return None


def check_work_dir(parser: argparse.ArgumentParser, work: Path, args: argparse.Namespace, classes: list[str]) -> None:
    """Refuses, in one line, a motion set or tiny CLIP in `work` that is not the one the flags ask for; before any
    training, and before `--table` prints scores of runs trained on them."""
    data_dir = work / "motion_data"
    try:
        check_replaceable_motion_set(data_dir)  # a file, or a folder holding something else
    except ValueError as error:
        refuse(parser, f"--work_dir {work}: {error}")
    if data_dir.is_dir() and any(data_dir.iterdir()):
        why = motion_set_mismatch(data_dir, args, classes)
        if why:
            refuse(parser, f"--work_dir {work}: {why}")
    clip_dir = work / "tiny_clip"
    if not args.clip and clip_dir.is_dir() and any(clip_dir.iterdir()):
        why = tiny_clip_mismatch(clip_dir)
        if why:
            refuse(parser, f"--work_dir {work}: {why}")


def refuse(parser: argparse.ArgumentParser, error: Exception | str) -> None:
    """One `error:` line and exit status 2, as argparse's usage errors, but without the usage block: the flags were
    well formed, what they point at is not."""
    parser.exit(2, f"{parser.prog}: error: {error}\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--work_dir", default=None, help="keeps data, the tiny CLIP and runs (default: a temp dir)")
    parser.add_argument("--clip", default=None, help="a CLIP folder to use instead of pretraining the tiny one")
    add_demo_recipe_arguments(parser)
    parser.add_argument("--retrain", action="store_true", help="train again even where a matching run exists")
    parser.add_argument("--table", action="store_true",
                        help="print the table of --rows and --seeds from <work_dir>/ablation_results.json; no training")
    args = parser.parse_args(argv)
    try:
        classes = first_pairs_classes(args.pairs)
    except ValueError as error:
        parser.error(f"--{error}")

    # Before the data set is written and the tiny CLIP pretrained (minutes), not when the first training fails.
    check_recipe_numbers(parser, args)
    check_clip_argument(parser, args.clip)
    if args.work_dir and Path(args.work_dir).exists() and not Path(args.work_dir).is_dir():
        parser.error(f"--work_dir {args.work_dir}: not a folder; give a folder (it is made if missing)")
    if args.work_dir:
        check_work_dir(parser, Path(args.work_dir), args, classes)

    if args.table:
        if not args.work_dir:
            parser.error("--table reads <work_dir>/ablation_results.json: give --work_dir")
        work, clip = Path(args.work_dir), args.clip or str(Path(args.work_dir) / "tiny_clip")
        try:
            table = read_table(work / "ablation_results.json", args.rows, args.seeds,
                               lambda row, seed: expected_run(row, seed, args, work, clip))
        except ValueError as error:  # runs missing or of another recipe: exit status 2 as the usage errors
            refuse(parser, error)
        print_table(table, args.seeds)
        return

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.work_dir or scratch)
        data_dir = work / "motion_data"
        clip = args.clip or str(work / "tiny_clip")
        # Bad inputs (a --clip folder train.py cannot load, a run of other options) and a full disk: one line each.
        try:
            if read_motion_set_info(data_dir) is None:  # none there yet (check_work_dir refused anything else)
                write_motion_dataset_in_place_of(data_dir, num_train_per_class=args.train_per_class,
                                                 num_test_per_class=args.test_per_class, num_frames=args.num_frames,
                                                 size=FRAME_SIZE, seed=DATA_SEED, classes=classes)
            if not args.clip and not (work / "tiny_clip" / "config.json").exists():
                from omniclip_hf.motion_benchmark.tiny_clip import pretrain_tiny_clip

                # pretrain_tiny_clip refuses a tiny_clip/ holding something else (another model, a partial one).
                pretrain_tiny_clip(clip, seed=DATA_SEED, image_size=FRAME_SIZE, verbose=False)
            test = load_split(data_dir, "test")
            results_path = work / "ablation_results.json"
            results = {}
            for row in args.rows:
                results[row] = {}
                for seed in args.seeds:
                    results[row][seed] = run_row(row, seed, args, work, clip, test, results_path)
        except (ValueError, OSError) as error:  # OSError: FileExistsError from finished_run among them
            refuse(parser, error)

    print_table(results, args.seeds)


if __name__ == "__main__":
    main()
