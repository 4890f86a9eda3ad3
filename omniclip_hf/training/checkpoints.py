# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Checkpoints and output folders that are never half-written, and resumption that survives a damaged checkpoint.

Every folder (a checkpoint, the final `model/`) is written under a temporary `.partial-*` name, flushed, and
renamed when complete; a failed write (disk full, say) removes its temporary folder and reports one line. On
`--resume_from_checkpoint latest`, a checkpoint that cannot be read falls back to the one before, with a warning.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ..atomic_writes import fsync_tree, no_space_message, replace_folder, write_folder_atomically
from . import testing_hooks


logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^step_(\d+)$")
# The later checkpoints of a run resumed from an earlier step are renamed with this prefix: `latest` skips them (they
# hold the abandoned continuation), and nothing is deleted.
ABANDONED_PREFIX = ".abandoned-"
TRAINER_STATE_NAME = "trainer_state.json"
TRAINER_STATE_KEYS = ("global_step", "epoch", "batches_in_epoch")
# The loop's records, read on resume: a state without them is damaged (a KeyError traceback in the loop before).
TRAINER_STATE_LISTS = ("losses",)
TRAINER_STATE_COUNTS = ("skipped_videos",)
# The trainable weights' names and shapes, written into every checkpoint's trainer state and compared on resume.
TRAINABLE_WEIGHTS_KEY = "trainable_weights"
# A digest of the frozen CLIP the adapters were trained over (`frozen_clip_fingerprint`), compared on resume too.
FROZEN_CLIP_KEY = "frozen_clip"
# The optimizer's parameter groups (their sizes), which the learning-rate scales decide.
OPTIMIZER_GROUPS_KEY = "optimizer_groups"
# The model config's architecture fields (`OmniCLIPConfig.architecture()`): some (pta_head_dim, spg_pooling, ...)
# change what the weights compute without changing their shapes, so the trainable weights' record cannot tell them.
ARCHITECTURE_KEY = "architecture"
# Wrappers whose state dict keys carry their own prefix (DDP's `module.`, torch.compile's `_orig_mod.`).
WRAPPER_PREFIX = re.compile(r"^(?:module\.|_orig_mod\.)*")
LR_SCALE_OPTIONS = ("prompt_lr_scale", "spg_lr_scale", "video_head_lr_scale")


class CheckpointMismatchError(ValueError):
    """A checkpoint written by a model with other trainable weights (other `--model_overrides`, `--clip` or
    `--model`): never skipped for an older checkpoint, since every checkpoint of the run has the same weights."""


# True while `save_checkpoint` or a resume reads or writes a model's state: the hooks of
# `keep_checkpoints_trainable_only` act only then, so `accelerator.get_state_dict` (the final `model/`) stays whole.
_WRITING_OR_READING_CHECKPOINT = contextvars.ContextVar("omniclip_checkpoint_io", default=False)


@contextmanager
def _checkpoint_io():
    token = _WRITING_OR_READING_CHECKPOINT.set(True)
    try:
        yield
    finally:
        _WRITING_OR_READING_CHECKPOINT.reset(token)


def keep_checkpoints_trainable_only(model) -> None:
    """Checkpoints of `model` hold only its trainable weights: the frozen CLIP comes from `--clip`/`--model` again on
    resume (for ViT-B/16 about 65 MB per checkpoint instead of 600 MB).

    Accelerate reads and writes the weights through the model's own `state_dict`/`load_state_dict` under every
    distributed type (directly, through DDP's wrapper, or through torch's `get_model_state_dict`/
    `set_model_state_dict` under FSDP), so the model itself leaves its frozen entries out of `state_dict()` while a
    checkpoint is written or read, and `load_state_dict` does not ask for them then. Outside checkpoint I/O the state
    dict stays whole (the final `model/`). Works for FSDP's `FULL_STATE_DICT` and `SHARDED_STATE_DICT` alike.
    """

    def trainable_names(module, prefix: str) -> set[str]:
        return {prefix + name for name, parameter in module.named_parameters() if parameter.requires_grad}

    def drop_frozen_entries(module, state_dict, prefix, local_metadata) -> None:
        if not _WRITING_OR_READING_CHECKPOINT.get():
            return
        keep = trainable_names(module, prefix)
        for key in [key for key in state_dict if key.startswith(prefix) and key not in keep]:
            del state_dict[key]

    def forgive_missing_frozen_entries(module, incompatible_keys) -> None:
        if not _WRITING_OR_READING_CHECKPOINT.get():
            return
        # The keys are the loaded (outermost) module's: under DDP `module.<name>`. Compared without the wrapper's
        # prefix, or every missing trainable weight was forgiven too and a strict load passed a partial checkpoint.
        trainable = trainable_names(module, "")
        incompatible_keys.missing_keys[:] = [key for key in incompatible_keys.missing_keys
                                             if WRAPPER_PREFIX.sub("", key) in trainable]

    model.register_state_dict_post_hook(drop_frozen_entries)
    model.register_load_state_dict_post_hook(forgive_missing_frozen_entries)


def trainable_weight_shapes(model) -> dict[str, list[int]]:
    """`{name: shape}` of the model's trainable weights (call on the model before `accelerator.prepare`)."""
    return {name: list(parameter.shape) for name, parameter in model.named_parameters() if parameter.requires_grad}


def frozen_clip_fingerprint(model, stride: int = 997) -> str:
    """A digest of the frozen weights (names, shapes and every `stride`-th value of each): checkpoints hold only the
    trainable weights, so a resume takes the frozen CLIP from `--clip`/`--model` again, and another CLIP of the same
    shapes would otherwise carry the adapters on over other features with nothing said. A sample, not every value:
    two CLIP checkpoints differ nearly everywhere, and hashing all of a ViT-L/14 would take seconds."""
    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            continue
        sample = parameter.detach().flatten()[::stride].to("cpu", torch.float32).contiguous()
        digest.update(f"{name}{list(parameter.shape)}".encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def check_checkpoint_frozen_clip(checkpoint: Path, state: dict[str, Any], fingerprint: str) -> None:
    """Refuses, in one line, a checkpoint trained over another frozen CLIP (checkpoints written before the
    fingerprint was recorded are not checked)."""
    recorded = state.get(FROZEN_CLIP_KEY)
    if recorded is not None and recorded != fingerprint:
        raise CheckpointMismatchError(
            f"{checkpoint} was trained over another frozen CLIP than this run's --clip/--model (same shapes, other "
            "weights): resume with the CLIP the run was started with (its training_options.json), or train this one "
            "in a new --output_dir.")


def check_checkpoint_optimizer_groups(checkpoint: Path, state: dict[str, Any], groups: list[int]) -> None:
    """Refuses, in one line, a checkpoint whose optimizer has other parameter groups than this run's (a rate scale
    turned to or from 1 splits or merges them): its optimizer state cannot be restored, and `load_state` failing on it
    called every checkpoint of the run damaged and advised deleting them (checkpoints written before the groups were
    recorded are not checked)."""
    recorded = state.get(OPTIMIZER_GROUPS_KEY)
    if recorded is None or list(recorded) == list(groups):
        return
    recipe = state.get("recipe") or {}
    was = ", ".join(f"--{name} {recipe[name]}" for name in LR_SCALE_OPTIONS if name in recipe)
    raise CheckpointMismatchError(
        f"{checkpoint} holds an optimizer of {len(recorded)} parameter groups and this run builds {len(groups)}: the "
        f"learning-rate scales ({', '.join('--' + name for name in LR_SCALE_OPTIONS)}) decide the groups, and one "
        f"turned to or from 1 changes them, so the optimizer state cannot be restored; resume with the run's scales"
        f"{f' ({was})' if was else ''}, or train in a new --output_dir.")


def check_checkpoint_architecture(checkpoint: Path, state: dict[str, Any], architecture: dict[str, Any]) -> None:
    """Refuses, in one line, a checkpoint of a model built with other architecture fields (`--model_overrides`
    pta_head_dim, spg_pooling, ...) that keep the weights' shapes: its weights would train on under another
    computation with nothing said (checkpoints written before the architecture was recorded are not checked)."""
    from ..configuration_omniclip import changed_architecture_fields

    recorded = state.get(ARCHITECTURE_KEY)
    if not isinstance(recorded, dict):
        return
    changed = changed_architecture_fields(recorded, architecture)
    if not changed:
        return
    described = ", ".join(f"{name} {architecture[name]!r} (was {recorded[name]!r})" for name in changed)
    raise CheckpointMismatchError(
        f"{checkpoint} was trained with another model architecture than this run builds ({described}): its weights "
        "would train on under another computation; resume with the --model_overrides the run was started with (its "
        "training_options.json), or train this model in a new --output_dir.")


def _listed(names: list[str], limit: int = 3) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_checkpoint_matches_model(checkpoint: Path, state: dict[str, Any], expected: dict[str, list[int]]) -> None:
    """Refuses, in one line, a checkpoint whose trainable weights are not the model's (checkpoints written before
    the weights were recorded are not checked)."""
    recorded = state.get(TRAINABLE_WEIGHTS_KEY)
    if recorded is None:
        return
    missing = sorted(set(expected) - set(recorded))
    extra = sorted(set(recorded) - set(expected))
    reshaped = sorted(name for name in set(expected) & set(recorded) if list(recorded[name]) != expected[name])
    if not (missing or extra or reshaped):
        return
    problems = []
    if missing:
        problems.append(f"it lacks {_listed(missing)}")
    if extra:
        problems.append(f"it has {_listed(extra)}, which this model lacks")
    if reshaped:
        name = reshaped[0]
        problems.append(f"{_listed(reshaped)} differ in shape "
                        f"({name}: {recorded[name]} there, {expected[name]} here)")
    raise CheckpointMismatchError(
        f"{checkpoint} was written by a model with other trainable weights ({'; '.join(problems)}): resume with the "
        "model options the run was started with (its training_options.json), or train this model in a new "
        "--output_dir.")


def checkpoint_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """The `step_*` checkpoint folders, oldest first; half-written ones never have that name, stray files are skipped."""
    folder = checkpoint_dir(output_dir)
    if not folder.is_dir():
        return []
    steps = [(int(match.group(1)), path) for path in folder.iterdir()
             if (match := CHECKPOINT_PATTERN.match(path.name)) and path.is_dir()]
    return [path for _, path in sorted(steps)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete checkpoint with the highest step."""
    checkpoints = complete_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def check_output_dir_for_a_new_run(output_dir: str | Path, resume_from_checkpoint: str | None, overwrite: bool,
                                   delete: bool = True) -> None:
    """A run that does not resume never writes its checkpoints beside an earlier run's: `latest` would then pick the
    earlier run's last step. Refused in one line, or, with `overwrite`, the earlier checkpoints are deleted (`delete`:
    only on the main process; every process calls this, so none waits alone at the next barrier)."""
    existing = complete_checkpoints(output_dir)
    if not existing:
        return
    if resume_from_checkpoint:
        check_resume_into_this_run(output_dir, resume_from_checkpoint, existing)
        return
    if not overwrite:
        raise ValueError(
            f"--output_dir {output_dir} holds the checkpoints of an earlier training run "
            f"(latest: {existing[-1].name}): continue it with --resume_from_checkpoint latest, train in a new "
            "--output_dir, or pass --overwrite_output_dir to delete them and start again.")
    if delete:
        delete_earlier_checkpoints(output_dir)


def is_checkpoint_of(checkpoint: str | Path, output_dir: str | Path) -> bool:
    """Whether `checkpoint` is one of `output_dir`'s own checkpoints (`checkpoints/step_N`), whatever the path's
    spelling (relative, through a link)."""
    path = Path(checkpoint).resolve()
    return path.parent == checkpoint_dir(output_dir).resolve() and CHECKPOINT_PATTERN.match(path.name) is not None


def check_resume_into_this_run(output_dir: str | Path, resume_from_checkpoint: str, existing: list[Path]) -> None:
    """An explicit checkpoint of another folder, resumed into an `output_dir` that holds a run's checkpoints, would
    write its steps among that run's, and `latest` would then pick whichever step is highest: refused in one line."""
    if resume_from_checkpoint == "latest" or is_checkpoint_of(resume_from_checkpoint, output_dir):
        return
    raise ValueError(
        f"--resume_from_checkpoint {resume_from_checkpoint} is not one of the checkpoints/step_N of --output_dir "
        f"{output_dir}, which holds another run's (latest: {existing[-1].name}): its steps would be written among "
        "them; resume it into a new --output_dir, or continue this folder's run from latest or one of its step_N.")


def set_aside_later_checkpoints(output_dir: str | Path, step: int) -> list[Path]:
    """After a resume from this run's checkpoint `step`: renames its checkpoints of later steps (the continuation the
    resume abandons) to `.abandoned-step_N`, which `latest` skips, and says so in one warning; nothing is deleted.
    Before, a later `--resume_from_checkpoint latest` picked the abandoned run's last step. Main process only."""
    later = [path for path in complete_checkpoints(output_dir) if checkpoint_step(path) > step]
    moved = [_rename_aside(path) for path in later]
    if moved:
        logger.warning("resumed from step %d: set aside the %d later checkpoints of the run it abandons (%s) as %s "
                       "(nothing deleted; `latest` no longer picks them).", step, len(moved),
                       _listed([path.name for path in later]), _listed([path.name for path in moved]))
    return moved


def checkpoint_step(checkpoint: Path) -> int:
    """The step in a complete checkpoint's name (`step_N`)."""
    return int(CHECKPOINT_PATTERN.match(checkpoint.name).group(1))


def _rename_aside(path: Path) -> Path:
    """`path` renamed to `.abandoned-<name>` beside it (`.abandoned-<name>-2`, ... when an earlier resume set a
    checkpoint of that step aside already)."""
    target = path.with_name(ABANDONED_PREFIX + path.name)
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{ABANDONED_PREFIX}{path.name}-{number}")
    os.replace(path, target)
    return target


# What examples/train.py writes into --output_dir (run.py, evaluation.py, publishing.py): `--overwrite_output_dir`
# removes an earlier run's copies with its checkpoints. Left beside a new run that then failed, they were published
# as its results (its model/ with the earlier run's metrics.json). Whatever else the folder holds is the user's and
# stays. The files that say whose results these are go first, so a removal that fails half-way leaves no folder
# that names one run's results beside another's model.
FEW_SHOT_SELECTION_NAME = "few_shot_selection.json"
EARLIER_RUN_OUTPUTS = (
    "metrics.json", "training_options.json", "confusion_matrix_*.png", "seen_indices_rank*.json",
    "model", ".partial-model", ".old-model", "checkpoints", ".old-checkpoints",
    ".partial-hub_upload", ".old-hub_upload",  # a dry run's temporary names (`write_folder_atomically`)
    FEW_SHOT_SELECTION_NAME,  # the new run writes its own after this removal (`run.write_few_shot_selection`)
)
# A dry run's upload folder, removed only when a dry run wrote it (it holds publishing.DRY_RUN_MARKER).
DRY_RUN_FOLDER_NAME = "hub_upload"
# The project name `--report_to` trackers are started with; TensorBoard logs into this folder of output_dir, removed
# only when it holds TensorBoard's event files (an earlier run's curves would be drawn over the new run's).
TRACKER_PROJECT_NAME = "omniclip"


def delete_earlier_checkpoints(output_dir: str | Path) -> None:
    """`--overwrite_output_dir`: removes the earlier run's checkpoints and every other output of it (metrics,
    model, confusion matrices, dry-run upload, TensorBoard logs, options, few-shot selection), nothing else. Called once the new run's
    data has loaded, so a run that fails on its inputs leaves the earlier run whole. A path that cannot be removed
    is one OSError line naming it (a stale metrics.json left in place would be published with the new model)."""
    for path in earlier_run_outputs(Path(output_dir)):
        _remove(path)


def earlier_run_outputs(output_dir: Path) -> list[Path]:
    """The paths in `output_dir` that an earlier examples/train.py run wrote, in the order they are removed."""
    from .publishing import DRY_RUN_MARKER  # publishing imports this module

    if not output_dir.is_dir():
        return []
    paths = [path for pattern in EARLIER_RUN_OUTPUTS for path in sorted(output_dir.glob(pattern))]
    if (output_dir / DRY_RUN_FOLDER_NAME / DRY_RUN_MARKER).is_file():
        paths.append(output_dir / DRY_RUN_FOLDER_NAME)
    if next((output_dir / TRACKER_PROJECT_NAME).glob("**/events.out.tfevents.*"), None) is not None:
        paths.append(output_dir / TRACKER_PROJECT_NAME)
    return paths


def _remove(path: Path) -> None:
    """Removes a file, or a folder whole: it is renamed aside first (`.old-*`, as `replace_folder` does), so a
    removal that fails half-way never leaves a model/ with a config and no weights."""
    try:
        if path.is_dir() and not path.is_symlink():
            aside = path if path.name.startswith(".old-") else path.parent / f".old-{path.name}"
            if aside != path:
                shutil.rmtree(aside, ignore_errors=True)
                os.replace(path, aside)
            shutil.rmtree(aside)
        else:
            path.unlink(missing_ok=True)
    except OSError as error:
        raise OSError(f"--overwrite_output_dir: could not remove the earlier run's {path} ({error.strerror or error}); "
                      "remove it by hand, or train in a new --output_dir.") from error


def check_output_dir_for_an_evaluation(output_dir: str | Path, overwrite: bool) -> None:
    """A run that only evaluates writes `model/` (the evaluated model), `metrics.json` and `training_options.json`:
    into a training run's folder they would replace its trained model and results. Refused in one line unless
    `overwrite`."""
    output_dir = Path(output_dir)
    held = [name for name in ("model", "metrics.json", "checkpoints") if (output_dir / name).exists()]
    if held and not overwrite:
        raise ValueError(f"--output_dir {output_dir} holds an earlier run ({', '.join(held)}), which an evaluation "
                         "without --train_data would replace: pass a new --output_dir, or --overwrite_output_dir to "
                         "replace it.")


def model_state_keywords(accelerator, save: bool) -> dict[str, Any]:
    """The keywords `save_state` (`save=True`) or a strict `load_state` take for the model. Under DeepSpeed Accelerate
    hands them to the engine's own `save_checkpoint`/`load_checkpoint`: a ZeRO-2 checkpoint also wrote every frozen
    weight (`frozen_param_fragments`: the whole CLIP) unless told to exclude them, and `strict` is the engine's
    `load_module_strict` (`strict=True` stopped every resume with a TypeError, read as a damaged checkpoint)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return {"exclude_frozen_parameters": True} if save else {"load_module_strict": True}
    return {} if save else {"strict": True}


def save_checkpoint(accelerator, output_dir: str | Path, step: int, trainer_state: dict[str, Any],
                    total_limit: int | None = None) -> Path:
    """Accelerate state plus the loop's position, written under a temporary name and renamed when complete.

    A kill during the save leaves only a `.partial-*` folder, which `latest_checkpoint` never picks; a failed
    write (disk full) removes it and raises one OSError line on every rank.
    """
    folder = checkpoint_dir(output_dir)
    final = folder / f"step_{step:08d}"
    partial = folder / f".partial-step_{step:08d}"
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    failure = None
    try:
        with _checkpoint_io():
            accelerator.save_state(str(partial), **model_state_keywords(accelerator, save=True))
        if accelerator.is_main_process:
            testing_hooks.inside_checkpoint_write(step)
            (partial / TRAINER_STATE_NAME).write_text(json.dumps(trainer_state, indent=2))
            fsync_tree(partial)
    except OSError as error:
        failure = error
    if _any_process_failed(accelerator, failure is not None):  # every rank stops, none waits alone at a barrier
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        if failure is None:
            raise OSError(f"{final}: another process could not write its part of the checkpoint; nothing was written.")
        raise OSError(no_space_message(final, failure)) from failure
    if accelerator.is_main_process:
        replace_folder(partial, final)
        if total_limit:
            _prune_checkpoints(output_dir, total_limit)
    accelerator.wait_for_everyone()
    return final


def _any_process_failed(accelerator, failed: bool) -> bool:
    if getattr(accelerator, "num_processes", 1) <= 1:
        return failed
    import torch

    flags = accelerator.reduce(torch.tensor([int(failed)], device=accelerator.device), reduction="sum")
    return bool(flags.item())


def _prune_checkpoints(output_dir: str | Path, keep: int) -> None:
    for path in complete_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def load_trainer_state(checkpoint: Path, loop_records: bool = False) -> dict[str, Any]:
    """The loop's position in `checkpoint`; a missing, empty or damaged file is a ValueError naming it. Records of the
    loop it holds must have their types; `loop_records` (a resume of the training loop, which reads them): they must
    be there too."""
    path = Path(checkpoint) / TRAINER_STATE_NAME
    if not path.is_file():
        raise ValueError(f"{checkpoint} is not a complete training checkpoint (no {TRAINER_STATE_NAME}).")
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is damaged (not JSON: {error}).") from error
    if not isinstance(state, dict) or any(not isinstance(state.get(key), int) for key in TRAINER_STATE_KEYS):
        raise ValueError(f"{path} is damaged: it must be a JSON object with integer {', '.join(TRAINER_STATE_KEYS)}.")
    check_trainer_state_records(path, state, loop_records)
    return state


def check_trainer_state_records(path: Path, state: dict[str, Any], required: bool) -> None:
    """The loop's records in a trainer state: a list of `losses` and an integer count of `skipped_videos` (the loop
    reads both on resume; their absence was a KeyError traceback, and `latest` never fell back). Not `required`:
    only those present are checked."""
    def bad(key: str, kind: type) -> bool:
        return (required or key in state) and not isinstance(state.get(key), kind)

    lists = [key for key in TRAINER_STATE_LISTS if bad(key, list)]
    counts = [key for key in TRAINER_STATE_COUNTS if bad(key, int)]
    if lists or counts:
        wanted = ([f"a list of {key}" for key in TRAINER_STATE_LISTS]
                  + [f"an integer {key}" for key in TRAINER_STATE_COUNTS])
        raise ValueError(f"{path} is damaged: it lacks a valid {' and '.join(lists + counts)} (it must hold "
                         f"{' and '.join(wanted)}).")


def resolve_checkpoint(value: str, output_dir: str | Path) -> Path | None:
    """`latest` (None when the run has no checkpoint yet: start fresh) or an explicit folder."""
    if value == "latest":
        return latest_checkpoint(output_dir)
    path = Path(value)
    if not path.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {value}: no such checkpoint folder.")
    return path


def restore_checkpoint(accelerator, value: str, output_dir: str | Path,
                       trainable_weights: dict[str, list[int]] | None = None,
                       frozen_clip: str | None = None,
                       optimizer_groups: list[int] | None = None,
                       architecture: dict[str, Any] | None = None,
                       loop_records: bool = False) -> tuple[Path, dict[str, Any]] | None:
    """Loads the checkpoint `value` names into the prepared objects; returns it and the loop's position.

    With `latest`, a checkpoint that cannot be read (empty or truncated files) is skipped with a warning for the one
    before it; an explicit folder that cannot be read is a ValueError naming it. None: no checkpoint yet.
    `trainable_weights` (`trainable_weight_shapes` of the model) and `frozen_clip` (its `frozen_clip_fingerprint`)
    make a checkpoint of another model a `CheckpointMismatchError`, before anything is loaded; so do
    `optimizer_groups` (the sizes of the optimizer's parameter groups) that differ from the checkpoint's, and an
    `architecture` (the model config's `architecture()`) other than the one the checkpoint recorded.
    `loop_records`: the checkpoint must hold the loop's records (`load_trainer_state`), or it is damaged.
    An explicit checkpoint of this run's own folder sets the run's later checkpoints aside
    (`set_aside_later_checkpoints`).
    """
    checks = (trainable_weights, frozen_clip, optimizer_groups, architecture, loop_records)
    if value != "latest":
        checkpoint = resolve_checkpoint(value, output_dir)
        state = _load(accelerator, checkpoint, *checks)
        if accelerator.is_main_process and is_checkpoint_of(checkpoint, output_dir):
            set_aside_later_checkpoints(output_dir, state["global_step"])
        return checkpoint, state
    checkpoints = complete_checkpoints(output_dir)
    for checkpoint in reversed(checkpoints):
        try:
            return checkpoint, _load(accelerator, checkpoint, *checks)
        except CheckpointMismatchError:
            raise
        except ValueError as error:
            logger.warning("%s; falling back to the checkpoint before it.", error)
    if checkpoints:  # starting from scratch would throw the run's progress away with nothing said
        names = _listed([checkpoint.name for checkpoint in checkpoints])
        raise ValueError(f"no checkpoint in {checkpoint_dir(output_dir)} can be loaded ({names} damaged, see the "
                         "warnings above): move them away to resume from nothing, or start again with "
                         "--overwrite_output_dir instead of --resume_from_checkpoint.")
    return None


def _load(accelerator, checkpoint: Path, trainable_weights: dict[str, list[int]] | None,
          frozen_clip: str | None = None, optimizer_groups: list[int] | None = None,
          architecture: dict[str, Any] | None = None, loop_records: bool = False) -> dict[str, Any]:
    state = load_trainer_state(checkpoint, loop_records)  # the cheap check first: an empty or partial state file
    if trainable_weights is not None:
        check_checkpoint_matches_model(checkpoint, state, trainable_weights)
    if architecture is not None:
        check_checkpoint_architecture(checkpoint, state, architecture)
    if frozen_clip is not None:
        check_checkpoint_frozen_clip(checkpoint, state, frozen_clip)
    if optimizer_groups is not None:
        check_checkpoint_optimizer_groups(checkpoint, state, optimizer_groups)
    try:
        with _checkpoint_io():
            # Strict: a checkpoint lacking trainable weights (or with others) left them at their initial values with
            # nothing said. The frozen entries checkpoints leave out are forgiven by `keep_checkpoints_trainable_only`.
            accelerator.load_state(str(checkpoint), **model_state_keywords(accelerator, save=False))
    except Exception as error:  # safetensors, torch.load and pickle raise their own types for damaged files
        mismatch = weights_mismatch_message(checkpoint, error)
        if mismatch:
            raise CheckpointMismatchError(mismatch) from error
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"checkpoint {checkpoint} is damaged ({type(error).__name__}: {first_line})") from error
    return state


# The key lists of a strict load's RuntimeError: torch's and safetensors' (`Missing key(s) in state_dict: "a", "b"`)
# and torch.distributed's under FSDP (`Missing key: a.`).
STATE_DICT_KEYS = re.compile(r"(Missing|Unexpected) key\(s\) in state_dict: ((?:\"[^\"]*\"(?:, )?)+)")
DISTRIBUTED_MISSING_KEY = re.compile(r"Missing key: (\S+?)\.?$", re.MULTILINE)


def weights_mismatch_message(checkpoint: Path, error: Exception) -> str | None:
    """One line for a strict load that found other weights than the model's (None for any other error): a checkpoint
    of another model or version, not a damaged one, so `latest` does not fall back to an older sibling that has the
    same weights."""
    if not isinstance(error, RuntimeError):
        return None
    text = str(error)
    found = {kind: re.findall(r'"([^"]*)"', names) for kind, names in STATE_DICT_KEYS.findall(text)}
    missing = found.get("Missing", []) + DISTRIBUTED_MISSING_KEY.findall(text)
    unexpected = found.get("Unexpected", [])
    if not (missing or unexpected):
        return None
    problems = ([f"it lacks {_listed(missing)}"] if missing else []) + \
        ([f"it has {_listed(unexpected)}, which this model lacks"] if unexpected else [])
    return (f"{checkpoint} holds other trainable weights than this model ({'; '.join(problems)}): it was written by "
            "another model or another version of omniclip-hf, not damaged; resume with the model it was written by, "
            "or train this model in a new --output_dir.")


__all__ = [
    "ABANDONED_PREFIX",
    "ARCHITECTURE_KEY",
    "CheckpointMismatchError",
    "FROZEN_CLIP_KEY",
    "OPTIMIZER_GROUPS_KEY",
    "TRACKER_PROJECT_NAME",
    "TRAINABLE_WEIGHTS_KEY",
    "check_checkpoint_architecture",
    "check_checkpoint_frozen_clip",
    "check_checkpoint_matches_model",
    "check_output_dir_for_a_new_run",
    "complete_checkpoints",
    "frozen_clip_fingerprint",
    "is_checkpoint_of",
    "keep_checkpoints_trainable_only",
    "latest_checkpoint",
    "load_trainer_state",
    "resolve_checkpoint",
    "restore_checkpoint",
    "save_checkpoint",
    "set_aside_later_checkpoints",
    "trainable_weight_shapes",
    "write_folder_atomically",
]
