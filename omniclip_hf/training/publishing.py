# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Publishing a trained OmniCLIP folder to the Hugging Face Hub, with a model card, or to a dry-run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData


def _format_metric(value: Any) -> str:
    if isinstance(value, dict) and "mean" in value:
        return f"{100 * value['mean']:.2f} ± {100 * value['std']:.2f}"
    if isinstance(value, (int, float)):
        return f"{100 * value:.2f}"
    return "not measured"


def build_model_card(model_folder: Path, options: Any, metrics: dict[str, Any]) -> ModelCard:
    """A model card stating the base CLIP, the recipe, the measured metrics and the limitations."""
    config = json.loads((model_folder / "config.json").read_text())
    base = config.get("base_clip_name_or_path") or "unknown CLIP checkpoint"
    adapter_only = (model_folder / "adapter_model.safetensors").exists()
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="video-classification",
        tags=["omniclip", "clip", "video-classification", "zero-shot-video-classification", "omniclip-hf"],
        base_model=base if "/" in base and not Path(base).exists() else None,
    )
    recipe = {key: value for key, value in vars(options).items() if value not in (None, False, [])} if options else {}
    lines = [
        f"# OmniCLIP on {Path(str(recipe.get('train_data', 'video data'))).name}",
        "",
        "OmniCLIP (Liu, Li, Yu, ECAI 2024) adapts a frozen CLIP to video with parallel temporal adapters and a "
        "self-prompt generator. Trained with [omniclip-hf](https://pypi.org/project/omniclip-hf/).",
        "",
        f"- **Base CLIP (frozen):** `{base}`",
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
        f'model = AutoModel.from_pretrained("{getattr(options, "hub_model_id", None) or "this-repo"}", trust_remote_code=True)',
        "# or, with `pip install omniclip-hf` and `import omniclip_hf`:",
        f'# classifier = pipeline("zero-shot-video-classification", model="{getattr(options, "hub_model_id", None) or "this-repo"}")',
        "```",
        "",
        "## Limitations",
        "",
        "- The numbers above were measured on the evaluation data named in the recipe only; they say nothing about "
        "other domains.",
        "- The frozen CLIP carries the biases of its web-scale training data; the adapters do not remove them.",
        "- Zero-shot transfer to unseen labels depends on how the label names read as English text.",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")


def publish_model(model_folder: str | Path, options: Any, metrics: dict[str, Any], dry_run: bool,
                  dry_run_dir: str | Path | None = None, private: bool = False) -> Path | str:
    """Writes the model card into the folder, then uploads the folder, or copies exactly that to `dry_run_dir`."""
    model_folder = Path(model_folder)
    if not (model_folder / "config.json").exists():
        raise FileNotFoundError(f"{model_folder}: not a saved OmniCLIP folder (no config.json).")
    build_model_card(model_folder, options, metrics).save(model_folder / "README.md")
    if dry_run:
        target = Path(dry_run_dir or model_folder.parent / "hub_upload")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model_folder, target)
        return target
    from huggingface_hub import create_repo, upload_folder

    repo_id = options.hub_model_id
    create_repo(repo_id, exist_ok=True, private=private)
    upload_folder(repo_id=repo_id, folder_path=str(model_folder), commit_message="Upload OmniCLIP")
    return repo_id


__all__ = ["build_model_card", "publish_model"]
