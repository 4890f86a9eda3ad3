# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""A data collator for `transformers.Trainer`: video batches plus the class texts, tokenized once.

OmniCLIP scores each video against every class text, so every batch carries the same tokenized class prompts;
they are tokenized when the collator is made and reused by every batch.

```python
from transformers import Trainer, TrainingArguments
from omniclip_hf.training.trainer_collator import ClassTextCollator, trainer_optimizer

collator = ClassTextCollator.from_processor(processor, class_names)  # class texts tokenized here, once
args = TrainingArguments(...)
trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val, data_collator=collator,
                  compute_metrics=collator.accuracy, processing_class=processor,
                  optimizers=(trainer_optimizer(model, args), None))  # the package's weight decay groups
```
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from transformers.utils import logging

from ..configuration_omniclip import is_integer
from ..processing_omniclip import DEFAULT_TEXT_TEMPLATE, labels_to_prompts, tokenize_label_prompts


logger = logging.get_logger(__name__)


class ClassTextCollator:
    r"""
    Stacks dataset items (`{"pixel_values_videos": (T, 3, H, W) tensor, "labels" or "label": int}`, as
    `VideoClipDataset` yields) into a batch for [`OmniCLIPModel.forward`], adding the class texts' `input_ids` and
    `attention_mask`, repeated for every video as views `(batch_size, num_classes, sequence_length)` so that a split
    of the batch along dim 0 (`nn.DataParallel`) keeps every class. Items that failed to decode (`{"error": message}`,
    or no `pixel_values_videos` once Trainer's `remove_unused_columns` removed the message) are dropped with a
    warning; a batch of failed items only raises. Items without labels give a batch without `labels`.

    Args:
        tokenizer: CLIP's tokenizer.
        class_names (`list[str]`): dataset class names in label order (`brush_hair`, `ApplyEyeMakeup`, ...).
        template (`str`): prompt template with `{}` where the class text goes.
        max_length (`int`, *optional*): the model's `text_config.max_position_embeddings`; by default the tokenizer's
            `model_max_length` (bounded by the model's for a processor made or loaded with one), else CLIP's 77.
            Longer class prompts are truncated to it, with a warning naming each class.
    """

    def __init__(self, tokenizer: Any, class_names: Sequence[str], template: str = DEFAULT_TEXT_TEMPLATE,
                 max_length: int | None = None):
        if not class_names:
            raise ValueError("ClassTextCollator needs the class names (at least one), in label order.")
        prompts = labels_to_prompts(list(class_names), template)
        if max_length is None:
            max_length = getattr(tokenizer, "model_max_length", None)
            max_length = max_length if isinstance(max_length, int) and max_length < 10_000 else 77
        elif not is_integer(max_length) or max_length < 1:
            raise ValueError(f"max_length={max_length!r} is invalid: pass the model's "
                             "text_config.max_position_embeddings (an integer >= 1), or leave it out.")
        tokens, _ = tokenize_label_prompts(tokenizer, class_names, prompts, max_length)
        self.num_classes = len(prompts)
        self.input_ids = tokens["input_ids"]
        self.attention_mask = tokens["attention_mask"]

    @classmethod
    def from_processor(cls, processor: Any, class_names: Sequence[str], max_length: int | None = None
                       ) -> ClassTextCollator:
        """Uses an [`OmniCLIPProcessor`]'s tokenizer and prompt template (`max_length`: as in the constructor)."""
        return cls(processor.tokenizer, class_names, processor.text_template, max_length)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        good = []
        for item in items:
            if "error" in item:
                logger.warning(f"skipped a video: {item['error']}")
            elif "pixel_values_videos" not in item:
                # Trainer's remove_unused_columns=True (the default) strips a failed item's "error" and "index"
                logger.warning("ClassTextCollator: skipped an item without pixel_values_videos (a video that failed "
                               "to decode; set remove_unused_columns=False to see its file and error).")
            else:
                good.append(item)
        if not good:
            raise ValueError(f"ClassTextCollator: all {len(items)} videos of this batch failed to load (see the "
                             "warnings above); remove or re-encode the broken files.")
        videos = [torch.as_tensor(item["pixel_values_videos"]) for item in good]
        if "color_augmentation" in good[0] or not all(video.is_floating_point() for video in videos):
            # Trainer hands batches to the model as they are: views left uncoloured and unnormalised would train.
            # (remove_unused_columns=True strips the "color_augmentation" key: the uint8 frames still tell.)
            raise ValueError("ClassTextCollator: the videos arrive as uint8 frames, not CLIP-normalised floats: the "
                             "dataset deferred colour augmentation (defer_color_augmentation=True), which only "
                             "examples/train.py's loop finishes; build the dataset without it.")
        shapes = sorted({tuple(video.shape) for video in videos})
        if len(shapes) > 1:  # torch.stack's error names neither the items nor the remedy
            raise ValueError(f"ClassTextCollator: the videos of this batch have different shapes {shapes} (frames, "
                             "channels, height, width): give every video the same number of frames and crop size (one "
                             "video processor's settings, num_frames and crop_size).")
        videos = torch.stack(videos)
        batch = {
            "pixel_values_videos": videos,
            # The class texts once per video: nn.DataParallel (Trainer with several GPUs in one process) and
            # accelerate's batch dispatching split every tensor along dim 0, and each part must keep every class.
            # OmniCLIPModel.forward takes the first row. Copies, not an expanded view: the DataLoader's pin_memory
            # (Trainer's default on a GPU) copies into a tensor of the same strides, refused for a stride of 0.
            "input_ids": self.input_ids.expand(len(good), -1, -1).contiguous(),
            "attention_mask": self.attention_mask.expand(len(good), -1, -1).contiguous(),
        }
        label_keys = [next((key for key in ("labels", "label", "label_ids") if key in item), None) for item in good]
        if any(key is not None for key in label_keys):  # no labels at all (trainer.predict on new videos): none sent
            if None in label_keys:
                raise ValueError("ClassTextCollator: some items of this batch have a label and some have none.")
            labels = torch.stack([torch.as_tensor(item[key]) for item, key in zip(good, label_keys)])
            batch["labels"] = labels if labels.is_floating_point() else labels.long()
        return batch

    @staticmethod
    def accuracy(eval_prediction: Any) -> dict[str, float]:
        """`compute_metrics` for Trainer: top-1 accuracy of the class logits (`logits_per_video`)."""
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        if labels.ndim == 2:  # soft labels: their arg-max class
            labels = labels.argmax(axis=-1)
        return {"accuracy": float(np.mean(np.argmax(logits, axis=-1) == labels))}


def trainer_optimizer(model: torch.nn.Module, args: Any, **lr_scales: float) -> torch.optim.Optimizer:
    """The optimizer `args.optim` names, over the package's parameter groups, for
    `Trainer(optimizers=(trainer_optimizer(model, args), None))`.

    Trainer's own optimizer decays every parameter but biases and norms, the adapter gates (`alpha`) and the
    temporal and frame position embeddings included; this one decays as `examples/train.py` does (no weight decay
    on biases, norms, embeddings and scales). The optimizer and its settings are Trainer's for `args`
    (`Trainer.get_optimizer_cls_and_kwargs`: `optim`, `optim_args`, `learning_rate`, `adam_beta1`, `adam_beta2`,
    `adam_epsilon`, ...), so `optim="adamw_torch_fused"` or `"sgd"` is what runs. `lr_scales`: `prompt_lr_scale`,
    `spg_lr_scale`, `video_head_lr_scale`, as [`omniclip_hf.training.loop.parameter_groups`] takes them.
    """
    from transformers import Trainer

    from .loop import parameter_groups

    groups = parameter_groups(model, args.learning_rate, args.weight_decay, **lr_scales)
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    # GaLore, LOMO and the layer-wise optimizers build their own parameter lists from the model (these keywords):
    # parameter groups cannot be given to them.
    own_parameters = {"params", "model", "optimizer_dict"} & set(optimizer_kwargs)
    optimizer = None if own_parameters else optimizer_cls(groups, **optimizer_kwargs)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optim={args.optim!r} chooses its own parameters, so trainer_optimizer cannot give it the "
                         "package's weight-decay groups: let Trainer build it (no optimizers=), or pick another optim.")
    return optimizer


__all__ = ["ClassTextCollator", "trainer_optimizer"]
