# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Video processor for OmniCLIP: decodes real files, samples frames, builds multi-view clips and augments them.

Decoding lives in `video_sources` (inputs, containers), `video_decoding` (index, seeking, backends), sampling in
`video_sampling` and spatial transforms in `video_transforms`; this module holds the processor and re-exports the
names other modules import from here.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Unpack

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling
from transformers.processing_utils import VideosKwargs
from transformers.utils import logging
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata

from .video_decoding import (
    DECODER_BACKENDS,
    is_torchcodec_decoder,
    read_video_pyav,
    read_video_torchcodec,
    select_video_reader,
)
from .video_sampling import SAMPLING_STRATEGIES, sample_clip_indices
from .video_sources import (
    VIDEO_FILE_EXTENSIONS,
    _is_file_source,
    describe_source,
    is_url,
    resolve_video_source,
    split_video_batch,
    pixel_scale_of,
    video_to_tensor,
)
from .video_color_augmentation import COLOR_AUGMENTATION_SIZE
from .video_transforms import (
    check_augmentation_settings,
    check_crop_size,
    check_resize_size,
    check_size,
    finish_views,
    make_views,
    per_channel,
)


logger = logging.get_logger(__name__)

class OmniCLIPVideoProcessorKwargs(VideosKwargs, total=False):
    r"""
    sampling (`str`, *optional*, defaults to `"segment"`):
        How frames are picked: `"segment"` (TSN: `num_frames` equal segments, a random frame of each in training,
        the middle one in evaluation), `"uniform"` (evenly spaced, a random common phase in training) or `"dense"`
        (`num_frames` consecutive frames `frame_stride` apart, a random window in training, the central one in
        evaluation).
    frame_stride (`int`, *optional*, defaults to 4):
        Gap between two sampled frames for `sampling="dense"`.
    num_temporal_clips (`int`, *optional*, defaults to 1):
        Clips taken along time per video (multi-view evaluation).
    num_spatial_crops (`int`, *optional*, defaults to 1):
        1 (centre crop) or 3 (left/centre/right or top/centre/bottom crops along the long side).
    do_augment (`bool`, *optional*, defaults to `False`):
        Training mode: random sampling and the paper's augmentations (random resized crop, horizontal flip,
        colour jitter, grayscale), drawn once per clip and applied to every frame of it.
    video_backend (`str`, *optional*, defaults to `"pyav"`):
        Decoder for files and bytes: `"pyav"` or `"torchcodec"` (when installed; AVI files still go to PyAV, which
        alone counts their frames exactly). A frame folder (`examples/extract_frames.py`) is read from its JPEGs
        whatever this says.
    decoder_threading (`bool`, *optional*, defaults to `True`):
        Frame-threaded PyAV decoding for frames of VGA size and up. Turn off where every core is already busy,
        e.g. in DataLoader workers: FFmpeg's default (slice threads only) then applies.
    augment_resize_shortest_edge (`int`, *optional*, defaults to 256):
        Training first scales frames down so their short side is this long (X-CLIP's `scale_resize`, 256 for
        224 px crops), then crops; besides matching that recipe it keeps augmentation of 1080p clips cheap. 0 crops
        from the full-resolution frames.
    augment_crop_scale (`list[float]`, *optional*, defaults to `[0.08, 1.0]`):
        Area range of the random resized crop, as a fraction of the frame.
    augment_crop_ratio (`list[float]`, *optional*, defaults to `[3/4, 4/3]`):
        Aspect-ratio range of the random resized crop.
    flip_prob (`float`, *optional*, defaults to 0.5):
        Probability of a horizontal flip of the clip.
    color_jitter_prob (`float`, *optional*, defaults to 0.8):
        Probability of colour jitter of the clip.
    color_jitter (`list[float]`, *optional*, defaults to `[0.4, 0.4, 0.2, 0.1]`):
        Brightness, contrast, saturation and hue strengths of the colour jitter.
    grayscale_prob (`float`, *optional*, defaults to 0.2):
        Probability of turning the clip to grayscale (kept as 3 channels).
    generator (`torch.Generator`, *optional*):
        A call's seed for training sampling and augmentation (never saved).
    defer_color_augmentation (`bool`, *optional*, defaults to `False`):
        A call's choice (never saved) to return the views as cropped, uint8 for decoded video, with their drawn colour
        augmentation in `color_augmentation`; [`~OmniCLIPVideoProcessor.finish_views`] applies it, rescales and
        normalises, e.g. on the training GPU instead of in DataLoader workers (a quarter of the bytes to copy, and
        colour jitter was most of a frame folder's CPU time).
    """

    sampling: str | None
    frame_stride: int | None
    num_temporal_clips: int | None
    num_spatial_crops: int | None
    do_augment: bool | None
    video_backend: str | None
    decoder_threading: bool | None
    augment_resize_shortest_edge: int | None
    augment_crop_scale: list[float] | tuple[float, ...] | None
    augment_crop_ratio: list[float] | tuple[float, ...] | None
    flip_prob: float | None
    color_jitter_prob: float | None
    color_jitter: list[float] | tuple[float, ...] | None
    grayscale_prob: float | None
    generator: torch.Generator | None
    defer_color_augmentation: bool | None


# Keyword arguments a call may carry that are not saved settings (`train` and `backend` are call aliases).
_CALL_ONLY_KWARGS = ("train", "generator", "backend", "return_tensors", "defer_color_augmentation")
# Settings `_decode_and_sample_videos` needs besides the sampling function.
_DECODING_SETTINGS = ("video_backend", "decoder_threading", "num_temporal_clips")
# Settings `finish_views` applies after a deferred call.
_NORMALIZATION_SETTINGS = ("do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std")


@dataclass
class OmniCLIPVideoMetadata(VideoMetadata):
    r"""
    [`~video_utils.VideoMetadata`] of one processed video, plus where it came from and the exact frame times.

    `frames_indices` lists, for each temporal clip, the indices of its frames (a list of `num_frames` ints per clip;
    spatial crops of a clip share them). `timestamps` gives the same nesting in seconds, read from the decoded frames'
    presentation timestamps where the file has them, else `index / fps`.
    """

    source: str | None = None
    frames_timestamps: list[list[float]] | None = field(default=None, repr=False)

    @property
    def timestamps(self) -> list[list[float]]:
        if self.frames_timestamps is not None:
            return self.frames_timestamps
        if self.fps is None or self.frames_indices is None:
            raise ValueError("Cannot infer video `timestamps` when `fps` or `frames_indices` is None.")
        return [[index / self.fps for index in clip] for clip in self.frames_indices]


# ---------------------------------------------------------------------------------------------------------------------
# What the hooks hand each other
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class SampledVideo:
    """
    One video after `_decode_and_sample_videos`: its distinct sampled frames and the clips made of them. Each distinct
    frame is decoded and resized once, however many clips or repeats use it.
    """

    frames: torch.Tensor  # (U, 3, H, W): uint8 0-255, or float32 in [0, 1] (in-memory float or uint16 input)
    clip_rows: torch.Tensor  # (K, T): rows of `frames` making up each temporal clip


# The decoding settings of the current call. Base `preprocess` hands `_decode_and_sample_videos` only the videos,
# their metadata and the sampling function; the backend, decoder threads and clip count of a call reach it here
# (a context variable: safe across threads and nested calls). Outside a call, the processor's own settings apply.
_CALL_DECODING: ContextVar[dict[str, Any] | None] = ContextVar("omniclip_call_decoding", default=None)


def _metadata_per_video(video_metadata: Any, num_videos: int) -> list[dict[str, Any]]:
    """
    The `video_metadata` argument as one dict per video: None, one metadata (dict or `VideoMetadata`) for a single
    video, or a list of them. Used for in-memory videos (their frame rate); files state their own.
    """
    if video_metadata is None:
        return [{}] * num_videos
    if not isinstance(video_metadata, (list, tuple)):
        video_metadata = [video_metadata]
    if len(video_metadata) != num_videos:
        raise ValueError(f"video_metadata has {len(video_metadata)} entries for {num_videos} videos; give one per video.")
    as_dicts = []
    for entry in video_metadata:
        if entry is None:
            as_dicts.append({})
        elif isinstance(entry, dict):
            as_dicts.append(dict(entry))
        else:
            as_dicts.append({"fps": getattr(entry, "fps", None)})
    return as_dicts


def _plain_numbers(kwargs: dict[str, Any]) -> dict[str, Any]:
    """
    Settings given as numpy scalars (`num_frames=np.int64(8)`, what indexing an array gives), also inside a size dict
    or a list, as Python numbers: transformers' type checks of a call's settings take only `int` and `float`, and
    JSON cannot save numpy scalars.
    """
    return {key: _plain_number(value) for key, value in kwargs.items()}


def _plain_number(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    # Plain containers only: other classes (a dataclass-like dict, a named tuple) are passed on as they are.
    if type(value) is dict:
        return {key: _plain_number(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_plain_number(item) for item in value)
    return value


def _is_count(value: Any) -> bool:
    """An integer >= 1 (numpy integers included), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and value >= 1


def _check_device(device: Any, check_available: bool = True) -> None:
    """Raises `ValueError` naming `device` for a name torch does not know, or (`check_available`: one a call asks
    for, not a saved setting, which a folder copied to a machine without a GPU must still load with) a CUDA device
    where there is none."""
    if device is None:
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={device!r} is invalid: use 'cpu', 'cuda', 'cuda:1' (a GPU by index) or a torch.device."
        ) from None
    if check_available and parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} is not available here (no CUDA GPU is visible to torch): use device='cpu'."
        )


def _source_name(given: Any, resolved: Any) -> str | None:
    """Where a video came from, for metadata: its path or URL, the path of a datasets cell, or a short description."""
    if is_url(given):
        return given
    if isinstance(given, dict) and given.get("path") is not None:
        return str(given["path"])
    if is_torchcodec_decoder(resolved):
        return "<torchcodec VideoDecoder>"
    return describe_source(resolved) if _is_file_source(resolved) else None


class OmniCLIPVideoProcessor(BaseVideoProcessor):
    r"""
    Turns videos into OmniCLIP's `pixel_values_videos`: decodes files (PyAV, or torchcodec), samples `num_frames`
    frames per clip, resizes the short side, crops, rescales and normalises with CLIP's mean and std.

    Videos can be paths (mp4, avi, webm, mkv, mov, ...), http(s) URLs, `bytes`, binary file objects, datasets `Video`
    cells (`{"bytes", "path"}`) or torchcodec decoders, numpy arrays `(T, H, W, C)`, torch tensors `(T, C, H, W)` or
    lists of PIL images; a list of these is a batch. Still-image files are refused (pass `[PIL.Image.open(path)]` to
    score a still anyway). In-memory pixel scales are judged by dtype and range: floats in [0, 1] are not rescaled
    again (see `docs/video_processing.md`).

    Output `pixel_values_videos` is `(B, T, 3, H, W)`, or `(B, V, T, 3, H, W)` with
    `V = num_temporal_clips * num_spatial_crops` views (clip-major: the crops of clip 0 first) when `V > 1`.

    Args:
        num_frames (`int`, *optional*, defaults to 8):
            Frames per clip. Videos with fewer frames repeat frames in order.
        sampling (`str`, *optional*, defaults to `"segment"`):
            `"segment"` (TSN, the paper's), `"uniform"` or `"dense"`; see [`OmniCLIPVideoProcessorKwargs`].
        frame_stride (`int`, *optional*, defaults to 4):
            Frame gap of dense sampling.
        num_temporal_clips (`int`, *optional*, defaults to 1):
            Temporal views per video.
        num_spatial_crops (`int`, *optional*, defaults to 1):
            1 or 3 spatial views per clip.
        do_augment (`bool`, *optional*, defaults to `False`):
            Training mode (random sampling and augmentations). A call can also pass `train=True`.
        video_backend (`str`, *optional*, defaults to `"pyav"`):
            `"pyav"` or `"torchcodec"`. A call can also pass `backend=`.
        size (`dict[str, int]`, *optional*, defaults to `{"shortest_edge": 224}`):
            Resize target in evaluation.
        crop_size (`dict[str, int]`, *optional*, defaults to `{"height": 224, "width": 224}`):
            Output frame size.
        image_mean, image_std (`float` or `list[float]`, *optional*, default to CLIP's):
            Normalisation: one number for all three channels, or three.

    A call also accepts `generator` (a `torch.Generator` seeding training sampling and augmentation) and
    `return_metadata` (adds `video_metadata`: one [`OmniCLIPVideoMetadata`] per video with the sampled frame
    indices and timestamps).

    Example:

    ```python
    >>> from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor

    >>> processor = OmniCLIPVideoProcessor(num_frames=8)
    >>> batch = processor(["clip_a.mp4", "clip_b.avi"], return_tensors="pt")
    >>> batch["pixel_values_videos"].shape
    torch.Size([2, 8, 3, 224, 224])
    ```"""

    valid_kwargs = OmniCLIPVideoProcessorKwargs
    model_input_names = ["pixel_values_videos"]

    resample = PILImageResampling.BICUBIC
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"shortest_edge": 224}
    crop_size = {"height": 224, "width": 224}
    default_to_square = False
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True
    do_sample_frames = True
    num_frames = 8
    sampling = "segment"
    frame_stride = 4
    num_temporal_clips = 1
    num_spatial_crops = 1
    do_augment = False
    video_backend = "pyav"
    decoder_threading = True
    augment_resize_shortest_edge = 256
    augment_crop_scale = [0.08, 1.0]
    augment_crop_ratio = [3 / 4, 4 / 3]
    flip_prob = 0.5
    color_jitter_prob = 0.8
    color_jitter = [0.4, 0.4, 0.2, 0.1]
    grayscale_prob = 0.2

    def __init__(self, **kwargs) -> None:
        kwargs = _plain_numbers(kwargs)
        if "backend" in kwargs:
            kwargs["video_backend"] = kwargs.pop("backend")
        if "train" in kwargs:
            kwargs["do_augment"] = kwargs.pop("train")
        super().__init__(**kwargs)
        self._check_settings({key: getattr(self, key) for key in self.valid_kwargs.__annotations__},
                             device_available=False)

    # ------------------------------------------------------------------ settings
    @staticmethod
    def _check_settings(settings: dict[str, Any], device_available: bool = True) -> None:
        """Raises `ValueError` naming the setting, its value and what is allowed (`device_available`: whether the
        device must exist here)."""
        num_frames = settings.get("num_frames")
        if num_frames is not None and not _is_count(num_frames):
            raise ValueError(f"num_frames={num_frames!r} is invalid: it must be an integer >= 1.")
        if settings.get("sampling") not in SAMPLING_STRATEGIES:
            raise ValueError(f"sampling={settings.get('sampling')!r} is invalid: use one of {SAMPLING_STRATEGIES}.")
        stride = settings.get("frame_stride")
        if not _is_count(stride):
            raise ValueError(f"frame_stride={stride!r} is invalid: it must be an integer >= 1.")
        clips = settings.get("num_temporal_clips")
        if not _is_count(clips):
            raise ValueError(f"num_temporal_clips={clips!r} is invalid: it must be an integer >= 1.")
        if settings.get("num_spatial_crops") not in (1, 3):
            raise ValueError(
                f"num_spatial_crops={settings.get('num_spatial_crops')!r} is invalid: use 1 (centre) or 3 "
                "(left/centre/right or top/centre/bottom)."
            )
        if settings.get("video_backend") not in DECODER_BACKENDS:
            raise ValueError(
                f"video_backend={settings.get('video_backend')!r} is invalid: use one of {DECODER_BACKENDS}."
            )
        for name in ("size", "crop_size"):
            check_size(name, settings.get(name))
        check_resize_size(settings.get("size"))
        check_crop_size(settings.get("crop_size"))
        check_augmentation_settings(settings)
        fps = settings.get("fps")
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0):
            raise ValueError(f"fps={fps!r} is invalid: it must be a number > 0 (frames sampled per second of video).")
        for name in ("image_mean", "image_std"):
            if settings.get(name) is not None:
                per_channel(name, settings[name])
        _check_device(settings.get("device"), device_available)

    def _resolve_call_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """
        A call's keyword arguments as base `preprocess` takes them: aliases renamed, unknown names refused, `fps` and
        `num_frames` made exclusive (a call's `num_frames` overrides a saved `fps`), every setting checked with a
        message naming it, before any video is decoded.
        """
        kwargs = _plain_numbers(kwargs)
        if "backend" in kwargs:
            kwargs["video_backend"] = kwargs.pop("backend")
        if "train" in kwargs:
            kwargs["do_augment"] = kwargs.pop("train")
        unknown = sorted(set(kwargs) - set(self.valid_kwargs.__annotations__))
        if unknown:
            raise TypeError(f"OmniCLIPVideoProcessor got unexpected keyword arguments {unknown}.")
        if kwargs.get("fps") is not None and kwargs.get("num_frames") is not None:
            raise ValueError("num_frames and fps are mutually exclusive (as in transformers); pass only one.")
        if kwargs.get("num_frames") is not None:
            kwargs["fps"] = None  # a call's num_frames overrides a saved fps
        elif kwargs.get("fps", self.fps) is not None:
            kwargs["num_frames"] = None  # sampling by rate: the saved num_frames does not apply
        settings = {key: kwargs.get(key, getattr(self, key, None)) for key in self.valid_kwargs.__annotations__}
        if settings["fps"] is None and settings["num_frames"] is None:
            kwargs["num_frames"] = settings["num_frames"] = type(self).num_frames
        self._check_settings(settings, device_available="device" in kwargs)
        return kwargs

    # ------------------------------------------------------------------ main entry
    def preprocess(self, videos: Any, **kwargs: Unpack[OmniCLIPVideoProcessorKwargs]) -> BatchFeature:
        r"""
        Args:
            videos (`str`, `os.PathLike`, URL, `bytes`, binary file object, datasets `Video` cell, torchcodec
                `VideoDecoder`, `np.ndarray`, `torch.Tensor`, list of PIL images, or a list of these):
                One video or a batch. Frames from files are shown as a player shows them (the container's display
                matrix applied). A path may also name a frame folder (`examples/extract_frames.py`).
            video_metadata (`VideoMetadata`, `dict` or a list of them, *optional*):
                Per video; its `fps` gives in-memory frames a frame rate (for `fps=` sampling and timestamps).
            train (`bool`, *optional*):
                Alias of `do_augment`.
            generator (`torch.Generator`, *optional*):
                Seeds training sampling and augmentation.
            backend (`str`, *optional*):
                Alias of `video_backend`.
            return_metadata (`bool`, *optional*, defaults to `False`):
                Also return `video_metadata`, one [`OmniCLIPVideoMetadata`] per video.
            return_tensors (`str` or [`~utils.TensorType`], *optional*):
                `"pt"` (a stacked tensor), `"np"`, or `None` (a list of per-video tensors).
            kwargs:
                Any setting of [`OmniCLIPVideoProcessorKwargs`] or transformers' `VideosKwargs`, for this call.

            defer_color_augmentation (`bool`, *optional*, defaults to `False`):
                Return `pixel_values_videos` cropped but not coloured, rescaled or normalised (uint8 for decoded
                video), and each view's drawn colour augmentation as `color_augmentation`, for
                [`~OmniCLIPVideoProcessor.finish_views`]; the two together give this call's usual output exactly.

        Returns:
            [`BatchFeature`] with `pixel_values_videos` (and `video_metadata` when asked, `color_augmentation` when
            deferred: float32 rows of `COLOR_AUGMENTATION_SIZE`, one per view, in the views' leading shape).
        """
        # Base `preprocess` drives the call (defaults, `_decode_and_sample_videos` with `sample_frames`,
        # `_prepare_input_videos`, `_preprocess`, metadata out); this only resolves the call's own arguments first and
        # passes the decoding settings base `preprocess` does not hand to `_decode_and_sample_videos`.
        kwargs = self._resolve_call_kwargs(dict(kwargs))
        decoding = {key: kwargs.get(key, getattr(self, key)) for key in _DECODING_SETTINGS}
        token = _CALL_DECODING.set(decoding)
        try:
            return super().preprocess(videos, **kwargs)
        finally:
            _CALL_DECODING.reset(token)

    # ------------------------------------------------------------------ hooks of BaseVideoProcessor
    def sample_frames(
        self,
        metadata: VideoMetadata,
        num_frames: int | None = None,
        fps: int | float | None = None,
        sampling: str | None = None,
        frame_stride: int | None = None,
        num_temporal_clips: int | None = None,
        do_augment: bool | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> np.ndarray:
        """
        Frame indices of every temporal clip of one video (TSN segments, uniform spacing or dense windows; random in
        training). `fps`, when given, decides the frame count: `int(duration * fps)`, at least 1, at most all frames.

        Args:
            metadata (`VideoMetadata`):
                The video's `total_num_frames`, and its `fps` for `fps=` sampling.
            num_frames, fps, sampling, frame_stride, num_temporal_clips, do_augment, generator:
                As the processor's settings; each defaults to the processor's own.

        Returns:
            `np.ndarray`: `(num_temporal_clips, frames per clip)` int64 indices in `[0, total_num_frames)`.
        """
        fps = fps if fps is not None else (self.fps if num_frames is None else None)
        if fps is not None and num_frames is not None:
            raise ValueError("num_frames and fps are mutually exclusive (as in transformers); pass only one.")
        num_total = metadata.total_num_frames
        if fps is not None:
            if not metadata.fps:
                raise ValueError(
                    f"fps={fps} sampling needs the video's frame rate and none is known: pass "
                    "video_metadata={'fps': ...} for in-memory frames, or num_frames instead."
                )
            num_frames = max(1, min(num_total, int(num_total / metadata.fps * fps)))
        if num_frames is None:  # neither given nor saved (a processor saved with fps, then fps=None): the default
            num_frames = self.num_frames if self.num_frames is not None else type(self).num_frames
        clips = sample_clip_indices(
            num_total,
            num_frames,
            sampling if sampling is not None else self.sampling,
            frame_stride if frame_stride is not None else self.frame_stride,
            num_temporal_clips if num_temporal_clips is not None else self.num_temporal_clips,
            bool(do_augment if do_augment is not None else self.do_augment),
            generator,
        )
        return np.asarray(clips, dtype=np.int64)

    def _decode_and_sample_videos(
        self,
        videos: Any,
        video_metadata: Any = None,
        do_sample_frames: bool | None = None,
        sample_indices_fn: Callable | None = None,
    ) -> tuple[list[SampledVideo], list[OmniCLIPVideoMetadata]]:
        """
        Decodes only the sampled frames of every video (files, bytes, file objects, URLs, datasets cells and torchcodec
        decoders through the chosen backend; in-memory frames indexed directly), as upright RGB. A bad video raises
        one error naming it (`videos[i]` in a batch).
        """
        decoding = _CALL_DECODING.get() or {key: getattr(self, key) for key in _DECODING_SETTINGS}
        items = split_video_batch(videos)
        given_metadata = _metadata_per_video(video_metadata, len(items))
        sampled, metadata = [], []
        for item_index, video in enumerate(items):
            try:
                one, one_metadata = self._decode_and_sample_one(
                    video, given_metadata[item_index], sample_indices_fn if do_sample_frames else None, decoding
                )
            except (ValueError, FileNotFoundError, ImportError) as error:
                if len(items) == 1:
                    raise
                raise type(error)(f"videos[{item_index}] (item {item_index} of the batch): {error}") from None
            sampled.append(one)
            metadata.append(one_metadata)
        return sampled, metadata

    def _decode_and_sample_one(
        self,
        video: Any,
        given_metadata: dict[str, Any],
        sample_indices_fn: Callable | None,
        decoding: dict[str, Any],
    ) -> tuple[SampledVideo, OmniCLIPVideoMetadata]:
        clips_indices: list[list[int]] = []
        unique_indices: list[int] = []

        def indices_to_decode(num_total: int, fps: float | None = None) -> list[int]:
            # The decoder calls this once it knows the frame count (again if fewer frames decode than announced).
            if sample_indices_fn is None:  # do_sample_frames=False: every frame, in each clip
                clips = [list(range(num_total))] * decoding["num_temporal_clips"]
            else:
                indices = np.asarray(sample_indices_fn(metadata=VideoMetadata(total_num_frames=num_total, fps=fps)))
                clips = np.atleast_2d(indices).astype(np.int64).tolist()  # a 1D sampler (transformers') is one clip
            clips_indices[:] = clips
            unique_indices[:] = sorted({index for clip in clips for index in clip})
            return unique_indices

        given = video
        video = resolve_video_source(video)
        if _is_file_source(video) or is_torchcodec_decoder(video):
            backend, reader = select_video_reader(video, decoding["video_backend"])
            rgb, unique_times, _, info = reader(video, indices_to_decode, bool(decoding["decoder_threading"]))
            frames = torch.from_numpy(rgb).permute(0, 3, 1, 2)
        else:
            label = "given as " + type(video).__name__
            all_frames = video_to_tensor(video, label)
            # The scale is judged on the whole video, so a dark stretch of a 0-255 float video is not taken as 0-1;
            # only the sampled frames are converted.
            to_scale = pixel_scale_of(all_frames, label)
            video_fps = given_metadata.get("fps")  # arrays carry no frame rate; video_metadata can give one
            frames = to_scale(all_frames[indices_to_decode(all_frames.shape[0], video_fps)])
            unique_times = [None] * len(unique_indices)
            height, width = all_frames.shape[-2:]
            info = {
                "total_num_frames": all_frames.shape[0],
                "fps": video_fps,
                "width": width,
                "height": height,
                "duration": all_frames.shape[0] / video_fps if video_fps else None,
            }
            backend = None

        position = {index: row for row, index in enumerate(unique_indices)}
        clip_rows = torch.tensor([[position[index] for index in clip] for clip in clips_indices])
        frame_times = None
        if all(time is not None for time in unique_times):
            frame_times = [[float(unique_times[position[index]]) for index in clip] for clip in clips_indices]
        metadata = OmniCLIPVideoMetadata(
            total_num_frames=info["total_num_frames"],
            fps=info["fps"],
            width=info["width"],
            height=info["height"],
            duration=info.get("duration"),
            video_backend=backend,
            frames_indices=clips_indices,
            source=_source_name(given, video),
            frames_timestamps=frame_times,
        )
        return SampledVideo(frames, clip_rows), metadata

    def _prepare_input_videos(
        self,
        videos: list[SampledVideo],
        do_convert_rgb: bool | None = None,
        input_data_format: Any = None,
        device: str | torch.device | None = None,
    ) -> list[SampledVideo]:
        # Frames are already channels-first RGB (decoders give RGB; in-memory input is checked and grayscale repeated
        # by `video_to_tensor`). Like transformers, the transforms run on `device`.
        if device is None:
            return videos
        return [SampledVideo(video.frames.to(device), video.clip_rows) for video in videos]

    def _preprocess(self, videos: list[SampledVideo], return_tensors: Any = None, **settings) -> BatchFeature:
        """Views of every video (temporal clips x spatial crops), augmented in training, rescaled and normalised."""
        train = bool(settings["do_augment"])
        defer = bool(settings.get("defer_color_augmentation"))
        outputs, colors = [], []
        for video in videos:
            views, view_colors = make_views(video.frames, video.clip_rows, settings, train, settings["generator"], defer)
            outputs.append(torch.stack(views) if len(views) > 1 else views[0])
            colors.append(torch.stack(view_colors) if len(view_colors) > 1 else view_colors[0])
        data = {"pixel_values_videos": self._stack_videos(outputs, return_tensors)}
        if defer:
            data["color_augmentation"] = self._stack_videos(colors, return_tensors)
        return BatchFeature(data=data, tensor_type=return_tensors)

    @staticmethod
    def _stack_videos(outputs: list[torch.Tensor], return_tensors: Any) -> torch.Tensor | list[torch.Tensor]:
        if return_tensors is None:
            return outputs
        shapes = {tuple(output.shape) for output in outputs}
        if len(shapes) != 1:
            raise ValueError(f"Cannot stack videos of different shapes {sorted(shapes)}; pass return_tensors=None.")
        return torch.stack(outputs)

    def finish_views(
        self, pixel_values_videos: torch.Tensor, color_augmentation: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        r"""
        Finishes views a call with `defer_color_augmentation=True` returned: applies each view's colour augmentation,
        then rescales and normalises, on the views' device. The result equals what the call gives without deferring.

        Args:
            pixel_values_videos (`torch.Tensor`):
                `(..., T, 3, H, W)` views as the deferred call returned them (uint8 for decoded video), on any device.
            color_augmentation (`torch.Tensor`):
                `(..., COLOR_AUGMENTATION_SIZE)`: one row per view, the same leading shape. Read on the host: rows
                on a GPU cost one copy back, which waits for the work queued there.
            kwargs:
                `do_rescale`, `rescale_factor`, `do_normalize`, `image_mean`, `image_std` if the deferred call overrode
                them (other settings are the deferred call's business and are ignored here).

        Returns:
            `torch.Tensor`: float32 `(..., T, 3, H, W)`, ready for [`OmniCLIPModel`].
        """
        leading = tuple(pixel_values_videos.shape[:-4])
        if pixel_values_videos.dim() < 4 or tuple(color_augmentation.shape) != leading + (COLOR_AUGMENTATION_SIZE,):
            raise ValueError(
                f"finish_views: pixel_values_videos {tuple(pixel_values_videos.shape)} and color_augmentation "
                f"{tuple(color_augmentation.shape)} do not belong together; pass both as a call with "
                "defer_color_augmentation=True returned them, (..., T, 3, H, W) and (..., "
                f"{COLOR_AUGMENTATION_SIZE})."
            )
        settings = {key: kwargs.get(key, getattr(self, key)) for key in _NORMALIZATION_SETTINGS}
        views = pixel_values_videos.reshape(-1, *pixel_values_videos.shape[-4:])
        # Coloured on the views' device, a GPU's batch at once (`apply_color_augmentation`), then one rescale and
        # normalisation for the whole batch (elementwise: the same numbers as view by view).
        rows = color_augmentation.reshape(-1, COLOR_AUGMENTATION_SIZE)
        return finish_views(views, rows, settings).reshape(pixel_values_videos.shape)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        # Tuples become lists in JSON anyway; keep the saved file free of call-only state.
        for key in _CALL_ONLY_KWARGS:
            output.pop(key, None)
        return output


__all__ = [
    "OmniCLIPVideoMetadata",
    "OmniCLIPVideoProcessor",
    "OmniCLIPVideoProcessorKwargs",
    "VIDEO_FILE_EXTENSIONS",
    "read_video_pyav",
    "read_video_torchcodec",
    "sample_clip_indices",
    "video_to_tensor",
]
