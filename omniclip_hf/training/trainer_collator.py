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

from collections.abc import Mapping, Set
from typing import Any, Sequence

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase
from transformers.processing_utils import ProcessorMixin
from transformers.utils import logging

from ..configuration_omniclip import is_integer
from ..processing_omniclip import DEFAULT_TEXT_TEMPLATE, labels_to_prompts, tokenize_label_prompts
from .data import DuplicateClassNamesError, _name_lookup


logger = logging.get_logger(__name__)


class ClassTextCollator:
    r"""
    Stacks dataset items (`{"pixel_values_videos": (T, 3, H, W) tensor, "labels" or "label": int}`, as
    `VideoClipDataset` yields) into a batch for [`OmniCLIPModel.forward`], adding the class texts' `input_ids` and
    `attention_mask`, repeated for every video (copies: the DataLoader's pin_memory refuses a stride-0 view) as `(batch_size, num_classes, sequence_length)` so that a split
    of the batch along dim 0 (`nn.DataParallel`) keeps every class. Items that failed to decode (`{"error": message}`,
    or no `pixel_values_videos` once Trainer's `remove_unused_columns` removed the message) are dropped with a
    warning; a batch of failed items only raises. Items without labels give a batch without `labels`. A label is a
    class index, soft targets `(num_classes,)`, or a class name (exact spelling), read as its index.

    Args:
        tokenizer: CLIP's tokenizer.
        class_names (`list[str]`): dataset class names in label order (`brush_hair`, `ApplyEyeMakeup`, ...); a
            string, a set or a mapping (no label order) and names of one class text (`Yoga`, `yoga`) are refused.
        template (`str`): prompt template with `{}` where the class text goes.
        max_length (`int`, *optional*): the model's `text_config.max_position_embeddings`; by default the tokenizer's
            `model_max_length` (bounded by the model's for a processor made or loaded with one), else CLIP's 77.
            Longer class prompts are truncated to it, with a warning naming each class.
    """

    def __init__(self, tokenizer: Any, class_names: Sequence[str], template: str = DEFAULT_TEXT_TEMPLATE,
                 max_length: int | None = None):
        _check_tokenizer(tokenizer)
        class_names = _class_names_in_label_order(class_names)
        prompts = labels_to_prompts(class_names, template)
        _check_distinct_class_names(class_names)
        if max_length is None:
            max_length = getattr(tokenizer, "model_max_length", None)
            max_length = max_length if isinstance(max_length, int) and max_length < 10_000 else 77
        elif not is_integer(max_length) or max_length < 1:
            raise ValueError(f"max_length={max_length!r} is invalid: pass the model's "
                             "text_config.max_position_embeddings (an integer >= 1), or leave it out.")
        tokens, _ = tokenize_label_prompts(tokenizer, class_names, prompts, max_length)
        self.num_classes = len(prompts)
        self.class_names = class_names
        # A label given as a class name (a datasets column of strings) is that class: exact spelling only, as a
        # ClassLabel's names are; a looser match could take a typo for another class.
        self.class_index = {name: index for index, name in enumerate(class_names)}
        self.input_ids = tokens["input_ids"]
        self.attention_mask = tokens["attention_mask"]

    @classmethod
    def from_processor(cls, processor: Any, class_names: Sequence[str], max_length: int | None = None
                       ) -> ClassTextCollator:
        """Uses an [`OmniCLIPProcessor`]'s tokenizer and prompt template (`max_length`: as in the constructor)."""
        _check_processor(processor)
        return cls(processor.tokenizer, class_names, processor.text_template, max_length)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not items:
            raise ValueError("ClassTextCollator got an empty batch: the DataLoader gives at least one item per batch; "
                             "check the dataset's __len__ and the sampler.")
        good, positions = [], []
        for position, item in enumerate(items):
            if _is_failed_item(item, position):
                logger.warning(_failed_item_warning(item))
            else:
                good.append(item)
                positions.append(position)
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
        labels = self._batch_labels(good, positions)
        if labels is not None:  # no labels at all (trainer.predict on new videos): none sent
            batch["labels"] = labels
        return batch

    def _batch_labels(self, items: list[dict[str, Any]], positions: list[int]) -> torch.Tensor | None:
        """The batch's labels: class indices `(batch,)` or soft targets `(batch, num_classes)`; None when no item has
        any. Checked item by item, so that an error names the item (torch.stack's and the loss's name none)."""
        keys = [_label_key(item, position) for item, position in zip(items, positions)]
        if all(key is None for key in keys):
            return None
        labels = []
        for item, position, key in zip(items, positions, keys):
            if key is None:
                raise ValueError("ClassTextCollator: some items of this batch have a label and some have none "
                                 f"({_describe_item(item, position)} has none): label every item, or none to predict.")
            labels.append(self._label(item[key], key, _describe_item(item, position)))
        if len({label.ndim for label in labels}) > 1:  # class indices and soft targets: the loss takes one kind
            soft = next(_describe_item(item, position) for item, position, label in zip(items, positions, labels)
                        if label.ndim == 1)
            raise ValueError(f"ClassTextCollator: this batch mixes class indices and soft targets ({soft} has soft "
                             "targets): give every item the same kind of label.")
        labels = torch.stack(labels)
        return labels if labels.is_floating_point() else labels.long()

    def _label(self, value: Any, key: str, where: str) -> torch.Tensor:
        """One item's label as a tensor: a class index (an integer, or a class name), or soft targets."""
        if value is None:
            raise ValueError(f"ClassTextCollator: {where} has {key}=None: give it a class index (or class name), or "
                             "leave the key out of every item to predict without labels.")
        if isinstance(value, str):
            if value not in self.class_index:
                raise ValueError(f"ClassTextCollator: {where} has {key}={value!r}, which is none of the "
                                 f"{self.num_classes} class names {_first_names(self.class_names)} (exact spelling): "
                                 "give its class index or one of these names.")
            return torch.tensor(self.class_index[value])
        label = torch.as_tensor(value)
        if label.dtype == torch.bool:  # True/False would train as the classes 1 and 0
            raise ValueError(f"ClassTextCollator: {where} has a boolean {key}={value!r}: give a class index (an "
                             "integer) or the class name, not True/False.")
        if label.ndim == 0 and not label.is_floating_point() and not label.is_complex():
            if not 0 <= int(label) < self.num_classes:
                raise ValueError(f"ClassTextCollator: {where} has {key}={int(label)}, outside the "
                                 f"{self.num_classes} classes [0, {self.num_classes}): fix the label, or the class "
                                 "names given to the collator.")
            return label
        if label.ndim == 1 and label.is_floating_point() and label.shape[0] == self.num_classes:
            return label
        raise ValueError(f"ClassTextCollator: {where} has {key} of dtype {label.dtype} and shape "
                         f"{tuple(label.shape)}: give a class index (an integer) or soft targets of shape "
                         f"({self.num_classes},) (floats, one per class name).")

    # Correct and counted videos of the batches seen so far under TrainingArguments(batch_eval_metrics=True), where
    # Trainer calls `accuracy` once a batch; shared by the class since `accuracy` is used unbound
    # (`compute_metrics=ClassTextCollator.accuracy`), and reset when an evaluation's result is returned.
    _batch_counts = [0, 0]

    @staticmethod
    def accuracy(eval_prediction: Any, compute_result: bool | None = None) -> dict[str, float]:
        """`compute_metrics` for Trainer: top-1 accuracy of the class logits (`logits_per_video`).

        Also with `eval_do_concat_batches=False` (a list of batches) and `batch_eval_metrics=True` (called once a
        batch with `compute_result`: the batches are counted until `compute_result=True` returns their accuracy)."""
        correct, total = _correct_and_total(eval_prediction.predictions, eval_prediction.label_ids)
        if compute_result is None:
            return {"accuracy": _fraction(correct, total)}
        counts = ClassTextCollator._batch_counts
        counts[0] += correct
        counts[1] += total
        if not compute_result:
            return {}
        correct, total = counts
        counts[:] = [0, 0]
        return {"accuracy": _fraction(correct, total)}


def _check_tokenizer(tokenizer: Any) -> None:
    """The tokenizer, not a processor or a video processor: those failed deep inside tokenization, unnamed."""
    if isinstance(tokenizer, ProcessorMixin):
        raise TypeError(f"ClassTextCollator: tokenizer is a processor ({type(tokenizer).__name__}): use "
                        "ClassTextCollator.from_processor(processor, class_names), or pass processor.tokenizer.")
    if not isinstance(tokenizer, PreTrainedTokenizerBase):
        raise TypeError(f"ClassTextCollator: tokenizer must be CLIP's tokenizer (a transformers tokenizer), got "
                        f"{type(tokenizer).__name__}: pass processor.tokenizer, or use "
                        "ClassTextCollator.from_processor.")


def _check_processor(processor: Any) -> None:
    """An [`OmniCLIPProcessor`] (a tokenizer and a prompt template), not a tokenizer or a video processor."""
    if isinstance(processor, PreTrainedTokenizerBase):
        raise TypeError("ClassTextCollator.from_processor: processor is a tokenizer: pass it to "
                        "ClassTextCollator(tokenizer, class_names) instead.")
    has_tokenizer = isinstance(getattr(processor, "tokenizer", None), PreTrainedTokenizerBase)
    if not has_tokenizer or not hasattr(processor, "text_template"):
        raise TypeError(f"ClassTextCollator.from_processor: processor must be an OmniCLIPProcessor (with a tokenizer "
                        f"and a text_template), got {type(processor).__name__}: pass the model's processor.")


def _class_names_in_label_order(class_names: Any) -> list[str]:
    """The class names as a list whose position `i` is label `i`'s class. A string is one name, not its letters; a
    set has no order (it changes with PYTHONHASHSEED, so training and evaluation could differ); a mapping's key order
    need not be the label order (label2id {"archery": 1, "yoga": 0}): all three are refused rather than guessed."""
    if isinstance(class_names, (str, Set, Mapping)):
        why = ("would be read letter by letter" if isinstance(class_names, str) else "has no order"
               if isinstance(class_names, Set) else "need not list the classes in label order")
        raise TypeError(f"ClassTextCollator: class_names is a {type(class_names).__name__}, which {why}: pass a list "
                        "in class-index order, e.g. [id2label[i] for i in range(len(id2label))].")
    if not class_names:
        raise ValueError("ClassTextCollator needs the class names (at least one), in label order.")
    return list(class_names)


def _check_distinct_class_names(class_names: list[str]) -> None:
    """Two names of one class text (`yoga` twice, `Yoga` and `yoga`) give two classes of one text embedding, one of
    which can never be predicted: refused as `load_video_dataset` refuses them."""
    try:
        _name_lookup(class_names)
    except DuplicateClassNamesError as error:
        raise ValueError(f"ClassTextCollator: class_names: {error}") from None


# What is left of a failed item `{"index", "error"}` once Trainer's remove_unused_columns=True (the default) removed
# the columns the model does not take: nothing, or the label columns it keeps.
_KEYS_KEPT_OF_A_FAILED_ITEM = {"index", "labels", "label", "label_ids"}


def _is_failed_item(item: Any, position: int) -> bool:
    """True for a video that failed to decode; an item that is no video dict at all is refused, naming its keys."""
    if not isinstance(item, Mapping):
        raise TypeError(f"ClassTextCollator: batch item {position} is a {type(item).__name__}, not a dict: the "
                        "dataset must yield {'pixel_values_videos': tensor, 'labels': int} dicts (as VideoClipDataset "
                        "does).")
    if "error" in item:
        return True
    if "pixel_values_videos" in item:
        return False
    if set(item) <= _KEYS_KEPT_OF_A_FAILED_ITEM:
        return True
    raise ValueError(f"ClassTextCollator: {_describe_item(item, position)} has the keys {sorted(map(str, item))} but "
                     "not 'pixel_values_videos': name the videos' key pixel_values_videos in the dataset's items "
                     "(the processor's output).")


def _failed_item_warning(item: Mapping[str, Any]) -> str:
    if "error" in item:
        return f"skipped a video: {item['error']}"
    # Trainer's remove_unused_columns=True (the default) strips a failed item's "error" and "index"
    return ("ClassTextCollator: skipped an item without pixel_values_videos (a video that failed to decode; set "
            "remove_unused_columns=False to see its file and error).")


def _label_key(item: Mapping[str, Any], position: int) -> str | None:
    """The item's label key; two of them (`labels` and `label`) are refused: which one is meant cannot be told."""
    keys = [key for key in ("labels", "label", "label_ids") if key in item]
    if len(keys) > 1:
        raise ValueError(f"ClassTextCollator: {_describe_item(item, position)} has both {keys[0]!r} and "
                         f"{keys[1]!r}: keep one label key per item.")
    return keys[0] if keys else None


def _describe_item(item: Mapping[str, Any], position: int) -> str:
    """The item by its dataset index where it carries one (VideoClipDataset's `index`), else its place in the batch."""
    return f"batch item index={item['index']}" if "index" in item else f"batch item {position}"


def _first_names(class_names: list[str], count: int = 5) -> str:
    """The first `count` names, for an error message (a dataset may have hundreds)."""
    return str(class_names) if len(class_names) <= count else str(class_names[:count])[:-1] + ", ...]"


def _as_array(values: Any) -> np.ndarray:
    """Trainer's predictions or labels as one array: a torch tensor (batch_eval_metrics), a list of per-batch arrays
    (eval_do_concat_batches=False), or an array; of the model's outputs, the first (`logits_per_video`)."""
    if isinstance(values, list):
        return np.concatenate([_as_array(part) for part in values])
    if isinstance(values, tuple):
        return _as_array(values[0])
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        return (values.float() if values.is_floating_point() else values).numpy()
    return np.asarray(values)


def _correct_and_total(predictions: Any, label_ids: Any) -> tuple[int, int]:
    """Videos whose top class is their label (a soft target's arg-max class), and videos."""
    logits, labels = _as_array(predictions), _as_array(label_ids)
    if labels.ndim == 2:  # soft labels: their arg-max class
        labels = labels.argmax(axis=-1)
    return int(np.sum(np.argmax(logits, axis=-1) == labels)), int(labels.shape[0])


def _fraction(correct: int, total: int) -> float:
    return correct / total if total else float("nan")  # no labelled video: as numpy's mean of nothing


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


def card_base_model(model: torch.nn.Module) -> str | None:
    """The base CLIP as the Hub id a model card names, for `trainer.push_to_hub(finetuned_from=...)` and
    `trainer.create_model_card(finetuned_from=...)`; `None` where the CLIP was a local folder. Trainer's card, given
    no `finetuned_from`, takes `config._name_or_path`, which `from_clip` leaves empty; given the config's
    `base_clip_name_or_path` as it is, a local CLIP became `base_model: /home/.../clip` with a link to
    huggingface.co/home/..."""
    from .publishing import hub_id_or_none

    return hub_id_or_none(getattr(model.config, "base_clip_name_or_path", None))


__all__ = ["ClassTextCollator", "card_base_model", "trainer_optimizer"]
