# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""A data collator for `transformers.Trainer`: video batches plus the class texts, tokenized once.

OmniCLIP scores each video against every class text, so every batch carries the same tokenized class prompts;
they are tokenized when the collator is made and reused by every batch.

```python
from transformers import Trainer, TrainingArguments
from omniclip_hf.training.trainer_collator import ClassTextCollator

collator = ClassTextCollator.from_processor(processor, class_names)  # class texts tokenized here, once
trainer = Trainer(model=model, args=TrainingArguments(...), train_dataset=train, eval_dataset=val,
                  data_collator=collator, compute_metrics=collator.accuracy)
```
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from transformers.utils import logging

from ..processing_omniclip import DEFAULT_TEXT_TEMPLATE, labels_to_prompts


logger = logging.get_logger(__name__)


class ClassTextCollator:
    r"""
    Stacks dataset items (`{"pixel_values_videos": (T, 3, H, W) tensor, "labels" or "label": int}`, as
    `VideoClipDataset` yields) into a batch for [`OmniCLIPModel.forward`], adding the class texts' `input_ids` and
    `attention_mask`. Items that failed to decode (`{"error": message}`) are dropped with a warning.

    Args:
        tokenizer: CLIP's tokenizer.
        class_names (`list[str]`): dataset class names in label order (`brush_hair`, `ApplyEyeMakeup`, ...).
        template (`str`): prompt template with `{}` where the class text goes.
    """

    def __init__(self, tokenizer: Any, class_names: Sequence[str], template: str = DEFAULT_TEXT_TEMPLATE):
        if not class_names:
            raise ValueError("ClassTextCollator needs the class names (at least one), in label order.")
        prompts = labels_to_prompts(list(class_names), template)
        max_length = getattr(tokenizer, "model_max_length", None)
        max_length = max_length if isinstance(max_length, int) and max_length < 10_000 else 77
        tokens = tokenizer(prompts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        self.num_classes = len(prompts)
        self.input_ids = tokens["input_ids"]
        self.attention_mask = tokens["attention_mask"]

    @classmethod
    def from_processor(cls, processor: Any, class_names: Sequence[str]) -> ClassTextCollator:
        """Uses an [`OmniCLIPProcessor`]'s tokenizer and prompt template."""
        return cls(processor.tokenizer, class_names, processor.text_template)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        good = [item for item in items if "error" not in item]
        for item in items:
            if "error" in item:
                logger.warning(f"skipped a video: {item['error']}")
        if not good:
            raise ValueError("every video of this batch failed to load; see the warnings above.")
        if "color_augmentation" in good[0]:
            # Trainer hands batches to the model as they are: views left uncoloured and unnormalised would train.
            raise ValueError("ClassTextCollator: the dataset deferred colour augmentation (defer_color_augmentation="
                             "True), which only examples/train.py's loop finishes; build the dataset without it.")
        labels = [item["labels"] if "labels" in item else item["label"] for item in good]
        labels = torch.stack([torch.as_tensor(label) for label in labels])
        if not labels.is_floating_point():
            labels = labels.long()
        return {
            "pixel_values_videos": torch.stack([torch.as_tensor(item["pixel_values_videos"]) for item in good]),
            "labels": labels,
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
        }

    @staticmethod
    def accuracy(eval_prediction: Any) -> dict[str, float]:
        """`compute_metrics` for Trainer: top-1 accuracy of the class logits (`logits_per_video`)."""
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        if labels.ndim == 2:  # soft labels: their arg-max class
            labels = labels.argmax(axis=-1)
        return {"accuracy": float(np.mean(np.argmax(logits, axis=-1) == labels))}


__all__ = ["ClassTextCollator"]
