"""The package's main job, offline: does OmniCLIP model time where frame-averaged CLIP cannot?

`make demo` runs this. On 2 CPU cores, with nothing downloaded, it
1. writes a video set where only the order of frames tells the classes apart (`omniclip_hf.motion_benchmark.motion_data`:
   objects moving left/right, up/down, approaching/receding, appearing/disappearing; every class has its time
   reversal as another class, and the set is symmetric under time reversal. `--pairs 5` adds rotating
   clockwise/anticlockwise, which the tiny CLIP stand-in cannot see: see docs/motion_benchmark.md);
2. pretrains a tiny CLIP on single synthetic frames with captions ("a small red triangle at the top left") and
   CLIP's real tokenizer: a stand-in for a pretrained CLIP, saved as an ordinary CLIPModel folder, frozen from
   then on (`omniclip_hf.motion_benchmark.tiny_clip`);
3. trains OmniCLIP on it with `accelerate launch examples/train.py --clip <that folder>`, and fits a linear head
   on frame-averaged CLIP features of the same frozen model as the baseline;
4. prints the table, writes `demo_output/results.json`, a learning curve PNG, and classifies one test clip
   by label names with the zero-shot pipeline.

Online, the same steps run on a real CLIP: `python examples/demo.py --clip openai/clip-vit-base-patch16`
(skips step 2), or `accelerate launch examples/train.py --clip openai/clip-vit-base-patch16 ...` directly.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from omniclip_hf.motion_benchmark.motion_data import MIN_FRAME_SIZE, check_classes
from omniclip_hf.motion_benchmark.runner import (
    DEMO_MODEL_OVERRIDES,
    above,
    add_demo_recipe_arguments,
    at_least,
    check_clip_argument,
    check_recipe_numbers,
    check_replaceable_motion_set,
    first_pairs_classes,
    frame_average_baseline,
    load_split,
    omniclip_scores,
    train_omniclip,
    write_motion_dataset_in_place_of,
)
from omniclip_hf.training.loop import build_processor, run_script


REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=str(REPO / "demo_output"))
    parser.add_argument("--clip", default=None, help="a CLIP checkpoint to use instead of pretraining the tiny one")
    add_demo_recipe_arguments(parser)
    parser.add_argument("--classes", nargs="+", default=None, metavar="CLASS",
                        help="explicit class names instead of --pairs (each with its time-reversed partner)")
    parser.add_argument("--frame_size", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--pretrain_seconds", type=float, default=None,
                        help="stop the tiny CLIP's pretraining after this many seconds (default: no limit, so the "
                             "stand-in, and the result, are the same on a fast and a slow machine)")
    parser.add_argument("--pretrain_steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        args.classes = args.classes or first_pairs_classes(args.pairs)
    except ValueError as error:
        parser.error(f"--{error}")
    # Every flag before step 1: a bad one found after the motion set was written and the tiny CLIP pretrained cost
    # minutes, and was reported by the name of a value derived from it ("steps must be at least 1").
    check_recipe_numbers(parser, args)
    check_demo_numbers(parser, args)
    check_clip_argument(parser, args.clip)
    check_output_dir(parser, Path(args.output_dir), pretrains=not args.clip)
    return args


def check_demo_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The demo's own numeric flags (the recipe's are `check_recipe_numbers`), each error naming its flag."""
    at_least(parser, 1, {"--batch_size": args.batch_size, "--pretrain_steps": args.pretrain_steps})
    at_least(parser, 0, {"--seed": args.seed})  # numpy's own answer to -1 named no flag
    above(parser, 0, {"--pretrain_seconds": args.pretrain_seconds})
    at_least(parser, MIN_FRAME_SIZE, {"--frame_size": args.frame_size})
    # Even for yuv420p video; a multiple of 8 for the tiny CLIP's 8-pixel patches when it is pretrained here.
    multiple = 2 if args.clip else 8
    if args.frame_size % multiple:
        parser.error(f"--frame_size {args.frame_size}: must be a multiple of {multiple}"
                     + ("" if args.clip else " (the tiny CLIP's patches are 8 pixels)"))


def check_output_dir(parser: argparse.ArgumentParser, output: Path, pretrains: bool) -> None:
    """Refuses an --output_dir the demo cannot write: a file at or above it, or a motion_data/ (or tiny_clip/ where
    it pretrains one) holding something other than what an earlier demo wrote, which a rerun replaces whole."""
    for folder in (output, *output.parents):
        if folder.exists() and not folder.is_dir():
            parser.error(f"--output_dir {output}: {folder} is a file; give a folder")
    try:
        check_replaceable_motion_set(output / "motion_data")
    except ValueError as error:
        parser.error(f"--output_dir {output}: {error}")
    if pretrains:
        from omniclip_hf.motion_benchmark.tiny_clip import check_output_dir as check_tiny_clip_dir

        try:
            check_tiny_clip_dir(output / "tiny_clip")
        except ValueError as error:  # names --output_dir <output>/tiny_clip itself
            parser.error(str(error))


def log(message: str, start: float) -> None:
    print(f"[{time.time() - start:6.1f} s] {message}", flush=True)


def write_learning_curve(losses: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(range(1, len(losses) + 1), losses, label="OmniCLIP training loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("cross-entropy")
    axes.set_title("OmniCLIP on the motion benchmark")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def classify_one_clip(model_dir: Path, data_dir: Path, class_names: list[str]) -> tuple[str, str, list[dict]]:
    from transformers import pipeline

    import omniclip_hf  # noqa: F401  (registers the task)

    clip = sorted((data_dir / "test" / class_names[0]).iterdir())[0]
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir))
    predictions = classifier(str(clip), candidate_labels=class_names, top_k=min(3, len(class_names)))
    return str(clip), class_names[0], predictions


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    check_classes(args.classes)  # a ValueError: run_script's one `error:` line, before anything is written
    start = time.time()
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)

    data_dir = output / "motion_data"
    # A rerun replaces the set whole (only one an earlier demo wrote: parse_args checked): with fewer clips or other
    # classes, the old ones would stay in it.
    write_motion_dataset_in_place_of(data_dir, num_train_per_class=args.train_per_class,
                                     num_test_per_class=args.test_per_class, num_frames=args.num_frames,
                                     size=args.frame_size, seed=args.seed, classes=args.classes)
    log(f"1. wrote the motion set to {data_dir}", start)

    if args.clip:
        clip = args.clip
        log(f"2. using CLIP {clip}", start)
    else:
        from omniclip_hf.motion_benchmark.tiny_clip import pretrain_tiny_clip

        clip = str(output / "tiny_clip")
        metrics = pretrain_tiny_clip(clip, steps=args.pretrain_steps, max_seconds=args.pretrain_seconds,
                                     seed=args.seed, image_size=args.frame_size, verbose=False)
        held_out = metrics["zero_shot_heldout_combinations"]
        chance = metrics["chance"]
        log("2. pretrained the tiny CLIP stand-in (random init, contrastive on captioned single frames); zero-shot "
            "image accuracy on held-out captions: " + ", ".join(
                f"{key} {100 * held_out[key]:.0f}% (chance {100 * chance[key]:.0f}%)" for key in held_out), start)

    run_dir = output / "omniclip_run"
    metrics = train_omniclip(clip, data_dir, run_dir, epochs=args.epochs, num_frames=args.num_frames,
                             batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             warmup_epochs=args.warmup_epochs, spg_lr_scale=args.spg_lr_scale,
                             prompt_lr_scale=args.prompt_lr_scale, model_overrides=DEMO_MODEL_OVERRIDES)
    log(f"3. trained OmniCLIP ({metrics['global_step']} steps) with accelerate launch examples/train.py", start)

    test, train = load_split(data_dir, "test"), load_split(data_dir, "train")
    rows = [omniclip_scores(run_dir / "model", test)]
    processor = build_processor(clip, args.num_frames)
    rows.append(frame_average_baseline(clip, train, test, processor.video_processor))
    log("   evaluated OmniCLIP and the frame-average baseline (linear head on the same frozen features)", start)

    (output / "results.json").write_text(json.dumps(rows, indent=2))
    write_learning_curve(metrics["train_losses"], output / "learning_curve.png")
    print(f"\n{len(test)} test clips, {len(test.class_names)} classes in {len(test.class_names) // 2} reversal pairs\n")
    print("| model | trainable params | top-1 (test) | top-1 within reversal pairs |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['trainable_params']:,} | {100 * row['top1']:.1f}% | {100 * row['pair_top1']:.1f}% |")

    clip_path, truth, predictions = classify_one_clip(run_dir / "model", data_dir, test.class_names)
    print(f"\nzero-shot pipeline on {Path(clip_path).relative_to(output)} (true class: {truth}):")
    for prediction in predictions:
        print(f"  {prediction['label']:<24} {prediction['score']:.3f}")
    log(f"4. wrote {output / 'results.json'} and {output / 'learning_curve.png'}", start)
    return rows


if __name__ == "__main__":
    run_script(main)
