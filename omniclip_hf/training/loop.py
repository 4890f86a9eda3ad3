# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Pieces of the training loop in `examples/train.py`: options, optimizer, schedule, mixing, checkpoints."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import HfArgumentParser, get_cosine_with_min_lr_schedule_with_warmup


from .loader import default_num_workers
from .checkpoints import latest_checkpoint  # noqa: F401  (re-exported; the checkpoint helpers live there)


logger = logging.getLogger("omniclip.train")  # quieted on all but the main process by the scripts

COLOR_AUGMENTATION_PLACES = ("auto", "workers", "device")


@dataclass
class TrainingOptions:
    """Every flag of `examples/train.py`; each one can also be set in a `--config` YAML file."""

    # What to train
    clip: str | None = field(default=None, metadata={"help": "CLIP checkpoint (Hub id or folder) to wrap; its tokenizer is used."})
    model: str | None = field(default=None, metadata={"help": "Continue from an OmniCLIP folder instead of --clip."})
    model_overrides: str | None = field(default=None, metadata={"help": 'JSON of OmniCLIPConfig fields, e.g. \'{"use_spg": false}\'.'})
    video_processor_overrides: str | None = field(default=None, metadata={"help": 'JSON of training-time video processor settings, e.g. \'{"flip_prob": 0}\' for left/right classes.'})
    # Data
    train_data: str | None = field(default=None, metadata={"help": "Folder of class sub-folders, annotation file, or Hub dataset."})
    eval_data: list[str] | None = field(default=None, metadata={"help": "One or more evaluation sets (zero-shot: several)."})
    labels_file: str | None = field(default=None, metadata={"help": "Class names of the training set, one a line."})
    eval_labels_file: list[str] | None = field(default=None, metadata={"help": "Class names per evaluation set (default: --labels_file)."})
    data_root: str | None = field(default=None, metadata={"help": "Folder the annotation files' paths are relative to."})
    eval_data_root: str | None = field(default=None, metadata={"help": "The same for --eval_data (default: --data_root)."})
    video_column: str = "video"
    label_column: str = "label"
    train_split: str = "train"
    eval_split: str = "test"
    num_frames: int | None = field(default=None, metadata={"help": "Frames per clip; default: the --model folder's "
                                    "own, or 8 with --clip."})
    shots: int | None = field(default=None, metadata={"help": "Few-shot: exactly K training videos per class."})
    streaming: bool = field(default=False, metadata={"help": "Stream --train_data (a folder of WebDataset *.tar "
                            "shards, or a Hub dataset) instead of listing it; needs --max_steps (docs/training.md)."})
    shuffle_buffer: int = field(default=256, metadata={"help": "With --streaming: examples in the shuffle buffer "
                                "(0 or 1: the shards' own order, unshuffled)."})
    text_template: str | None = field(default=None, metadata={"help": "Defaults to the model's ('a video of {} action')."})
    # Optimisation (the paper's Table 1 for HMDB51/UCF101)
    seed: int = 42
    epochs: int = 30
    max_steps: int | None = field(default=None, metadata={"help": "Stop after this many optimizer steps (--epochs is then not used)."})
    batch_size: int = 32
    eval_batch_size: int | None = None
    lr: float = 2e-3
    min_lr: float = 2e-5
    warmup_epochs: float = 5.0
    warmup_steps: int | None = field(default=None, metadata={"help": "Warm-up in optimizer steps; overrides "
                                     "--warmup_epochs (needed with --streaming, whose epoch length is unknown)."})
    weight_decay: float = 0.003
    prompt_lr_scale: float = field(
        default=1.0,
        metadata={"help": "Learning-rate multiplier for the video-specific prompt generator (docs/training.md)."},
    )
    spg_lr_scale: float = field(
        default=1.0,
        metadata={"help": "Learning-rate multiplier for the self-prompt generator's projector (docs/training.md)."},
    )
    video_head_lr_scale: float = field(
        default=1.0,
        metadata={"help": "Learning-rate multiplier for the video head (docs/training.md)."},
    )
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    gradient_accumulation_steps: int = 1
    total_batch_size: int | None = field(default=None, metadata={"help": (
        "The batch a recipe is meant for, over every process and accumulation step: a launch whose --batch_size x "
        "processes x --gradient_accumulation_steps differs is refused (the shipped recipes set it).")})
    max_grad_norm: float = 1.0
    mixed_precision: str | None = field(default=None, metadata={"help": "no, fp16 or bf16; default: the launcher's "
                                        "(`accelerate launch --mixed_precision` or its config file), else no."})
    cpu: bool = field(default=False, metadata={"help": "Train on the CPU even where a GPU is present."})
    gradient_checkpointing: bool = False
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    mix_prob: float = 1.0
    num_workers: int | None = field(default=None, metadata={"help": "DataLoader workers per process; default: "
                                    "the CPUs available per process minus one, at most 16 (docs/training.md)."})
    color_augmentation_on: str = field(default="auto", metadata={"help": "Where training clips get colour jitter, "
                                       "grayscale and normalisation: 'workers' (the DataLoader workers), 'device' "
                                       "(the training device, after the copy), or 'auto': device on a GPU, workers "
                                       "otherwise. The same pixels either way (docs/training.md)."})
    # Evaluation
    eval_num_clips: int = 4
    eval_num_crops: int = 3
    # Output, checkpoints, publishing
    output_dir: str = "runs/omniclip"
    checkpointing_steps: int | None = field(default=None, metadata={"help": "Save accelerate state every N steps (and at each epoch end)."})
    checkpoints_total_limit: int | None = None
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "A checkpoint folder, or 'latest'."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Delete an earlier run's checkpoints and "
                                       "outputs (model/, metrics.json, ...) in --output_dir and train from scratch "
                                       "(without it, training into such a folder without --resume_from_checkpoint is "
                                       "refused)."})
    push_to_hub: bool = False
    hub_model_id: str | None = None
    dry_run: bool = field(default=False, metadata={"help": "Dry run of the Hub upload, not of training: the run trains "
                          "and evaluates in full, then writes what --push_to_hub would upload to output_dir/hub_upload "
                          "and uploads nothing."})
    license: str | None = field(default=None, metadata={"help": "The model card's license with --push_to_hub or "
                                "--dry_run, a Hub license identifier (e.g. apache-2.0, mit); default: other, since the "
                                "base CLIP's weights keep their own license."})
    adapter_only: bool = field(default=False, metadata={"help": "Save only the trainable weights plus the base CLIP's name."})
    strict: bool = field(default=False, metadata={"help": "Fail on an undecodable training video instead of skipping it."})
    report_to: str | None = field(default=None, metadata={"help": "An Accelerate tracker, e.g. tensorboard."})
    logging_steps: int = 10

    def validate(self) -> None:
        if bool(self.clip) == bool(self.model):
            raise ValueError("pass exactly one of --clip (a CLIP checkpoint to wrap) or --model (an OmniCLIP folder).")
        if not self.train_data and not self.eval_data:
            raise ValueError("nothing to do: pass --train_data and/or --eval_data.")
        for name in ("prompt_lr_scale", "spg_lr_scale", "video_head_lr_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name}={getattr(self, name)} is invalid: it must be > 0.")
        for name in ("epochs", "batch_size", "gradient_accumulation_steps", "logging_steps",
                     "eval_num_clips", "eval_num_crops"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name}={getattr(self, name)} is invalid: it must be >= 1.")
        for name, without in (("max_steps", "to train for --epochs"), ("shots", "to train on every video"),
                              ("eval_batch_size", "to evaluate with --batch_size"),
                              ("checkpointing_steps", "to checkpoint only at the end of each epoch"),
                              ("checkpoints_total_limit", "to keep every checkpoint"),
                              ("num_frames", "for the --model's own, or 8 with --clip")):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name}={value} is invalid: it must be >= 1 (leave it out {without}).")
        for name in ("warmup_epochs", "warmup_steps", "min_lr", "shuffle_buffer", "num_workers"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"--{name}={value} is invalid: it must be >= 0.")
        if self.eval_num_crops not in (1, 3):
            raise ValueError(f"--eval_num_crops={self.eval_num_crops} is invalid: use 1 (the centre) or 3 (left, "
                             "centre, right).")
        if not self.lr > 0:
            raise ValueError(f"--lr={self.lr} is invalid: it must be > 0.")
        self._check_optimisation_ranges()
        if self.model_overrides:
            json_object_option("model_overrides", self.model_overrides)
        if self.video_processor_overrides:
            check_video_processor_overrides(json_object_option("video_processor_overrides",
                                                               self.video_processor_overrides))
        if self.color_augmentation_on not in COLOR_AUGMENTATION_PLACES:
            raise ValueError(f"--color_augmentation_on={self.color_augmentation_on!r} is invalid: use one of "
                             f"{', '.join(COLOR_AUGMENTATION_PLACES)}.")
        if self.mixed_precision not in (None, "no", "fp16", "bf16"):
            raise ValueError(f"--mixed_precision={self.mixed_precision!r} is invalid: use no, fp16 or bf16.")
        if self.overwrite_output_dir and self.resume_from_checkpoint:
            raise ValueError("--overwrite_output_dir deletes the checkpoints that --resume_from_checkpoint would "
                             "continue from: pass one of them.")
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id (e.g. your-name/omniclip-b16-hmdb51).")
        if self.hub_model_id:
            from .publishing import check_hub_model_id

            check_hub_model_id(self.hub_model_id)  # before training, not at the upload
        if self.license is not None:
            from .publishing import check_license

            if not (self.push_to_hub or self.dry_run):
                raise ValueError(f"--license {self.license} is the license of the model card that --push_to_hub (or "
                                 "--dry_run) writes, and neither is given: add one, or state the license when you "
                                 "publish the run with examples/push_to_hub.py --license.")
            check_license(self.license)  # before training, not at the upload
        if self.streaming and not self.max_steps:
            raise ValueError("--streaming needs --max_steps: a stream's length is not known in advance.")
        if self.streaming and self.warmup_epochs and self.warmup_steps is None:
            raise ValueError("--streaming: set --warmup_steps (or --warmup_epochs 0): a stream's epoch length is not "
                             "known in advance.")
        if self.streaming and self.shots:
            raise ValueError("--shots picks K videos per class from a listed dataset; it does not work with --streaming.")
        if self.eval_labels_file and self.eval_data and len(self.eval_labels_file) not in (1, len(self.eval_data)):
            raise ValueError("--eval_labels_file takes one file, or one per --eval_data set.")

    def _check_optimisation_ranges(self) -> None:
        """The optimisation numbers in their ranges, each refused naming its flag before anything loads: taken as
        given, --max_grad_norm -1 reversed every gradient, a negative --weight_decay grew the weights, --min_lr above
        --lr made the cosine climb, and a beta of 1.5 failed in AdamW after --overwrite_output_dir had deleted the
        earlier run."""
        ranges = (("weight_decay", lambda v: v >= 0, ">= 0"),
                  ("max_grad_norm", lambda v: v >= 0, ">= 0 (0: no clipping)"),
                  ("mixup_alpha", lambda v: v >= 0, ">= 0 (0: no mixup)"),
                  ("cutmix_alpha", lambda v: v >= 0, ">= 0 (0: no cutmix)"),
                  ("mix_prob", lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
                  ("label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)"),
                  ("adam_beta1", lambda v: 0 <= v < 1, "in [0, 1)"),
                  ("adam_beta2", lambda v: 0 <= v < 1, "in [0, 1)"))
        for name, in_range, allowed in ranges:
            if not in_range(getattr(self, name)):  # NaN fails every comparison, so it is refused too
                raise ValueError(f"--{name}={getattr(self, name)} is invalid: it must be {allowed}.")
        if not self.min_lr <= self.lr:
            raise ValueError(f"--min_lr={self.min_lr} is invalid: the cosine decays from --lr={self.lr} down to it, so "
                             "it must be at most --lr.")
        if self.mixes and self.batch_size < 2:
            # Mixup and cutmix pair the clips of one process's micro-batch: a batch of one is never mixed.
            raise ValueError(f"--batch_size {self.batch_size} with mixup/cutmix on (--mixup_alpha {self.mixup_alpha}, "
                             f"--cutmix_alpha {self.cutmix_alpha}): they pair clips within each process's batch, so a "
                             "batch of one clip is never mixed. Use --batch_size 2 or more (fewer processes or "
                             "accumulation steps for the same total), or turn mixing off with --mixup_alpha 0 "
                             "--cutmix_alpha 0.")

    @property
    def mixes(self) -> bool:
        """Whether training mixes clips (mixup or cutmix on, with a chance to apply)."""
        return (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.mix_prob > 0


def _reads_as(kind: type, value) -> bool:
    """Whether argparse's `kind(value)` takes a YAML value: YAML 1.1 reads `1e-3` (no dot) as a string."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    if kind is int and isinstance(value, float):  # int(2.5) would take it
        return False
    try:
        kind(value)
    except ValueError:
        return False
    return True


_RECIPE_TYPES = {  # what a YAML value may be for each option type (an int is a float too)
    int: (lambda value: _reads_as(int, value), "a whole number"),
    float: (lambda value: _reads_as(float, value), "a number"),
    bool: (lambda value: isinstance(value, bool), "true or false"),
    str: (lambda value: isinstance(value, str), "a string"),
    list: (lambda value: isinstance(value, list) and all(isinstance(item, str) for item in value), "a list of strings"),
}


def _option_type(annotation) -> type | None:
    """`int` for `int` and `int | None`, `list` for `list[str] | None`."""
    arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
    if arguments and typing.get_origin(annotation) is not list:  # a union with None
        annotation = arguments[0]
    return typing.get_origin(annotation) or annotation


def read_recipe(path: str) -> dict[str, Any]:
    """A `--config` YAML file's options; a file YAML cannot read, or whose top level is not a mapping, is one line."""
    try:
        settings = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(error, "problem", None) or error
        raise ValueError(f"--config {path} is not valid YAML{line} ({problem}).") from None
    if not isinstance(settings, dict):
        raise ValueError(f"--config {path} must be a mapping of option: value lines, not a {type(settings).__name__}.")
    return settings


def check_recipe_types(path: str, settings: dict[str, Any]) -> None:
    """Each option of a `--config` file has its option's type, or one line naming the file and the option (argparse
    would print its usage and name neither, or take 2.5 epochs as they come)."""
    for name, annotation in typing.get_type_hints(TrainingOptions).items():
        value, kind = settings.get(name), _option_type(annotation)
        if value is None or kind not in _RECIPE_TYPES:
            continue
        accepts, described = _RECIPE_TYPES[kind]
        if not accepts(value):
            raise ValueError(f"{path}: {name}: {value!r} is not {described}.")


def json_object_option(name: str, text: str) -> dict[str, Any]:
    """The JSON object `--name` holds, or one line saying what is wrong with it."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--{name} {text!r} is not valid JSON ({error.msg} at character {error.pos}); pass an "
                         f"object such as '{{\"flip_prob\": 0}}'.") from None
    if not isinstance(value, dict):
        raise ValueError(f"--{name} {text!r} is not a JSON object; pass one such as '{{\"flip_prob\": 0}}'.")
    return value


def check_video_processor_overrides(overrides: dict[str, Any]) -> None:
    """Only the video processor's own settings, and none that decides the frame count (the model's, --num_frames):
    checked before the model loads, where a worker would otherwise fail at the first batch."""
    from ..video_processing_omniclip import _CALL_ONLY_KWARGS, OmniCLIPVideoProcessorKwargs

    # What the training data's own calls set: the frame count (the model's), and each call's arguments.
    set_by_training = {"num_frames", "fps", "device", "video_metadata", "return_metadata", *_CALL_ONLY_KWARGS}
    known = set(OmniCLIPVideoProcessorKwargs.__annotations__) - set_by_training
    sampling = sorted(set(overrides) & {"num_frames", "fps"})
    if sampling:
        raise ValueError(f"--video_processor_overrides sets {', '.join(sampling)}: the frames per clip are the "
                         "model's; use --num_frames.")
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"--video_processor_overrides: unknown settings {unknown}; the video processor's settings "
                         f"are {', '.join(sorted(known))}.")
    check_video_processor_values(overrides)


def check_video_processor_values(overrides: dict[str, Any]) -> None:
    """The overrides' values, checked as the video processor checks its settings: applied per call by the training
    data, a bad one (`flip_prob` 1.5) failed every video, each skipped as undecodable, until none was left."""
    from ..video_processing_omniclip import OmniCLIPVideoProcessor

    defaults = OmniCLIPVideoProcessor()
    settings = {key: getattr(defaults, key, None) for key in defaults.valid_kwargs.__annotations__}
    try:
        OmniCLIPVideoProcessor._check_settings({**settings, **overrides}, device_available=False)
    except ValueError as error:
        raise ValueError(f"--video_processor_overrides: {error}") from None


def check_inputs_exist(options: TrainingOptions) -> None:
    """Every local path among the options exists, and `--clip` is not an OmniCLIP folder: checked before the model
    loads, so a recipe whose data is missing fails at once, in one line naming the option."""
    from .data import looks_like_a_local_path

    where = f" (from --config {options.config})" if getattr(options, "config", None) else ""
    paths = [("train_data", options.train_data), ("data_root", options.data_root),
             ("eval_data_root", options.eval_data_root), ("clip", options.clip), ("model", options.model)]
    paths += [("eval_data", value) for value in options.eval_data or []]
    files = [("labels_file", options.labels_file)] + [("eval_labels_file", v) for v in options.eval_labels_file or []]
    for name, value in paths:
        if value and looks_like_a_local_path(value) and not Path(value).exists():
            raise FileNotFoundError(f"--{name} {value}: no such file or folder{where}.")
    for name, value in files:
        if value and not Path(value).is_file():
            raise FileNotFoundError(f"--{name} {value}: no such file{where}; it lists the class names, one a line.")
    if options.streaming and options.train_data and Path(options.train_data).exists():
        from .streaming import tar_shards

        # Every shard read whole before the model loads (a file for the folder, a damaged or cut shard), by the first
        # process of the launch only: every rank of every node walked every shard, twice.
        tar_shards(options.train_data, options.train_split, check_shards=os.environ.get("RANK", "0") == "0")
    if options.adapter_only and (options.push_to_hub or options.dry_run):
        check_published_base_clip(options)
    if options.overwrite_output_dir and options.model and Path(options.model).resolve().is_relative_to(
            Path(options.output_dir).resolve()):  # deleted with the earlier run once the data has loaded
        raise ValueError(f"--overwrite_output_dir would delete --model {options.model}, which is inside --output_dir "
                         f"{options.output_dir}: train into another --output_dir, or copy the model out first.")
    if Path(options.output_dir).exists() and not Path(options.output_dir).is_dir():
        raise ValueError(f"--output_dir {options.output_dir} is a file; pass a folder (it is created if missing).")
    if options.clip and is_omniclip_folder(options.clip):
        raise ValueError(f"--clip {options.clip} is an OmniCLIP folder (trained adapters included): pass it as "
                         f"--model {options.clip} to continue from it; --clip takes a plain CLIP checkpoint.")


def check_published_base_clip(options: TrainingOptions) -> None:
    """An adapter-only upload names its base CLIP, which must load anywhere: a local folder (`--clip`, or the base
    of a local `--model`) is refused before training, not after it."""
    from .publishing import hub_id_or_none

    if options.clip:
        base, source = options.clip, f"here the local folder {options.clip}"
        advice = "pass --clip as the base's Hub id (e.g. openai/clip-vit-base-patch16)"
    else:
        base = saved_config_field(options.model, "base_clip_name_or_path")
        source = f"here --model {options.model}'s base, the local folder {base}"
        advice = "train from an OmniCLIP whose base_clip_name_or_path is a Hub id"
    if base and hub_id_or_none(base) is None:
        raise ValueError(f"--adapter_only with --push_to_hub/--dry_run names its base CLIP, {source}, that no one who "
                         f"downloads it has: {advice}, or publish the full model (no --adapter_only).")


def saved_config_field(folder: str | None, name: str):
    """One field of a local model folder's config.json; None for a Hub id, a folder without it, or a bad file."""
    config = Path(folder) / "config.json" if folder else None
    if config is None or not config.is_file():
        return None
    try:
        return json.loads(config.read_text()).get(name)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None


def check_device_name(value: str, flag: str = "--device") -> torch.device:
    """`value` as a `torch.device` this machine has, or one ValueError line naming `flag`: torch's own error for a
    missing GPU comes only once a model moves there, as a traceback."""
    try:
        device = torch.device(value)
    except RuntimeError:
        raise ValueError(f"{flag} {value} is not a device name torch knows: use cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{flag} {value}: no CUDA GPU is available on this machine; use {flag} cpu.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"{flag} {value}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{flag} {value}: MPS is not available on this machine; use {flag} cpu.")
    return device


def folder_model_type(path: str) -> str | None:
    """The `model_type` in a checkpoint folder's config.json ("omniclip", "clip", ...), or None."""
    return saved_config_field(path, "model_type")


def is_omniclip_folder(path: str) -> bool:
    return folder_model_type(path) == "omniclip"


def parse_training_options(argv: list[str] | None = None) -> TrainingOptions:
    """Command-line flags over an optional `--config` YAML file (command line wins)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(TrainingOptions)
    parser.add_argument("--config", default=None, help="YAML file with any of these options")
    for action in parser._actions:  # argparse shows "(default: ...)" only for options that have a help text
        if action.help is None and action.dest != "help":
            action.help = "(default: %(default)s)"
    known, _ = parser.parse_known_args(argv)
    if known.config:
        settings = read_recipe(known.config)
        names = {option.name for option in fields(TrainingOptions)}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise ValueError(f"{known.config}: unknown options {unknown}; see `python examples/train.py --help`.")
        for key in ("model_overrides", "video_processor_overrides"):
            if isinstance(settings.get(key), dict):
                settings[key] = json.dumps(settings[key])
        if settings.get("mixed_precision") is False:  # YAML reads a bare `no` as false
            settings["mixed_precision"] = "no"
        for key in ("eval_data", "eval_labels_file"):  # one set may be written as a plain string
            if isinstance(settings.get(key), str):
                settings[key] = [settings[key]]
        check_recipe_types(known.config, settings)
        parser.set_defaults(**settings)
    options, _ = parser.parse_args_into_dataclasses(args=argv)
    options.config = known.config  # not a dataclass field: recorded so errors can name the recipe
    if options.num_workers is None:
        options.num_workers = default_num_workers()
    options.validate()
    return options


def parameter_groups(
    model: torch.nn.Module, lr: float, weight_decay: float, *, prompt_lr_scale: float = 1.0,
    spg_lr_scale: float = 1.0, video_head_lr_scale: float = 1.0,
) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: the trainable parameters only; no weight decay on biases, norms,
    embeddings and scales (the adapter gates `alpha`, the temporal and frame position embeddings).

    The video-specific prompt generator learns at `lr * prompt_lr_scale`, the self-prompt generator at
    `lr * spg_lr_scale` and the video head at `lr * video_head_lr_scale`, in groups of their own when a scale is
    not 1. For `transformers.Trainer`: `Trainer(optimizers=(torch.optim.AdamW(parameter_groups(model, lr, wd)), None))`
    (or `omniclip_hf.training.trainer_collator.trainer_optimizer`).
    """
    module_lr = {"video_specific_prompts.": lr * prompt_lr_scale,
                 "self_prompt_generator.": lr * spg_lr_scale,
                 "video_head.": lr * video_head_lr_scale}
    groups = {  # (decays, learning rate) -> parameter group, in a fixed order
        (decays, group_lr): {"params": [], "weight_decay": weight_decay if decays else 0.0, "lr": group_lr}
        for group_lr in dict.fromkeys([lr, *module_lr.values()])
        for decays in (True, False)
    }
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        decays = parameter.ndim >= 2 and "embedding" not in name
        group_lr = next((rate for prefix, rate in module_lr.items() if name.startswith(prefix)), lr)
        groups[decays, group_lr]["params"].append(parameter)
    return [group for group in groups.values() if group["params"]]


def build_optimizer(model: torch.nn.Module, options: TrainingOptions) -> torch.optim.AdamW:
    """AdamW over the trainable parameters only; no weight decay on biases, norms, embeddings and scales.

    The video-specific prompt generator learns at `lr * prompt_lr_scale`, the self-prompt generator at
    `lr * spg_lr_scale` and the video head at `lr * video_head_lr_scale`, in groups of their own when a scale is
    not 1 (see `parameter_groups`).
    """
    groups = parameter_groups(model, options.lr, options.weight_decay, prompt_lr_scale=options.prompt_lr_scale,
                              spg_lr_scale=options.spg_lr_scale, video_head_lr_scale=options.video_head_lr_scale)
    return torch.optim.AdamW(groups, lr=options.lr, betas=(options.adam_beta1, options.adam_beta2))


def build_scheduler(optimizer, options: TrainingOptions, steps_per_epoch: int, total_steps: int):
    wanted = options.warmup_steps if options.warmup_steps is not None else options.warmup_epochs * steps_per_epoch
    warmup_steps = min(int(round(wanted)), max(total_steps - 1, 0))
    if int(round(wanted)) > warmup_steps and total_steps > 1:
        logger.warning("the warm-up (%d steps) is as long as training (%d optimizer steps): it is cut to %d, and the "
                       "rate reaches --lr at the last step without decaying; shorten --warmup_epochs/--warmup_steps.",
                       int(round(wanted)), total_steps, warmup_steps)
    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps, min_lr=options.min_lr
    )


class VideoMixer:
    """Mixup or cutmix (torchvision transforms v2) of a batch of clips, the same box for every frame of a clip.

    The draw for optimizer step `step` is seeded by `(seed, step)`, and by the process (`rank`) and the micro-batch
    of the accumulation group, so a resumed run mixes exactly as an uninterrupted one, and every process and every
    micro-batch of a step draws its own (they all drew the same weight and box: 256 clips of a 16-process step
    shared one). The first process's first micro-batch keeps the `(seed, step)` draw of one-process runs.
    """

    def __init__(self, num_classes: int, mixup_alpha: float, cutmix_alpha: float, probability: float, seed: int,
                 rank: int = 0):
        from torchvision.transforms import v2

        choices = []
        if mixup_alpha > 0:
            choices.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
        if cutmix_alpha > 0:
            choices.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
        self.transform = v2.RandomChoice(choices) if choices else None
        self.num_classes = num_classes
        self.probability = probability
        self.seed = seed
        self.rank = rank

    @property
    def enabled(self) -> bool:
        return self.transform is not None and self.probability > 0

    def __call__(self, videos: torch.Tensor, labels: torch.Tensor, step: int,
                 micro_batch: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.enabled or videos.shape[0] < 2:
            return videos, labels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.draw_seed(step, micro_batch))
            if torch.rand(()) >= self.probability:
                return videos, torch.nn.functional.one_hot(labels, self.num_classes).float()
            batch, frames, channels, height, width = videos.shape
            # Frames ride along as channels, so the cutmix box and the mixup weight are shared by all frames.
            mixed, soft = self.transform(videos.reshape(batch, frames * channels, height, width), labels)
        return mixed.view(batch, frames, channels, height, width), soft

    def draw_seed(self, step: int, micro_batch: int) -> int:
        if (self.rank, micro_batch) == (0, 0):
            return self.seed * 1_000_003 + step  # one-process runs draw as they always did (the demo's figures)
        from .data import example_seed

        return example_seed(self.seed * 1_000_003 + step, self.rank, micro_batch)


def build_processor(clip_name_or_path: str, num_frames: int):
    """An `OmniCLIPProcessor` for a CLIP checkpoint: its tokenizer, and frames sized for its vision tower.

    Evaluation resizes the short side to the model's image size and centre-crops it; training first scales the
    short side to 8/7 of it (256 for 224, X-CLIP's recipe), then random-resized-crops.
    """
    from transformers import AutoTokenizer, CLIPConfig

    from ..processing_omniclip import OmniCLIPProcessor

    image_size = CLIPConfig.from_pretrained(clip_name_or_path).vision_config.image_size
    tokenizer = AutoTokenizer.from_pretrained(clip_name_or_path)
    return OmniCLIPProcessor(video_processor=build_video_processor(image_size, num_frames), tokenizer=tokenizer)


def build_video_processor(image_size: int, num_frames: int):
    """The training and evaluation video processor for a vision tower of `image_size` pixels (see `build_processor`)."""
    from ..video_processing_omniclip import OmniCLIPVideoProcessor

    return OmniCLIPVideoProcessor(
        num_frames=num_frames,
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        augment_resize_shortest_edge=round(image_size * 8 / 7),
    )


def keep_frozen_clip_out_of_fsdp(accelerator, model: torch.nn.Module) -> None:
    """Under FSDP, shard only the OmniCLIP modules and keep the frozen CLIP whole on every device.

    Frozen weights have no gradients and no optimizer state, so sharding them saves only one copy of the weights
    per device (ViT-L/14's vision and text towers: 0.85 GB in bf16, under 1% of an 80 GB card) while adding an
    all-gather per layer per step. FSDP2 also cannot shard 0-dim parameters such as CLIP's `logit_scale`.
    Must run before `accelerator.prepare(model)`; a no-op for every other distributed type.
    """
    from accelerate.utils import DistributedType

    if accelerator.distributed_type != DistributedType.FSDP:
        return
    model.clip.to(accelerator.device)  # FSDP moves only the parameters it manages
    accelerator.state.fsdp_plugin.ignored_modules = [model.clip]


def lost_another_process(error: BaseException) -> bool:
    """Whether `error` is a collective failing because another process of the run stopped: gloo raises a plain
    RuntimeError ("Connection closed by peer") when a peer exits, e.g. on its own `error:` line under --strict."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return False
    if torch.distributed.get_world_size() < 2:
        return False
    message = str(error)
    return isinstance(error, torch.distributed.DistError) or any(
        symptom in message for symptom in ("Connection closed by peer", "Connection reset by peer"))


def run_script(main) -> None:
    """Runs an example script's `main()`: a bad input prints one `error:` line and exits 2, no traceback; a
    process whose peer stopped says so in one line (the peer's own error is the one to read) and exits 1."""
    try:
        main()
    except (ValueError, OSError) as error:  # OSError: missing files and folders, unreadable checkpoints
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except RuntimeError as error:
        if not lost_another_process(error):
            raise
        # gloo's line starts with its source location ("[.../pair.cc:561] Connection closed by peer ...").
        reason = re.sub(r"^\[[^\]]*\]\s*", "", str(error).strip()).split(". ")[0] or type(error).__name__
        print(f"error: another process of this run stopped (its error is printed above), so this one stops too "
              f"({reason})", file=sys.stderr)
        sys.exit(1)


__all__ = [
    "TrainingOptions",
    "VideoMixer",
    "build_optimizer",
    "build_processor",
    "build_video_processor",
    "build_scheduler",
    "check_inputs_exist",
    "folder_model_type",
    "is_omniclip_folder",
    "keep_frozen_clip_out_of_fsdp",
    "latest_checkpoint",
    "lost_another_process",
    "parameter_groups",
    "parse_training_options",
    "run_script",
]
