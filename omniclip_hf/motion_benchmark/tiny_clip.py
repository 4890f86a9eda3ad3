# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""A stand-in for pretrained CLIP, made here in about two minutes on two CPU cores.

OmniCLIP adapts a frozen *pretrained* image-text model. No pretrained CLIP can be downloaded offline, so this module
pretrains a tiny one the way CLIP was made: contrastive image-caption training (symmetric InfoNCE) on synthetic single
frames drawn with the motion set's own renderer and background textures (`omniclip_hf.motion_benchmark.motion_data`), captioned from a
template grammar ("a small red triangle at the top left"), tokenized with the real CLIP tokenizer shipped in
`omniclip_hf/tokenizer/`. The result is saved as an ordinary `CLIPModel` folder (model, tokenizer, image processor),
which OmniCLIP loads and freezes exactly as it would `openai/clip-vit-base-patch16`.

Some (colour, shape) combinations never appear in training; zero-shot accuracy is measured on fresh frames of those
held-out combinations, per attribute (position, size, colour, shape), by choosing among captions that differ only in
that attribute.

Imports only torch, transformers, numpy, PIL and `omniclip_hf.motion_benchmark.motion_data` (not the OmniCLIP model code).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from ..atomic_writes import write_folder_atomically
from .motion_data import COLOURS, SHAPES, ObjectState, make_background, render_frame

# ----------------------------------------------------------------------------------------------------------------------
# Caption grammar: "a {size} {colour} {shape} {where}"
# ----------------------------------------------------------------------------------------------------------------------

# Position words for a 3x3 grid of the frame: (column, row) -> phrase.
POSITIONS: dict[tuple[int, int], str] = {
    (0, 0): "at the top left", (1, 0): "at the top", (2, 0): "at the top right",
    (0, 1): "on the left", (1, 1): "in the centre", (2, 1): "on the right",
    (0, 2): "at the bottom left", (1, 2): "at the bottom", (2, 2): "at the bottom right",
}
POSITION_NAMES: tuple[str, ...] = tuple(POSITIONS.values())

# Size words -> range of object extent (fraction of frame side). Covers the motion set's 0.10-0.55.
SIZES: dict[str, tuple[float, float]] = {"small": (0.10, 0.21), "medium": (0.21, 0.33), "large": (0.33, 0.55)}
SIZE_NAMES: tuple[str, ...] = tuple(SIZES)
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
SHAPE_NAMES: tuple[str, ...] = SHAPES

ATTRIBUTES: tuple[str, ...] = ("position", "size", "colour", "shape")
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {"position": POSITION_NAMES, "size": SIZE_NAMES,
                                                "colour": COLOUR_NAMES, "shape": SHAPE_NAMES}

METRICS_FILE = "pretrain_metrics.json"

# Every name `save_tiny_clip` writes, across transformers versions (older ones add the slow tokenizer's files). A
# folder holding only these, `METRICS_FILE` among them, is an earlier tiny CLIP: a rerun (the demo's, into
# `demo_output/tiny_clip`) replaces it whole. Anything else in a folder is someone's model or data, never written into.
TINY_CLIP_ENTRIES = frozenset({
    "config.json", "model.safetensors", "pytorch_model.bin", "preprocessor_config.json", "tokenizer.json",
    "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json", "added_tokens.json", METRICS_FILE,
})


def default_tokenizer_path() -> Path:
    """CLIP's real BPE tokenizer shipped inside the package (found relative to this file, no package import)."""
    return Path(__file__).resolve().parents[1] / "tokenizer"


# The start and end (and padding) token ids `make_tiny_clip_config` gives the text model: CLIP's. The text model
# pools at the end token, and its embedding table holds `len(tokenizer)` rows, so a tokenizer with other ids gave an
# IndexError deep inside torch, or an end token it never pooled at.
CLIP_BOS_TOKEN_ID, CLIP_EOS_TOKEN_ID = 49406, 49407


def load_tokenizer(tokenizer_path: Optional[str | Path]) -> CLIPTokenizer:
    """CLIP's tokenizer from `tokenizer_path` (the --tokenizer flag; None: the package's copy), checked before any
    training: a missing folder was taken for a Hub id (and reported as a failure to save), and a folder without
    tokenizer files loaded as an empty tokenizer whose ids the text model's embedding cannot hold."""
    if tokenizer_path is None:
        return CLIPTokenizer.from_pretrained(str(default_tokenizer_path()))
    folder = Path(tokenizer_path)
    if not folder.is_dir():
        raise ValueError(f"--tokenizer {folder}: {'not a folder' if folder.exists() else 'no such folder'}; give a "
                         "CLIP tokenizer folder (vocab.json and merges.txt, or tokenizer.json)")
    if not ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()) \
            and not (folder / "tokenizer.json").is_file():
        raise ValueError(f"--tokenizer {folder}: holds neither vocab.json and merges.txt nor tokenizer.json; give a "
                         "CLIP tokenizer folder")
    try:
        tokenizer = CLIPTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"--tokenizer {folder}: cannot be loaded as a CLIP tokenizer ({error})") from error
    ids = (tokenizer.bos_token_id, tokenizer.eos_token_id)
    if ids != (CLIP_BOS_TOKEN_ID, CLIP_EOS_TOKEN_ID) or len(tokenizer) <= CLIP_EOS_TOKEN_ID:
        raise ValueError(f"--tokenizer {folder}: its vocabulary ({len(tokenizer)} tokens, start and end token ids "
                         f"{ids[0]} and {ids[1]}) does not fit the tiny CLIP's text model (start and end ids "
                         f"{CLIP_BOS_TOKEN_ID} and {CLIP_EOS_TOKEN_ID}); give CLIP's tokenizer")
    return tokenizer


def caption(size: str, colour: str, shape: str, position: str) -> str:
    return f"a {size} {colour} {shape} {position}"


def is_heldout_combination(colour: str, shape: str) -> bool:
    """One (colour, shape) combination in five never appears in training (a diagonal, so every colour and every shape
    still appears with the other four shapes / most colours)."""
    return (COLOUR_NAMES.index(colour) + SHAPE_NAMES.index(shape)) % 5 == 0


@dataclass(frozen=True)
class FrameCaption:
    size: str
    colour: str
    shape: str
    position: str

    def text(self) -> str:
        return caption(self.size, self.colour, self.shape, self.position)

    def get(self, attribute: str) -> str:
        return getattr(self, attribute)

    def replace(self, attribute: str, value: str) -> "FrameCaption":
        return FrameCaption(**{**self.__dict__, attribute: value})


def all_captions() -> list[FrameCaption]:
    """Every caption of the grammar (3 sizes x 8 colours x 5 shapes x 9 positions = 1080)."""
    return [FrameCaption(s, c, sh, p) for s in SIZE_NAMES for c in COLOUR_NAMES for sh in SHAPE_NAMES
            for p in POSITION_NAMES]


# ----------------------------------------------------------------------------------------------------------------------
# Synthetic captioned frames
# ----------------------------------------------------------------------------------------------------------------------


def sample_colour_shape(rng: np.random.Generator, heldout: bool) -> tuple[str, str]:
    """A (colour, shape) combination from the training set (`heldout=False`) or the held-out one."""
    while True:
        colour, shape = str(rng.choice(COLOUR_NAMES)), str(rng.choice(SHAPE_NAMES))
        if is_heldout_combination(colour, shape) == heldout:
            return colour, shape


def sample_captioned_frame(rng: np.random.Generator, backgrounds: Sequence[np.ndarray], heldout: bool,
                           colour_shape: Optional[tuple[str, str]] = None,
                           size_name: Optional[str] = None) -> tuple[np.ndarray, FrameCaption]:
    """One frame (uint8 HxWx3) with one object, and its caption.

    Size and position are continuous (the caption names the bin they fall in), angles are random, so the encoder
    learns where and how big objects are in the same renderer and textures as the motion clips. `heldout` picks the
    (colour, shape) combinations kept out of training; `colour_shape` and `size_name` fix those attributes instead.
    """
    colour, shape = sample_colour_shape(rng, heldout) if colour_shape is None else colour_shape
    size_name = str(rng.choice(SIZE_NAMES)) if size_name is None else size_name
    size = float(rng.uniform(*SIZES[size_name]))
    column, row = int(rng.integers(0, 3)), int(rng.integers(0, 3))
    # Centre uniform within its third of the frame, pulled in so the object stays mostly inside the frame.
    low, high = size / 2 * 0.8, 1 - size / 2 * 0.8
    x = float(np.clip(rng.uniform(column / 3, (column + 1) / 3), low, high))
    y = float(np.clip(rng.uniform(row / 3, (row + 1) / 3), low, high))
    state = ObjectState(shape=shape, colour=colour, center=(x, y), size=size, angle=float(rng.uniform(0, 360)))
    background = backgrounds[int(rng.integers(0, len(backgrounds)))]
    return render_frame(state, background), FrameCaption(size_name, colour, shape, POSITIONS[(column, row)])


def sample_training_batch(rng: np.random.Generator, backgrounds: Sequence[np.ndarray], batch_size: int,
                          group_size: int) -> list[tuple[np.ndarray, FrameCaption]]:
    """Training frames in groups of `group_size` that share colour and shape but not size, position, angle or
    background.

    Why: in a batch of unrelated frames, colour alone tells most captions apart, so contrastive training learns colour
    first and position last. Inside a group only size and position separate the captions (hard negatives), so the
    encoder must learn where and how big the object is, which the motion set needs; colour and shape are still
    contrasted across groups. (Measured, 200 steps x 64 frames, held-out combinations: groups sharing colour and
    shape gave position 86.8% / size 75.5%; groups also sharing the size word gave 81.5% / 57.7%.)
    """
    frames: list[tuple[np.ndarray, FrameCaption]] = []
    while len(frames) < batch_size:
        colour_shape = sample_colour_shape(rng, heldout=False)
        for _ in range(min(group_size, batch_size - len(frames))):
            frames.append(sample_captioned_frame(rng, backgrounds, heldout=False, colour_shape=colour_shape))
    return frames


def make_background_bank(rng: np.random.Generator, count: int, image_size: int) -> list[np.ndarray]:
    """Pre-drawn backgrounds (drawing one costs more than drawing a shape), reused across frames."""
    return [make_background(int(seed), image_size) for seed in rng.integers(0, 2**31 - 1, size=count)]


def frames_to_pixel_values(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalized float (N, 3, H, W), the same numbers `CLIPImageProcessor` produces for
    frames already at the model's size (rescale 1/255, OpenAI mean/std)."""
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


# ----------------------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------------------


def make_tiny_clip_config(image_size: int = 64, patch_size: int = 8, width: int = 128, layers: int = 4,
                          heads: int = 4, projection_dim: int = 128, vocab_size: int = 49408) -> CLIPConfig:
    """A small CLIP with the real tokenizer's vocabulary and 77-token context."""
    if image_size < 16 or image_size % patch_size:
        raise ValueError(f"image_size must be >= 16 and a multiple of patch_size={patch_size}, got {image_size}")
    text_config = dict(vocab_size=vocab_size, hidden_size=width, intermediate_size=4 * width,
                       num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77,
                       bos_token_id=CLIP_BOS_TOKEN_ID, eos_token_id=CLIP_EOS_TOKEN_ID, pad_token_id=CLIP_EOS_TOKEN_ID)
    vision_config = dict(image_size=image_size, patch_size=patch_size, hidden_size=width,
                         intermediate_size=4 * width, num_hidden_layers=layers, num_attention_heads=heads)
    return CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=projection_dim)


def sincos_position_embeddings(grid: int, width: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine table (as in MAE) for a `grid` x `grid` patch layout, plus a zero row for the class token:
    (1 + grid*grid, width). Half the channels encode the column, half the row."""
    if width % 4:
        raise ValueError(f"width must be a multiple of 4 for 2-D sine-cosine embeddings, got {width}")
    quarter = width // 4
    frequencies = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    rows, columns = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32),
                                   indexing="ij")

    def encode(coordinate: torch.Tensor) -> torch.Tensor:
        angles = coordinate.reshape(-1, 1) * frequencies
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    table = torch.cat([encode(columns), encode(rows)], dim=1)
    return torch.cat([torch.zeros(1, width), table])


def init_vision_for_localization(model: CLIPModel, query_key_scale: float = 4.0) -> None:
    """Initialisation that lets a from-scratch ViT learn *where* an object is within a couple of minutes.

    Measured here (supervised 9-way position of a white square on black, 64x64, patch 8, batch 64): with the default
    init the class token stayed at chance for 100 steps, because (1) position embeddings start at std 0.02, tiny next
    to the patch content, and (2) attention starts uniform, so moving one patch changes the class token by ~3e-4.
    With the position embeddings started from a 2-D sine-cosine table and query/key weights scaled by 4 (sharper,
    content-dependent attention from the start) it reached ~80% after 50 steps. The text tower gets the same
    query/key scaling: its end-of-text token must single out the position words. Everything stays learnable; only the
    starting point changes, and the saved model is an ordinary `CLIPModel`.
    """
    embeddings = model.vision_model.embeddings
    grid = embeddings.config.image_size // embeddings.config.patch_size
    with torch.no_grad():
        embeddings.position_embedding.weight.copy_(sincos_position_embeddings(grid, embeddings.embed_dim))
        for layer in [*model.vision_model.encoder.layers, *model.text_model.encoder.layers]:
            layer.self_attn.q_proj.weight.mul_(query_key_scale)
            layer.self_attn.k_proj.weight.mul_(query_key_scale)


def _pooled(output) -> torch.Tensor:
    # transformers 5 returns a model output whose pooler_output is the projected embedding; older versions a tensor.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def image_embeddings(model: CLIPModel, pixel_values: torch.Tensor) -> torch.Tensor:
    return F.normalize(_pooled(model.get_image_features(pixel_values=pixel_values)), dim=-1)


def text_embeddings(model: CLIPModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    return F.normalize(_pooled(model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)), dim=-1)


class CaptionTokens:
    """Every caption of the grammar tokenized once; rows are looked up by caption text."""

    def __init__(self, tokenizer: CLIPTokenizer):
        self.texts = [c.text() for c in all_captions()]
        self.row = {text: i for i, text in enumerate(self.texts)}
        encoded = tokenizer(self.texts, padding=True, return_tensors="pt")
        self.input_ids, self.attention_mask = encoded["input_ids"], encoded["attention_mask"]

    def rows(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.tensor([self.row[t] for t in texts])


def contrastive_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, caption_index: torch.Tensor,
                     logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where a batch may hold several images of the same caption.

    `text_emb` holds the batch's distinct captions; `caption_index[i]` is image i's caption. Image -> text is plain
    cross-entropy; text -> image spreads the target evenly over all images of that caption (they are all positives,
    not negatives as `CLIPModel(return_loss=True)` would count them).
    """
    logits = logit_scale.exp().clamp(max=100) * image_emb @ text_emb.t()  # (images, distinct captions)
    image_to_text = F.cross_entropy(logits, caption_index)
    positives = F.one_hot(caption_index, num_classes=text_emb.shape[0]).t().float()  # (captions, images)
    text_to_image = F.cross_entropy(logits.t(), positives / positives.sum(dim=1, keepdim=True))
    return (image_to_text + text_to_image) / 2


# ----------------------------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate_zero_shot(model: CLIPModel, tokens: CaptionTokens, frames: np.ndarray,
                       captions: Sequence[FrameCaption]) -> dict[str, float]:
    """Per-attribute zero-shot accuracy: for each frame, pick among the captions that differ from its true caption only
    in that attribute (e.g. 9 positions); also `caption` = the right one among all 1080 captions."""
    model.eval()
    all_text = text_embeddings(model, tokens.input_ids, tokens.attention_mask)  # (1080, d)
    images = torch.cat([image_embeddings(model, frames_to_pixel_values(frames[i:i + 256]))
                        for i in range(0, len(frames), 256)])
    scores = images @ all_text.t()  # (frames, 1080)
    truth = tokens.rows([c.text() for c in captions])
    accuracy = {"caption": (scores.argmax(dim=1) == truth).float().mean().item()}
    for attribute in ATTRIBUTES:
        values = ATTRIBUTE_VALUES[attribute]
        candidates = torch.stack([tokens.rows([c.replace(attribute, v).text() for v in values]) for c in captions])
        choice = scores.gather(1, candidates).argmax(dim=1)
        correct = torch.tensor([values.index(c.get(attribute)) for c in captions])
        accuracy[attribute] = (choice == correct).float().mean().item()
    return accuracy


def chance_levels() -> dict[str, float]:
    return {"caption": 1 / len(all_captions()), **{a: 1 / len(v) for a, v in ATTRIBUTE_VALUES.items()}}


def make_eval_set(seed: int, count: int, image_size: int, heldout: bool) -> tuple[np.ndarray, list[FrameCaption]]:
    """Fresh frames on backgrounds never used in training (own seed stream)."""
    rng = np.random.default_rng([seed, 7919, int(heldout)])
    backgrounds = make_background_bank(rng, 64, image_size)
    pairs = [sample_captioned_frame(rng, backgrounds, heldout=heldout) for _ in range(count)]
    return np.stack([p[0] for p in pairs]), [p[1] for p in pairs]


# ----------------------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------------------


def idle_cpu_threads() -> int:
    """Threads worth using now: the cores not already busy (1-minute load average), at least 1, at most torch's default.

    On a shared machine two torch threads competing with other jobs ran a training step 5-7x slower than one thread
    (measured here: 2 threads ~6 s/step, 1 thread ~1 s/step while another job used both cores).
    """
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on every platform
        return torch.get_num_threads()
    idle = int((os.cpu_count() or 1) - busy + 0.5)
    return max(1, min(torch.get_num_threads(), idle))


def _learning_rate(step: int, total_steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def pretrain_tiny_clip(output_dir: str | Path, steps: int = 200, max_seconds: Optional[float] = None,
                       seed: int = 0, image_size: int = 64, batch_size: int = 64, group_size: int = 8,
                       learning_rate: float = 1e-3, text_warmup_fraction: float = 0.4,
                       tokenizer_path: Optional[str | Path] = None, eval_images: int = 1000, num_threads: int = 0,
                       log_every: int = 20, verbose: bool = True) -> dict:
    """Pretrain, evaluate and save a tiny CLIP; returns the metrics written to `output_dir/pretrain_metrics.json`.

    Training stops after `steps` steps, or earlier after `max_seconds` of training if given (the learning-rate
    schedule is laid out over `steps`). No cap by default: a cap makes the stand-in, and every result built on it,
    depend on how fast and how busy the machine is (200 steps took 198 s on a busy core, over the 150 s cap the
    demo used to set).

    For the first `text_warmup_fraction` of the steps the text tower is frozen at its random init. Why: at init the
    image embeddings barely differ (cosine ~0.99 between frames) while random text embeddings of captions that differ
    only in position already differ (cosine ~0.7). Trained jointly from the start, the text tower learns to ignore
    the position words faster than the image tower learns to see position, and position stayed at chance (measured:
    200 steps, 9.5% vs 11.1% chance). Against fixed, distinct text targets the image tower learns position first, as
    in supervised training; then both towers train together.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be at least 2 (contrastive needs negatives), got {batch_size}")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32, got {image_size}")
    if not 0.0 <= text_warmup_fraction < 1.0:
        raise ValueError(f"text_warmup_fraction must be in [0, 1), got {text_warmup_fraction}")
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    if eval_images < 1:
        raise ValueError(f"eval_images must be at least 1, got {eval_images}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    check_output_dir(Path(output_dir))  # before minutes of training, not after them
    start_time = time.time()
    tokenizer = load_tokenizer(tokenizer_path)  # a bad --tokenizer before training, not an IndexError inside it
    threads = num_threads if num_threads > 0 else idle_cpu_threads()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _pretrain(output_dir, steps, max_seconds, seed, image_size, batch_size, group_size, learning_rate,
                         text_warmup_fraction, tokenizer, eval_images, threads, log_every, verbose, start_time)
    finally:
        torch.set_num_threads(previous_threads)  # callers (the demo) train other models in the same process


def _pretrain(output_dir, steps, max_seconds, seed, image_size, batch_size, group_size, learning_rate,
              text_warmup_fraction, tokenizer, eval_images, threads, log_every, verbose, start_time) -> dict:
    if verbose:
        print(f"pretraining a tiny CLIP on {threads} CPU thread(s), {steps} steps x {batch_size} frames", flush=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    output_dir = Path(output_dir)

    tokens = CaptionTokens(tokenizer)
    model = CLIPModel(make_tiny_clip_config(image_size=image_size, vocab_size=len(tokenizer)))
    init_vision_for_localization(model)
    text_parameters = [*model.text_model.parameters(), *model.text_projection.parameters()]
    text_ids = {id(p) for p in text_parameters}
    other_parameters = [p for p in model.parameters() if id(p) not in text_ids]
    optimizer = torch.optim.AdamW([{"params": other_parameters, "name": "image"},
                                   {"params": text_parameters, "name": "text"}], lr=learning_rate, weight_decay=0.05)
    text_frozen_steps = int(round(text_warmup_fraction * steps))
    backgrounds = make_background_bank(rng, 512, image_size)

    losses: list[float] = []
    train_start = time.time()
    model.train()
    for step in range(steps):
        pairs = sample_training_batch(rng, backgrounds, batch_size, group_size)
        texts = [p[1].text() for p in pairs]
        distinct = sorted(set(texts))
        caption_index = torch.tensor([distinct.index(t) for t in texts])
        rows = tokens.rows(distinct)
        ids, mask = tokens.input_ids[rows], tokens.attention_mask[rows]
        keep = int(mask.sum(dim=1).max())  # drop padding columns no caption in this batch needs
        image_emb = image_embeddings(model, frames_to_pixel_values(np.stack([p[0] for p in pairs])))
        text_frozen = step < text_frozen_steps  # see `text_warmup_fraction`
        with torch.set_grad_enabled(not text_frozen):
            text_emb = text_embeddings(model, ids[:, :keep], mask[:, :keep])
        loss = contrastive_loss(image_emb, text_emb, caption_index, model.logit_scale)

        lr = _learning_rate(step, steps, learning_rate, warmup=max(1, steps // 10))
        for group in optimizer.param_groups:
            group["lr"] = 0.0 if group["name"] == "text" and text_frozen else lr
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if verbose and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:4d}/{steps}  loss {loss.item():.3f}  {time.time() - train_start:5.1f}s", flush=True)
        if max_seconds is not None and time.time() - train_start > max_seconds:
            if verbose:
                print(f"stopping after {step + 1} steps: --max_seconds {max_seconds} reached", flush=True)
            break
    train_seconds = time.time() - train_start

    heldout_frames, heldout_captions = make_eval_set(seed, eval_images, image_size, heldout=True)
    seen_frames, seen_captions = make_eval_set(seed, eval_images, image_size, heldout=False)
    metrics = {
        "zero_shot_heldout_combinations": evaluate_zero_shot(model, tokens, heldout_frames, heldout_captions),
        "zero_shot_seen_combinations_fresh_frames": evaluate_zero_shot(model, tokens, seen_frames, seen_captions),
        "chance": chance_levels(),
        "steps_done": len(losses),
        "steps_planned": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "group_size": group_size,
        "text_frozen_steps": text_frozen_steps,
        "torch_threads": threads,
        "first_loss": losses[0],
        "final_loss": float(np.mean(losses[-10:])),
        "loss_curve_every_10_steps": [round(float(np.mean(losses[i:i + 10])), 4) for i in range(0, len(losses), 10)],
        "train_seconds": round(train_seconds, 1),
        "eval_images_per_set": eval_images,
        "seed": seed,
        "image_size": image_size,
        "caption_example": caption("small", "red", "triangle", "at the top left"),
        "heldout_combinations": sorted(f"{c} {s}" for c in COLOUR_NAMES for s in SHAPE_NAMES
                                       if is_heldout_combination(c, s)),
    }
    metrics["total_seconds"] = round(time.time() - start_time, 1)
    save_tiny_clip(model, tokenizer, output_dir, image_size, metrics)
    return metrics


# ----------------------------------------------------------------------------------------------------------------------
# The output folder
# ----------------------------------------------------------------------------------------------------------------------


def _not_an_earlier_tiny_clip(folder: Path) -> Optional[str]:
    """Why the non-empty `folder` is not a tiny CLIP an earlier run saved, or None when it is one."""
    others = sorted(entry.name for entry in folder.iterdir() if entry.name not in TINY_CLIP_ENTRIES)
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        return f"holds files a tiny CLIP does not ({shown})"
    if not (folder / METRICS_FILE).is_file():
        return f"has no {METRICS_FILE}: it is not a tiny CLIP this script saved"
    try:
        model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        model_type = None
    if model_type != "clip":
        return "its config.json is not a CLIP's"
    return None


def check_output_dir(output_dir: Path) -> None:
    """
    Refuses a file at or above `output_dir`, and a non-empty folder other than an earlier tiny CLIP (which is replaced
    whole): saving into another model's folder would leave a mix of the two models' files. The rule of
    `omniclip init --out` and `make_motion_dataset.py --output_dir`, checked before training as they check before
    writing.
    """
    for folder in (output_dir, *output_dir.parents):
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"--output_dir {output_dir}: {folder} is a file; give a folder.")
    if not output_dir.is_dir() or not any(output_dir.iterdir()):
        return
    why = _not_an_earlier_tiny_clip(output_dir)
    if why is not None:
        raise ValueError(f"--output_dir {output_dir} is not empty and {why}: give a new folder (saving into it would "
                         "mix two models).")


def save_tiny_clip(model: CLIPModel, tokenizer: CLIPTokenizer, output_dir: str | Path, image_size: int,
                   metrics: Optional[dict] = None) -> None:
    """
    An ordinary CLIP checkpoint folder: `CLIPModel`, `CLIPTokenizer`, `CLIPImageProcessor` (so `CLIPProcessor`), and
    `metrics` as `METRICS_FILE` when given.

    Written in a temporary folder beside `output_dir` and renamed into place when complete, so an interrupted save
    leaves the earlier folder (or none), never half of a model. `output_dir` must be absent, empty or an earlier
    tiny CLIP (`check_output_dir`), checked again here: something may have been put there during training.
    """
    output_dir = Path(output_dir)
    check_output_dir(output_dir)

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        CLIPImageProcessor(size={"shortest_edge": image_size},
                           crop_size={"height": image_size, "width": image_size}).save_pretrained(staging)
        if metrics is not None:
            (staging / METRICS_FILE).write_text(json.dumps(metrics, indent=1))

    write_folder_atomically(output_dir, write)


def format_metrics(metrics: dict) -> str:
    chance = metrics["chance"]
    lines = [f"trained {metrics['steps_done']} steps x {metrics['batch_size']} frames in "
             f"{metrics['train_seconds']}s; loss {metrics['first_loss']:.3f} -> {metrics['final_loss']:.3f}"]
    for name in ("zero_shot_heldout_combinations", "zero_shot_seen_combinations_fresh_frames"):
        scores = metrics[name]
        lines.append(f"{name}: " + ", ".join(f"{k} {scores[k]:.1%} (chance {chance[k]:.1%})" for k in scores))
    return "\n".join(lines)


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="demo_output/tiny_clip", help="where the CLIP folder is saved")
    parser.add_argument("--steps", type=int, default=200, help="training steps (the schedule spans them)")
    parser.add_argument("--max_seconds", type=float, default=None,
                        help="stop training early after this many seconds (default: no limit, so the result does "
                             "not depend on the machine's speed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--group_size", type=int, default=8,
                        help="frames per batch group sharing colour and shape (hard negatives for size/position)")
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--text_warmup_fraction", type=float, default=0.4,
                        help="fraction of the steps during which the text tower stays frozen at its random init")
    parser.add_argument("--eval_images", type=int, default=1000, help="frames per zero-shot evaluation set")
    parser.add_argument("--tokenizer", default=None, help="CLIP tokenizer folder (default: the package's copy)")
    parser.add_argument("--num_threads", type=int, default=0,
                        help="torch threads (0: the cores not already busy, see idle_cpu_threads)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = build_arg_parser().parse_args(argv)
    metrics = pretrain_tiny_clip(args.output_dir, steps=args.steps, max_seconds=args.max_seconds, seed=args.seed,
                                 image_size=args.image_size, batch_size=args.batch_size, group_size=args.group_size,
                                 learning_rate=args.learning_rate, text_warmup_fraction=args.text_warmup_fraction,
                                 tokenizer_path=args.tokenizer,
                                 eval_images=args.eval_images, num_threads=args.num_threads)
    print(format_metrics(metrics))
    print(f"saved CLIP folder (model, tokenizer, image processor, {METRICS_FILE}) to {args.output_dir}")
    return metrics


__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_VALUES",
    "COLOUR_NAMES",
    "CaptionTokens",
    "FrameCaption",
    "METRICS_FILE",
    "POSITIONS",
    "POSITION_NAMES",
    "SHAPE_NAMES",
    "SIZES",
    "SIZE_NAMES",
    "TINY_CLIP_ENTRIES",
    "all_captions",
    "caption",
    "chance_levels",
    "check_output_dir",
    "contrastive_loss",
    "default_tokenizer_path",
    "evaluate_zero_shot",
    "format_metrics",
    "frames_to_pixel_values",
    "idle_cpu_threads",
    "image_embeddings",
    "init_vision_for_localization",
    "is_heldout_combination",
    "load_tokenizer",
    "main",
    "make_background_bank",
    "make_eval_set",
    "make_tiny_clip_config",
    "pretrain_tiny_clip",
    "sample_captioned_frame",
    "sample_colour_shape",
    "sample_training_batch",
    "save_tiny_clip",
    "sincos_position_embeddings",
    "text_embeddings",
]
