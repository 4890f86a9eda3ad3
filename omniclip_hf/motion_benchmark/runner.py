# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""The offline temporal-reasoning benchmark: scoring within reversal pairs and the frame-averaging baseline.

A clip and its time reversal have the same frame average, so frame-averaged CLIP cannot beat 50% within a
reversal pair, whatever head it has; a model that models time can reach 100%. `pair_top1` measures that;
`frame_average_baseline` is frame-averaged CLIP with a linear head trained on the same frozen features.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from ..cli_checks import above, at_least
from ..training.checkpoints import write_folder_atomically
from ..training.data import VideoClassificationData, load_video_dataset, looks_like_a_local_path
from ..training.evaluation import FRAME_AVERAGE, predict, top_k_accuracy
from .motion_data import CLASS_NAMES, REVERSED_CLASS, not_a_motion_set, write_motion_dataset

# The demo's recipe, shared by `examples/demo.py` and `benchmarks/bench_ablation.py` (how it was chosen, with the
# measurements: docs/motion_benchmark.md section 3).
DEMO_PAIRS = 4
DEMO_TRAIN_PER_CLASS = 64
DEMO_TEST_PER_CLASS = 16
# The paper's Table 1 value for HMDB51 and UCF101. At 12 epochs (the demo's earlier value, chosen for its run time)
# the loss was still 0.12-0.18 at the end and one seed in ten ended a test clip below 90% (10 seeds: 92.4 +- 1.5%);
# at 30, seeds 0-4 gave 93.9 +- 0.6% with the last 32 steps' loss at 0.03-0.07 (docs/motion_benchmark.md section 3).
DEMO_EPOCHS = 30
DEMO_LR = 2e-3  # the paper's Table 1 value; 3e-3 left 3 of 39 ablation runs on the ln C plateau
# One epoch (32 steps). Three (about 2 / (1 - beta2) = 100 steps, the usual rule for Adam) were measured and made the
# plateau far longer (242 and 312 steps, 75.8% and 30.5% top-1): the collapse comes within 20 steps whatever the
# warm-up, and a lower learning rate meanwhile only slows the way out (docs/motion_benchmark.md).
DEMO_WARMUP_EPOCHS = 1.0
# The two generators learn at a tenth of the learning rate (the adapters, the temporal embedding and the video head at
# the full one). Both write into what every class or every frame shares: the self-prompt generator's projector
# into the prompt tokens that every frozen layer's attention reads, the video-specific prompt generator into every
# class text. Adam moves each weight by about lr a step whatever its gradient's size, so a d-wide Linear moves its
# output by up to d * lr a step: at the full rate the prompts grew to 1.35x the pooled tokens and the class texts
# to 3x their norm within the first 32 steps, every frame and then every class text became alike, and the loss sat
# at ln C (the eq. 6 model for 180-185 steps, ending at 81.2% and 90.6%; docs/motion_benchmark.md, "A recipe that
# holds"). X-CLIP, whose prompt generator this is, trained it 25x below the paper's rate. Slowing the video head as
# well made the videos collapse instead (49.2%), so it keeps the full rate.
DEMO_SPG_LR_SCALE = 0.1
DEMO_PROMPT_LR_SCALE = 0.1
# The demo trains the package's default model (SPG as eq. 6, its projector started at the identity).
DEMO_MODEL_OVERRIDES: dict = {}


def check_replaceable_motion_set(output_dir: str | Path) -> None:
    """Refuses (ValueError) an `output_dir` that is a file, or a non-empty folder other than a motion set written
    here: `write_motion_dataset_in_place_of` replaces the folder whole, and someone's notes or data set (laid out as
    labels.txt, train/, test/ like any folder data set) would be lost with it."""
    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a motion set folder: give another folder.")
    if folder.is_dir() and any(folder.iterdir()):
        why = not_a_motion_set(folder, unfinished=True)  # a set interrupted before its info file is replaced too
        if why is not None:
            raise ValueError(f"{folder} {why}: only a motion set written here is replaced; move those files or give "
                             "another folder.")


def write_motion_dataset_in_place_of(output_dir: str | Path, **settings) -> dict:
    """Writes the motion set in a folder beside `output_dir`, then swaps it in for what was there, an earlier motion
    set (`check_replaceable_motion_set`): never two sets' clips and classes mixed (a rerun with fewer clips or other
    classes kept the old ones), never half one."""
    check_replaceable_motion_set(output_dir)
    written: dict = {}
    # "." has no name to write beside; write_folder_atomically writes `.partial-<name>` in the parent folder.
    write_folder_atomically(Path(os.path.abspath(output_dir)),
                            lambda partial: written.update(write_motion_dataset(partial, **settings)))
    return written


def first_pairs_classes(pairs: int) -> list[str]:
    """The classes of the first `pairs` reversal pairs, in `CLASS_NAMES` order (each class with its partner)."""
    if not 1 <= pairs <= len(CLASS_NAMES) // 2:
        raise ValueError(f"pairs must lie in 1..{len(CLASS_NAMES) // 2}, got {pairs}")
    return list(CLASS_NAMES[: 2 * pairs])


def check_clip_argument(parser: argparse.ArgumentParser, clip: str | None) -> None:
    """A `--clip` that names a local folder must exist: refused at parsing, before the motion set is written and a
    tiny CLIP pretrained (`examples/demo.py`, `bench_ablation.py`), not when training starts. A Hub id must have a
    readable config (cached, or online; only the small config.json is read): offline, an uncached id failed only
    when train.py loaded it, after the motion set was rewritten."""
    if not clip:
        return
    if looks_like_a_local_path(clip) or Path(clip).exists():
        if not Path(clip).exists():
            parser.error(f"--clip {clip}: no such folder (a CLIP checkpoint folder or a Hub id)")
        return
    from transformers import CLIPConfig

    try:
        CLIPConfig.from_pretrained(clip)
    except (OSError, ValueError):
        parser.error(f"--clip {clip}: cannot read this Hub CLIP's config (not in the Hugging Face cache and no "
                     "network, or no such repository): pass a local CLIP folder, or go online")


def check_recipe_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The flags of `add_demo_recipe_arguments`, refused at parsing before the motion set is written and a tiny CLIP
    pretrained (minutes), each naming its own flag: train.py refused them only after that, and by the flag it was
    given (`--lr -1` came back as its `--min_lr=-0.01`, which the demo derives as lr / 100)."""
    at_least(parser, 1, {"--train_per_class": args.train_per_class, "--test_per_class": args.test_per_class,
                         "--epochs": args.epochs})
    at_least(parser, 2, {"--num_frames": args.num_frames})  # motion needs two frames (motion_data refuses fewer)
    at_least(parser, 0, {"--warmup_epochs": args.warmup_epochs, "--spg_lr_scale": args.spg_lr_scale,
                         "--prompt_lr_scale": args.prompt_lr_scale})
    above(parser, 0, {"--lr": args.lr})


def add_demo_recipe_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The demo's recipe as command-line flags with the `DEMO_*` defaults (`examples/demo.py`, `bench_ablation.py`)."""
    parser.add_argument("--pairs", type=int, default=DEMO_PAIRS,
                        help="reversal pairs of classes to use, in the order of motion_data.CLASS_NAMES (1 to 5)")
    parser.add_argument("--train_per_class", type=int, default=DEMO_TRAIN_PER_CLASS)
    parser.add_argument("--test_per_class", type=int, default=DEMO_TEST_PER_CLASS)
    parser.add_argument("--num_frames", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=DEMO_EPOCHS)
    parser.add_argument("--lr", type=float, default=DEMO_LR)
    parser.add_argument("--warmup_epochs", type=float, default=DEMO_WARMUP_EPOCHS,
                        help="linear warm-up of the learning rate (at most a quarter of --epochs)")
    parser.add_argument("--spg_lr_scale", type=float, default=DEMO_SPG_LR_SCALE,
                        help="learning-rate multiplier of the self-prompt generator")
    parser.add_argument("--prompt_lr_scale", type=float, default=DEMO_PROMPT_LR_SCALE,
                        help="learning-rate multiplier of the video-specific prompt generator")
    return parser




def reversal_partners(class_names: Sequence[str], reversed_class: dict[str, str] = REVERSED_CLASS) -> torch.Tensor:
    """For each class index, the index of its time reversal in `class_names`."""
    return torch.tensor([list(class_names).index(reversed_class[name]) for name in class_names])


def pair_top1(logits: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str],
              reversed_class: dict[str, str] = REVERSED_CLASS) -> float:
    """Accuracy when each clip only chooses between its class and that class's time reversal (ties count half)."""
    partner = reversal_partners(class_names, reversed_class)
    rows = torch.arange(len(labels))
    own = logits[rows, labels]
    other = logits[rows, partner[labels]]
    return ((own > other).float() + 0.5 * (own == other).float()).mean().item()


def reversal_errors(logits: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> tuple[int, int]:
    """The test errors (top-1 wrong), and how many of them chose the true class's time reversal: the errors that
    are about the order of the frames rather than the kind of motion."""
    predicted = logits.argmax(dim=-1)
    wrong = predicted != labels
    to_reverse = wrong & (predicted == reversal_partners(class_names)[labels])
    return int(wrong.sum()), int(to_reverse.sum())


def split_scores(logits: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> dict[str, Any]:
    """Top-1, top-1 within reversal pairs, and the test errors with those that chose the reverse class."""
    errors, to_reverse = reversal_errors(logits, labels, class_names)
    return {"top1": top_k_accuracy(logits, labels, 1), "pair_top1": pair_top1(logits, labels, class_names),
            "errors": errors, "reversal_errors": to_reverse}


@torch.no_grad()
def frame_average_features(clip: str | Path, data: VideoClassificationData, video_processor,
                           batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP's image features averaged over the frames (OmniCLIP with every module off is exactly that)."""
    from ..modeling_omniclip import OmniCLIPModel

    model = OmniCLIPModel.from_clip(str(clip), num_frames=video_processor.num_frames, **FRAME_AVERAGE).eval()
    features, labels = [], []
    loader = torch.utils.data.DataLoader(range(len(data)), batch_size=batch_size)
    for indices in loader:
        rows = data.dataset.select(indices.tolist())
        videos = video_processor(list(rows["video"]), return_tensors="pt")["pixel_values_videos"]
        features.append(model.get_video_features(videos).pooler_output)
        labels.append(torch.tensor(rows["label"]))
    return torch.cat(features), torch.cat(labels)


def train_linear_head(features: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int = 500,
                      lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0) -> torch.nn.Linear:
    """A linear classifier on L2-normalised frozen features, full-batch AdamW."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(features.shape[1], num_classes)
    inputs = torch.nn.functional.normalize(features, dim=-1)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(head(inputs), labels).backward()
        optimizer.step()
    return head


def frame_average_baseline(clip: str | Path, train: VideoClassificationData, test: VideoClassificationData,
                           video_processor) -> dict[str, Any]:
    """`split_scores` of frame-averaged CLIP with a linear head trained on the training split."""
    train_x, train_y = frame_average_features(clip, train, video_processor)
    test_x, test_y = frame_average_features(clip, test, video_processor)
    head = train_linear_head(train_x, train_y, len(train.class_names))
    with torch.no_grad():
        logits = head(torch.nn.functional.normalize(test_x, dim=-1))
    return {
        "model": "frame_average",
        "trainable_params": sum(p.numel() for p in head.parameters()),
        **split_scores(logits, test_y, test.class_names),
    }


def omniclip_scores(model_dir: str | Path, test: VideoClassificationData) -> dict[str, Any]:
    """`split_scores` of a trained OmniCLIP folder (one view per clip)."""
    from ..training.evaluation import class_text_embeddings
    from ..modeling_omniclip import OmniCLIPModel
    from ..processing_omniclip import OmniCLIPProcessor

    model = OmniCLIPModel.from_pretrained(model_dir).eval()
    processor = OmniCLIPProcessor.from_pretrained(model_dir)
    text_embeds = class_text_embeddings(model, processor.tokenizer, test.class_names)
    logits, labels, errors = predict(model, processor.video_processor, test, text_embeds, progress=False)
    if errors:
        raise ValueError(f"{len(errors)} test videos failed to decode: {errors[:3]}")
    return {
        "model": "omniclip",
        "trainable_params": model.num_trainable_parameters(),
        **split_scores(logits, labels, test.class_names),
    }


def train_omniclip(clip: str | Path, data_dir: str | Path, output_dir: str | Path, epochs: int, num_frames: int,
                   batch_size: int = 16, lr: float = DEMO_LR, seed: int = 0, model_overrides: dict | None = None,
                   launcher: Sequence[str] | None = None, extra: Sequence[str] = (),
                   warmup_epochs: float = DEMO_WARMUP_EPOCHS, spg_lr_scale: float = DEMO_SPG_LR_SCALE,
                   prompt_lr_scale: float = DEMO_PROMPT_LR_SCALE) -> dict[str, Any]:
    """Runs `examples/train.py` (through `accelerate launch` by default) and returns its metrics.json.

    Motion classes include left/right, so training never flips; mixup/cutmix and label smoothing are off because
    mixing two clips of a reversal pair gives a clip with no direction. Colour jitter and grayscale are off too: the
    tiny CLIP stand-in finds objects mostly by their colour (8 saturated colours, 93% zero-shot) and has never seen a
    grey or hue-shifted one (measured: with them on, 12 epochs gave 84.4% top-1 on the demo's test split).
    The warm-up is at most a quarter of the epochs, so short runs (the reduced demo in the tests) still train.
    """
    repo = Path(__file__).resolve().parents[2]
    data_dir = Path(data_dir)
    launcher = list(launcher or [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1",
                                 "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"])
    command = launcher + [
        str(repo / "examples" / "train.py"), "--clip", str(clip),
        "--train_data", str(data_dir / "train"), "--eval_data", str(data_dir / "test"),
        "--labels_file", str(data_dir / "labels.txt"), "--output_dir", str(output_dir),
        "--num_frames", str(num_frames), "--epochs", str(epochs), "--batch_size", str(batch_size),
        "--lr", str(lr), "--min_lr", str(lr / 100), "--warmup_epochs", str(min(warmup_epochs, epochs / 4)),
        "--seed", str(seed), "--spg_lr_scale", str(spg_lr_scale), "--prompt_lr_scale", str(prompt_lr_scale),
        "--overwrite_output_dir",  # a run killed before its metrics.json is trained again from the start
        "--weight_decay", "0.01", "--mixup_alpha", "0", "--cutmix_alpha", "0", "--label_smoothing", "0",
        "--eval_num_clips", "1", "--eval_num_crops", "1", "--num_workers", "2", "--logging_steps", "5",
        "--video_processor_overrides", json.dumps({"flip_prob": 0.0, "augment_crop_scale": [0.7, 1.0],
                                                   "augment_crop_ratio": [0.9, 1.1], "color_jitter_prob": 0.0,
                                                   "grayscale_prob": 0.0}),
        *extra,
    ]
    if model_overrides:
        command += ["--model_overrides", json.dumps(model_overrides)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        # A bad input (a missing --clip, say) is train.py's one `error:` line: passed on as one line, not as a
        # traceback around the launcher's own; anything else keeps the log's end to read.
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        if errors:
            raise ValueError(f"examples/train.py stopped: {errors[-1].removeprefix('error: ')}")
        raise RuntimeError(f"training failed ({' '.join(command)}):\n{result.stderr[-4000:]}")
    return json.loads((Path(output_dir) / "metrics.json").read_text())


def load_split(data_dir: str | Path, split: str) -> VideoClassificationData:
    data_dir = Path(data_dir)
    return load_video_dataset(data_dir / split, data_dir / "labels.txt")


__all__ = [
    "DEMO_EPOCHS",
    "DEMO_LR",
    "DEMO_PAIRS",
    "DEMO_TEST_PER_CLASS",
    "DEMO_TRAIN_PER_CLASS",
    "DEMO_MODEL_OVERRIDES",
    "DEMO_PROMPT_LR_SCALE",
    "DEMO_SPG_LR_SCALE",
    "DEMO_WARMUP_EPOCHS",
    "FRAME_AVERAGE",
    "above",
    "add_demo_recipe_arguments",
    "at_least",
    "check_clip_argument",
    "check_recipe_numbers",
    "check_replaceable_motion_set",
    "frame_average_baseline",
    "frame_average_features",
    "first_pairs_classes",
    "load_split",
    "omniclip_scores",
    "pair_top1",
    "reversal_errors",
    "reversal_partners",
    "split_scores",
    "train_linear_head",
    "train_omniclip",
    "write_motion_dataset_in_place_of",
]
