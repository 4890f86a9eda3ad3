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


def video_processor_for_clip(
    clip_name_or_path: str | os.PathLike, image_size: int, num_frames: int = 8, **hub_kwargs: Any
) -> OmniCLIPVideoProcessor:
    """
    An [`OmniCLIPVideoProcessor`] that prepares each frame as the CLIP's image processor prepares an image (same
    shortest-edge resize, centre crop, mean and std), sampling `num_frames` frames per clip.
    """
    settings = _clip_image_settings(os.fspath(clip_name_or_path), hub_kwargs)
    size = settings.get("size") or {}
    crop = settings.get("crop_size") or {}
    shortest_edge = size.get("shortest_edge") or size.get("height") or image_size
    crop_size = {"height": crop.get("height", image_size), "width": crop.get("width", image_size)}
    extra = {key: settings[key] for key in ("image_mean", "image_std") if settings.get(key)}
    return OmniCLIPVideoProcessor(
        num_frames=num_frames, size={"shortest_edge": shortest_edge}, crop_size=crop_size, **extra
    )


def tokenizer_for_clip(clip_name_or_path: str | os.PathLike, **hub_kwargs: Any):
    """The CLIP's own tokenizer, or the package's copy of CLIP's BPE tokenizer when the checkpoint has none."""
    from transformers import AutoTokenizer, CLIPTokenizer

    from . import default_tokenizer_path

    try:
        return AutoTokenizer.from_pretrained(
            os.fspath(clip_name_or_path), **hub_kwargs_of(hub_kwargs)
        )
    except (OSError, ValueError, TypeError):
        logger.warning(f"{clip_name_or_path} has no tokenizer: using CLIP's BPE tokenizer shipped with omniclip_hf.")
        return CLIPTokenizer.from_pretrained(default_tokenizer_path())


def processor_for_clip(model: OmniCLIPModel, clip_name_or_path: str | os.PathLike, **hub_kwargs: Any) -> OmniCLIPProcessor:
    """The processor (tokenizer and video processor) of an OmniCLIP model wrapped around `clip_name_or_path`."""
    video_processor = video_processor_for_clip(
        clip_name_or_path, model.config.vision_config.image_size, model.config.num_frames, **hub_kwargs
    )
    tokenizer = tokenizer_for_clip(clip_name_or_path, **hub_kwargs)
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
