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
`attention_figure` draws the figure.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn


# The shared colour scale tops out at no less than this many times the uniform weight 1/num_patches. Scaled to its
# own largest weight, a flat map (every weight ~1/num_patches) is drawn all red, which reads as "attention
# everywhere"; with the floor it stays at the cool end, and only weights several times the uniform one look hot.
FLAT_MAP_FLOOR = 4.0


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


__all__ = [
    "AttentionExplanation",
    "cls_attention_over_patches",
    "eager_attention",
    "clip_attention_maps",
    "omniclip_attention_maps",
    "explain_video",
]
