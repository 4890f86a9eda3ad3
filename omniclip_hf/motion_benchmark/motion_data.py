# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""A synthetic video set where only the order of frames tells the classes apart.

Every class has a partner that is its time reversal (moving left / moving right, moving up / moving down,
approaching / receding, appearing / disappearing, rotating clockwise / rotating anticlockwise). A clip and its time
reversal contain the same frames, so any model that ignores frame order (for example frame-averaged CLIP) gives both
the same answer and cannot beat 50% on a reversal pair; a model that really models time can reach 100%.

Time-reversal symmetry holds by construction:

* A clip is described by a `ClipParams` record holding the object's start and end state (centre, size, angle,
  opacity); frame `t` of `T` interpolates between them with weights that are symmetric under `t -> T - 1 - t`, so
  rendering the record with start and end swapped gives exactly the same frames in reverse order (bit for bit).
* Each pair has one "forward" member with a sampler; the other member's clips are the forward sampler's records with
  start and end swapped (`ClipParams.time_reversed`). So the distribution of a class's clips played backwards *is*
  the distribution of its partner's clips.
* `write_motion_dataset` draws clip `i` of both members of a pair from the same seed, so every clip in the written set
  has its exact time-reversed twin in the partner class, and the mp4 encoding (H.264 intra-only at a constant
  quantiser) compresses every frame on its own, so the decoded twin is still exactly the reversed decoded clip.

Only numpy, PIL, PyAV and the standard library are used here (no model code), so the generator can be imported on its
own: `from omniclip_hf.motion_benchmark.motion_data import write_motion_dataset`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import av
import numpy as np
from PIL import Image, ImageDraw

# ----------------------------------------------------------------------------------------------------------------------
# Vocabulary shared with the tiny CLIP pretraining (omniclip_hf/motion_benchmark/tiny_clip.py), so its captions name
# what is drawn here.
# ----------------------------------------------------------------------------------------------------------------------

# Saturated colours that stand out from the muted, mid-grey backgrounds below.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (30, 185, 60),
    "blue": (35, 85, 235),
    "yellow": (245, 220, 30),
    "purple": (155, 50, 210),
    "orange": (250, 140, 20),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "arrow")

# Shapes that look different after any rotation short of a full turn, so the direction of rotation is visible.
ROTATION_SHAPES: tuple[str, ...] = ("triangle", "arrow")

# Reversal pairs as (forward class, its time reversal). The forward member owns the parameter sampler.
REVERSAL_PAIRS: tuple[tuple[str, str], ...] = (
    ("moving right", "moving left"),
    ("moving down", "moving up"),
    ("approaching", "receding"),
    ("rotating clockwise", "rotating anticlockwise"),
    ("appearing", "disappearing"),
)

# Label order of the written set: natural English names that read well in "a video of {} action".
CLASS_NAMES: tuple[str, ...] = (
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "approaching",
    "receding",
    "appearing",
    "disappearing",
    "rotating clockwise",
    "rotating anticlockwise",
)

# class -> its time-reversed class, both directions.
REVERSED_CLASS: dict[str, str] = {**{a: b for a, b in REVERSAL_PAIRS}, **{b: a for a, b in REVERSAL_PAIRS}}

SPLITS: tuple[str, ...] = ("train", "test")
MIN_FRAME_SIZE = 32  # below this a moving object is only a few pixels and the motion is hard to see
SUPERSAMPLING = 4  # shapes are drawn at 4x and box-filtered down, so sub-pixel motion stays smooth
LABELS_FILE = "labels.txt"
INFO_FILE = "dataset_info.json"
# The "name" of every `INFO_FILE` written here: the mark of a folder this package wrote, which a rerun may replace.
MOTION_SET_NAME = "omniclip synthetic motion set"


# ----------------------------------------------------------------------------------------------------------------------
# Parameter records
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectState:
    """The object on one frame. Coordinates are fractions of the frame side, x to the right, y downwards."""

    shape: str
    colour: str
    center: tuple[float, float]
    size: float  # extent of the shape (diameter of a circle) as a fraction of the frame side
    angle: float  # degrees; increasing angle turns the shape clockwise on screen (y points down)
    opacity: float = 1.0  # 0: invisible, 1: solid


@dataclass(frozen=True)
class ClipParams:
    """Everything that determines one clip: the object's start and end state, its look and the background."""

    motion: str  # class name, one of CLASS_NAMES
    shape: str
    colour: str
    background_seed: int
    start_center: tuple[float, float]
    end_center: tuple[float, float]
    start_size: float
    end_size: float
    start_angle: float
    end_angle: float
    start_opacity: float = 1.0
    end_opacity: float = 1.0

    def time_reversed(self) -> "ClipParams":
        """The same clip played backwards: start and end swapped, labelled with the partner class."""
        return dataclasses.replace(
            self,
            motion=REVERSED_CLASS[self.motion],
            start_center=self.end_center,
            end_center=self.start_center,
            start_size=self.end_size,
            end_size=self.start_size,
            start_angle=self.end_angle,
            end_angle=self.start_angle,
            start_opacity=self.end_opacity,
            end_opacity=self.start_opacity,
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _symmetric_mix(start: float, end: float, t: int, num_frames: int) -> float:
    # (start * (T-1-t) + end * t) / (T-1): swapping start/end and t -> T-1-t gives the same floating-point sum
    # (addition is commutative), which is what makes reversed rendering bit-exact.
    last = num_frames - 1
    return (start * (last - t) + end * t) / last


def object_state(params: ClipParams, t: int, num_frames: int) -> ObjectState:
    """State of the object on frame `t` of `num_frames`: linear in position and angle, geometric in size."""
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    center = (
        _symmetric_mix(params.start_center[0], params.end_center[0], t, num_frames),
        _symmetric_mix(params.start_center[1], params.end_center[1], t, num_frames),
    )
    # Geometric interpolation: constant relative growth per frame, how an approaching object's image grows.
    size = math.exp(_symmetric_mix(math.log(params.start_size), math.log(params.end_size), t, num_frames))
    angle = _symmetric_mix(params.start_angle, params.end_angle, t, num_frames)
    opacity = _symmetric_mix(params.start_opacity, params.end_opacity, t, num_frames)
    return ObjectState(shape=params.shape, colour=params.colour, center=center, size=size, angle=angle,
                       opacity=opacity)


# ----------------------------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------------------------


def _shape_outline(shape: str) -> list[tuple[float, float]]:
    """Polygon of a shape with unit radius around (0, 0), at angle 0."""
    if shape == "square":
        h = 0.8  # a square of half-side 0.8 has about the area of a unit circle
        return [(-h, -h), (h, -h), (h, h), (-h, h)]
    if shape == "triangle":
        # Tall isosceles triangle: only a full turn maps it onto itself, so its rotation direction is visible.
        return [(0.0, -1.0), (0.75, 0.8), (-0.75, 0.8)]
    if shape == "cross":
        w = 0.33
        return [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w),
                (-w, -w)]
    if shape == "arrow":
        s, head, neck = 0.25, 0.65, 0.1  # shaft half-width, head half-width, where the head starts
        return [(-1, -s), (neck, -s), (neck, -head), (1, 0), (neck, head), (neck, s), (-1, s)]
    raise ValueError(f"unknown polygon shape {shape!r}; known shapes: {SHAPES}")


def shape_polygon(state: ObjectState, frame_size: int) -> list[tuple[float, float]]:
    """Vertices of the object in pixel coordinates of a `frame_size` frame (rotation by computed vertices)."""
    radius = state.size * frame_size / 2
    cx, cy = state.center[0] * frame_size, state.center[1] * frame_size
    theta = math.radians(state.angle)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    return [(cx + radius * (x * cos_t - y * sin_t), cy + radius * (x * sin_t + y * cos_t))
            for x, y in _shape_outline(state.shape)]


def render_object_mask(state: ObjectState, frame_size: int) -> np.ndarray:
    """Anti-aliased coverage of the object, float32 (frame_size, frame_size) in [0, 1]."""
    if state.shape not in SHAPES:
        raise ValueError(f"unknown shape {state.shape!r}; known shapes: {SHAPES}")
    big = frame_size * SUPERSAMPLING
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    if state.shape == "circle":
        radius = state.size * big / 2
        cx, cy = state.center[0] * big, state.center[1] * big
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
    else:
        draw.polygon([(x * SUPERSAMPLING, y * SUPERSAMPLING) for x, y in shape_polygon(state, frame_size)], fill=255)
    small = canvas.resize((frame_size, frame_size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _smooth_noise(rng: np.random.Generator, grid: int, size: int, channels: int) -> np.ndarray:
    """Low-frequency noise: a coarse random grid upsampled bicubically to (size, size, channels)."""
    coarse = rng.normal(0.0, 1.0, (channels, grid, grid)).astype(np.float32)
    planes = [np.asarray(Image.fromarray(c, mode="F").resize((size, size), Image.Resampling.BICUBIC)) for c in coarse]
    return np.stack(planes, axis=-1)


def make_background(seed: int, size: int) -> np.ndarray:
    """A static textured background, float32 (size, size, 3), muted colours in [35, 205].

    Texture = tinted grey base + smooth colour blotches + one of stripes / checks / plain + fine grain. It is drawn in
    frame-fraction units, so the same seed gives the same look at any size. It never moves, so it carries no
    temporal information and is the same in a clip and its reversal.
    """
    rng = np.random.default_rng(seed)
    base = rng.uniform(75, 165) + rng.uniform(-20, 20, size=3)
    texture = np.zeros((size, size, 3), np.float32) + base.astype(np.float32)
    texture += rng.uniform(8, 28) * _smooth_noise(rng, int(rng.integers(3, 8)), size, 3)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = np.meshgrid(coords, coords)
    pattern = rng.choice(["stripes", "checks", "plain"])
    if pattern == "stripes":
        direction = rng.uniform(0, math.pi)
        freq = rng.uniform(2, 7)  # cycles across the frame
        wave = np.sin(2 * math.pi * freq * (x * math.cos(direction) + y * math.sin(direction)) + rng.uniform(0, 6.3))
        texture += (rng.uniform(8, 22) * wave)[..., None]
    elif pattern == "checks":
        freq = rng.uniform(2, 6)
        phase_x, phase_y = rng.uniform(0, 6.3, size=2)
        checks = np.sign(np.sin(2 * math.pi * freq * x + phase_x) * np.sin(2 * math.pi * freq * y + phase_y))
        texture += (rng.uniform(6, 16) * checks)[..., None]
    texture += rng.normal(0, 4, size=(size, size, 3)).astype(np.float32)  # static grain
    return np.clip(texture, 35, 205).astype(np.float32)


def render_frame(state: ObjectState, background: np.ndarray) -> np.ndarray:
    """Composite the object over a background from `make_background`; uint8 (H, W, 3)."""
    size = background.shape[0]
    alpha = render_object_mask(state, size)[..., None] * np.float32(state.opacity)
    colour = np.asarray(COLOURS[state.colour], dtype=np.float32)
    frame = background * (1.0 - alpha) + colour * alpha
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def render_clip(params: ClipParams, num_frames: int = 8, size: int = 64) -> np.ndarray:
    """Render a clip as uint8 (num_frames, size, size, 3)."""
    _check_frames_and_size(num_frames, size)
    background = make_background(params.background_seed, size)
    return np.stack([render_frame(object_state(params, t, num_frames), background) for t in range(num_frames)])


# ----------------------------------------------------------------------------------------------------------------------
# Sampling parameter records
# ----------------------------------------------------------------------------------------------------------------------


def _sample_look(rng: np.random.Generator, shapes: Sequence[str]) -> tuple[str, str, int]:
    shape = str(rng.choice(list(shapes)))
    colour = str(rng.choice(list(COLOURS)))
    background_seed = int(rng.integers(0, 2**31 - 1))
    return shape, colour, background_seed


def _sample_center(rng: np.random.Generator, margin: float) -> tuple[float, float]:
    """A centre at least `margin` from every edge, so the object stays inside the frame."""
    return float(rng.uniform(margin, 1 - margin)), float(rng.uniform(margin, 1 - margin))


def _sample_still_object(rng: np.random.Generator, shapes: Sequence[str], min_size: float,
                         max_size: float) -> tuple[str, str, int, float, tuple[float, float]]:
    """Look, size and a centre that keeps the whole object in frame, for an object that stays where it is."""
    shape, colour, background_seed = _sample_look(rng, shapes)
    size = float(rng.uniform(min_size, max_size))
    return shape, colour, background_seed, size, _sample_center(rng, size / 2 + 0.02)


def _sample_translation(rng: np.random.Generator, motion: str, axis: int) -> ClipParams:
    """Object moves by 35-60% of the frame along `axis` (0: rightwards, 1: downwards), drifting slightly sideways."""
    shape, colour, background_seed = _sample_look(rng, SHAPES)
    size = float(rng.uniform(0.16, 0.28))
    margin = size / 2 + 0.03
    distance = float(rng.uniform(0.35, 0.60))
    along_start = float(rng.uniform(margin, 1 - margin - distance))
    across_start = float(rng.uniform(margin, 1 - margin))
    across_end = float(np.clip(across_start + rng.uniform(-0.05, 0.05), margin, 1 - margin))
    angle = float(rng.uniform(0, 360))
    start = [along_start, across_start]
    end = [along_start + distance, across_end]
    if axis == 1:
        start, end = start[::-1], end[::-1]
    return ClipParams(motion, shape, colour, background_seed, tuple(start), tuple(end), size, size, angle, angle)


def _sample_approach(rng: np.random.Generator, motion: str) -> ClipParams:
    """Object grows 2.2-3.2x (comes closer) in place; the partner class is the same clip shrinking."""
    shape, colour, background_seed = _sample_look(rng, SHAPES)
    start_size = float(rng.uniform(0.10, 0.17))
    end_size = start_size * float(rng.uniform(2.2, 3.2))
    margin = end_size / 2 + 0.02
    center = _sample_center(rng, margin)
    angle = float(rng.uniform(0, 360))
    return ClipParams(motion, shape, colour, background_seed, center, center, start_size, end_size, angle, angle)


def _sample_rotation(rng: np.random.Generator, motion: str) -> ClipParams:
    """A triangle or arrow turns clockwise by 120-240 degrees in place (under 45 degrees a frame at 8 frames)."""
    shape, colour, background_seed, size, center = _sample_still_object(rng, ROTATION_SHAPES, 0.34, 0.50)
    start_angle = float(rng.uniform(0, 360))
    end_angle = start_angle + float(rng.uniform(120, 240))
    return ClipParams(motion, shape, colour, background_seed, center, center, size, size, start_angle, end_angle)


def _sample_fade(rng: np.random.Generator, motion: str) -> ClipParams:
    """Object fades in where it stands, from 0-10% to full opacity; the partner class is the same clip fading out."""
    shape, colour, background_seed, size, center = _sample_still_object(rng, SHAPES, 0.18, 0.32)
    angle = float(rng.uniform(0, 360))
    return ClipParams(motion, shape, colour, background_seed, center, center, size, size, angle, angle,
                      start_opacity=float(rng.uniform(0.0, 0.1)), end_opacity=1.0)


# Forward class of each pair -> its sampler.
_FORWARD_SAMPLERS: dict[str, Callable[[np.random.Generator, str], ClipParams]] = {
    "moving right": lambda rng, motion: _sample_translation(rng, motion, axis=0),
    "moving down": lambda rng, motion: _sample_translation(rng, motion, axis=1),
    "approaching": _sample_approach,
    "rotating clockwise": _sample_rotation,
    "appearing": _sample_fade,
}


def sample_clip_params(class_name: str, rng: np.random.Generator) -> ClipParams:
    """Sample a clip of `class_name`.

    The reversed member of a pair draws from its forward partner's sampler (consuming `rng` identically) and swaps
    start and end, so equal generator states give exact time-reversed twins.
    """
    if class_name not in REVERSED_CLASS:
        raise ValueError(f"unknown class {class_name!r}; known classes: {list(CLASS_NAMES)}")
    if class_name in _FORWARD_SAMPLERS:
        return _FORWARD_SAMPLERS[class_name](rng, class_name)
    forward = REVERSED_CLASS[class_name]
    return _FORWARD_SAMPLERS[forward](rng, forward).time_reversed()


# ----------------------------------------------------------------------------------------------------------------------
# Video files
# ----------------------------------------------------------------------------------------------------------------------


def default_video_codec() -> str:
    """`libx264` when PyAV's bundled ffmpeg has it, else `mpeg4`."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video(path: str | Path, frames: np.ndarray, fps: int = 8, codec: Optional[str] = None, qp: int = 10) -> None:
    """Write uint8 (T, H, W, 3) RGB frames to an mp4 (yuv420p).

    libx264 runs intra-only (every frame a keyframe) at a constant quantiser `qp` (10: near-lossless, small frames keep
    sharp edges). Each frame is then compressed on its own, identically wherever it sits in the clip, so a clip and its
    time reversal decode to exactly reversed frames. The mpeg4 fallback is intra-only at a high bit rate (no such
    exactness claimed).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs even frame sides, got {width}x{height}")
    codec = codec or default_video_codec()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"x264-params": f"keyint=1:qp={int(qp)}:threads=1"}
        else:
            stream.codec_context.gop_size = 1
            stream.codec_context.bit_rate = 8 * width * height * int(fps)  # ~8 bits a pixel: near-lossless
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush
            container.mux(packet)


def read_video(path: str | Path) -> np.ndarray:
    """Decode every frame of a video file to uint8 RGB (T, H, W, 3)."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


# ----------------------------------------------------------------------------------------------------------------------
# Whole data set
# ----------------------------------------------------------------------------------------------------------------------


def _check_frames_and_size(num_frames: int, size: int) -> None:
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2 (motion needs two frames), got {num_frames}")
    if size < MIN_FRAME_SIZE:
        raise ValueError(f"size must be at least {MIN_FRAME_SIZE} pixels, got {size}")
    if size % 2:
        raise ValueError(f"size must be even (yuv420p video), got {size}")


def check_classes(classes: Sequence[str]) -> list[str]:
    """`classes` as a list, or a ValueError where one is unknown, lacks its time-reversed partner or repeats (scripts
    check a --classes flag with it before they write anything)."""
    classes = list(classes)
    unknown = [c for c in classes if c not in REVERSED_CLASS]
    if unknown:
        raise ValueError(f"unknown classes {unknown}; known classes: {list(CLASS_NAMES)}")
    missing_partners = sorted({REVERSED_CLASS[c] for c in classes} - set(classes))
    if missing_partners:
        raise ValueError(f"every class needs its time-reversed partner too; missing {missing_partners}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes repeat: {classes}")
    return classes


def clip_rng(seed: int, split: str, class_name: str, index: int) -> np.random.Generator:
    """Generator for clip `index` of `class_name` in `split`.

    Both members of a reversal pair get the same stream (keyed by the pair, not the class), which makes their clips
    exact time-reversed twins; train and test get independent streams.
    """
    pair_index = next(i for i, pair in enumerate(REVERSAL_PAIRS) if class_name in pair)
    return np.random.default_rng([int(seed), SPLITS.index(split), pair_index, int(index)])


def iter_split_clips(split: str, num_per_class: int, num_frames: int = 8, size: int = 64, seed: int = 0,
                     classes: Sequence[str] = CLASS_NAMES) -> Iterator[tuple[str, int, ClipParams, np.ndarray]]:
    """Yield (class_name, index, params, frames) for every clip of one split, in memory."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if num_per_class < 1:
        raise ValueError(f"clips per class must be at least 1, got {num_per_class}")
    _check_frames_and_size(num_frames, size)
    for class_name in check_classes(classes):
        for index in range(num_per_class):
            params = sample_clip_params(class_name, clip_rng(seed, split, class_name, index))
            yield class_name, index, params, render_clip(params, num_frames, size)


def write_motion_dataset(out_dir: str | Path, num_train_per_class: int = 40, num_test_per_class: int = 10,
                         num_frames: int = 8, size: int = 64, seed: int = 0, fps: int = 8,
                         classes: Sequence[str] = CLASS_NAMES, codec: Optional[str] = None,
                         progress: bool = False) -> dict:
    """Write the motion set as mp4 files and return its description (also saved as `dataset_info.json`).

    Layout::

        out_dir/labels.txt                      one class name a line; line i is label i
        out_dir/dataset_info.json               classes, reversal pairs, settings, every file with label and params
        out_dir/train/<class name>/<00000>.mp4  folder names are the class names exactly as in labels.txt
        out_dir/test/<class name>/<00000>.mp4
    """
    if num_train_per_class < 1 or num_test_per_class < 1:
        raise ValueError(f"clips per class must be at least 1, got train={num_train_per_class}, "
                         f"test={num_test_per_class}")
    if fps < 1:
        raise ValueError(f"fps must be at least 1, got {fps}")
    _check_frames_and_size(num_frames, size)
    classes = check_classes(classes)
    codec = codec or default_video_codec()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / LABELS_FILE).write_text("".join(f"{name}\n" for name in classes))

    counts = {"train": num_train_per_class, "test": num_test_per_class}
    files: dict[str, list[dict]] = {split: [] for split in SPLITS}
    total = len(classes) * sum(counts.values())
    bar = _progress_bar(total, progress)
    for split in SPLITS:
        for class_name, index, params, frames in iter_split_clips(split, counts[split], num_frames, size, seed,
                                                                  classes):
            relative = Path(split) / class_name / f"{index:05d}.mp4"
            (out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            write_video(out_dir / relative, frames, fps=fps, codec=codec)
            files[split].append({"path": relative.as_posix(), "label": classes.index(class_name),
                                 "class_name": class_name, "params": params.to_dict()})
            bar.update(1)
    bar.close()

    info = {
        "name": MOTION_SET_NAME,
        "classes": classes,
        "reversal_pairs": {name: REVERSED_CLASS[name] for name in classes},
        "prompt_template": "a video of {} action",
        "time_reversal_symmetric": True,
        "twins": "clip i of a class is clip i of its reversal partner played backwards (same seed, start/end swapped)",
        "settings": {"num_train_per_class": num_train_per_class, "num_test_per_class": num_test_per_class,
                     "num_frames": num_frames, "size": size, "fps": fps, "seed": seed, "codec": codec,
                     "pix_fmt": "yuv420p", "encoding": "intra-only, constant qp=10" if codec == "libx264" else
                     "intra-only, high bit rate"},
        "splits": {split: {"num_clips": len(files[split]), "files": files[split]} for split in SPLITS},
    }
    (out_dir / INFO_FILE).write_text(json.dumps(info, indent=1))
    return info


def _progress_bar(total: int, enabled: bool):
    """tqdm bar when asked for (and installed); otherwise a no-op with the same two methods."""
    if enabled:
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, desc="writing clips", unit="clip")
        except ImportError:
            pass

    class _Silent:
        def update(self, n: int) -> None:
            pass

        def close(self) -> None:
            pass

    return _Silent()


def read_motion_set_info(folder: str | Path) -> Optional[dict]:
    """The `INFO_FILE` of a motion set `write_motion_dataset` wrote in `folder`, or None where the folder holds none
    (another data set laid out the same way, labels.txt and train/test, carries no such file)."""
    try:
        info = json.loads((Path(folder) / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("name") == MOTION_SET_NAME else None


def not_a_motion_set(folder: str | Path, unfinished: bool = False) -> Optional[str]:
    """Why the existing, non-empty `folder` is not a motion set `write_motion_dataset` wrote (and so must not be
    replaced), or None where it is one: only its entries, and its `INFO_FILE` with `MOTION_SET_NAME`.

    `unfinished` also takes a set without its `INFO_FILE` (written last) whose every file is one the writer names
    (labels.txt, `<split>/<class>/<00000>.mp4`): what an interrupted run of the versions that wrote in place left.
    """
    folder = Path(folder)
    others = sorted(entry.name for entry in folder.iterdir() if entry.name not in {LABELS_FILE, INFO_FILE, *SPLITS})
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        return f"holds files that are not a motion set ({shown})"
    if read_motion_set_info(folder) is None and not (unfinished and _holds_only_motion_set_files(folder)):
        return f"has no {INFO_FILE} naming it an {MOTION_SET_NAME}: it is a data set this package did not write"
    return None


def _holds_only_motion_set_files(folder: Path) -> bool:
    """Whether every file under `folder` has a name `write_motion_dataset` gives (a folder data set laid out the same
    way has its own class names and file names: `train/archery/v1.mp4`)."""
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if path.is_dir():
            if not (parts[0] in SPLITS and (len(parts) == 1 or len(parts) == 2 and parts[1] in REVERSED_CLASS)):
                return False
        elif parts != (LABELS_FILE,) and not (len(parts) == 3 and parts[0] in SPLITS and parts[1] in REVERSED_CLASS
                                              and path.suffix == ".mp4" and path.stem.isdigit()):
            return False
    return True


def read_labels(dataset_dir: str | Path) -> list[str]:
    """Class names of a written set, in label order."""
    return [line for line in (Path(dataset_dir) / LABELS_FILE).read_text().splitlines() if line.strip()]


__all__ = [
    "CLASS_NAMES",
    "COLOURS",
    "REVERSAL_PAIRS",
    "REVERSED_CLASS",
    "ROTATION_SHAPES",
    "SHAPES",
    "ClipParams",
    "MOTION_SET_NAME",
    "ObjectState",
    "check_classes",
    "clip_rng",
    "default_video_codec",
    "iter_split_clips",
    "make_background",
    "not_a_motion_set",
    "object_state",
    "read_labels",
    "read_motion_set_info",
    "read_video",
    "render_clip",
    "render_frame",
    "render_object_mask",
    "sample_clip_params",
    "shape_polygon",
    "write_motion_dataset",
    "write_video",
]
