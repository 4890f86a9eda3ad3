# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Publishing a trained OmniCLIP folder to the Hugging Face Hub, with a model card, or to a dry-run folder."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..configuration_omniclip import OmniCLIPConfig
from .checkpoints import write_folder_atomically
from .recipe import TRAINING_OPTIONS_NAME


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_accuracy(value: Any) -> bool:
    return _is_number(value) and 0 <= value <= 1


def _is_metric(value: Any) -> bool:
    """An accuracy as metrics.json holds it: a fraction, or `{"mean": ..., "std": ...}` over several eval sets."""
    if isinstance(value, dict):
        return _is_accuracy(value.get("mean")) and _is_accuracy(value.get("std"))
    return _is_accuracy(value)


def _format_metric(value: Any) -> str:
    """None: nothing was measured (no eval data). Anything else that is no accuracy is refused, never shown as "not
    measured" (`check_metrics` names the file first where the metrics come from one)."""
    if value is None:
        return "not measured"
    if not _is_metric(value):
        raise ValueError(f"the metrics hold {json.dumps(value)[:60]} where an accuracy belongs, not a number.")
    if isinstance(value, dict):
        return f"{100 * value['mean']:.2f} ± {100 * value['std']:.2f}"
    return f"{100 * value:.2f}"


def _exists_locally(name: str | Path) -> bool:
    try:
        return Path(name).exists()
    except (OSError, ValueError):  # a name too long for a path, or one holding a NUL byte
        return False


# training_options.json's record of the run's local sources: `{an option's value as given: its absolute path}` for
# each value (or list item) that named an existing file or folder where the run started. Publishing tells local paths
# from Hub ids by it, wherever it runs: judged by what exists in the current folder, `--clip models/tiny_clip` given
# in the training folder read as the Hub id `models/tiny_clip` to a publish run from any other folder (the card named
# it as the base model, and an adapter over that local CLIP was uploaded).
LOCAL_PATHS_KEY = "local_paths"


class RecordedLocalPaths(dict):
    """The `local_paths` record the training run wrote itself (training_options.json's): complete, so it alone decides
    what was local. What exists in the current folder must not count as well: a Hub id such as `someorg/set-a` that
    happens to be a folder where publishing runs was dropped from the card, which then differed from folder to folder.
    A plain dict is a record rebuilt for a run of an earlier version, which can miss paths (see `_is_local`)."""


def local_paths_of(options: dict[str, Any], base: str | Path | None = None) -> dict[str, str]:
    """`{value: absolute path}` for each string option value, or item of a list, that names an existing file or
    folder, relative to `base` (the current folder when None): the `local_paths` training_options.json records."""
    found: dict[str, str] = {}
    for value in options.values():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(item, str) or not item or item in found:
                continue
            path = Path(item) if base is None or Path(item).is_absolute() else Path(base) / item
            if _exists_locally(path):
                found[item] = os.path.abspath(path)
    return found


def local_paths_record(options: Any) -> dict[str, str] | None:
    """The run's `local_paths` record, carried in `options` (`read_run_record` puts it there); None without one (a
    bare model folder, a run of an earlier version, or train.py's own publish in the folder it trained in), when
    what exists in the current folder decides."""
    record = getattr(options, LOCAL_PATHS_KEY, None) if options is not None else None
    return record if isinstance(record, dict) else None


def _is_local(name: str, local_paths: dict[str, str] | None) -> bool:
    """Whether `name` named a local file or folder. By the run's own record alone (`RecordedLocalPaths`): the same
    answer from any folder. Without a record, by what exists in the current folder. With a record rebuilt for a run
    of an earlier version (from its --output_dir), either is enough: such a record can miss a path when the run folder
    was moved, and naming a local path as a Hub id is the error to avoid (the card would point at someone else's
    model, and an adapter over a local CLIP would be uploaded)."""
    if isinstance(local_paths, RecordedLocalPaths):
        return name in local_paths
    return (local_paths is not None and name in local_paths) or _exists_locally(name)


def hub_id_or_none(name: Any, local_paths: dict[str, str] | None = None) -> str | None:
    """`name` when it reads as a Hub id (`owner/name` by huggingface_hub's rule, and no local path: none the run
    recorded in `local_paths`, or without a record none that exists here), else `None`: the card names no local path
    (base CLIP folders and data folders stay on the machine that trained)."""
    from huggingface_hub.utils import validate_repo_id

    if (not isinstance(name, str) or name.count("/") != 1 or name.startswith((".", "/", "~"))
            or _is_local(name, local_paths)):
        return None
    try:
        validate_repo_id(name)
    except ValueError:
        return None
    return name


def dataset_hub_id_or_none(source: Any, local_paths: dict[str, str] | None = None) -> str | None:
    """`source` (a --train_data or --eval_data value) when it names a Hub dataset, by the rule the data loader
    itself uses (`looks_like_a_local_path`): `hmdb51/train.csv` is a local annotation file, even where publishing
    runs from another folder than training did. With the run's `local_paths` record, only the loader's rule of the
    name's form applies here: a name whose first folder existed was either recorded or refused by the training run."""
    from .data import looks_like_a_local_path

    hub_id = hub_id_or_none(source, local_paths)
    if hub_id is None:
        return None
    if local_paths is None:
        return None if looks_like_a_local_path(hub_id) else hub_id
    return None if Path(hub_id).suffix or "\\" in hub_id else hub_id


def _metric_value(value: Any) -> float | None:
    if not _is_metric(value):
        return None
    return float(value["mean"] if isinstance(value, dict) else value)


def _evaluation_sets(options: Any, metrics: dict[str, Any]) -> list[tuple[str | None, str, dict[str, Any]]]:
    """`(hub dataset id or None, display name, metrics)` for each evaluated set in `metrics.json`."""
    eval_data = list(getattr(options, "eval_data", None) or []) if options else []
    local_paths = local_paths_record(options)
    if "eval_sets" in metrics:
        from .evaluation import eval_set_names  # loads torch: only for a run with several eval sets

        source_of = dict(zip(eval_set_names(eval_data), eval_data)) if len(eval_data) > 1 else {}
        return [(dataset_hub_id_or_none(source_of.get(name), local_paths), name, values)
                for name, values in metrics["eval_sets"].items()]
    if "top1" in metrics:
        source = eval_data[0] if len(eval_data) == 1 else None
        hub_id = dataset_hub_id_or_none(source, local_paths)
        return [(hub_id, hub_id or "evaluation set", metrics)]
    return []


def class_count(values: dict[str, Any]) -> int | None:
    """How many classes an evaluation set was scored over, read from its confusion matrix in metrics.json (one
    set's: under `eval`); None when the metrics hold none."""
    matrix = values.get("confusion_matrix")
    if matrix is None and isinstance(values.get("eval"), dict):
        matrix = values["eval"].get("confusion_matrix")
    return len(matrix) if isinstance(matrix, list) and matrix else None


def top5_is_trivial(values: dict[str, Any]) -> bool:
    """Top-5 over 5 classes or fewer counts every video (k is capped at the class count): 100% by construction."""
    count = class_count(values)
    return count is not None and count <= 5


# The model-index's `dataset.type` of an evaluation set that is no Hub dataset: a slug, as transformers' own cards
# name a local set by its loader (`csv`, `imagefolder`). The set's name was there: "evaluation set" is no id, and a
# folder's name (`hmdb51`) reads as, and links to, the Hub dataset of that name, which is not what was measured.
LOCAL_DATASET_TYPE = "local"


def _model_index_dataset(hub_id: str | None, name: str, several: bool) -> dict[str, str | None]:
    """The model-index's dataset fields of one evaluation set. Several local sets keep their names as the dataset's
    config: the model-index groups results by type and config, so under one type alone their results were merged
    into one entry named after the first set."""
    if hub_id is not None:
        return {"dataset_type": hub_id, "dataset_name": name, "dataset_config": None}
    return {"dataset_type": LOCAL_DATASET_TYPE, "dataset_name": name, "dataset_config": name if several else None}


# The card's license when --license is not given: the upload holds the base CLIP's weights (or loads them), whose
# license is not known here, beside this package's Apache-2.0 code, so no one license is claimed for the whole.
UNSTATED_LICENSE = "other"


def build_card_data(model_folder: Path, options: Any, metrics: dict[str, Any],
                    config: dict[str, Any] | None = None) -> ModelCardData:
    """The card's metadata: base model, datasets, license, pipeline tag, tags and `model-index` results
    (`config`: the folder's config.json, read here when not given)."""
    if config is None:
        config = json.loads((Path(model_folder) / "config.json").read_text())
    evaluation_sets = _evaluation_sets(options, metrics)
    model_name = getattr(options, "hub_model_id", None) if options else None
    train_data = training_set_hub_id(options)
    eval_results = []
    for hub_id, name, values in evaluation_sets:
        for key, metric_name in (("top1", "top-1 accuracy"), ("top5", "top-5 accuracy")):
            if key == "top5" and top5_is_trivial(values):
                continue  # 100% by construction: no result
            value = _metric_value(values.get(key))
            if value is not None:
                eval_results.append(EvalResult(
                    task_type="video-classification",
                    task_name="Video classification",
                    **_model_index_dataset(hub_id, name, several=len(evaluation_sets) > 1),
                    metric_type="accuracy",
                    metric_name=metric_name,
                    metric_value=value,
                ))
    datasets = [name for name in [train_data, *(hub_id for hub_id, _, _ in evaluation_sets)] if name]
    return ModelCardData(
        model_name=(model_name or "OmniCLIP").split("/")[-1],
        base_model=hub_id_or_none(config.get("base_clip_name_or_path"), local_paths_record(options)),
        datasets=list(dict.fromkeys(datasets)) or None,
        license=card_license(options),
        library_name="transformers",
        pipeline_tag="video-classification",
        tags=["omniclip", "clip", "video-classification", "zero-shot-video-classification", "omniclip-hf"],
        eval_results=eval_results or None,
    )


def card_license(options: Any) -> str:
    """The license the card states: push_to_hub.py's --license, else `UNSTATED_LICENSE` (apache-2.0 was stated for
    every upload, the base CLIP's weights in it included)."""
    return (getattr(options, "license", None) if options else None) or UNSTATED_LICENSE


def license_line(license_id: str) -> str:
    """The card's line on its license (the base CLIP's line above says its weights keep their own), so that
    `license: other` says it was not chosen."""
    if license_id == UNSTATED_LICENSE:
        return "- **License:** none chosen by the uploader (`other`); the OmniCLIP code is Apache-2.0"
    return f"- **License:** `{license_id}`, as the uploader chose it"


def training_set_hub_id(options: Any) -> str | None:
    """The training data set's Hub id; None when it is a local path, or when the run did not train (an evaluation
    of a --model)."""
    return dataset_hub_id_or_none(getattr(options, "train_data", None) if options else None,
                                  local_paths_record(options))


# Options that only ever name a local file or folder (a recipe YAML, label lists, folders of the run): left out of
# the card whatever they hold. A relative path there would read as a Hub id where publishing runs from another folder.
LOCAL_PATH_OPTIONS = ("config", "output_dir", "labels_file", "eval_labels_file", "data_root", "eval_data_root",
                      "resume_from_checkpoint")
# Options naming a Hub data set or a local data file/folder: judged by the data loader's own rule.
DATA_OPTIONS = ("train_data", "eval_data")


def _reads_as_a_path(text: str, local_paths: dict[str, str] | None = None) -> bool:
    return "/" in text or "\\" in text or text.startswith("~") or _is_local(text, local_paths)


def _published_item(key: str, item: Any, local_paths: dict[str, str] | None = None) -> bool:
    """Whether one value of option `key` may appear in the card: no local path, Hub ids kept. Options not listed
    above (`--clip`, `--model` and any added later) are judged by their value, so a new path option cannot leak."""
    if key in LOCAL_PATH_OPTIONS:
        return False
    if key in DATA_OPTIONS:
        return dataset_hub_id_or_none(item, local_paths) is not None
    if isinstance(item, str) and _reads_as_a_path(item, local_paths):
        return hub_id_or_none(item, local_paths) is not None
    return True


def card_recipe(options: Any) -> dict[str, Any]:
    """The options the card shows as the training recipe: those set that decide the model (not
    `OPTIONS_THAT_DO_NOT_DECIDE_THE_MODEL`: a dry run's card and the upload's are the same), without local paths (Hub
    ids stay). A zero is a setting (`--mixup_alpha 0` turns mixup off) and is shown: `value in (None, False, [])`
    dropped it, since `0 == False`, and the card then read as the default."""
    recipe = {}
    local_paths = local_paths_record(options)
    for key, value in (vars(options).items() if options else []):
        if key in OPTIONS_THAT_DO_NOT_DECIDE_THE_MODEL or key == LOCAL_PATHS_KEY:
            continue
        if value is None or value is False or value == []:
            continue
        if isinstance(value, list):
            kept = [item for item in value if _published_item(key, item, local_paths)]
            if kept:
                recipe[key] = kept
        elif _published_item(key, value, local_paths):
            recipe[key] = value
    return recipe


def _results_lines(evaluation_sets: list[tuple[str | None, str, dict[str, Any]]], metrics: dict[str, Any]) -> list[str]:
    """The results table: one row per evaluation set (named here, not in the title), and their mean with several."""
    lines = ["| evaluation set | top-1 (%) | top-5 (%) |", "|---|---|---|"]
    if not evaluation_sets:
        return lines + ["| none measured | not measured | not measured |"]
    for hub_id, name, values in evaluation_sets:
        label = hub_id or f"{name} (local)"
        # Top-5 of a set of 5 classes or fewer is 100% by construction: no measurement.
        top5 = f"n/a ({class_count(values)} classes)" if top5_is_trivial(values) else _format_metric(values.get("top5"))
        lines.append(f"| {label} | {_format_metric(values.get('top1'))} | {top5} |")
    if len(evaluation_sets) > 1:
        trivial = any(top5_is_trivial(values) for _, _, values in evaluation_sets)
        top5 = "n/a (a set has 5 classes or fewer)" if trivial else _format_metric(metrics.get("top5"))
        lines.append(f"| mean ± std over the {len(evaluation_sets)} sets | {_format_metric(metrics.get('top1'))} | "
                     f"{top5} |")
    return lines


def evaluation_lines(options: Any, evaluation_sets: list[tuple[str | None, str, dict[str, Any]]]) -> list[str]:
    """How the results were measured (and a blank line), or nothing when nothing was measured: a card without eval
    sets described a multi-view evaluation under "none measured"."""
    if not evaluation_sets:
        return []
    return ["Multi-view evaluation: "
            f"{getattr(options, 'eval_num_clips', None) or '?'} temporal clips x "
            f"{getattr(options, 'eval_num_crops', None) or '?'} spatial crops, scores averaged.", ""]


def modules_sentence(config: dict[str, Any]) -> str:
    """What the saved model adds to the frozen CLIP, read from its config (a model with SPG off, as `omniclip init`
    writes, was described with a self-prompt generator)."""
    config = OmniCLIPConfig.from_dict(config)  # a field a config.json lacks reads as the model would build it
    modules = []
    if config.use_pta:
        modes = {"parallel": "parallel temporal adapters",
                 "attention_parallel": "parallel temporal-attention adapters",
                 "cascade": "temporal adapters before each layer",
                 "cascade_attention": "temporal adapters after each layer"}
        modules.append(modes[config.pta_mode])
    if config.use_spg:
        modules.append("a self-prompt generator")
    if config.use_temporal_embedding:
        modules.append("a temporal embedding")
    if config.video_head_num_layers:
        modules.append("a video head")
    if config.use_video_specific_prompts:
        modules.append("video-specific text prompts")
    if not modules:
        return "frame-averages a frozen CLIP (every OmniCLIP module is off)"
    listed = modules[0] if len(modules) == 1 else f"{', '.join(modules[:-1])} and {modules[-1]}"
    return f"adapts a frozen CLIP to video with {listed}"


def frames_per_clip(model_folder: Path, config: dict[str, Any]) -> str:
    """The frames the saved processor samples per clip, which the model is served with (the config's `num_frames`
    sizes the temporal embeddings, interpolated to other counts: a 4-frame model trained on at 8 said 4)."""
    try:
        video = json.loads((model_folder / "processor_config.json").read_text()).get("video_processor") or {}
    except (OSError, ValueError, AttributeError):
        video = {}
    if video.get("fps"):
        return f"{video['fps']} a second"
    sampled, built = video.get("num_frames") or config.get("num_frames"), config.get("num_frames")
    return f"{sampled}" + (f" (temporal embeddings built for {built}, interpolated)" if built and built != sampled else "")


def build_model_card(model_folder: Path, options: Any, metrics: dict[str, Any]) -> ModelCard:
    """A model card: metadata as `ModelCardData` (with `model-index` results from `metrics.json`), then the base
    CLIP, the recipe, the measured metrics and the limitations, naming no local path."""
    model_folder = Path(model_folder)
    config = json.loads((model_folder / "config.json").read_text())
    data = build_card_data(model_folder, options, metrics, config)
    base = data.base_model or "a local CLIP checkpoint (not published)"
    adapter_only = (model_folder / "adapter_model.safetensors").exists()
    recipe = card_recipe(options)
    repo = getattr(options, "hub_model_id", None) or "this-repo"
    # The training set only: `data.datasets` lists the evaluation sets too, and with a local training set the first
    # of them is an evaluation set (a K400 -> HMDB51 zero-shot card claimed HMDB51 training).
    trained_on = training_set_hub_id(options)
    evaluation_sets = _evaluation_sets(options, metrics)
    lines = [
        f"# OmniCLIP{f' on {trained_on}' if trained_on else ''}",
        "",
        f"OmniCLIP (Liu, Li, Yu, ECAI 2024); this model {modules_sentence(config)}. Trained with "
        "[omniclip-hf](https://pypi.org/project/omniclip-hf/).",
        "",
        f"- **Base CLIP (frozen):** `{base}`; its weights keep their own license",
        license_line(data.license),
        f"- **Weights here:** {'only the trainable OmniCLIP modules (adapter-only); the base CLIP loads first' if adapter_only else 'the full model'}",
        f"- **Frames per clip:** {frames_per_clip(model_folder, config)}; text template "
        f"`{config.get('text_template')}`",
        "",
        "## Measured results",
        "",
        *_results_lines(evaluation_sets, metrics),
        "",
        *evaluation_lines(options, evaluation_sets),
        "## Training recipe",
        "",
        "```json",
        json.dumps(recipe, indent=2, default=str),
        "```",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModel, pipeline",
        "",
        f'model = AutoModel.from_pretrained("{repo}", trust_remote_code=True)',
        f'classifier = pipeline("zero-shot-video-classification", model="{repo}", trust_remote_code=True)',
        'classifier("video.mp4", candidate_labels=["playing guitar", "doing yoga"])',
        "```",
        "",
        "The task is `zero-shot-video-classification`, run by the model's own code (`trust_remote_code=True`): "
        "transformers' built-in `video-classification` pipeline, which the card's task tag suggests, expects a "
        "classifier with fixed labels and does not load this model.",
        "",
        "## Limitations",
        "",
        "- The numbers above were measured on the evaluation sets named in the table only; they say nothing about "
        "other domains.",
        "- The frozen CLIP carries the biases of its web-scale training data; the adapters do not remove them.",
        "- Zero-shot transfer to unseen labels depends on how the label names read as English text.",
    ]
    return ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(lines) + "\n")


# Written into a dry run's folder: the next dry run may replace a folder that holds it, and no other.
DRY_RUN_MARKER = ".omniclip_dry_run"


def check_hub_model_id(hub_model_id: str) -> None:
    """huggingface_hub's own rule for repository ids, checked before training rather than at the upload."""
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(hub_model_id)
    except ValueError as error:
        raise ValueError(f"--hub_model_id {hub_model_id!r} is not a Hub repository id ({str(error).splitlines()[0]}); "
                         "use your-name/model-name.") from None


# A Hub license identifier's form (`apache-2.0`, `cc-by-nc-4.0`, `openrail++`, `llama3.1`, `other`): the Hub refuses
# a card whose `license` is not one of its identifiers, so `Apache 2.0` failed only at the upload, after the copy.
LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]*")


def check_license(license_id: str) -> None:
    """--license reads as a Hub license identifier (its form only: the Hub's list is not known offline)."""
    if not LICENSE_ID.fullmatch(license_id):
        raise ValueError(f"--license {license_id!r} is not a Hub license identifier: use one from "
                         "https://huggingface.co/docs/hub/repositories-licenses in lowercase (apache-2.0, mit, "
                         "cc-by-4.0, ...), or `other`.")


def check_adapter_base_is_on_the_hub(model_folder: Path, options: Any = None) -> None:
    """An adapter-only folder names its base CLIP (`base_clip_name_or_path`), loaded first by whoever downloads it: a
    local folder there would load on no other machine. Local by the run's `local_paths` record where `options` carry
    it (a relative `models/clip` is local from any folder), else by what exists here."""
    if not (model_folder / "adapter_model.safetensors").exists():
        return
    base = json.loads((model_folder / "config.json").read_text()).get("base_clip_name_or_path")
    if hub_id_or_none(base, local_paths_record(options)) is None:
        raise ValueError(f"{model_folder} holds only the trained adapters over the base CLIP {base!r}, a local folder "
                         "that no one who downloads it has: train with --clip set to the base's Hub id (e.g. "
                         "openai/clip-vit-base-patch16), or publish the full model: train without --adapter_only, or save this one "
                         "in full (OmniCLIPModel.from_pretrained(folder).save_pretrained(full_folder)) and publish "
                         "that with --model_dir.")


def check_is_no_file(target: Path) -> None:
    """--dry_run_dir names a folder, or one to make: a file there (or in its path) failed in the copy with "[Errno 20]
    Not a directory", naming no flag."""
    existing = next((path for path in (target, *target.parents) if path.exists()), None)
    if existing is not None and not existing.is_dir():
        what = "is a file" if existing == target else f"lies inside {existing}, a file"
        raise ValueError(f"--dry_run_dir {target} {what}, not a folder: pick a folder for the dry run's copy (a new "
                         "one, or an earlier dry run's).")


def _dry_run_target(model_folder: Path, dry_run_dir: str | Path | None) -> Path:
    """The folder a dry run writes: never the model folder or one holding it, and an existing one only when an earlier
    dry run wrote it (it is replaced whole)."""
    target = Path(dry_run_dir or model_folder.parent / "hub_upload")
    check_is_no_file(target)
    if target.resolve() == model_folder.resolve() or model_folder.resolve().is_relative_to(target.resolve()):
        raise ValueError(f"--dry_run_dir {target} would replace the model folder {model_folder} it copies: pick "
                         "another folder.")
    if target.resolve().is_relative_to(model_folder.resolve()):  # each dry run would copy the earlier ones again
        raise ValueError(f"--dry_run_dir {target} is inside the model folder {model_folder} it copies: pick a folder "
                         "outside it.")
    if target.exists() and any(target.iterdir()) and not (target / DRY_RUN_MARKER).exists():
        raise ValueError(f"--dry_run_dir {target} exists and is not an earlier dry run's folder: pick another "
                         "folder, or move that one away.")
    return target


def _link_or_copy(source: str, destination: str) -> None:
    """A hard link (an upload's staged copy of a large model costs nothing), a copy across file systems."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def stage_with_card(model_folder: Path, destination: Path, card: ModelCard, link: bool = False) -> Path:
    """`destination`: the model folder's files, its own README.md left out, and the card as README.md. The card is
    never written into the model folder: a README.md there may be the user's own (a dry run replaced it)."""
    def without_its_readme(directory: str, names: list[str]) -> list[str]:
        return ["README.md"] if Path(directory) == model_folder and "README.md" in names else []

    shutil.copytree(model_folder, destination, ignore=without_its_readme,
                    copy_function=_link_or_copy if link else shutil.copy2)
    card.save(destination / "README.md")
    without_a_local_base_path(destination)
    return destination


def without_a_local_base_path(folder: Path) -> None:
    """A full model's uploaded config names no local base CLIP folder: a saved model names a local base by its
    absolute path (`/home/<user>/...`), which no one else has and which the card is careful never to show. Left as it
    is for a Hub id, and for an adapter-only folder, whose base is loaded first (`check_adapter_base_is_on_the_hub`
    refuses a local one). The file is written anew, never through a hard link to the model folder's."""
    if (folder / "adapter_model.safetensors").exists():
        return
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    base = config.get("base_clip_name_or_path")
    if base is None or hub_id_or_none(base) is not None:
        return
    config["base_clip_name_or_path"] = None
    config_path.unlink()  # a hard link to the model folder's config.json: not written through
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


@contextmanager
def _staged_upload(model_folder: Path, card: ModelCard) -> Iterator[Path]:
    """The folder an upload sends, removed afterwards: hard links to the model's files beside it (the same file
    system), in the system's temporary folder where that cannot be written."""
    try:
        staging = tempfile.TemporaryDirectory(prefix=".omniclip-upload-", dir=model_folder.parent)
    except OSError:
        staging = tempfile.TemporaryDirectory(prefix="omniclip-upload-")
    with staging as folder:
        yield stage_with_card(model_folder, Path(folder) / model_folder.name, card, link=True)


def publish_model(model_folder: str | Path, options: Any, metrics: dict[str, Any], dry_run: bool,
                  dry_run_dir: str | Path | None = None, private: bool = False) -> Path | str:
    """Uploads the folder with its model card as README.md, or copies exactly what would be uploaded to `dry_run_dir`.
    The card goes into the copy (or the upload's staged copy), never into `model_folder`."""
    model_folder = Path(model_folder)
    if not (model_folder / "config.json").exists():
        raise FileNotFoundError(f"{model_folder}: not a saved OmniCLIP folder (no config.json).")
    check_hub_model_id(options.hub_model_id)
    check_adapter_base_is_on_the_hub(model_folder, options)
    target = _dry_run_target(model_folder, dry_run_dir) if dry_run else None
    card = build_model_card(model_folder, options, metrics)
    if dry_run:
        def copy(partial: Path) -> None:
            stage_with_card(model_folder, partial, card)
            (partial / DRY_RUN_MARKER).write_text("written by a dry run of publish_model; the next one replaces it\n")

        return write_folder_atomically(target, copy)
    with _staged_upload(model_folder, card) as staged:
        return upload(staged, options.hub_model_id, private, name=model_folder)


def _hub_client_errors() -> tuple[type[BaseException], ...]:
    """What an upload raises when it fails: huggingface_hub's own errors (HTTP status, offline mode, no token) are
    OSErrors; a connection that fails below HTTP (no network, DNS, timeout) raises the HTTP client's own error,
    which is not. Only a client huggingface_hub has imported can have raised, so none is imported here."""
    errors: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx"):
        client_error = getattr(sys.modules.get(name), "HTTPError", None)
        if isinstance(client_error, type) and issubclass(client_error, BaseException):
            errors.append(client_error)
    return tuple(errors)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def upload(model_folder: Path, repo_id: str, private: bool = False, name: Path | None = None) -> str:
    """Creates the repository (if new) and uploads the folder in one commit; a failure is one OSError line (the
    client's own message runs over several lines, or is a traceback for a refused connection) naming `name` (the
    model folder a staged `model_folder` copies), else the folder."""
    from huggingface_hub import create_repo, upload_folder

    try:
        create_repo(repo_id, exist_ok=True, private=private)
        upload_folder(repo_id=repo_id, folder_path=str(model_folder), commit_message="Upload OmniCLIP")
    except _hub_client_errors() as error:
        raise OSError(f"uploading {name or model_folder} to the Hub repository {repo_id} failed "
                      f"({_first_line(error)}); the upload made no commit. Check the network and your token (`hf auth "
                      "login`), then run it again (examples/push_to_hub.py --run_dir ...), or try it with --dry_run."
                      ) from error
    return repo_id


# ------------------------------------------------------------------------------------- a training run's record
METRICS_NAME = "metrics.json"
# Options that change neither the trained weights nor the files published: where the run wrote, how it logged,
# checkpointed and read its data (the same videos either way), how it was published, and how it was evaluated
# (metrics.json's own options say how its numbers were measured). A difference in any other option means
# metrics.json and training_options.json were written by different runs.
OPTIONS_THAT_DO_NOT_DECIDE_THE_MODEL = frozenset({
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "checkpointing_steps", "checkpoints_total_limit",
    "logging_steps", "report_to", "num_workers", "color_augmentation_on", "gradient_checkpointing", "strict",
    "config", "push_to_hub", "hub_model_id", "dry_run", "license",
    "eval_data", "eval_labels_file", "eval_data_root", "eval_split", "eval_batch_size", "eval_num_clips",
    "eval_num_crops",
})
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false",
               type(None): "null"}
_REWRITE = ("rerun examples/train.py into this folder to write it again, or publish the model alone with "
            "--model_dir")


def read_json_object(path: Path, remedy: str = _REWRITE) -> dict[str, Any]:
    """The JSON object in `path`; a file cut short, not UTF-8, or holding anything but an object is one ValueError
    line naming it (json's own message names no file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a JSON file (not UTF-8 text): {remedy}.") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}; cut "
                         f"short or edited?): {remedy}.") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds {_JSON_KINDS.get(type(data), type(data).__name__)}, not the JSON object "
                         f"examples/train.py writes: {remedy}.")
    return data


def check_metrics(metrics: dict[str, Any], source: Path) -> None:
    """Every accuracy the card shows is a number (or a mean and std): anything else was shown as "not measured"."""
    places = [(key, metrics.get(key)) for key in ("top1", "top5") if key in metrics]
    eval_sets = metrics.get("eval_sets", {})
    if not isinstance(eval_sets, dict):
        raise ValueError(f"{source}: eval_sets is {_JSON_KINDS.get(type(eval_sets), 'not an object')}, not an object "
                         f"of eval set: metrics: {_REWRITE}.")
    for name, values in eval_sets.items():
        values = values if isinstance(values, dict) else {}
        places += [(f"eval_sets.{name}.{key}", values.get(key)) for key in ("top1", "top5")]
    for place, value in places:
        if not _is_metric(value):
            raise ValueError(f"{source}: {place} is {json.dumps(value)[:60]}, not an accuracy (a fraction "
                             f"from 0 to 1): the card cannot show it; {_REWRITE}.")


def _differences(measured: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    names = sorted((set(measured) | set(recorded)) - OPTIONS_THAT_DO_NOT_DECIDE_THE_MODEL)
    return [f"--{name} {json.dumps(measured.get(name))} in {METRICS_NAME}, {json.dumps(recorded.get(name))} in "
            f"{TRAINING_OPTIONS_NAME}" for name in names if measured.get(name) != recorded.get(name)]


def check_same_run(measured: dict[str, Any], recorded: dict[str, Any], metrics_path: Path, options_path: Path) -> None:
    """Refuses metrics measured by another run than the one whose options (and so, most likely, `model/`) the folder
    holds: a run that fails after writing training_options.json (or its model) leaves the earlier run's metrics."""
    changed = _differences(measured, recorded)
    if changed:
        more = f"; and {len(changed) - 2} more" if len(changed) > 2 else ""
        raise ValueError(f"{metrics_path} and {options_path} were written by different runs ({'; '.join(changed[:2])}"
                         f"{more}): model/ may be either run's. Rerun examples/train.py into this folder to measure "
                         "the model it holds, or publish the model alone with --model_dir.")


def training_directory(run_dir: Path, output_dir: Any) -> Path | None:
    """The folder a run of an earlier version (no `local_paths` record) trained in, read off its relative
    --output_dir: `runs/x` for the folder /home/me/runs/x was given in /home/me. None where that cannot tell (an
    absolute --output_dir, `..` in it, or a run folder moved since)."""
    if not isinstance(output_dir, str) or not output_dir or Path(output_dir).is_absolute():
        return None
    given = Path(output_dir).parts
    folder = Path(os.path.abspath(run_dir))
    if ".." in given or (given and folder.parts[-len(given):] != given):
        return None
    return Path(*folder.parts[:len(folder.parts) - len(given)])


def _check_local_paths(record: Any, options_path: Path) -> dict[str, str]:
    if not isinstance(record, dict) or not all(isinstance(key, str) and isinstance(value, str)
                                               for key, value in record.items()):
        raise ValueError(f"{options_path}: {LOCAL_PATHS_KEY} is {json.dumps(record)[:60]}, not the object of local "
                         f"paths (option value: absolute path) examples/train.py writes: {_REWRITE}.")
    return record


def read_run_record(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """`(metrics, options)` of an examples/train.py output folder, for the card: the options are the ones
    metrics.json recorded (those its numbers were measured with), checked against training_options.json. Either
    file may be missing (a run without evaluation, an earlier version); a damaged one is one ValueError line.

    The options carry training_options.json's `local_paths` record (which values named local files or folders where
    the run trained): the card then says the same from whatever folder publishing runs in. A run of an earlier
    version has none; its record is rebuilt in the folder its relative --output_dir says it trained in, where that
    can tell (else what exists in the current folder decides, as before)."""
    metrics_path, options_path = run_dir / METRICS_NAME, run_dir / TRAINING_OPTIONS_NAME
    metrics = read_json_object(metrics_path) if metrics_path.is_file() else {}
    recorded = read_json_object(options_path) if options_path.is_file() else None
    local_paths = None
    if recorded is not None and LOCAL_PATHS_KEY in recorded:  # not an option: metrics.json's options have none
        local_paths = RecordedLocalPaths(_check_local_paths(recorded.pop(LOCAL_PATHS_KEY), options_path))
    check_metrics(metrics, metrics_path)
    measured = metrics.get("options")
    if measured is not None and not isinstance(measured, dict):
        raise ValueError(f"{metrics_path}: options is {_JSON_KINDS.get(type(measured), type(measured).__name__)}, not "
                         f"the object of options examples/train.py writes: {_REWRITE}.")
    if measured is not None and recorded is not None:
        check_same_run(measured, recorded, metrics_path, options_path)
    options = dict(measured if measured is not None else recorded or {})
    options.pop(LOCAL_PATHS_KEY, None)  # only training_options.json's own is the run's
    if local_paths is None:
        trained_in = training_directory(run_dir, options.get("output_dir"))
        local_paths = local_paths_of(options, trained_in) if trained_in is not None else None
    if local_paths is not None:
        options[LOCAL_PATHS_KEY] = local_paths
    return metrics, options


__all__ = [
    "LOCAL_PATHS_KEY",
    "RecordedLocalPaths",
    "build_card_data",
    "build_model_card",
    "card_recipe",
    "check_hub_model_id",
    "check_license",
    "check_metrics",
    "check_same_run",
    "dataset_hub_id_or_none",
    "hub_id_or_none",
    "local_paths_of",
    "local_paths_record",
    "publish_model",
    "read_json_object",
    "read_run_record",
    "stage_with_card",
    "upload",
]
