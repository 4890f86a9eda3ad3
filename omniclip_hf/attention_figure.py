# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Drawing an [`AttentionExplanation`] (`omniclip explain`): the sampled frames, then CLIP's and OmniCLIP's heat maps
of the last layer's CLS attention, one tile a frame, under a header with the scores; and its lines on stdout.

Only PIL: the figure is a grid of tiles with a few words on it, which needs no plotting library. The maps themselves
come from `attention_maps`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .attention_maps import AttentionExplanation, FLAT_MAP_FLOOR


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
COLOUR_SCALES = ("shared", "tile")  # one scale for every heat map of the figure, or each map its own min..max


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
    "COLOUR_SCALES",
    "explanation_figure_size",
    "figure_too_large",
    "describe_explanation",
    "heatmap_overlay",
    "render_explanation",
    "save_png_atomically",
    "jet_colormap",
]
