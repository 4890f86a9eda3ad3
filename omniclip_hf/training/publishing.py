# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Publishing a trained OmniCLIP folder to the Hugging Face Hub, with a model card, or to a dry-run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .checkpoints import write_folder_atomically


def _format_metric(value: Any) -> str:
    if isinstance(value, dict) and "mean" in value:
        return f"{100 * value['mean']:.2f} ± {100 * value['std']:.2f}"
    if isinstance(value, (int, float)):
        return f"{100 * value:.2f}"
    return "not measured"


def hub_id_or_none(name: Any) -> str | None:
    """`name` when it reads as a Hub id (`owner/name`, not an existing local path), else `None`: the card names no
    local path (base CLIP folders and data folders stay on the machine that trained)."""
    if not isinstance(name, str) or name.count("/") != 1 or name.startswith((".", "/", "~")) or Path(name).exists():
        return None
    return name


def _metric_value(value: Any) -> float | None:
    if isinstance(value, dict) and "mean" in value:
        return float(value["mean"])
    return float(value) if isinstance(value, (int, float)) else None


def _evaluation_sets(options: Any, metrics: dict[str, Any]) -> list[tuple[str | None, str, dict[str, Any]]]:
    """`(hub dataset id or None, display name, metrics)` for each evaluated set in `metrics.json`."""
    eval_data = list(getattr(options, "eval_data", None) or []) if options else []
    if "eval_sets" in metrics:
        sets = []
        for name, values in metrics["eval_sets"].items():
            source = next((item for item in eval_data if Path(str(item)).stem == name), None)
            sets.append((hub_id_or_none(source), name, values))
        return sets
    if "top1" in metrics:
        source = eval_data[0] if len(eval_data) == 1 else None
        hub_id = hub_id_or_none(source)
        return [(hub_id, hub_id or "evaluation set", metrics)]
    return []


def build_card_data(model_folder: Path, options: Any, metrics: dict[str, Any],
                    config: dict[str, Any] | None = None) -> ModelCardData:
    """The card's metadata: base model, datasets, license, pipeline tag, tags and `model-index` results
    (`config`: the folder's config.json, read here when not given)."""
    if config is None:
        config = json.loads((Path(model_folder) / "config.json").read_text())
    evaluation_sets = _evaluation_sets(options, metrics)
    model_name = getattr(options, "hub_model_id", None) if options else None
    train_data = hub_id_or_none(getattr(options, "train_data", None) if options else None)
    eval_results = []
    for hub_id, name, values in evaluation_sets:
        for key, metric_name in (("top1", "top-1 accuracy"), ("top5", "top-5 accuracy")):
            value = _metric_value(values.get(key))
            if value is not None:
                eval_results.append(EvalResult(
                    task_type="video-classification",
                    task_name="Video classification",
                    dataset_type=hub_id or name,
                    dataset_name=name,
                    metric_type="accuracy",
                    metric_name=metric_name,
                    metric_value=value,
                ))
    datasets = [name for name in [train_data, *(hub_id for hub_id, _, _ in evaluation_sets)] if name]
    return ModelCardData(
        model_name=(model_name or "OmniCLIP").split("/")[-1],
        base_model=hub_id_or_none(config.get("base_clip_name_or_path")),
        datasets=list(dict.fromkeys(datasets)) or None,
        license=(getattr(options, "license", None) if options else None) or "apache-2.0",
        library_name="transformers",
        pipeline_tag="video-classification",
        tags=["omniclip", "clip", "video-classification", "zero-shot-video-classification", "omniclip-hf"],
        eval_results=eval_results or None,
    )


def build_model_card(model_folder: Path, options: Any, metrics: dict[str, Any]) -> ModelCard:
    """A model card: metadata as `ModelCardData` (with `model-index` results from `metrics.json`), then the base
    CLIP, the recipe, the measured metrics and the limitations, naming no local path."""
    model_folder = Path(model_folder)
    config = json.loads((model_folder / "config.json").read_text())
    data = build_card_data(model_folder, options, metrics, config)
    base = data.base_model or "a local CLIP checkpoint (not published)"
    adapter_only = (model_folder / "adapter_model.safetensors").exists()
    recipe = {key: value for key, value in vars(options).items() if value not in (None, False, [])} if options else {}
    for key in ("train_data", "eval_data", "data_root", "eval_data_root", "clip", "output_dir", "labels_file",
                "eval_labels_file", "resume_from_checkpoint"):
        if key in recipe:  # local paths stay out of the card; Hub ids are named in the metadata
            value = recipe[key]
            values = value if isinstance(value, list) else [value]
            kept = [item for item in values if hub_id_or_none(item)]
            if kept:
                recipe[key] = kept if isinstance(value, list) else kept[0]
            else:
                recipe.pop(key)
    repo = getattr(options, "hub_model_id", None) or "this-repo"
    trained_on = data.datasets[0] if data.datasets else None
    lines = [
        f"# OmniCLIP{f' on {trained_on}' if trained_on else ''}",
        "",
        "OmniCLIP (Liu, Li, Yu, ECAI 2024) adapts a frozen CLIP to video with parallel temporal adapters and a "
        "self-prompt generator. Trained with [omniclip-hf](https://pypi.org/project/omniclip-hf/).",
        "",
        f"- **Base CLIP (frozen):** `{base}`; its weights keep their own license",
        f"- **Weights here:** {'only the trainable OmniCLIP modules (adapter-only); the base CLIP loads first' if adapter_only else 'the full model'}",
        f"- **Frames per clip:** {config.get('num_frames')}; text template `{config.get('text_template')}`",
        "",
        "## Measured results",
        "",
        "| metric | value (%) |",
        "|---|---|",
        f"| top-1 | {_format_metric(metrics.get('top1'))} |",
        f"| top-5 | {_format_metric(metrics.get('top5'))} |",
        "",
        "Multi-view evaluation: "
        f"{recipe.get('eval_num_clips', '?')} temporal clips x {recipe.get('eval_num_crops', '?')} spatial crops, "
        "scores averaged.",
        "",
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
        "```",
        "",
        "## Limitations",
        "",
        "- The numbers above were measured on the evaluation data named in the recipe only; they say nothing about "
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


def check_adapter_base_is_on_the_hub(model_folder: Path) -> None:
    """An adapter-only folder names its base CLIP (`base_clip_name_or_path`), loaded first by whoever downloads it: a
    local folder there would load on no other machine."""
    if not (model_folder / "adapter_model.safetensors").exists():
        return
    base = json.loads((model_folder / "config.json").read_text()).get("base_clip_name_or_path")
    if hub_id_or_none(base) is None:
        raise ValueError(f"{model_folder} holds only the trained adapters over the base CLIP {base!r}, a local folder "
                         "that no one who downloads it has: train with --clip set to the base's Hub id (e.g. "
                         "openai/clip-vit-base-patch16), or publish the full model (without --adapter_only).")


def _dry_run_target(model_folder: Path, dry_run_dir: str | Path | None) -> Path:
    """The folder a dry run writes: never the model folder or one holding it, and an existing one only when an earlier
    dry run wrote it (it is replaced whole)."""
    target = Path(dry_run_dir or model_folder.parent / "hub_upload")
    if target.resolve() == model_folder.resolve() or model_folder.resolve().is_relative_to(target.resolve()):
        raise ValueError(f"--dry_run_dir {target} would replace the model folder {model_folder} it copies: pick "
                         "another folder.")
    if target.exists() and any(target.iterdir()) and not (target / DRY_RUN_MARKER).exists():
        raise ValueError(f"--dry_run_dir {target} exists and is not an earlier dry run's folder: pick another "
                         "folder, or move that one away.")
    return target


def publish_model(model_folder: str | Path, options: Any, metrics: dict[str, Any], dry_run: bool,
                  dry_run_dir: str | Path | None = None, private: bool = False) -> Path | str:
    """Writes the model card into the folder, then uploads the folder, or copies exactly that to `dry_run_dir`."""
    model_folder = Path(model_folder)
    if not (model_folder / "config.json").exists():
        raise FileNotFoundError(f"{model_folder}: not a saved OmniCLIP folder (no config.json).")
    check_hub_model_id(options.hub_model_id)
    check_adapter_base_is_on_the_hub(model_folder)
    target = _dry_run_target(model_folder, dry_run_dir) if dry_run else None
    build_model_card(model_folder, options, metrics).save(model_folder / "README.md")
    if dry_run:
        def copy(partial: Path) -> None:
            shutil.copytree(model_folder, partial)
            (partial / DRY_RUN_MARKER).write_text("written by a dry run of publish_model; the next one replaces it\n")

        return write_folder_atomically(target, copy)
    from huggingface_hub import create_repo, upload_folder

    repo_id = options.hub_model_id
    create_repo(repo_id, exist_ok=True, private=private)
    upload_folder(repo_id=repo_id, folder_path=str(model_folder), commit_message="Upload OmniCLIP")
    return repo_id


__all__ = ["build_card_data", "build_model_card", "check_hub_model_id", "hub_id_or_none", "publish_model"]
