# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""What a training run records of its options: `training_options.json` (with the local paths it named), the recipe
each checkpoint holds, and the warning a resume with another recipe gets. Imports no torch (publishing reads
`TRAINING_OPTIONS_NAME` from here)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accelerate import Accelerator

    from .loop import TrainingOptions


logger = logging.getLogger("omniclip.train")

TRAINING_OPTIONS_NAME = "training_options.json"
# Options that decide which videos a step sees and how far the schedule has come: a resume that changes one of them
# continues from a position that means something else (batch 40 of another batch size, another data order).
RECIPE_OPTIONS = ("train_data", "data_root", "train_split", "labels_file", "video_column", "label_column", "shots",
                  "num_frames", "batch_size", "gradient_accumulation_steps", "seed", "epochs", "max_steps", "lr",
                  "min_lr", "warmup_epochs", "warmup_steps", "streaming", "shuffle_buffer", "text_template",
                  # the optimizer's and the loss's: a resume goes on with the new values, said in the warning
                  "weight_decay", "adam_beta1", "adam_beta2", "prompt_lr_scale", "spg_lr_scale", "video_head_lr_scale",
                  "max_grad_norm", "label_smoothing", "mixup_alpha", "cutmix_alpha", "mix_prob",
                  "video_processor_overrides",
                  # the model's other settings (a change of its architecture is refused before: `checkpoints.py`)
                  "model_overrides")


# The recipe options, written into every checkpoint's trainer state: a resume from another run's checkpoint is
# compared with that run's recipe, not with this folder's training_options.json (which it may not have yet).
RECIPE_KEY = "recipe"


def training_data_of(data) -> dict[str, Any]:
    """What a checkpoint's position counts in: the listed videos, or the stream's shards. The same --train_data path
    may hold another set by the resume (shards added to the folder, a re-exported list), and the position then points
    elsewhere in it."""
    from .streaming import StreamingVideoData  # here: that module loads torch, which publishing does without

    if isinstance(data, StreamingVideoData):
        return {"shards": data.shards}
    return {"videos": len(data)}


def recipe_of(options: TrainingOptions, processes: int, class_names: list[str] | None = None,
              training_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe options, the number of processes (a checkpoint's batch position counts each process's batches:
    batch 40 of 2 processes is 80 batches of one), the class names in index order (the same --labels_file path may
    hold another list, and an index-labelled set then trains its second half on other classes) and the training
    data's size (`training_data_of`)."""
    current = json.loads(json.dumps(vars(options)))  # as recorded: tuples become lists
    recipe = {**{name: current.get(name) for name in RECIPE_OPTIONS}, "processes": processes}
    recipe["model_overrides"] = canonical_json(recipe["model_overrides"])
    if class_names is not None:
        recipe["class_names"] = list(class_names)
    if training_data is not None:
        recipe["training_data"] = training_data
    return recipe


def canonical_json(value: str | None) -> str | None:
    """A JSON option's text with sorted keys and one spacing: the same overrides written otherwise are no change."""
    if not value:
        return value
    try:
        return json.dumps(json.loads(value), sort_keys=True)
    except ValueError:  # refused where the option is read; recorded as given
        return value


def warn_about_changed_recipe(options: TrainingOptions, output_dir: Path, checkpoint: Path,
                              recorded: dict[str, Any] | None = None, processes: int = 1,
                              class_names: list[str] | None = None, training_data: dict[str, Any] | None = None) -> None:
    """One warning line when a resume changes the recipe `checkpoint` recorded (checkpoints of earlier versions:
    the run's own `training_options.json`)."""
    source = f"{checkpoint}"
    if recorded is None:
        source = str(output_dir / TRAINING_OPTIONS_NAME)
        try:
            recorded = json.loads(Path(source).read_text())
        except (OSError, ValueError):
            return
    current = recipe_of(options, processes, class_names, training_data)
    if "model_overrides" in recorded:  # training_options.json holds it as given
        recorded = {**recorded, "model_overrides": canonical_json(recorded["model_overrides"])}
    changed = [describe_change(name, current[name], recorded[name])
               for name in current if name in recorded and recorded[name] != current[name]]
    if changed:
        logger.warning("resuming with a recipe other than the run's (%s): %s; training goes on with the new values "
                       "from the resumed step, whose position (batch, schedule step) the old recipe counted.",
                       source, ", ".join(changed))


def describe_change(name: str, value: Any, was: Any) -> str:
    if name == "class_names":
        order = "the same classes in another order" if sorted(value) == sorted(was) else "other classes"
        return f"the class names ({order}: {value[:4]}... was {was[:4]}...)"
    if name == "training_data":
        return f"the training data ({describe_training_data(value)}, was {describe_training_data(was)})"
    return f"{'--' if name in RECIPE_OPTIONS else ''}{name} {value} (was {was})"


def describe_training_data(data: dict[str, Any]) -> str:
    if "videos" in data:
        return f"{data['videos']} videos"
    shards = data.get("shards")
    if isinstance(shards, list):
        return f"{len(shards)} shards: {', '.join(shards[:3])}{'...' if len(shards) > 3 else ''}"
    return f"{shards} shards"


def write_training_options(options: TrainingOptions, accelerator: Accelerator, output_dir: Path) -> None:
    """`training_options.json`: the options of the run that last wrote to `output_dir`, as given, and under
    `local_paths` the absolute path of each option value that names a local file or folder here (publishing, from
    any folder, tells them from Hub ids by it: `models/clip` given here is no Hub id from elsewhere)."""
    from .publishing import LOCAL_PATHS_KEY, local_paths_of

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        recorded = {**vars(options), LOCAL_PATHS_KEY: local_paths_of(vars(options))}
        (output_dir / TRAINING_OPTIONS_NAME).write_text(json.dumps(recorded, indent=2))


__all__ = [
    "RECIPE_KEY",
    "RECIPE_OPTIONS",
    "TRAINING_OPTIONS_NAME",
    "recipe_of",
    "training_data_of",
    "warn_about_changed_recipe",
    "write_training_options",
]
