# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Where does the model look? The last layer's CLS attention over the patches, for plain CLIP and for OmniCLIP.

Reproduces the paper's Figure 4: the sampled frames in the first row, then the attention of the [CLS] token of the
last vision layer over the patch tokens as heat maps, for vanilla CLIP (each frame on its own) and for OmniCLIP (the
frames together, with its temporal adapters and prompt tokens). Both use the same frozen last layer; OmniCLIP's
tokens entering it differ, and its prompt tokens are keys too, so its patch weights need not sum to 1.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn


# Figure layout, in pixels: a column of row names on the left, one line of text on top, then three rows of tiles.
ROW_LABEL_WIDTH = 96
HEADER_HEIGHT = 28
ROW_NAMES = ("frames", "CLIP", "OmniCLIP")
HEATMAP_OPACITY = 0.55


# ----------------------------------------------------------------------------------------------------------------
# Attention of the CLS token
# ----------------------------------------------------------------------------------------------------------------
def cls_attention_over_patches(attentions: torch.Tensor, num_patches: int) -> torch.Tensor:
    """
    Attention weights of the CLS token (token 0) over the patch tokens (tokens `1..num_patches`), averaged over heads.

    Args:
        attentions (`torch.Tensor` of shape `(frames, heads, num_tokens, num_tokens)`):
            One layer's softmax weights, as the model returns them with `output_attentions=True` (any extra tokens
            after the patches, such as SPG prompts, count as keys).
        num_patches (`int`):
            Number of patch tokens after CLS.

    Returns:
        `torch.Tensor` of shape `(frames, num_patches)`: softmax weights over all keys, restricted to the patches.
    """
    return attentions[:, :, 0, 1 : 1 + num_patches].float().mean(dim=1)


@contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Runs the frozen CLIP with eager attention (the only kind that returns its weights), then restores it."""
    # Through the model's own setter, which keeps its config in step with the frozen CLIP's.
    previous = model.clip.config._attn_implementation
    if previous != "eager":
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if previous != "eager":
            model.set_attn_implementation(previous)


def _patch_grid(pixel_values_videos: torch.Tensor, patch_size: int) -> tuple[int, int]:
    height, width = pixel_values_videos.shape[-2:]
    return height // patch_size, width // patch_size


@torch.no_grad()
def clip_attention_maps(model: nn.Module, pixel_values_videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Plain CLIP on each frame alone: last-layer CLS attention maps and the frame-averaged image embedding.

    Args:
        model ([`OmniCLIPModel`]):
            The model whose frozen CLIP (`model.clip`) is used.
        pixel_values_videos (`torch.FloatTensor` of shape `(1, num_frames, 3, height, width)`):
            One processed video.

    Returns:
        `tuple`: maps `(num_frames, grid_height, grid_width)` and the image embedding `(1, projection_dim)`.
    """
    vision = model.clip.vision_model
    frames = pixel_values_videos[0]
    grid = _patch_grid(frames, model.config.vision_config.patch_size)
    image_size = model.config.vision_config.image_size
    with eager_attention(model):
        outputs = vision(
            pixel_values=frames,
            output_attentions=True,
            interpolate_pos_encoding=tuple(frames.shape[-2:]) != (image_size, image_size),
        )
    maps = cls_attention_over_patches(outputs.attentions[-1], grid[0] * grid[1])
    image_embeds = model.clip.visual_projection(outputs.pooler_output).mean(dim=0, keepdim=True)
    return maps.reshape(-1, *grid), image_embeds


@torch.no_grad()
def omniclip_attention_maps(model: nn.Module, pixel_values_videos: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """
    OmniCLIP on the whole clip: last-layer CLS attention maps of every frame, and the video features output.

    Args:
        model ([`OmniCLIPModel`]):
            The model.
        pixel_values_videos (`torch.FloatTensor` of shape `(1, num_frames, 3, height, width)`):
            One processed video.

    Returns:
        `tuple`: maps `(num_frames, grid_height, grid_width)` and [`OmniCLIPVideoOutput`].
    """
    grid = _patch_grid(pixel_values_videos, model.config.vision_config.patch_size)
    with eager_attention(model):
        outputs = model.get_video_features(pixel_values_videos, output_attentions=True, return_dict=True)
    maps = cls_attention_over_patches(outputs.attentions[-1], grid[0] * grid[1])
    return maps.reshape(-1, *grid), outputs


# ----------------------------------------------------------------------------------------------------------------
# One video explained
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class AttentionExplanation:
    r"""
    What [`explain_video`] finds for one video.

    Args:
        frames (`np.ndarray` of shape `(num_frames, height, width, 3)`, `uint8`):
            The sampled, cropped frames the model saw.
        clip_maps (`np.ndarray` of shape `(num_frames, grid_height, grid_width)`):
            Plain CLIP's last-layer CLS attention over the patches.
        omniclip_maps (`np.ndarray` of shape `(num_frames, grid_height, grid_width)`):
            OmniCLIP's.
        clip_predictions, omniclip_predictions (`list[dict]`):
            `{"label", "score"}` sorted by score (empty without labels); CLIP scores the frame-averaged image
            embedding against the same label texts.
    """

    frames: np.ndarray
    clip_maps: np.ndarray
    omniclip_maps: np.ndarray
    clip_predictions: list[dict[str, Any]] = field(default_factory=list)
    omniclip_predictions: list[dict[str, Any]] = field(default_factory=list)


def _unnormalise(pixel_values: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """CLIP-normalised `(T, 3, H, W)` frames back to `(T, H, W, 3)` uint8 for display."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    pixels = (pixel_values.float().cpu() * std_t + mean_t).clamp(0, 1)
    return (pixels * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _ranked(logits: torch.Tensor, labels: Sequence[str]) -> list[dict[str, Any]]:
    scores = logits.float().reshape(-1).softmax(dim=-1).tolist()
    return sorted(({"label": label, "score": score} for label, score in zip(labels, scores)), key=lambda p: -p["score"])


@torch.no_grad()
def explain_video(
    model: nn.Module,
    video_processor: Any,
    video: Any,
    candidate_labels: Sequence[str] | None = None,
    tokenizer: Any = None,
    hypothesis_template: str | None = None,
) -> AttentionExplanation:
    r"""
    Samples one clip of a video and computes the attention maps of plain CLIP and of OmniCLIP (and, with labels,
    both models' predictions).

    Args:
        model ([`OmniCLIPModel`]):
            The model (its frozen CLIP gives the plain-CLIP row).
        video_processor ([`OmniCLIPVideoProcessor`]):
            Decodes and samples the video; one clip and one centre crop are used whatever its view settings.
        video:
            Anything the video processor reads (a path, bytes, an array, frames).
        candidate_labels (`list[str]`, *optional*):
            Labels to score; needs `tokenizer`.
        tokenizer (*optional*):
            CLIP's tokenizer.
        hypothesis_template (`str`, *optional*):
            Prompt template; defaults to the model config's `text_template`.

    Returns:
        [`AttentionExplanation`].
    """
    batch = video_processor(video, do_augment=False, num_temporal_clips=1, num_spatial_crops=1, return_tensors="pt")
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    pixel_values = batch["pixel_values_videos"].to(device=device, dtype=dtype)

    clip_maps, image_embeds = clip_attention_maps(model, pixel_values)
    omniclip_maps, video_outputs = omniclip_attention_maps(model, pixel_values)

    clip_predictions: list[dict[str, Any]] = []
    omniclip_predictions: list[dict[str, Any]] = []
    if candidate_labels:
        if tokenizer is None:
            raise ValueError("explain_video needs the tokenizer to score candidate_labels.")
        template = hypothesis_template or model.config.text_template
        text_inputs = tokenizer(
            [template.format(label) for label in candidate_labels],
            padding=True,
            truncation=True,
            max_length=model.config.text_config.max_position_embeddings,
            return_tensors="pt",
        ).to(device)
        text_embeds = model.get_text_features(text_inputs["input_ids"], text_inputs["attention_mask"]).pooler_output
        clip_predictions = _ranked(model.similarity_logits(image_embeds, text_embeds), candidate_labels)
        video_text_embeds = text_embeds
        if model.video_specific_prompts is not None:
            video_text_embeds = model.video_specific_prompts(text_embeds, video_outputs.video_context)
        omniclip_logits = model.similarity_logits(video_outputs.pooler_output, video_text_embeds)
        omniclip_predictions = _ranked(omniclip_logits, candidate_labels)

    return AttentionExplanation(
        frames=_unnormalise(pixel_values[0], video_processor.image_mean, video_processor.image_std),
        clip_maps=clip_maps.float().cpu().numpy(),
        omniclip_maps=omniclip_maps.float().cpu().numpy(),
        clip_predictions=clip_predictions,
        omniclip_predictions=omniclip_predictions,
    )


# ----------------------------------------------------------------------------------------------------------------
# Drawing (PIL only)
# ----------------------------------------------------------------------------------------------------------------
def explanation_figure_size(num_frames: int, frame_height: int, frame_width: int, tile_size: int) -> tuple[int, int]:
    """`(width, height)` in pixels of the figure [`render_explanation`] draws: tiles `tile_size` high."""
    tile_width = max(1, round(tile_size * frame_width / frame_height))
    return ROW_LABEL_WIDTH + num_frames * tile_width, HEADER_HEIGHT + len(ROW_NAMES) * tile_size


def jet_colormap(values: np.ndarray) -> np.ndarray:
    """Maps values in [0, 1] to RGB uint8 with the classic "jet" ramp (blue, cyan, yellow, red)."""
    values = np.clip(values, 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25])  # where red, green and blue peak
    rgb = np.clip(1.5 - np.abs(4.0 * (values - centres)), 0.0, 1.0)
    return (rgb * 255).round().astype(np.uint8)


def heatmap_overlay(frame: np.ndarray, attention_map: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """A frame with an attention map (scaled to its own min..max) blended over it, resized to `size` (w, h)."""
    low, high = float(attention_map.min()), float(attention_map.max())
    scaled = (attention_map - low) / (high - low) if high > low else np.zeros_like(attention_map)
    smooth = Image.fromarray(scaled.astype(np.float32), mode="F").resize(size, Image.BILINEAR)
    heat = Image.fromarray(jet_colormap(np.asarray(smooth)))
    base = Image.fromarray(frame).resize(size, Image.BILINEAR)
    return Image.blend(base, heat, HEATMAP_OPACITY)


def _describe(predictions: list[dict[str, Any]]) -> str:
    if not predictions:
        return ""
    best = predictions[0]
    return f"{best['label']} ({100 * best['score']:.0f}%)"


def render_explanation(explanation: AttentionExplanation, tile_size: int = 160, title: str | None = None) -> Image.Image:
    """
    Draws the Figure 4-style picture: the frames, then CLIP's and OmniCLIP's heat maps, one column per frame.

    The size is [`explanation_figure_size`]: `ROW_LABEL_WIDTH + num_frames * tile_width` by
    `HEADER_HEIGHT + 3 * tile_size` (square crops give `tile_width == tile_size`).
    """
    frames = explanation.frames
    num_frames, frame_height, frame_width = frames.shape[:3]
    width, height = explanation_figure_size(num_frames, frame_height, frame_width, tile_size)
    tile = ((width - ROW_LABEL_WIDTH) // num_frames, tile_size)
    figure = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(figure)
    font = ImageFont.load_default()

    header = title or ""
    if explanation.omniclip_predictions:
        header += (" | " if header else "") + (
            f"CLIP: {_describe(explanation.clip_predictions)} | OmniCLIP: {_describe(explanation.omniclip_predictions)}"
        )
    draw.text((4, HEADER_HEIGHT // 2), header, fill="black", font=font, anchor="lm")

    rows = (None, explanation.clip_maps, explanation.omniclip_maps)
    for row, (name, maps) in enumerate(zip(ROW_NAMES, rows)):
        top = HEADER_HEIGHT + row * tile_size
        draw.text((4, top + tile_size // 2), name, fill="black", font=font, anchor="lm")
        for index in range(num_frames):
            left = ROW_LABEL_WIDTH + index * tile[0]
            if maps is None:
                cell = Image.fromarray(frames[index]).resize(tile, Image.BILINEAR)
            else:
                cell = heatmap_overlay(frames[index], maps[index], tile)
            figure.paste(cell, (left, top))
    return figure


__all__ = [
    "AttentionExplanation",
    "cls_attention_over_patches",
    "eager_attention",
    "clip_attention_maps",
    "omniclip_attention_maps",
    "explain_video",
    "explanation_figure_size",
    "render_explanation",
    "jet_colormap",
]
