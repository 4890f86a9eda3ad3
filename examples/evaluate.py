"""Evaluate OmniCLIP, or frame-averaged CLIP as the baseline, on a video classification set.

    python examples/evaluate.py --model runs/hmdb51/model --eval_data hmdb51/test.csv --labels_file hmdb51.txt
    python examples/evaluate.py --clip openai/clip-vit-base-patch16 --eval_data ... --labels_file ...   # baseline

Top-1 and top-5, multi-view (4 temporal clips x 3 spatial crops by default, scores averaged), per-class accuracy
and a confusion-matrix PNG, written to `--output_dir` (`metrics.json`, `confusion_matrix.png`). With `--clip`, the
model is the CLIP checkpoint with every OmniCLIP module off: exactly CLIP's frame-averaged features, zero-shot
against the class texts.

The classes scored are, by default, the ones the model was trained on (its config's `id2label`, written by
`examples/train.py`); `--labels_file` names others. OmniCLIP scores by class name (text similarity), so any set of
names works, zero-shot; a labels file listing other classes than the trained ones, or the same in another order, is
warned about, since class indices in the eval file (`path index` rows) are read in the labels file's order.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from omniclip_hf import OmniCLIPModel, OmniCLIPProcessor
from omniclip_hf.model_loading import load_omniclip_model
from omniclip_hf.training.checkpoints import TRAINER_STATE_NAME
from omniclip_hf.training.data import load_video_dataset
from omniclip_hf.training.evaluation import (
    FRAME_AVERAGE,
    class_text_embeddings,
    classification_metrics,
    predict,
    trained_class_names,
    warn_if_classes_differ_from_training,
    write_confusion_matrix_png,
    write_metrics,
)
from omniclip_hf.training.loader import default_num_workers
from omniclip_hf.training.loop import (
    build_processor,
    check_device_name,
    folder_model_type,
    is_omniclip_folder,
    run_script,
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and each option's default."""


def load(args):
    if args.model:
        # A config.json that does not fit the weights (edited, or another model's) is one line naming both.
        model = load_omniclip_model(args.model)
        processor = OmniCLIPProcessor.from_pretrained(args.model)
        # The saved processor's count is the one the model was last trained with (train.py --num_frames may differ
        # from the count its temporal weights were built for, config.num_frames); the pipeline uses it too.
        processor.video_processor.num_frames = args.num_frames or processor.video_processor.num_frames
    else:
        model = OmniCLIPModel.from_clip(args.clip, num_frames=args.num_frames or 8, **FRAME_AVERAGE)
        processor = build_processor(args.clip, args.num_frames or 8)
    return model.to(args.device).eval(), processor


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a trained OmniCLIP folder")
    source.add_argument("--clip", help="a CLIP checkpoint, evaluated as the frame-averaging baseline")
    parser.add_argument("--eval_data", required=True, help="folder, annotation file or Hub dataset")
    parser.add_argument("--labels_file", default=None,
                        help="class names, one a line (or a CSV with a 'name' column), in the order of the eval "
                             "file's class indices; the names are what is scored (by text similarity). Without it: "
                             "the classes the --model was trained on (its config's id2label); for --clip or a model "
                             "never trained, the class names the eval data holds")
    parser.add_argument("--split", default="test")
    parser.add_argument("--data_root", default=None)
    parser.add_argument("--num_frames", type=int, default=None)
    parser.add_argument("--num_clips", type=int, default=4)
    parser.add_argument("--num_crops", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_workers", type=int, default=default_num_workers(),
                        help="DataLoader workers (default: the CPUs available minus one, at most 16; %(default)s here)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output_dir", default="runs/eval",
                        help="where metrics.json and confusion_matrix.png go; if it already holds a metrics.json, the "
                             "next free OUTPUT_DIR-2, -3, ... is used instead (nothing is overwritten)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    check_arguments(args)

    model, processor = load(args)
    trained = trained_class_names(model.config, args.model) if args.model else None
    data = load_video_dataset(args.eval_data, args.labels_file, args.split, data_root=args.data_root,
                              class_names=trained)
    if args.labels_file and trained:
        warn_if_classes_differ_from_training(args.labels_file, data.class_names, trained)
    text_embeds = class_text_embeddings(model, processor.tokenizer, data.class_names)
    logits, labels, errors = predict(model, processor.video_processor, data, text_embeds, batch_size=args.batch_size,
                                     num_workers=args.num_workers, num_temporal_clips=args.num_clips,
                                     num_spatial_crops=args.num_crops)
    metrics = classification_metrics(logits, labels, data.class_names)
    metrics["failed_videos"] = errors
    metrics["model"] = args.model or f"frame-averaged {args.clip}"
    output_dir = unused_output_dir(Path(args.output_dir))
    output_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(metrics, output_dir / "metrics.json")
    write_confusion_matrix_png(metrics["confusion_matrix"], data.class_names, output_dir / "confusion_matrix.png")
    print(json.dumps({key: metrics[key] for key in ("model", "top1", "top5", "mean_class_accuracy", "num_videos")}))
    print(f"wrote {output_dir / 'metrics.json'} and {output_dir / 'confusion_matrix.png'}")
    return metrics


def check_arguments(args: argparse.Namespace) -> None:
    """One line naming the argument, before the model loads and the videos decode."""
    if args.clip and is_omniclip_folder(args.clip):
        raise ValueError(f"--clip {args.clip} is an OmniCLIP folder (trained adapters included): pass it as "
                         f"--model {args.clip}; --clip evaluates a plain CLIP checkpoint as the baseline.")
    if args.model:
        check_not_a_training_output(Path(args.model))
    if args.model and folder_model_type(args.model) == "clip":
        raise ValueError(f"--model {args.model} is a plain CLIP checkpoint: pass it as --clip {args.model} to evaluate "
                         "it as the frame-averaging baseline; --model takes a trained OmniCLIP folder.")
    for name in ("num_frames", "num_clips", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name}={value} is invalid: it must be >= 1.")
    if args.num_crops not in (1, 3):
        raise ValueError(f"--num_crops={args.num_crops} is invalid: use 1 (the centre) or 3 (left, centre, right).")
    check_output_dir(args.output_dir)
    check_device_name(args.device)  # before the model loads


def check_not_a_training_output(path: Path) -> None:
    """examples/train.py's output folder RUN, or one of its RUN/checkpoints/step_N, passed as --model: the model to
    evaluate is RUN/model (a checkpoint holds the trainable weights and optimizer state for resuming, no config)."""
    if is_omniclip_folder(str(path)):
        return
    if (path / TRAINER_STATE_NAME).is_file():
        run = path.parent.parent if path.parent.name == "checkpoints" else None
        what = "a training checkpoint (trainable weights and optimizer state for resuming), not a saved model"
    elif (path / "checkpoints").is_dir() or is_omniclip_folder(str(path / "model")):
        run, what = path, "a training run folder"
    else:
        return
    if run is None:
        raise ValueError(f"--model {path} is {what}: pass the model/ folder of the run it belongs to "
                         "(--model RUN/model, which examples/train.py writes when training ends).")
    advice = f"pass the run's model, --model {run / 'model'}"
    if not is_omniclip_folder(str(run / "model")):
        advice += (" (not written yet: examples/train.py writes it when training ends; finish the run by rerunning "
                   "its command with --resume_from_checkpoint latest)")
    raise ValueError(f"--model {path} is {what}: {advice}.")


def check_output_dir(output_dir: str) -> None:
    """Before the model loads: a folder that cannot be created would otherwise fail only after the evaluation."""
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--output_dir {output_dir} is a file; pass a folder (it is created if missing).")
    existing = next((parent for parent in path.parents if parent.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ValueError(f"--output_dir {output_dir} cannot be created: {existing} is a file, not a folder; pass "
                         "a folder path.")


def unused_output_dir(requested: Path) -> Path:
    """`requested`, or `requested-2`, `-3`, ... when an earlier evaluation's metrics.json is already there."""
    candidate, number = requested, 1
    while (candidate / "metrics.json").exists():
        number += 1
        candidate = requested.with_name(f"{requested.name}-{number}")
    return candidate


if __name__ == "__main__":
    run_script(main)
