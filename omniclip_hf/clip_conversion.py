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


# Settings of CLIPImageProcessor that OmniCLIPVideoProcessor takes under the same name and meaning.
_PIXEL_SETTINGS = ("do_resize", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std")


def _clip_pixel_settings(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """
    The resize filter, rescaling and normalisation of the CLIP's image processor, as the video processor's settings.
    Each one saved is kept, falsy ones included (`image_mean=0.0`, `do_normalize=false`): a truthiness test kept
    OpenAI's mean for a saved 0.0. Those left out keep the video processor's defaults, which are CLIP's.
    """
    pixel_settings = {key: settings[key] for key in _PIXEL_SETTINGS if settings.get(key) is not None}
    if settings.get("resample") is not None:
        pixel_settings["resample"] = _video_resample(name, settings["resample"])
    return pixel_settings


def _video_resample(name: str, resample: Any) -> Any:
    """
    The CLIP's resize filter (a PIL resampling number, as `preprocessor_config.json` saves it) as the video processor
    takes it. Filters that torch cannot apply to video tensors (LANCZOS, BOX, HAMMING) become BICUBIC, the nearest
    one, with a `UserWarning`: refusing would leave such a CLIP without a video processor, for a difference of a few
    hundredths in pixel values.
    """
    import warnings

    from transformers.image_utils import PILImageResampling

    supported = (PILImageResampling.NEAREST, PILImageResampling.BILINEAR, PILImageResampling.BICUBIC)
    try:
        resample = PILImageResampling(int(resample))
    except (TypeError, ValueError):
        raise ValueError(f"{name}'s preprocessor_config.json has resample={resample!r}, not a PIL resampling filter: "
                         "set it to 3 (BICUBIC), 2 (BILINEAR) or 0 (NEAREST).") from None
    if resample in supported:
        return resample
    warnings.warn(f"{name}'s image processor resizes with {resample.name}, which video frames cannot use: resizing "
                  "with BICUBIC, the nearest filter (pixel values differ slightly from its image processor's).",
                  UserWarning, stacklevel=4)
    return PILImageResampling.BICUBIC


def video_processor_for_clip(
    clip_name_or_path: str | os.PathLike, image_size: int, num_frames: int = 8, **hub_kwargs: Any
) -> OmniCLIPVideoProcessor:
    """
    An [`OmniCLIPVideoProcessor`] that prepares each frame as the CLIP's image processor prepares an image (same
    resize, shortest-edge or exact height and width, or none, with the same filter; same centre crop or none; same
    rescaling and normalisation), sampling `num_frames` frames per clip.

    Raises:
        `ValueError`: the CLIP's image processor resizes in a way the video processor cannot (e.g. a longest edge).
    """
    name = os.fspath(clip_name_or_path)
    settings = _clip_image_settings(name, hub_kwargs)
    resize_and_crop = _clip_resize_and_crop(name, settings, image_size)
    return OmniCLIPVideoProcessor(num_frames=num_frames, **resize_and_crop, **_clip_pixel_settings(name, settings))


def tokenizer_for_clip(clip_name_or_path: str | os.PathLike, vocab_size: int | None = None,
                       max_position_embeddings: int | None = None, **hub_kwargs: Any):
    """
    The CLIP's own tokenizer, or the package's copy of CLIP's BPE tokenizer when the checkpoint has none, or one far
    smaller than its text model's vocabulary (`vocab_size`, read from its config if not given): transformers loads a
    folder without vocabulary files as a tokenizer of its special tokens alone, which gives every word the same id.
    Falling back says so with a `UserWarning` (the `omniclip` command prints those; it quiets library logs). Its
    `model_max_length` is at most the text model's `max_position_embeddings` (read from its config if not given), so
    that the processor truncates texts to what the model reads.

    Raises:
        `ValueError`: the checkpoint has no usable tokenizer and its text model's vocabulary is smaller than the
            package's tokenizer (its ids would fall outside it).
    """
    from transformers import AutoTokenizer

    from .processing_omniclip import limit_tokenizer_length, tokenizer_vocabulary_shortfall

    name = os.fspath(clip_name_or_path)
    if vocab_size is None or max_position_embeddings is None:
        text_config = _clip_text_config(name, hub_kwargs)
        vocab_size = text_config.get("vocab_size") if vocab_size is None else vocab_size
        if max_position_embeddings is None:
            max_position_embeddings = text_config.get("max_position_embeddings")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **hub_kwargs_of(hub_kwargs))
    except (OSError, ValueError, TypeError):
        tokenizer, lacking = None, "has no tokenizer"
    else:
        lacking = tokenizer_vocabulary_shortfall(tokenizer, vocab_size)
    if tokenizer is None or lacking:
        tokenizer = bundled_tokenizer_for_clip(name, lacking, vocab_size)
    return limit_tokenizer_length(tokenizer, max_position_embeddings)


def _clip_text_config(name: str, hub_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The CLIP's `text_config` as saved (empty where it cannot be read: the defaults apply)."""
    try:
        return read_checkpoint_config(name, hub_kwargs).get("text_config") or {}
    except (OSError, ValueError):
        return {}


def bundled_tokenizer_for_clip(name: str, lacking: str, vocab_size: int | None):
    """
    CLIP's BPE tokenizer shipped with the package, for the CLIP `name` whose own tokenizer `lacking` describes (e.g.
    "has no tokenizer"), with a `UserWarning` saying so: what `omniclip init` and the pipeline use for such a CLIP.

    Raises:
        `ValueError`: the text model's vocabulary (`vocab_size`) is smaller than that tokenizer.
    """
    import warnings

    from transformers import CLIPTokenizer

    from . import default_tokenizer_path

    fallback = CLIPTokenizer.from_pretrained(default_tokenizer_path())
    if vocab_size and len(fallback) > vocab_size:
        raise ValueError(
            f"{name} {lacking}, and CLIP's BPE tokenizer shipped with omniclip_hf ({len(fallback)} tokens) does not "
            f"fit its text model ({vocab_size} tokens): save the CLIP's own tokenizer in {name}."
        )
    warnings.warn(f"{name} {lacking}: using CLIP's BPE tokenizer shipped with omniclip_hf ({len(fallback)} tokens).",
                  UserWarning, stacklevel=3)
    return fallback


def processor_for_clip(model: OmniCLIPModel, clip_name_or_path: str | os.PathLike, **hub_kwargs: Any) -> OmniCLIPProcessor:
    """The processor (tokenizer and video processor) of an OmniCLIP model wrapped around `clip_name_or_path`."""
    video_processor = video_processor_for_clip(
        clip_name_or_path, model.config.vision_config.image_size, model.config.num_frames, **hub_kwargs
    )
    text_config = model.config.text_config
    tokenizer = tokenizer_for_clip(
        clip_name_or_path, text_config.vocab_size, text_config.max_position_embeddings, **hub_kwargs
    )
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


__all__ = [
    "bundled_tokenizer_for_clip",
    "processor_for_clip",
    "tokenizer_for_clip",
    "video_processor_for_clip",
    "write_model_folder",
]
