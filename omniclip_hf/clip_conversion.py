# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Any CLIP checkpoint as an OmniCLIP model folder: zero-shot video classification on day one.

A plain CLIP wrapped by [`OmniCLIPModel.from_pretrained`] has every new module at the identity, so it scores videos
exactly as frame-averaged CLIP (the standard zero-shot video baseline). [`write_model_folder`] saves such a model
with its tokenizer and a video processor matching the CLIP's image preprocessing; `omniclip init` calls it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .atomic_writes import write_folder_atomically
from .modeling_omniclip import CLIP_AT_IDENTITY, OmniCLIPModel, hub_kwargs_of, read_checkpoint_config
from .processing_omniclip import OmniCLIPProcessor
from .video_processing_omniclip import OmniCLIPVideoProcessor


logger = logging.get_logger(__name__)


def _clip_image_settings(clip_name_or_path: str, hub_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Resize, crop and normalisation of the CLIP's own image processor (`preprocessor_config.json`), if it has one."""
    from transformers.image_processing_utils import ImageProcessingMixin

    try:
        settings, _ = ImageProcessingMixin.get_image_processor_dict(
            clip_name_or_path, **hub_kwargs_of(hub_kwargs)
        )
    except (OSError, ValueError):  # no preprocessor_config.json: the vision config's image size decides
        return {}
    return settings


def _clip_resize_and_crop(name: str, settings: dict[str, Any], image_size: int) -> dict[str, Any]:
    """
    `size`, `crop_size` and `do_center_crop` of an [`OmniCLIPVideoProcessor`] doing what the CLIP's image processor
    does: its `size` as a shortest-edge resize or an exact `height` x `width` resize (an int is a shortest edge, as
    CLIPImageProcessor reads it), then its centre crop, or none where `do_center_crop` is false.
    """
    from transformers.image_processing_utils import get_size_dict

    def size_dict(key: str, **how) -> dict[str, Any]:
        value = settings.get(key) or image_size
        if isinstance(value, dict):  # a saved SizeDict may list its unused sides as null
            value = {side: length for side, length in value.items() if length is not None}
        try:
            return dict(get_size_dict(value, param_name=key, **how))
        except (TypeError, ValueError):
            return {}

    size = size_dict("size", default_to_square=False)
    crop = size_dict("crop_size")
    if set(size) not in ({"shortest_edge"}, {"height", "width"}):
        raise ValueError(
            f"{name}'s preprocessor_config.json has size={settings.get('size')!r}, a resize the video processor cannot "
            "do (it takes a shortest_edge, or a height and a width)."
        )
    if set(crop) != {"height", "width"}:
        raise ValueError(f"{name}'s preprocessor_config.json has crop_size={settings.get('crop_size')!r}: the video "
                         "processor needs a crop height and width.")
    if settings.get("do_center_crop", True):
        return {"size": size, "crop_size": crop}
    # No crop: frames come out at the resize's size. Training crops to crop_size: the same size where it is exact.
    return {"size": size, "crop_size": crop if "shortest_edge" in size else dict(size), "do_center_crop": False}


def video_processor_for_clip(
    clip_name_or_path: str | os.PathLike, image_size: int, num_frames: int = 8, **hub_kwargs: Any
) -> OmniCLIPVideoProcessor:
    """
    An [`OmniCLIPVideoProcessor`] that prepares each frame as the CLIP's image processor prepares an image (same
    resize, shortest-edge or exact height and width, same centre crop or none, mean and std), sampling `num_frames`
    frames per clip.

    Raises:
        `ValueError`: the CLIP's image processor resizes in a way the video processor cannot (e.g. a longest edge).
    """
    name = os.fspath(clip_name_or_path)
    settings = _clip_image_settings(name, hub_kwargs)
    resize_and_crop = _clip_resize_and_crop(name, settings, image_size)
    extra = {key: settings[key] for key in ("image_mean", "image_std") if settings.get(key)}
    return OmniCLIPVideoProcessor(num_frames=num_frames, **resize_and_crop, **extra)


def tokenizer_for_clip(clip_name_or_path: str | os.PathLike, vocab_size: int | None = None, **hub_kwargs: Any):
    """
    The CLIP's own tokenizer, or the package's copy of CLIP's BPE tokenizer when the checkpoint has none, or one far
    smaller than its text model's vocabulary (`vocab_size`, read from its config if not given): transformers loads a
    folder without vocabulary files as a tokenizer of its special tokens alone, which gives every word the same id.
    Falling back says so with a `UserWarning` (the `omniclip` command prints those; it quiets library logs).

    Raises:
        `ValueError`: the checkpoint has no usable tokenizer and its text model's vocabulary is smaller than the
            package's tokenizer (its ids would fall outside it).
    """
    import warnings

    from transformers import AutoTokenizer, CLIPTokenizer

    from . import default_tokenizer_path

    name = os.fspath(clip_name_or_path)
    if vocab_size is None:
        try:
            vocab_size = (read_checkpoint_config(name, hub_kwargs).get("text_config") or {}).get("vocab_size")
        except (OSError, ValueError):
            vocab_size = None
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **hub_kwargs_of(hub_kwargs))
    except (OSError, ValueError, TypeError):
        tokenizer, lacking = None, "has no tokenizer"
    else:
        if vocab_size and len(tokenizer) < vocab_size // 2:
            tokenizer, lacking = None, (f"has a tokenizer of only {len(tokenizer)} tokens for a text model of "
                                        f"{vocab_size} (no vocabulary files)")
    if tokenizer is not None:
        return tokenizer
    fallback = CLIPTokenizer.from_pretrained(default_tokenizer_path())
    if vocab_size and len(fallback) > vocab_size:
        raise ValueError(
            f"{name} {lacking}, and CLIP's BPE tokenizer shipped with omniclip_hf ({len(fallback)} tokens) does not "
            f"fit its text model ({vocab_size} tokens): save the CLIP's own tokenizer in {name}."
        )
    warnings.warn(f"{name} {lacking}: using CLIP's BPE tokenizer shipped with omniclip_hf ({len(fallback)} tokens).",
                  UserWarning, stacklevel=2)
    return fallback


def processor_for_clip(model: OmniCLIPModel, clip_name_or_path: str | os.PathLike, **hub_kwargs: Any) -> OmniCLIPProcessor:
    """The processor (tokenizer and video processor) of an OmniCLIP model wrapped around `clip_name_or_path`."""
    video_processor = video_processor_for_clip(
        clip_name_or_path, model.config.vision_config.image_size, model.config.num_frames, **hub_kwargs
    )
    tokenizer = tokenizer_for_clip(clip_name_or_path, model.config.text_config.vocab_size, **hub_kwargs)
    return OmniCLIPProcessor(video_processor, tokenizer, text_template=model.config.text_template)


def write_model_folder(
    clip_name_or_path: str | os.PathLike, output_dir: str | os.PathLike, num_frames: int = 8, **loading_kwargs: Any
) -> Path:
    """
    Writes a complete OmniCLIP model folder from a CLIP checkpoint: the model (the CLIP with every new module at the
    identity, i.e. frame-averaged CLIP until trained), CLIP's tokenizer and a matching video processor, with the
    remote code that lets `trust_remote_code=True` load each piece without this package.

    The folder is written next to `output_dir` and renamed into place, so it is complete or absent.

    Args:
        clip_name_or_path: a CLIP folder or Hub id.
        output_dir: the folder to create (must not exist, or be empty).
        num_frames: frames per clip of the video processor and the temporal embeddings.
        loading_kwargs: `from_pretrained` keywords for the CLIP (`revision`, `token`, `cache_dir`, `dtype`, ...).

    Returns:
        The folder's path.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise FileExistsError(f"{output_dir} already exists and is not an empty folder: choose a new output folder.")
    name = os.fspath(clip_name_or_path)
    config_dict = read_checkpoint_config(name, loading_kwargs)
    if config_dict.get("model_type") != "clip":
        raise ValueError(
            f"{name} holds a {config_dict.get('model_type')!r} checkpoint, not a CLIP model: pass a CLIP folder or Hub id."
        )
    # from_clip directly: the config is read above already, and this call is no accidental wrap to warn about.
    model = OmniCLIPModel.from_clip(name, num_frames=num_frames, **loading_kwargs, **CLIP_AT_IDENTITY)
    processor = processor_for_clip(model, name, **loading_kwargs)

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)

    return write_folder_atomically(output_dir, write)


__all__ = ["processor_for_clip", "tokenizer_for_clip", "video_processor_for_clip", "write_model_folder"]
