# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Where does the model look? The last layer's CLS attention over the patches, for plain CLIP and for OmniCLIP.

Reproduces the paper's Figure 4: the sampled frames in the first row, then the attention of the [CLS] token of the
last vision layer over the patch tokens as heat maps, for vanilla CLIP (each frame on its own) and for OmniCLIP (the
frames together, with its temporal adapters and prompt tokens). Both use the same frozen last layer; OmniCLIP's
tokens entering it differ, and its prompt tokens are keys too, so its patch weights need not sum to 1.

All heat maps of a figure share one colour scale, from 0 (blue) to the largest patch weight in the figure (red),
but never less than `FLAT_MAP_FLOOR` times the uniform weight 1/num_patches: the maps are softmax weights of the same
query over the same patch grid, so one scale keeps CLIP's and OmniCLIP's rows and the frames comparable, and a flat
map stays flat (and cool, not red). Each heat tile shows its patch mass (the sum of its patch weights); each frame
tile its index in the video (and time, where known). `colour_scale="tile"` scales each map to its own min..max
instead, to see the shape of a weak map.

The scores are the pipeline's (and `omniclip classify`'s): logits averaged over every view (temporal clips x spatial
crops) the processor makes. The maps show one of those views, the middle clip's centre crop, named in the header.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
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
HEADER_LINE_HEIGHT = 13  # the default 10-pixel font's line, with a little lead
# The largest tile drawn: the picture is held in memory whole, (96 + frames * tile) x (28 + 3 * tile) RGB pixels, and a
# tile of 100000 pixels had the process killed for memory with no message. 1024 is over four times CLIP's 224 crop.
MAX_TILE_SIZE = 1024
# The largest picture drawn, in pixels: the tile cap alone does not bound it, as a processor sampling by rate gives a
# long video hundreds of frames (300 frames at tile 1024 would be some 307,000 x 3,100 pixels). 64 million RGB pixels
# are 192 MB, and hold 16 frames at the largest tile.
MAX_FIGURE_PIXELS = 64_000_000
# The shared colour scale tops out at no less than this many times the uniform weight 1/num_patches. Scaled to its
# own largest weight, a flat map (every weight ~1/num_patches) is drawn all red, which reads as "attention
# everywhere"; with the floor it stays at the cool end, and only weights several times the uniform one look hot.
FLAT_MAP_FLOOR = 4.0
COLOUR_SCALES = ("shared", "tile")  # one scale for every heat map of the figure, or each map its own min..max


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
def clip_view_embeddings(model: nn.Module, views: torch.Tensor) -> torch.Tensor:
    """Plain CLIP's frame-averaged image embedding of each view: `(num_views, T, 3, H, W)` -> `(num_views, dim)`."""
    image_size = model.config.vision_config.image_size
    frames = views.flatten(0, 1)
    outputs = model.clip.vision_model(
        pixel_values=frames, interpolate_pos_encoding=tuple(frames.shape[-2:]) != (image_size, image_size)
    )
    frame_embeds = model.clip.visual_projection(outputs.pooler_output)
    return frame_embeds.unflatten(0, views.shape[:2]).mean(dim=1)


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
        patch_size (`int`, *optional*):
            The model's patch size in frame pixels. When a frame's side is not a multiple of it, the patches cover
            only its top-left `grid * patch_size` pixels (the rest never reaches the model) and the maps are drawn
            there; `None` stretches the maps over the whole frame.
        num_views (`int`, *optional*, defaults to 1):
            The views (temporal clips x spatial crops) the predictions average their logits over, as the pipeline does.
        shown_view (`str`, *optional*):
            Which of those views the frames and maps show (`"clip 1/2, centre crop"`); `None` for a single view.
        frame_indices, frame_times (`list`, *optional*):
            Each shown frame's index in the video, and its time in seconds where the video has a frame rate.
    """

    frames: np.ndarray
    clip_maps: np.ndarray
    omniclip_maps: np.ndarray
    clip_predictions: list[dict[str, Any]] = field(default_factory=list)
    omniclip_predictions: list[dict[str, Any]] = field(default_factory=list)
    patch_size: int | None = None
    num_views: int = 1
    shown_view: str | None = None
    frame_indices: list[int] | None = None
    frame_times: list[float] | None = None

    @property
    def clip_patch_mass(self) -> np.ndarray:
        """`(num_frames,)`: the share of CLIP's CLS attention on the patches (the rest is on CLS itself)."""
        return self.clip_maps.reshape(len(self.clip_maps), -1).sum(axis=1)

    @property
    def omniclip_patch_mass(self) -> np.ndarray:
        """`(num_frames,)`: the share of OmniCLIP's CLS attention on the patches (the rest is on CLS and prompts)."""
        return self.omniclip_maps.reshape(len(self.omniclip_maps), -1).sum(axis=1)

    @property
    def largest_weight(self) -> float:
        """The largest patch weight of either row."""
        return float(max(self.clip_maps.max(), self.omniclip_maps.max()))

    @property
    def flat_map_weight(self) -> float:
        """`FLAT_MAP_FLOOR` times the uniform weight 1/num_patches: the least top of the shared colour scale."""
        return FLAT_MAP_FLOOR / (self.clip_maps.shape[-2] * self.clip_maps.shape[-1])

    @property
    def shared_colour_range(self) -> tuple[float, float]:
        """`(0, largest patch weight of either row)`, the colour scale shared by every heat map of the figure; its top
        is at least `flat_map_weight`, so near-flat maps are drawn cool rather than saturated red."""
        return 0.0, max(self.largest_weight, self.flat_map_weight)

    @property
    def maps_are_flat(self) -> bool:
        """Whether no patch weight reaches `flat_map_weight` (the colour scale's top is then the floor)."""
        return self.largest_weight < self.flat_map_weight


def _unnormalise(pixel_values: torch.Tensor, video_processor: Any) -> np.ndarray:
    """Processed `(T, 3, H, W)` frames back to `(T, H, W, 3)` uint8 for display, undoing only the steps the
    processor applied (normalisation with its mean and std, rescaling by its factor)."""
    pixels = pixel_values.float().cpu()
    if getattr(video_processor, "do_normalize", True):
        mean = torch.tensor(video_processor.image_mean, dtype=torch.float32).reshape(-1, 1, 1)
        std = torch.tensor(video_processor.image_std, dtype=torch.float32).reshape(-1, 1, 1)
        pixels = pixels * std + mean
    if getattr(video_processor, "do_rescale", True):
        pixels = pixels / float(video_processor.rescale_factor)
    elif pixels.max() <= 1:
        pixels = pixels * 255  # float frames in [0, 1], which the processor takes as already rescaled
    return pixels.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _view_grid(video_processor: Any, num_views: int) -> tuple[int, int]:
    """`(temporal clips, spatial crops)` of a video's `num_views` views, clip-major as the processor orders them."""
    crops = getattr(video_processor, "num_spatial_crops", 1) or 1
    clips = getattr(video_processor, "num_temporal_clips", 1) or 1
    return (clips, crops) if clips * crops == num_views else (num_views, 1)


def _shown_view(video_processor: Any, num_views: int) -> tuple[int, int, str | None]:
    """The view the maps show: the middle temporal clip's centre crop. Returns its index among the views, its
    clip's index, and its name (`None` for a single view)."""
    clips, crops = _view_grid(video_processor, num_views)
    clip = (clips - 1) // 2
    centre = crops // 2  # one crop is the centre crop; of three (left/top, centre, right/bottom), the second
    if num_views == 1:
        return 0, 0, None
    crop_name = "centre crop" if getattr(video_processor, "do_center_crop", True) else "whole frame"
    return clip * crops + centre, clip, f"clip {clip + 1}/{clips}, {crop_name}"


def _shown_frame_positions(metadata: Any, clip: int) -> tuple[list[int] | None, list[float] | None]:
    """The shown clip's frame indices in the video, and their times in seconds where the video has a frame rate."""
    indices = getattr(metadata, "frames_indices", None)
    if not indices or clip >= len(indices):
        return None, None
    try:
        times = [float(time) for time in metadata.timestamps[clip]]
    except (ValueError, AttributeError, TypeError, IndexError):
        times = None  # in-memory frames without a frame rate
    return [int(index) for index in indices[clip]], times


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
    text_embeds: torch.Tensor | None = None,
) -> AttentionExplanation:
    r"""
    Samples a video as the processor does and computes the attention maps of plain CLIP and of OmniCLIP on one of its
    views (and, with labels, both models' predictions over all of its views, as the pipeline scores them).

    Args:
        model ([`OmniCLIPModel`]):
            The model (its frozen CLIP gives the plain-CLIP row).
        video_processor ([`OmniCLIPVideoProcessor`]):
            Decodes and samples the video with its own settings. With several views (`num_temporal_clips`,
            `num_spatial_crops`), the predictions average the logits over all of them, as the zero-shot pipeline
            and `omniclip classify` do, and the maps show the middle clip's centre crop.
        video:
            Anything the video processor reads (a path, bytes, an array, frames).
        candidate_labels (`list[str]`, *optional*):
            Labels to score; needs `tokenizer`.
        tokenizer (*optional*):
            CLIP's tokenizer.
        hypothesis_template (`str`, *optional*):
            Prompt template; defaults to the model config's `text_template`.
        text_embeds (`torch.Tensor` of shape `(num_labels, projection_dim)`, *optional*):
            The labels' text embeddings, already computed and checked (the zero-shot pipeline's
            `text_embeddings(candidate_labels, hypothesis_template)`, as `omniclip explain` passes them); without
            them the labels are tokenized here with `tokenizer` (a `UserWarning` names a label cut to CLIP's context)
            and refused when two tokenize alike.

    Returns:
        [`AttentionExplanation`].
    """
    # The processor's own views (no overrides), so the scores are the pipeline's for the same video.
    batch = video_processor(video, do_augment=False, return_metadata=True, return_tensors="pt")
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    pixel_values = batch["pixel_values_videos"].to(device=device, dtype=dtype)
    views = pixel_values.reshape(-1, *pixel_values.shape[-4:])  # (num_views, T, 3, H, W)
    shown_index, shown_clip, shown_name = _shown_view(video_processor, len(views))
    shown = views[shown_index : shown_index + 1]

    clip_maps, _ = clip_attention_maps(model, shown)
    omniclip_maps, _ = omniclip_attention_maps(model, shown)

    clip_predictions: list[dict[str, Any]] = []
    omniclip_predictions: list[dict[str, Any]] = []
    if candidate_labels:
        if text_embeds is None:
            text_embeds = _label_text_embeddings(model, tokenizer, candidate_labels, hypothesis_template, device)
        text_embeds = text_embeds.to(device=device)
        clip_logits = model.similarity_logits(clip_view_embeddings(model, views), text_embeds).mean(dim=0)
        clip_predictions = _ranked(clip_logits, candidate_labels)
        # The pipeline's own call (`_video_logits`): multi-view input has its logits averaged over the views.
        omniclip_logits = model(pixel_values_videos=pixel_values, text_embeds=text_embeds).logits_per_video
        omniclip_predictions = _ranked(omniclip_logits, candidate_labels)

    metadata = batch.get("video_metadata")
    frame_indices, frame_times = _shown_frame_positions(metadata[0] if metadata else None, shown_clip)
    return AttentionExplanation(
        frames=_unnormalise(shown[0], video_processor),
        clip_maps=clip_maps.float().cpu().numpy(),
        omniclip_maps=omniclip_maps.float().cpu().numpy(),
        clip_predictions=clip_predictions,
        omniclip_predictions=omniclip_predictions,
        patch_size=model.config.vision_config.patch_size,
        num_views=len(views),
        shown_view=shown_name,
        frame_indices=frame_indices,
        frame_times=frame_times,
    )


def _label_text_embeddings(model, tokenizer, labels, hypothesis_template, device) -> torch.Tensor:
    """Text embeddings of the labels in the template; labels whose prompts tokenize alike are refused (ValueError)."""
    from .pipeline_omniclip import check_distinct_prompts
    from .processing_omniclip import tokenize_label_prompts

    if tokenizer is None:
        raise ValueError("explain_video needs the tokenizer (or text_embeds) to score candidate_labels.")
    template = hypothesis_template or model.config.text_template
    prompts = [template.format(label) for label in labels]
    max_length = model.config.text_config.max_position_embeddings
    # Warns naming a label cut to CLIP's context; stacklevel 5 points past explain_video and its no_grad wrapper.
    text_inputs, full_ids = tokenize_label_prompts(tokenizer, labels, prompts, max_length, stacklevel=5)
    read = [ids[mask.bool()].tolist() for ids, mask in zip(text_inputs["input_ids"], text_inputs["attention_mask"])]
    check_distinct_prompts(tuple(labels), template, read, full_input_ids=full_ids)
    text_inputs = text_inputs.to(device)
    return model.get_text_features(text_inputs["input_ids"], text_inputs["attention_mask"]).pooler_output


# ----------------------------------------------------------------------------------------------------------------
# Drawing (PIL only)
# ----------------------------------------------------------------------------------------------------------------
def explanation_figure_size(
    num_frames: int, frame_height: int, frame_width: int, tile_size: int, header_height: int = HEADER_HEIGHT
) -> tuple[int, int]:
    """`(width, height)` in pixels of the figure [`render_explanation`] draws: tiles `tile_size` high, under a
    header `header_height` high (taller than `HEADER_HEIGHT` only when the header text needs more than two lines)."""
    tile_width = max(1, round(tile_size * frame_width / frame_height))
    return ROW_LABEL_WIDTH + num_frames * tile_width, header_height + len(ROW_NAMES) * tile_size


def jet_colormap(values: np.ndarray) -> np.ndarray:
    """Maps values in [0, 1] to RGB uint8 with the classic "jet" ramp (blue, cyan, yellow, red)."""
    values = np.clip(values, 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25])  # where red, green and blue peak
    rgb = np.clip(1.5 - np.abs(4.0 * (values - centres)), 0.0, 1.0)
    return (rgb * 255).round().astype(np.uint8)


def covered_size(frame_shape: tuple[int, int], grid: tuple[int, int], patch_size: int | None, size: tuple[int, int]):
    """`(width, height)` of the part of a `size` (w, h) tile the patches cover: a frame `(height, width)` whose
    sides are not multiples of `patch_size` has a strip on the right and at the bottom that no patch reads."""
    if patch_size is None:
        return size
    height, width = frame_shape
    covered_height, covered_width = min(height, grid[0] * patch_size), min(width, grid[1] * patch_size)
    return (max(1, round(size[0] * covered_width / width)), max(1, round(size[1] * covered_height / height)))


def heatmap_overlay(
    frame: np.ndarray,
    attention_map: np.ndarray,
    size: tuple[int, int],
    value_range: tuple[float, float] | None = None,
    patch_size: int | None = None,
) -> Image.Image:
    """
    A frame with an attention map blended over it, resized to `size` (w, h).

    `value_range` `(low, high)` maps to the ends of the colour ramp (blue, red); the default is `(0, the map's
    largest weight)`, so the colour is proportional to the weight and a flat map is drawn flat. With `patch_size`,
    the map covers only the pixels its patches read (`grid * patch_size` from the top left); the others show the
    frame alone.
    """
    low, high = value_range if value_range is not None else (0.0, float(attention_map.max()))
    scaled = (attention_map - low) / (high - low) if high > low else np.zeros_like(attention_map)
    base = Image.fromarray(frame).resize(size, Image.BILINEAR)
    covered = covered_size(frame.shape[:2], attention_map.shape, patch_size, size)
    smooth = Image.fromarray(scaled.astype(np.float32), mode="F").resize(covered, Image.BILINEAR)
    heat = Image.fromarray(jet_colormap(np.asarray(smooth)))
    box = (0, 0, *covered)
    base.paste(Image.blend(base.crop(box), heat, HEATMAP_OPACITY), box)
    return base


def _describe(predictions: list[dict[str, Any]]) -> str:
    if not predictions:
        return ""
    best = predictions[0]
    return f"{best['label']} ({100 * best['score']:.0f}%)"


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: Any) -> float:
    return draw.textlength(text, font=font)


def wrap_header(text: str, width: int, draw: ImageDraw.ImageDraw, font: Any) -> list[str]:
    """The header in lines at most `width` pixels wide, broken between words (a word wider than a line is cut)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if current and _text_width(draw, candidate, font) > width:
            lines.append(current)
            candidate = word
        current = candidate
        while len(current) > 1 and _text_width(draw, current, font) > width:  # a word wider than a line
            cut = max(1, int(len(current) * width / _text_width(draw, current, font)))
            while cut > 1 and _text_width(draw, current[:cut], font) > width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    if current:
        lines.append(current)
    return lines


def views_text(explanation: AttentionExplanation) -> str:
    """What the scores average over and which view the maps show, e.g. `scores of 6 views, maps of clip 1/2,
    centre crop`; empty for a single view."""
    if explanation.num_views == 1:
        return ""
    return f"scores of {explanation.num_views} views, maps of {explanation.shown_view}"


def header_text(explanation: AttentionExplanation, title: str | None) -> str:
    parts = [title] if title else []
    if explanation.omniclip_predictions:
        parts.append(
            f"CLIP: {_describe(explanation.clip_predictions)} | OmniCLIP: {_describe(explanation.omniclip_predictions)}"
        )
    if views_text(explanation):
        parts.append(views_text(explanation))
    return " | ".join(parts)


def frame_caption(explanation: AttentionExplanation, index: int) -> str | None:
    """The text on a frame tile: the frame's index in the video, and its time where known (`#12 0.48s`)."""
    if explanation.frame_indices is None or index >= len(explanation.frame_indices):
        return None
    caption = f"#{explanation.frame_indices[index]}"
    if explanation.frame_times is not None and index < len(explanation.frame_times):
        caption += f" {explanation.frame_times[index]:.2f}s"
    return caption


def colour_ranges(explanation: AttentionExplanation, colour_scale: str = "shared") -> list[list[tuple[float, float]]]:
    """`(low, high)` of each heat map, row by row (CLIP, OmniCLIP): the figure's shared scale, or each map's own."""
    if colour_scale not in COLOUR_SCALES:
        raise ValueError(f"colour_scale={colour_scale!r} is not one of {', '.join(map(repr, COLOUR_SCALES))}.")
    rows = (explanation.clip_maps, explanation.omniclip_maps)
    if colour_scale == "tile":
        return [[(float(m.min()), float(m.max())) for m in maps] for maps in rows]
    return [[explanation.shared_colour_range] * len(maps) for maps in rows]


def _label_box(draw: ImageDraw.ImageDraw, position: tuple[int, int], text: str, font: Any, tile: tuple[int, int]):
    """`text` on a white box at the bottom left of a tile at `position`, when it fits the tile."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    width, height = right - left + 4, bottom - top + 4
    if width > tile[0] or 2 * height > tile[1]:
        return
    x, y = position[0], position[1] + tile[1] - height
    draw.rectangle((x, y, x + width - 1, y + height - 1), fill="white")
    draw.text((x + 2 - left, y + 2 - top), text, fill="black", font=font)


def check_tile_size(tile_size: int) -> None:
    """Refuses, in one line, a tile size that draws nothing or a picture too large to hold in memory."""
    if not 1 <= tile_size <= MAX_TILE_SIZE:
        raise ValueError(f"tile_size={tile_size} is out of range: use 1 to {MAX_TILE_SIZE} pixels.")


def largest_tile_size_within_budget(num_frames: int, frame_height: int, frame_width: int) -> int:
    """The largest tile size (at most `MAX_TILE_SIZE`) whose figure has at most `MAX_FIGURE_PIXELS` pixels; 0 when
    even 1-pixel tiles are too many."""
    def pixels(tile_size: int) -> int:
        width, height = explanation_figure_size(num_frames, frame_height, frame_width, tile_size)
        return width * height

    low, high = 0, MAX_TILE_SIZE  # pixels() grows with the tile: the largest fitting one by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if pixels(middle) <= MAX_FIGURE_PIXELS:
            low = middle
        else:
            high = middle - 1
    return low


def figure_too_large(num_frames: int, frame_height: int, frame_width: int, tile_size: int,
                     header_height: int = HEADER_HEIGHT) -> str | None:
    """Why a figure of `num_frames` frames at `tile_size` is refused (its pixels over `MAX_FIGURE_PIXELS`), as the
    end of a sentence that starts with the tile size's name; `None` when it fits."""
    width, height = explanation_figure_size(num_frames, frame_height, frame_width, tile_size, header_height)
    if width * height <= MAX_FIGURE_PIXELS:
        return None
    fitting = largest_tile_size_within_budget(num_frames, frame_height, frame_width)
    advice = f"use {fitting} or less" if fitting >= 1 else "a processor sampling fewer frames is needed"
    return (f"draws {num_frames} frames as a {width:,}x{height:,}-pixel picture, over the {MAX_FIGURE_PIXELS:,}-pixel "
            f"limit of a picture held in memory: {advice}.")


def render_explanation(
    explanation: AttentionExplanation,
    tile_size: int = 160,
    title: str | None = None,
    colour_scale: str = "shared",
) -> Image.Image:
    """
    Draws the Figure 4-style picture: the frames, then CLIP's and OmniCLIP's heat maps, one column per frame.

    The size is [`explanation_figure_size`]: `ROW_LABEL_WIDTH + num_frames * tile_width` by
    `header + 3 * tile_size` (square crops give `tile_width == tile_size`; the header is `HEADER_HEIGHT`, two lines,
    and grows when its text wraps to more).

    `colour_scale="shared"` (the default) colours every heat map on one scale, from 0 (blue) to the largest patch
    weight in the figure (red; at least `FLAT_MAP_FLOOR` times the uniform weight), written under the row names;
    `"tile"` scales each map to its own min..max. Each heat tile shows its patch mass, the sum of its patch weights
    (CLIP's rest is on CLS, OmniCLIP's also on its prompts), and each frame tile the frame's index (and time), where
    the tile is wide enough. `tile_size` is 1 to `MAX_TILE_SIZE` (1024) pixels and the picture at most
    `MAX_FIGURE_PIXELS`, else a `ValueError`: the picture is drawn in memory.
    """
    check_tile_size(tile_size)
    ranges = colour_ranges(explanation, colour_scale)
    frames = explanation.frames
    num_frames, frame_height, frame_width = frames.shape[:3]
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width, _ = explanation_figure_size(num_frames, frame_height, frame_width, tile_size)
    lines = wrap_header(header_text(explanation, title), width - 8, measure, font)
    header_height = max(HEADER_HEIGHT, len(lines) * HEADER_LINE_HEIGHT + 2)
    too_large = figure_too_large(num_frames, frame_height, frame_width, tile_size, header_height)
    if too_large:
        raise ValueError(f"tile_size={tile_size} {too_large}")
    width, height = explanation_figure_size(num_frames, frame_height, frame_width, tile_size, header_height)
    tile = ((width - ROW_LABEL_WIDTH) // num_frames, tile_size)
    figure = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(figure)

    first = (header_height - len(lines) * HEADER_LINE_HEIGHT) // 2 + HEADER_LINE_HEIGHT // 2
    for index, line in enumerate(lines):
        draw.text((4, first + index * HEADER_LINE_HEIGHT), line, fill="black", font=font, anchor="lm")

    masses = (None, explanation.clip_patch_mass, explanation.omniclip_patch_mass)
    rows = (None, explanation.clip_maps, explanation.omniclip_maps)
    for row, (name, maps) in enumerate(zip(ROW_NAMES, rows)):
        top = header_height + row * tile_size
        if maps is not None and tile_size >= 3 * HEADER_LINE_HEIGHT:
            scale = f"0-{ranges[0][0][1]:.3g}" if colour_scale == "shared" else "own min-max"
            draw.text((4, top + tile_size // 2 - HEADER_LINE_HEIGHT // 2), name, fill="black", font=font, anchor="lm")
            draw.text((4, top + tile_size // 2 + HEADER_LINE_HEIGHT // 2), f"colour {scale}", fill="gray",
                      font=font, anchor="lm")
        else:
            draw.text((4, top + tile_size // 2), name, fill="black", font=font, anchor="lm")
        for index in range(num_frames):
            left = ROW_LABEL_WIDTH + index * tile[0]
            if maps is None:
                cell = Image.fromarray(frames[index]).resize(tile, Image.BILINEAR)
            else:
                cell = heatmap_overlay(frames[index], maps[index], tile, ranges[row - 1][index], explanation.patch_size)
            figure.paste(cell, (left, top))
            caption = frame_caption(explanation, index) if maps is None else f"{masses[row][index]:.2f}"
            if caption:
                _label_box(draw, (left, top), caption, font, tile)
    return figure


def describe_explanation(explanation: AttentionExplanation, colour_scale: str = "shared") -> list[str]:
    """Lines for a terminal: the colour scale, and each frame's patch mass and largest patch weight per model."""
    if colour_scale == "shared":
        scale = f"colour scale: 0 (blue) to {explanation.shared_colour_range[1]:.4g} (red), shared by every heat map"
        if explanation.maps_are_flat:
            scale += (f"; the maps are flat (no weight reaches {FLAT_MAP_FLOOR:g}x the uniform 1/"
                      f"{explanation.clip_maps[0].size}), so the scale tops out there")
    else:
        scale = "colour scale: each heat map its own min (blue) to max (red)"
    lines = [scale]
    if explanation.num_views > 1:
        lines.append(f"views: the scores average the logits of {explanation.num_views} views, as classify does; the "
                     f"maps show {explanation.shown_view}")
    if explanation.frame_indices is not None:
        times = "" if explanation.frame_times is None else " at " + " ".join(
            f"{time:.2f}" for time in explanation.frame_times) + " s"
        lines.append("frames: " + " ".join(map(str, explanation.frame_indices)) + times)
    lines += [
        "patch mass (sum of the CLS attention on the patches; CLIP's rest is on CLS, OmniCLIP's on CLS and its "
        "prompt tokens) and largest patch weight, frame by frame:",
    ]
    for name, maps, mass in (("CLIP", explanation.clip_maps, explanation.clip_patch_mass),
                             ("OmniCLIP", explanation.omniclip_maps, explanation.omniclip_patch_mass)):
        largest = maps.reshape(len(maps), -1).max(axis=1)
        lines.append(f"  {name:<9} mass " + " ".join(f"{value:.3f}" for value in mass))
        lines.append(f"  {'':<9} max  " + " ".join(f"{value:.3f}" for value in largest))
    return lines


def save_png_atomically(figure: Image.Image, path: str | os.PathLike) -> None:
    """Writes `figure` as a PNG under a temporary name in the same folder, then renames it to `path`: a failure
    or a kill leaves no half-written picture (and an older one in place). The file gets the mode `open()` would give."""
    from .atomic_writes import ordinary_file_mode

    path = Path(path)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".partial-{path.name}.", suffix=".png")
    try:
        with os.fdopen(handle, "wb") as stream:
            figure.save(stream, format="PNG")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(partial, ordinary_file_mode())  # mkstemp makes 0600 files, which the rename would keep
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


__all__ = [
    "AttentionExplanation",
    "COLOUR_SCALES",
    "cls_attention_over_patches",
    "eager_attention",
    "clip_attention_maps",
    "omniclip_attention_maps",
    "explain_video",
    "explanation_figure_size",
    "figure_too_large",
    "describe_explanation",
    "heatmap_overlay",
    "render_explanation",
    "save_png_atomically",
    "jet_colormap",
]
