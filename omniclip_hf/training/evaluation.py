# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Evaluation of video classification: top-1/top-5, per-class accuracy, confusion matrix, multi-view scores."""

from __future__ import annotations

import contextlib

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from accelerate.utils import gather_object
from tqdm.auto import tqdm

from .data import (
    VideoClassificationData,
    VideoClipDataset,
    _name_lookup,
    _normalise_name,
    blank_clip,
    collate_video_batch,
)
from .loader import loader_settings
from ..processing_omniclip import labels_to_prompts, tokenize_label_prompts


logger = logging.getLogger(__name__)

# OmniCLIP with every module off: exactly CLIP's frame-averaged features (tested), the baseline everywhere.
FRAME_AVERAGE = dict(use_pta=False, use_spg=False, use_temporal_embedding=False, video_head_num_layers=0,
                     use_video_specific_prompts=False)


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Share of rows whose label is among the k highest logits (k is capped at the number of classes)."""
    k = min(k, logits.shape[1])
    hits = (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1)
    return hits.float().mean().item()


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """`matrix[true, predicted]` counts."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes).numpy()


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> dict[str, Any]:
    """Top-1, top-5, per-class accuracy (classes without examples are left out) and the confusion matrix."""
    logits, labels = logits.float().cpu(), labels.cpu()
    matrix = confusion_matrix(logits.argmax(dim=1), labels, len(class_names))
    support = matrix.sum(axis=1)
    per_class = {name: float(matrix[i, i] / support[i]) for i, name in enumerate(class_names) if support[i]}
    return {
        # From the argmax the confusion matrix counts: topk breaks ties between equal logits its own way, and the
        # top-1 then disagreed with the matrix's diagonal.
        "top1": (logits.argmax(dim=1) == labels).float().mean().item(),
        "top5": top_k_accuracy(logits, labels, 5),
        "mean_class_accuracy": float(np.mean(list(per_class.values()))) if per_class else float("nan"),
        "num_videos": int(labels.numel()),
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def trained_class_names(config, model: str) -> list[str] | None:
    """The classes the model was trained on, in index order (`id2label`, which examples/train.py writes), or None
    for a model never trained: transformers' placeholder `LABEL_0`, `LABEL_1`, ... or no mapping at all."""
    id2label = {int(index): name for index, name in (config.id2label or {}).items()}
    if not id2label or all(name == f"LABEL_{index}" for index, name in id2label.items()):
        return None
    if sorted(id2label) != list(range(len(id2label))):
        raise ValueError(f"{model}/config.json: id2label's indices are {sorted(id2label)[:10]}, not 0 to "
                         f"{len(id2label) - 1}; fix them, or pass --labels_file with the class names in index order.")
    names = [id2label[index] for index in range(len(id2label))]
    try:
        _name_lookup(names)
    except ValueError as error:
        raise ValueError(f"{model}/config.json id2label: {error}") from None
    return names


def warn_if_classes_differ_from_training(labels_file: str, class_names: Sequence[str], trained: Sequence[str],
                                         argument: str = "--labels_file") -> None:
    """One warning line when a labels file (`argument`, e.g. --labels_file or --eval_labels_file) is not the model's
    trained classes in their order. Names are what is scored, so another set is legitimate zero-shot use; but class
    indices in the eval file (`path index` rows, as examples/prepare_data.py writes them) are read in this file's
    order: a reordered copy silently moves every ground-truth label to another class."""
    given, known = [_normalise_name(name) for name in class_names], [_normalise_name(name) for name in trained]
    if given == known:
        return
    if sorted(given) == sorted(known):
        position = next(i for i, (mine, theirs) in enumerate(zip(given, known)) if mine != theirs)
        logger.warning(
            "%s %s lists the %d classes the model was trained on in another order (class %d is %r there, %r in "
            "training): scores go by class name, so name-labelled eval rows are unaffected, but class indices in the "
            "eval file (`path index` rows) are read in this file's order; make sure the eval file was written with "
            "it, or leave %s out to use the training order.",
            argument, labels_file, len(known), position, class_names[position], trained[position], argument)
        return
    new = [name for name, key in zip(class_names, given) if key not in known]
    absent = [name for name, key in zip(trained, known) if key not in given]
    differences = [f"{len(new)} the model was not trained on, e.g. {new[:3]}" if new else "",
                   f"{len(absent)} of the trained classes left out, e.g. {absent[:3]}" if absent else ""]
    logger.warning(
        "%s %s holds other classes than the %d the model was trained on (%s): evaluating zero-shot over this file's "
        "names (OmniCLIP scores by class name); class indices in the eval file (`path index` rows) are read in this "
        "file's order.", argument, labels_file, len(known), "; ".join(filter(None, differences)))


def mean_and_std(values: Sequence[float]) -> dict[str, float]:
    """The zero-shot protocol's summary over several test splits (population std, as the papers report)."""
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std())}


def write_confusion_matrix_png(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path) -> None:
    """Row-normalised confusion matrix as a PNG (labels shown up to 60 classes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.25 * len(class_names), 30)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if len(class_names) <= 60:
        axes.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
        axes.set_yticks(range(len(class_names)), class_names, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


@torch.no_grad()
def class_text_embeddings(model, tokenizer, class_names: Sequence[str], template: str | None = None) -> torch.Tensor:
    """Encodes `template.format(natural name)` for every class once with the frozen text encoder; a prompt longer
    than the text model's positions is truncated with a warning naming its class (`tokenize_label_prompts`)."""
    template = template or model.config.text_template
    prompts = labels_to_prompts(list(class_names), template)
    tokens, full_ids = tokenize_label_prompts(tokenizer, class_names, prompts,
                                              model.config.text_config.max_position_embeddings)
    check_distinct_class_prompts(class_names, template, tokens, full_ids)
    device = next(model.parameters()).device
    tokens = {key: value.to(device) for key, value in tokens.items()}
    return model.get_text_features(**tokens).pooler_output


def check_distinct_class_prompts(class_names: Sequence[str], template: str, tokens,
                                 full_input_ids: Sequence[Sequence[int]] | None = None) -> None:
    """Class names whose prompts CLIP reads as the same tokens ("moving up,down" and "moving up , down", or two long
    names cut to the same 77 tokens) would get one text embedding, so the same score: the pipeline refuses them
    (`check_distinct_prompts`), and so must evaluation, where one of them could otherwise never be predicted."""
    from ..pipeline_omniclip import check_distinct_prompts  # the pipeline module loads transformers' pipelines

    read = [ids[mask.bool()].tolist() for ids, mask in zip(tokens["input_ids"], tokens["attention_mask"])]
    check_distinct_prompts(tuple(class_names), template, read,
                           subject="the class names (labels file, class folders or label column) have",
                           full_input_ids=full_input_ids)


@torch.no_grad()
def predict(
    model,
    video_processor,
    data: VideoClassificationData,
    text_embeds: torch.Tensor,
    accelerator=None,
    batch_size: int = 8,
    num_workers: int = 0,
    num_temporal_clips: int = 1,
    num_spatial_crops: int = 1,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Logits `(N, C)` (averaged over views) and labels `(N,)` for a split; failed videos are skipped and listed."""
    dataset = VideoClipDataset(
        data, video_processor, train=False,
        num_temporal_clips=num_temporal_clips, num_spatial_crops=num_spatial_crops,
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_video_batch,
        **loader_settings(num_workers, text_embeds.device),  # where the logits are computed
    )
    if accelerator is not None:
        loader = accelerator.prepare(loader)
    model.eval()
    all_logits, all_labels, failures = [], [], []
    is_main = accelerator is None or accelerator.is_main_process
    for batch in tqdm(loader, desc=f"evaluating {Path(str(data.source)).name}", disable=not (progress and is_main)):
        failures += zip(batch["error_indices"], batch["errors"])
        logits, labels = batch_logits(model, batch, text_embeds, accelerator)
        if accelerator is not None:
            # Every process gathers every batch, failed videos as rows labelled -1: a process whose videos failed
            # must not skip or shorten a collective the others are in (gloo aborts; NCCL may hang or mix rows up).
            logits, labels = accelerator.gather_for_metrics((logits, labels))
        decoded = labels >= 0
        all_logits.append(logits[decoded].cpu())
        all_labels.append(labels[decoded].cpu())
    if accelerator is not None and accelerator.num_processes > 1:
        failures = gather_object(failures)
    errors = failed_video_messages(failures)
    logits, labels = torch.cat(all_logits), torch.cat(all_labels)
    if not len(labels):
        first = f"; first: {' '.join(str(errors[0]).split())}" if errors else ""
        raise ValueError(f"{data.source}: no video could be evaluated ({len(errors)} failed to decode{first}); "
                         "check that the set's videos are readable.")
    if errors and is_main:
        warn_about_failed_videos(errors, len(data), data.source)
    return logits, labels, errors


def failed_video_messages(failures: Sequence[tuple[int, str]]) -> list[str]:
    """The messages of `(dataset index, message)` failures, once per sample and in dataset order. By index, not by
    text: Accelerate's last batches repeat the first samples (same index), while two different samples can fail with
    the same message (two empty byte cells: `<bytes>: the video is empty`) and must both be counted."""
    return [message for _, message in sorted(dict(failures).items())]


def warn_about_failed_videos(errors: Sequence[str], num_videos: int, source: Any) -> None:
    """One console line when videos of an evaluation set failed to decode: they are left out of every metric, and
    `failed_videos` in metrics.json is not where anyone looks first (a top-1 over fewer videos than the set holds)."""
    logger.warning("%d of the %d videos of %s could not be decoded and are left out of the metrics (first: %s); "
                   "metrics.json lists them all under failed_videos.", len(errors), num_videos, source,
                   " ".join(str(errors[0]).split()))


def batch_logits(model, batch: dict[str, Any], text_embeds: torch.Tensor, accelerator=None):
    """`(items, C)` float32 logits and `(items,)` labels for every item the loader gave, in its order: a video that
    failed to decode gets a row of NaN and the label -1."""
    device = text_embeds.device
    decoded = batch["decoded"].to(device)
    logits = torch.full((len(decoded), text_embeds.shape[0]), float("nan"), device=device)
    labels = torch.full((len(decoded),), -1, dtype=torch.long, device=device)
    if "pixel_values_videos" in batch:
        videos = batch["pixel_values_videos"]
    elif accelerator is not None and accelerator.num_processes > 1:  # the others' forwards wait for this one's
        videos = blank_clip(accelerator.unwrap_model(model).config, device)
    else:
        return logits, labels
    videos = videos.to(device, dtype=next(model.parameters()).dtype)
    # See examples/train.py: Accelerate's FSDP2 path wraps no autocast around forward.
    with accelerator.autocast() if accelerator is not None else contextlib.nullcontext():
        outputs = model(text_embeds=text_embeds, pixel_values_videos=videos).logits_per_video.float()
    if "pixel_values_videos" in batch:
        logits[decoded] = outputs
        labels[decoded] = batch["labels"].to(device)
    return logits, labels


def eval_set_names(sources: Sequence[Any]) -> list[str]:
    """Each eval set's name in metrics.json, its confusion matrix's file and the model card: "eval" for one set,
    else its file or folder name with as many parent folders as tell the sets apart (`split1/test.csv`,
    `split2/test.csv` give `split1_test`, `split2_test`: a zero-shot layout whose sets were all named `test`, the
    last one's results replacing the others'), with the file's suffix when only it differs (`data/test`,
    `data/test.csv` give `test`, `test_csv`), numbered when nothing else tells them apart (one set given twice)."""
    if len(sources) == 1:
        return ["eval"]
    paths = [Path(str(source)) for source in sources]
    if len(set(paths)) == len(paths):
        for keep_suffix in (False, True):
            for depth in range(1, max(len(path.parts) for path in paths) + 1):
                names = [_eval_set_name(path, depth, keep_suffix) for path in paths]
                if len(set(names)) == len(names):
                    return names
    # Equal names would share one key in metrics.json: one set's results would silently replace another's.
    return [f"{path.stem}_{index}" for index, path in enumerate(paths, 1)]


def _eval_set_name(path: Path, depth: int, keep_suffix: bool) -> str:
    """`path`'s name with its `depth - 1` nearest parent folders, joined by `_` (`.` too when the suffix is kept)."""
    parents = path.parent.parts[max(0, len(path.parent.parts) - depth + 1):]
    return "_".join([*parents, path.name.replace(".", "_") if keep_suffix else path.stem])


def write_metrics(metrics: dict[str, Any], path: str | Path) -> None:
    def clean(value):
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    # Written beside and renamed: a kill or a full disk mid-write leaves the earlier metrics.json, never half of one.
    path = Path(path)
    partial = path.with_name(f".partial-{path.name}")
    partial.write_text(json.dumps(clean(metrics), indent=2))
    os.replace(partial, path)


__all__ = [
    "FRAME_AVERAGE",
    "batch_logits",
    "check_distinct_class_prompts",
    "class_text_embeddings",
    "classification_metrics",
    "confusion_matrix",
    "eval_set_names",
    "failed_video_messages",
    "mean_and_std",
    "predict",
    "top_k_accuracy",
    "trained_class_names",
    "warn_about_failed_videos",
    "warn_if_classes_differ_from_training",
    "write_confusion_matrix_png",
    "write_metrics",
]
