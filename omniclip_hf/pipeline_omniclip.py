# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Zero-shot video classification pipeline: "which of these labels fits this clip?" for any label strings.

Importing `omniclip_hf` registers it with transformers, so
`transformers.pipeline("zero-shot-video-classification", model=folder)` builds it, loading the tokenizer and the
video processor from the same folder.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
import warnings
from collections import OrderedDict
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers.pipelines import PIPELINE_REGISTRY

# ChunkPipeline (one input -> several model inputs, e.g. the windows of a long video) is the base of transformers'
# own chunking pipelines; it is not re-exported from `transformers.pipelines` but lives unchanged in `.base` from
# transformers 5.17 to 5.24. `get_iterator` below rebuilds its chain of `.pt_utils` iterators with another collate
# function (checked against transformers 5.25).
from transformers.pipelines.base import ChunkPipeline
from transformers.pipelines.pt_utils import PipelineChunkIterator, PipelineIterator, PipelinePackIterator
from transformers.utils import logging
from transformers.video_utils import VideoMetadata

from .configuration_omniclip import check_text_template, is_integer, is_real_number
from .processing_omniclip import tokenize_label_prompts, tokenizer_vocabulary_shortfall
from .video_decoding import is_torchcodec_decoder, select_video_reader
from .video_processing_omniclip import video_to_tensor
from .video_sources import _is_file_source, _is_frame, describe_source, pixel_scale_of, resolve_video_source


logger = logging.get_logger(__name__)

TASK_NAME = "zero-shot-video-classification"
# Label sets whose text embeddings stay cached per pipeline (oldest dropped first).
TEXT_EMBEDDING_CACHE_SIZE = 16
# Decoded source frames held at once while windows of a long video are prepared (bounds memory for 1080p files).
MAX_FRAMES_PER_DECODE = 256


# ----------------------------------------------------------------------------------------------------------------
# Argument checks (also used by the command line before it loads a model)
# ----------------------------------------------------------------------------------------------------------------
# ASCII whitespace: every one of these is whitespace to CLIP's tokenizer too (Python's str.split() also splits on
# characters such as "\x1c" that the tokenizer keeps as text).
_ASCII_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")
_ASCII_LOWERCASE = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _certain_duplicate_view(label: str) -> str:
    # Labels equal under this view give CLIP identical tokens in any template: its tokenizer applies NFC, turns every
    # run of whitespace into one space and lowercases. The view stays with ASCII case and spaces so that it never
    # merges labels the tokenizer tells apart (it keeps full-width letters, ligatures and "ß" as they are, and
    # lowercases "Σ" without Python's final-sigma rule), and keeps a label's leading and trailing space, which a
    # template such as "{}s" reads; the pipeline compares the tokenized prompts themselves (`check_distinct_prompts`).
    return _ASCII_WHITESPACE.sub(" ", unicodedata.normalize("NFC", label).translate(_ASCII_LOWERCASE))


def _duplicates_error(groups: Sequence[list[str]], reason: str,
                      subject: str = "candidate_labels has") -> ValueError:
    """One line naming every group of duplicate labels: `'run' (2 times)` or `'jump' = 'Jump '`; `subject` says
    whose labels they are."""
    named = "; ".join(
        f"{group[0]!r} ({len(group)} times)" if len(set(group)) == 1 else " = ".join(repr(label) for label in group)
        for group in groups
    )
    return ValueError(f"{subject} duplicates: {named}. Each label must appear once ({reason}).")


def check_candidate_labels(candidate_labels: Any) -> tuple[str, ...]:
    """
    Validates candidate labels and returns them as a tuple (the cache key of their text embeddings).

    Raises:
        `ValueError`: the labels are missing, not a list of strings, fewer than two (a softmax over one label is
        always 1.0), contain an empty string, or contain duplicates that differ at most in ASCII case and runs of
        spaces (which CLIP's tokenizer ignores); the message names them. Other labels CLIP reads alike ("t-shirt" and
        "t - shirt") need the tokenizer: the pipeline refuses them with `check_distinct_prompts`.
    """
    labels = _check_label_strings(candidate_labels)
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault(_certain_duplicate_view(label), []).append(label)
    repeated = [group for group in groups.values() if len(group) > 1]
    if repeated:
        raise _duplicates_error(repeated, "case and extra spaces are ignored, as CLIP's tokenizer ignores them")
    return labels


def _check_label_strings(candidate_labels: Any) -> tuple[str, ...]:
    """`check_candidate_labels` without its duplicate check: for the pipeline, which compares tokenized prompts."""
    if candidate_labels is None:
        raise ValueError("candidate_labels is missing: pass the label strings to choose from, e.g. ['running', 'cooking'].")
    if isinstance(candidate_labels, str):
        raise ValueError(
            f"candidate_labels must be a list of strings, got the single string {candidate_labels!r}; "
            "wrap it in a list (or split a comma-separated string yourself)."
        )
    if not isinstance(candidate_labels, (list, tuple)):
        raise ValueError(f"candidate_labels must be a list of strings, got {type(candidate_labels).__name__}.")
    if len(candidate_labels) == 0:
        raise ValueError("candidate_labels is empty: pass at least two labels.")
    if len(candidate_labels) == 1:
        raise ValueError(
            f"candidate_labels has one label ({candidate_labels[0]!r}): the scores are a softmax over the labels, so "
            "one label always scores 1.0; pass at least two."
        )
    for position, label in enumerate(candidate_labels):
        if not isinstance(label, str):
            raise ValueError(
                f"candidate_labels[{position}] is of type {type(label).__name__} ({label!r}); every label must be a string."
            )
        if not label.strip():
            raise ValueError(f"candidate_labels[{position}] is an empty string; every label needs some text.")
    return tuple(candidate_labels)


def check_distinct_prompts(labels: Sequence[str], template: str, input_ids: Sequence[Sequence[int]],
                           subject: str = "candidate_labels has",
                           full_input_ids: Sequence[Sequence[int]] | None = None) -> None:
    """
    Refuses labels whose prompts CLIP reads as the same tokens (`input_ids`: one list per label, as the text encoder
    gets them, truncation included): they would get identical scores and split one answer between them. `subject`
    names the labels in the message (the pipeline's argument; evaluation's class list). `full_input_ids`, the prompts'
    ids before truncation, lets the message say when truncation made prompts equal, not the labels themselves.

    Raises:
        `ValueError`: naming each group of such labels, e.g. `'t-shirt folding' = 't - shirt folding'`.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for position, ids in enumerate(input_ids):
        groups.setdefault(tuple(int(token) for token in ids), []).append(position)
    repeated = [positions for positions in groups.values() if len(positions) > 1]
    # Groups equal before truncation are named first, with their own reason; the others only truncation made equal.
    alike = [positions for positions in repeated
             if full_input_ids is None or not _differ_before_truncation(positions, full_input_ids)]
    if alike:
        raise _duplicates_error(
            [[labels[position] for position in positions] for positions in alike],
            f"filled into {template!r}, these labels tokenize to the same ids, so CLIP cannot tell them apart",
            subject,
        )
    if repeated:
        max_length = max(len(input_ids[positions[0]]) for positions in repeated)
        raise _duplicates_error(
            [[labels[position] for position in positions] for positions in repeated],
            f"filled into {template!r}, their prompts differ, but truncated to CLIP's {max_length} tokens these labels "
            "tokenize to the same ids, so CLIP cannot tell them apart: use a shorter template or shorter labels",
            subject,
        )


def _differ_before_truncation(positions: Sequence[int], full_input_ids: Sequence[Sequence[int]]) -> bool:
    """Whether the prompts at `positions`, equal as CLIP reads them, were different before truncation."""
    return len({tuple(int(token) for token in full_input_ids[position]) for position in positions}) > 1


def check_hypothesis_template(hypothesis_template: Any) -> str:
    """Validates a prompt template: a string with one `{}` that fills in the label (`check_text_template`)."""
    return check_text_template(hypothesis_template, "hypothesis_template")


def check_top_k(top_k: Any, num_labels: int | None) -> int | None:
    """Validates `top_k`: `None` (all labels) or an integer in `[1, num_labels]`."""
    if top_k is None:
        return None
    if not is_integer(top_k) or top_k < 1:
        raise ValueError(f"top_k={top_k!r} is out of range: it must be an integer >= 1 (or None for all labels).")
    top_k = int(top_k)
    if num_labels is not None and top_k > num_labels:
        raise ValueError(
            f"top_k={top_k} is out of range: there are only {num_labels} candidate labels (use top_k <= {num_labels} "
            "or None for all)."
        )
    return top_k


def check_batch_size(batch_size: Any) -> int:
    """Validates `batch_size`: an integer >= 1 (numpy integers count), returned as a Python int for the DataLoader."""
    if not is_integer(batch_size) or batch_size < 1:
        raise ValueError(
            f"batch_size={batch_size!r} is invalid: it must be an integer >= 1 (videos or windows per model call)."
        )
    return int(batch_size)


def check_segment_seconds(segment_seconds: Any) -> float | None:
    if segment_seconds is None:
        return None
    if not is_real_number(segment_seconds) or not segment_seconds > 0:
        raise ValueError(f"segment_seconds={segment_seconds!r} is invalid: it must be a number of seconds > 0.")
    if math.isinf(segment_seconds):
        raise ValueError("segment_seconds must be finite; leave it out to classify the whole video at once.")
    return float(segment_seconds)


def check_window_length(segment_seconds: float, fps: float, video: str = "the video") -> None:
    """Refuses windows shorter than one frame: `plan_windows` would plan ~`num_total / (segment_seconds * fps)`
    empty windows one by one (minutes to hours for `segment_seconds=1e-9`) and return none."""
    if segment_seconds * fps < 1:
        raise ValueError(
            f"segment_seconds={segment_seconds:g} is shorter than one frame of {video} ({1 / fps:.4g} s at "
            f"{fps:g} fps): use segment_seconds >= {1 / fps:.4g}."
        )


# ----------------------------------------------------------------------------------------------------------------
# Windows of long videos
# ----------------------------------------------------------------------------------------------------------------
def plan_windows(num_total: int, fps: float, segment_seconds: float) -> list[tuple[int, int]]:
    """
    Splits `num_total` frames at `fps` into consecutive windows of `segment_seconds`.

    Returns:
        `list[tuple[int, int]]`: `(first_frame, end_frame)` per window, end exclusive; the last window holds what is
        left (it may be shorter), and together they cover every frame once.

    Raises:
        `ValueError`: `segment_seconds` is shorter than one frame (`check_window_length`).
    """
    check_window_length(segment_seconds, fps)
    frames_per_window = segment_seconds * fps
    windows = []
    index = 0
    while True:
        start = round(index * frames_per_window)
        if start >= num_total:
            break
        end = min(round((index + 1) * frames_per_window), num_total)
        if end > start:
            windows.append((start, end))
        index += 1
    return windows


def _decode_groups(frame_counts: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive window positions grouped so that a group reads at most `budget` frames (a larger window alone)."""
    groups: list[list[int]] = []
    total = 0
    for position, count in enumerate(frame_counts):
        if groups and total + count <= budget:
            groups[-1].append(position)
            total += count
        else:
            groups.append([position])
            total = count
    return groups


def _is_file_video(video: Any) -> bool:
    """A video the pipeline decodes (path, URL's bytes, bytes, file object, frame folder, torchcodec decoder): it
    carries its own frame rate."""
    return _is_file_source(video) or is_torchcodec_decoder(video)


def _video_name(video: Any) -> str:
    if is_torchcodec_decoder(video):
        return "a torchcodec decoder"
    return describe_source(video) if _is_file_source(video) else "the in-memory video given as " + type(video).__name__


def check_video_fps_for(video: Any, video_fps: float | None) -> None:
    """Refuses `video_fps` for a file: the file's own rate is used, in whole-video and in window mode alike (it
    used to override the rate of window mode only, planning windows over a time axis the file does not have)."""
    if video_fps is not None and _is_file_video(video):
        raise ValueError(
            f"video_fps={video_fps:g} is the frame rate of an in-memory video, but this video is {_video_name(video)}, "
            "a file with its own frame rate: leave video_fps out."
        )


class _FrameSource:
    """Frames of one video by index: decoded from a file (only the frames asked for) or taken from memory."""

    def __init__(self, video: Any, backend: str, video_fps: float | None):
        self.video = video
        self.label = _video_name(video)
        self.frames: torch.Tensor | None = None
        if _is_file_video(video):  # its own rate: `preprocess` refuses a video_fps for it (`check_video_fps_for`)
            _, self.reader = select_video_reader(video, backend)  # the processor's choice, by the same function
            _, _, _, info = self._read(lambda num_total: [0])
            self.num_total = int(info["total_num_frames"])
            self.fps = info["fps"]
        else:
            label = "given as " + type(video).__name__
            self.frames = video_to_tensor(video, label)
            # The pixel scale is judged on the whole video (uint8, or floats in [0, 1]), not window by window; frames
            # are converted as windows read them.
            self.to_scale = pixel_scale_of(self.frames, label)
            self.num_total = int(self.frames.shape[0])
            self.fps = video_fps
        if not self.fps:
            raise ValueError(
                f"segment_seconds needs the frame rate of {self.label}, which states none: "
                + ("decode its frames and pass them with video_fps=." if self.frames is None else "pass video_fps=.")
            )

    def _read(self, sample_indices_fn):
        if hasattr(self.video, "seek"):
            self.video.seek(0)
        return self.reader(self.video, sample_indices_fn)

    def read(self, indices: list[int]) -> torch.Tensor:
        """Frames `indices` as a uint8 `(N, 3, H, W)` tensor."""
        if self.frames is not None:
            return self.to_scale(self.frames[indices])
        # The reader may find fewer decodable frames than the file announced: clamp rather than fail.
        rgb, _, _, _ = self._read(lambda num_total: [min(index, num_total - 1) for index in indices])
        return torch.from_numpy(rgb).permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------------------------------------------------
def collate_model_inputs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """
    A batch of `preprocess` outputs for `_forward`: tensors of one shape concatenated along the batch dimension,
    anything else as a list. Videos of different shapes (frame counts of `fps=` sampling, frame sizes without a
    centre crop) stay a list of tensors, which `_forward` runs in sub-batches of equal shape: transformers'
    `pad_collate_fn` would pad them with zeros, and the model reads zero frames and pixels as content.
    """
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        same_shape = all(isinstance(value, torch.Tensor) for value in values) and len({v.shape for v in values}) == 1
        batch[key] = torch.cat(values) if same_shape else values
    return batch


def _equal_shape_groups(tensors: Sequence[torch.Tensor]) -> list[list[int]]:
    """Positions of the tensors grouped by shape, in order of first appearance."""
    groups: dict[torch.Size, list[int]] = {}
    for position, tensor in enumerate(tensors):
        groups.setdefault(tensor.shape, []).append(position)
    return list(groups.values())


# ----------------------------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------------------------
def _as_pipeline_input(videos: Any) -> Any:
    """
    `videos` as transformers' `Pipeline.__call__` reads it: a list is a batch, anything else one input. So a list or
    tuple of frames (PIL images, 3-D arrays, 2-D grayscale arrays) becomes a tuple, one video, as the processor
    reads it; a tuple of videos and a 5-D array become lists, batches. A tuple of videos passed through as one input reached the processor,
    which reads it as a batch, and its `(videos, labels)` logits were scored as one softmax over all of them.
    """
    if isinstance(videos, (list, tuple)):
        if not videos:
            raise ValueError(f"videos is an empty {type(videos).__name__}; pass at least one video.")
        return tuple(videos) if all(_is_frame(frame) for frame in videos) else list(videos)
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:
        return list(videos)
    return videos


class ZeroShotVideoClassificationPipeline(ChunkPipeline):
    r"""
    Zero-shot video classification with [`OmniCLIPModel`]: scores a video against any label strings.

    Each label is filled into `hypothesis_template` (the model config's `text_template`, `"a video of {} action"`, by
    default) and encoded once by the frozen CLIP text encoder; the embeddings are cached per label set and template,
    so further videos and calls with the same labels only run the video encoder (and, when the model has
    video-specific prompts, the small prompt generator that adapts the cached text embeddings to each video).

    Videos are anything [`OmniCLIPVideoProcessor`] reads: a path (mp4, avi, webm, ...), bytes, a binary file object,
    a numpy array `(T, H, W, 3)`, a torch tensor `(T, 3, H, W)` or a list of PIL frames. A list of videos returns a
    list of results and is batched with `batch_size=`. When the processor is set for several views
    (`num_temporal_clips`, `num_spatial_crops`), the logits are averaged over the views before the softmax.

    This pipeline is loaded with the task identifier `"zero-shot-video-classification"` once `omniclip_hf` is
    imported.

    Example:

    ```python
    >>> import omniclip_hf  # registers the task
    >>> from transformers import pipeline

    >>> classifier = pipeline("zero-shot-video-classification", model="path/to/omniclip-folder")
    >>> classifier("archery.mp4", candidate_labels=["archery", "juggling balls", "playing harp"])
    [{'label': 'archery', 'score': 0.91}, {'label': 'juggling balls', 'score': 0.06}, {'label': 'playing harp', 'score': 0.03}]
    ```"""

    _load_processor = None
    _load_image_processor = False
    # Optional: a plain CLIP checkpoint has no video processor; one matching its image processor is made below.
    _load_video_processor = None
    _load_feature_extractor = False
    # Optional for transformers' loader, so that a folder without tokenizer files reaches __init__, which names the
    # folder and the missing files (transformers would suggest installing sentencepiece).
    _load_tokenizer = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._check_model_class()
        if self.video_processor is None and self.processor is not None:
            self.video_processor = getattr(self.processor, "video_processor", None)
        if self.tokenizer is None and self.processor is not None:
            self.tokenizer = getattr(self.processor, "tokenizer", None)
        self._complete_components_of_wrapped_clip()
        if self.video_processor is None or self.tokenizer is None:
            self._check_model_folder_files()
        if self.video_processor is None:
            raise ValueError(
                "The zero-shot-video-classification pipeline needs a video processor: save an OmniCLIPProcessor (or "
                "OmniCLIPVideoProcessor) next to the model, or pass video_processor=."
            )
        if self.tokenizer is None:
            raise ValueError(
                "The zero-shot-video-classification pipeline needs CLIP's tokenizer: save it next to the model, or "
                "pass tokenizer=."
            )
        self._check_tokenizer_vocabulary()
        self._text_embedding_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._warn_if_processor_template_differs()

    def _check_model_class(self) -> None:
        """Refuses a model that is no OmniCLIPModel before anything else is asked of it: where OmniCLIPModel refuses a
        checkpoint (a CLIP missing weights), pipeline() loads the class its config names (CLIPModel, half random),
        and the pipeline then failed for a missing video processor, not the cause."""
        missing = [method for method in ("get_text_features", "get_video_features", "similarity_logits")
                   if not hasattr(self.model, method)]
        if missing:
            source = getattr(self.model, "name_or_path", None) or "the model"
            raise ValueError(
                f"The zero-shot-video-classification pipeline needs an OmniCLIPModel; {source} loaded as "
                f"{type(self.model).__name__}, which has no {missing[0]}() (pipeline() falls back to the class a "
                "config names where OmniCLIPModel refuses a checkpoint: OmniCLIPModel.from_pretrained on it says why)."
            )

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """`Pipeline.save_pretrained` (the model, its tokenizer and the pipeline's code), plus the processor: without
        it the folder had no video processor, so no pipeline loaded from it, and its tokenizer config named a
        processor whose code it did not hold."""
        super().save_pretrained(save_directory, **kwargs)
        processor = self.processor
        if processor is None or not hasattr(processor, "video_processor"):
            from .processing_omniclip import OmniCLIPProcessor

            processor = OmniCLIPProcessor(self.video_processor, self.tokenizer,
                                          text_template=self.model.config.text_template)
        processor.save_pretrained(save_directory, **kwargs)

    def _warn_if_processor_template_differs(self) -> None:
        """The pipeline fills labels into the model config's `text_template` (unless a call passes
        `hypothesis_template`); a processor's other `text_template`, which its `prompts_for_labels` uses, would
        score the same labels differently there: said once, here, rather than on every call."""
        processor_template = getattr(self.processor, "text_template", None)
        config_template = getattr(self.model.config, "text_template", None)
        if processor_template and config_template and processor_template != config_template:
            warnings.warn(
                f"The processor's text_template {processor_template!r} differs from the model config's "
                f"{config_template!r}; the pipeline uses the model config's (pass hypothesis_template= to choose "
                "another, or save both with one template).",
                UserWarning,
                stacklevel=3,
            )

    def _check_model_folder_files(self) -> None:
        """A local model folder without tokenizer files or processor settings: one error naming what is missing."""
        folder = getattr(self.model, "name_or_path", None)
        if not folder or not os.path.isdir(folder):
            return
        try:  # an absolute import keeps remote copies of this file self-contained
            from omniclip_hf.processing_omniclip import check_processor_folder
        except ImportError:
            return
        check_processor_folder(folder)

    def _complete_components_of_wrapped_clip(self) -> None:
        """A plain CLIP checkpoint (wrapped by OmniCLIPModel.from_pretrained) comes with an image processor, not a
        video processor: make the one that prepares frames as the CLIP prepares images."""
        source = getattr(self.model, "wrapped_clip_source", None)
        if source is None:
            return
        try:  # only the installed package wraps a plain CLIP; an absolute import keeps remote copies self-contained
            from omniclip_hf.clip_conversion import tokenizer_for_clip, video_processor_for_clip
        except ImportError:
            return
        if not hasattr(self.video_processor, "num_temporal_clips"):
            config = self.model.config
            self.video_processor = video_processor_for_clip(source, config.vision_config.image_size, config.num_frames)
        if self.tokenizer is None or self._is_clip_folders_tokenizer_without_vocabulary(source):
            # What `omniclip init` writes for such a CLIP: the package's CLIP tokenizer, with a warning saying so.
            self.tokenizer = tokenizer_for_clip(source)

    def _is_clip_folders_tokenizer_without_vocabulary(self, source: str) -> bool:
        """Whether the tokenizer is the one pipeline() loaded from the CLIP's own folder and it lacks the vocabulary
        (a folder without vocabulary files loads as its special tokens alone). One from elsewhere is the caller's
        choice: `_check_tokenizer_vocabulary` refuses it rather than replace it."""
        loaded_from = getattr(self.tokenizer, "name_or_path", None)
        vocab_size = self.model.config.text_config.vocab_size
        return (loaded_from is not None and os.fspath(loaded_from) == source
                and tokenizer_vocabulary_shortfall(self.tokenizer, vocab_size) is not None)

    def _check_tokenizer_vocabulary(self) -> None:
        """Refuses a tokenizer far smaller than the text model's vocabulary: every word would get one id, so every
        label the same score (0.5 and 0.5 for two labels), with nothing said."""
        vocab_size = self.model.config.text_config.vocab_size
        if tokenizer_vocabulary_shortfall(self.tokenizer, vocab_size):
            loaded_from = getattr(self.tokenizer, "name_or_path", None)
            origin = f" (from {loaded_from})" if loaded_from else ""
            raise ValueError(
                f"tokenizer{origin} has only {len(self.tokenizer)} tokens for a text model of {vocab_size} (no "
                "vocabulary files), so it cannot be CLIP's tokenizer for this model: pass CLIP's tokenizer "
                "(tokenizer=), or save it next to the model."
            )

    # ------------------------------------------------------------------ call
    def __call__(self, videos: Any, candidate_labels: Sequence[str] | None = None, **kwargs: Any) -> Any:
        r"""
        Scores video(s) against the candidate labels.

        Frame sampling and sizes are the video processor's settings, not call arguments: pass
        `video_processor=OmniCLIPVideoProcessor.from_pretrained(folder, num_frames=16)` to `pipeline()` to change them.

        Args:
            videos (`str`, `os.PathLike`, `bytes`, file object, `np.ndarray`, `torch.Tensor`, list of PIL images, or a
                list of these):
                One video, or a list or tuple of videos (a list or tuple of frames is one video).
            candidate_labels (`list[str]`):
                The labels to choose from: any non-empty strings whose prompts CLIP's tokenizer reads as different
                tokens (labels that differ only in case, spacing or spaces around punctuation are refused).
            hypothesis_template (`str`, *optional*):
                Turns a label into the text the model reads; `{}` is the label. Defaults to the model config's
                `text_template`. Pass `"{}"` for labels that are already full descriptions.
            top_k (`int`, *optional*):
                Return only the `top_k` best labels (between 1 and the number of labels); all by default.
            segment_seconds (`float`, *optional*):
                Classify consecutive windows of this many seconds (at least one frame) instead of the whole video.
                Each window is sampled as the video processor samples a whole video of its length (with `fps=`
                sampling: its rate).
            video_fps (`float`, *optional*):
                Frame rate of an in-memory video (arrays and frames carry none), needed with `segment_seconds` or a
                video processor that samples by rate (`fps=`). Refused for a file (path, URL, bytes, file object,
                decoder): its own frame rate is used, in whole-video and window mode alike.
            batch_size (`int`, *optional*):
                Videos (or windows) run through the model together; those of different shapes (frame counts of `fps=`
                sampling, frame sizes without a centre crop) run in sub-batches of equal shape, never padded, so the
                scores are those of one video at a time.

        Returns:
            For one video, a list of `{"label": str, "score": float}` sorted by score (scores of all labels sum
            to 1). With `segment_seconds`, a list of `{"start": float, "end": float, "labels": [...]}`, one per
            window, with times in seconds. For a list of videos, a list of those.
        """
        videos = _as_pipeline_input(videos)
        if candidate_labels is not None:
            kwargs["candidate_labels"] = candidate_labels
        elif "candidate_labels" not in self._forward_params:
            check_candidate_labels(None)  # fail before decoding anything
        return super().__call__(videos, **kwargs)

    def _sanitize_parameters(
        self,
        candidate_labels=None,
        hypothesis_template=None,
        top_k=None,
        segment_seconds=None,
        video_fps=None,
        **unknown,
    ):
        if unknown:
            raise self._unknown_argument_error(*next(iter(unknown.items())))
        preprocess_params: dict[str, Any] = {}
        forward_params: dict[str, Any] = {}
        postprocess_params: dict[str, Any] = {}
        if candidate_labels is not None:
            # Duplicates are judged on the tokenized prompts once the template is known (`text_embeddings`).
            labels = _check_label_strings(candidate_labels)
            forward_params["candidate_labels"] = labels
            postprocess_params["candidate_labels"] = labels
        if hypothesis_template is not None:
            forward_params["hypothesis_template"] = check_hypothesis_template(hypothesis_template)
        if top_k is not None:
            postprocess_params["top_k"] = check_top_k(top_k, len(candidate_labels) if candidate_labels else None)
        if segment_seconds is not None:
            preprocess_params["segment_seconds"] = check_segment_seconds(segment_seconds)
        if video_fps is not None:
            if not is_real_number(video_fps) or not video_fps > 0 or math.isinf(video_fps):
                raise ValueError(f"video_fps={video_fps!r} is invalid: it must be a frame rate > 0.")
            preprocess_params["video_fps"] = float(video_fps)
        return preprocess_params, forward_params, postprocess_params

    def _unknown_argument_error(self, name: str, value: Any) -> TypeError:
        """One line for a call argument the pipeline does not take; frame sampling and sizes belong to the processor."""
        processor_settings = getattr(getattr(self.video_processor, "valid_kwargs", None), "__annotations__", {})
        if name in processor_settings:
            return TypeError(
                f"{name}={value!r} is a video processor setting, not a pipeline argument: build the pipeline with "
                f"video_processor=OmniCLIPVideoProcessor.from_pretrained(model_folder, {name}={value!r}), or save the "
                "processor with it."
            )
        return TypeError(
            f"unexpected argument {name}={value!r}: the pipeline takes candidate_labels, hypothesis_template, top_k, "
            "segment_seconds, video_fps, batch_size and num_workers."
        )

    # ------------------------------------------------------------------ batches
    def get_iterator(
        self, inputs, num_workers: int, batch_size: int, preprocess_params, forward_params, postprocess_params
    ):
        batch_size = check_batch_size(batch_size)
        # Labels are tokenized (and refused if CLIP reads two alike) before any video is decoded; the embeddings stay
        # cached for the forward passes.
        self.text_embeddings(forward_params.get("candidate_labels"), forward_params.get("hypothesis_template"))
        if batch_size == 1:
            return super().get_iterator(
                inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
            )
        # ChunkPipeline.get_iterator with this pipeline's collate function instead of transformers' pad_collate_fn,
        # which pads videos of different shapes with zeros (`collate_model_inputs`).
        if "TOKENIZERS_PARALLELISM" not in os.environ:
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
        if num_workers > 1:
            logger.warning("A ChunkPipeline runs with num_workers=1 at most (its inputs are iterators); using 1.")
            num_workers = 1
        dataset = PipelineChunkIterator(inputs, self.preprocess, preprocess_params)
        loader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=collate_model_inputs)
        model_iterator = PipelinePackIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

    # ------------------------------------------------------------------ preprocess
    def _process(self, videos: Any, **settings: Any) -> torch.Tensor:
        # Inference: never augment, whatever the saved processor was set to.
        batch = self.video_processor(videos, do_augment=False, return_tensors="pt", **settings)
        return batch["pixel_values_videos"].to(self.dtype)

    def preprocess(
        self, video: Any, segment_seconds: float | None = None, video_fps: float | None = None
    ) -> Iterator[dict[str, Any]]:
        if video is None:
            raise ValueError("video is missing: pass a path, bytes, an array or a list of frames.")
        video = resolve_video_source(video)  # datasets Video cells, URLs
        check_video_fps_for(video, video_fps)
        if segment_seconds is None:
            # An in-memory video's rate, for a processor that samples by rate (`fps=`); a file carries its own.
            known_rate = {} if video_fps is None else {"video_metadata": {"fps": video_fps}}
            in_memory = isinstance(video, (np.ndarray, torch.Tensor, list, tuple))
            if in_memory and video_fps is None and getattr(self.video_processor, "fps", None) is not None:
                raise ValueError(f"the video processor samples {self.video_processor.fps} frames a second, and an "
                                 "in-memory video carries no frame rate: pass video_fps=<its frame rate>, or use a "
                                 "processor with num_frames.")
            yield {"pixel_values_videos": self._process(video, **known_rate), "is_last": True}
            return
        yield from self._preprocess_windows(video, segment_seconds, video_fps)

    def _preprocess_windows(
        self, video: Any, segment_seconds: float, video_fps: float | None
    ) -> Iterator[dict[str, Any]]:
        """Yields one model input per window, decoding a bounded number of source frames at a time."""
        source = _FrameSource(video, self.video_processor.video_backend, video_fps)
        check_window_length(segment_seconds, source.fps, source.label)  # names the video, which plan_windows cannot
        windows = plan_windows(source.num_total, source.fps, segment_seconds)
        window_clips = [self._window_clip_indices(end - start, source.fps) for start, end in windows]
        frame_counts = [sum(len(clip) for clip in clips) for clips in window_clips]
        for group in _decode_groups(frame_counts, MAX_FRAMES_PER_DECODE):
            first_frames = [windows[position][0] for position in group]
            indices = [
                first + index
                for first, position in zip(first_frames, group)
                for clip in window_clips[position]
                for index in clip
            ]
            frames_of_windows = source.read(indices).split([frame_counts[position] for position in group])
            for position, frames in zip(group, frames_of_windows):
                start, end = windows[position]
                yield {
                    "pixel_values_videos": self._window_pixels(frames, len(window_clips[position])),
                    "window_start": torch.tensor([start / source.fps], dtype=torch.float64),
                    "window_end": torch.tensor([end / source.fps], dtype=torch.float64),
                    "is_last": position == len(windows) - 1,
                }

    def _window_clip_indices(self, num_window_frames: int, fps: float) -> list[list[int]]:
        """
        Frame indices (from the window's first frame) of each temporal clip of one window, sampled as the processor
        samples a whole video of the window's length: `num_frames` frames, or with `fps=` sampling `int(seconds *
        fps)` of them (at least 1), so a window of a rate-sampling processor gets its rate, not a frame count.
        """
        metadata = VideoMetadata(total_num_frames=num_window_frames, fps=fps)
        return self.video_processor.sample_frames(metadata, do_augment=False).tolist()

    def _window_pixels(self, frames: torch.Tensor, num_clips: int) -> torch.Tensor:
        """One window's sampled frames (its clips one after the other) as one video's `pixel_values_videos`."""
        clips = list(frames.split(frames.shape[0] // num_clips))
        # Frames are already sampled: the processor only resizes, crops and normalises each clip.
        pixels = self._process(clips, do_sample_frames=False, num_temporal_clips=1)
        # (clips, [crops,] T, 3, H, W) -> (1, views, T, 3, H, W), clip-major as the processor orders a video's views.
        views = pixels.reshape(1, -1, *pixels.shape[-4:])
        return views[:, 0] if views.shape[1] == 1 else views

    # ------------------------------------------------------------------ text embeddings
    def _tokenize_prompts(self, labels: tuple[str, ...], template: str) -> dict[str, torch.Tensor]:
        prompts = [template.format(label) for label in labels]
        max_length = self.model.config.text_config.max_position_embeddings
        text_inputs, full_ids = tokenize_label_prompts(self.tokenizer, labels, prompts, max_length)
        # What the text encoder reads: the ids up to the padding (truncated prompts included).
        read = [ids[mask.bool()].tolist() for ids, mask in zip(text_inputs["input_ids"], text_inputs["attention_mask"])]
        check_distinct_prompts(labels, template, read, full_input_ids=full_ids)
        return text_inputs

    def text_embeddings(self, candidate_labels: Sequence[str], hypothesis_template: str | None = None) -> torch.Tensor:
        """
        Text embeddings `(num_labels, projection_dim)` of the labels filled into the template, from the cache when
        this label set and template were seen before.

        Raises:
            `ValueError`: bad labels or template, or labels whose prompts tokenize alike (`check_distinct_prompts`).
        """
        labels = _check_label_strings(candidate_labels)
        template = check_hypothesis_template(hypothesis_template or self.model.config.text_template)
        key = (labels, template, str(self.device), self.dtype)
        cached = self._text_embedding_cache.get(key)
        if cached is not None:
            self._text_embedding_cache.move_to_end(key)
            return cached
        text_inputs = self._tokenize_prompts(labels, template).to(self.device)
        with torch.no_grad():
            embeds = self.model.get_text_features(
                input_ids=text_inputs["input_ids"], attention_mask=text_inputs["attention_mask"]
            ).pooler_output
        self._text_embedding_cache[key] = embeds
        while len(self._text_embedding_cache) > TEXT_EMBEDDING_CACHE_SIZE:
            self._text_embedding_cache.popitem(last=False)
        return embeds

    # ------------------------------------------------------------------ model
    def _forward(
        self,
        model_inputs: dict[str, Any],
        candidate_labels: tuple[str, ...] | None = None,
        hypothesis_template: str | None = None,
    ) -> dict[str, Any]:
        text_embeds = self.text_embeddings(candidate_labels, hypothesis_template)
        # With video-specific prompts, forward() adapts the cached text embeddings to each video (the cheap prompt
        # generator step); the text encoder does not run again.
        logits = self._video_logits(model_inputs["pixel_values_videos"], text_embeds)
        model_outputs = {"logits": logits, "is_last": model_inputs["is_last"]}
        if "window_start" in model_inputs:
            model_outputs["window_start"] = model_inputs["window_start"]
            model_outputs["window_end"] = model_inputs["window_end"]
        return model_outputs

    def _video_logits(self, pixel_values_videos: torch.Tensor | list[torch.Tensor], text_embeds: torch.Tensor):
        """`(batch, num_labels)` logits of a batch: one tensor, or a list of videos of different shapes."""
        if isinstance(pixel_values_videos, torch.Tensor):
            return self.model(pixel_values_videos=pixel_values_videos, text_embeds=text_embeds).logits_per_video
        # Each shape runs as its own sub-batch, so every video gets the scores it gets alone (no padding).
        rows: list[torch.Tensor | None] = [None] * len(pixel_values_videos)
        for positions in _equal_shape_groups(pixel_values_videos):
            videos = torch.cat([pixel_values_videos[position] for position in positions])
            for position, row in zip(positions, self._video_logits(videos, text_embeds)):
                rows[position] = row
        return torch.stack(rows)

    # ------------------------------------------------------------------ postprocess
    def postprocess(
        self,
        model_outputs: list[dict[str, Any]],
        candidate_labels: tuple[str, ...] | None = None,
        top_k: int | None = None,
    ) -> list[dict[str, Any]]:
        top_k = check_top_k(top_k, len(candidate_labels))

        def ranked(logits: torch.Tensor) -> list[dict[str, Any]]:
            scores = _one_video_logits(logits, len(candidate_labels)).float().softmax(dim=-1).tolist()
            order = sorted(range(len(scores)), key=lambda index: -scores[index])
            return [{"label": candidate_labels[index], "score": scores[index]} for index in order[:top_k]]

        if "window_start" not in model_outputs[0]:
            return ranked(model_outputs[0]["logits"])
        return [
            {
                "start": float(output["window_start"].reshape(-1)[0]),
                "end": float(output["window_end"].reshape(-1)[0]),
                "labels": ranked(output["logits"]),
            }
            for output in model_outputs
        ]


def _one_video_logits(logits: torch.Tensor, num_labels: int) -> torch.Tensor:
    """One video's `(num_labels,)` logits from `(num_labels,)` or `(1, num_labels)`. Several rows are several
    videos: flattened into one softmax they would mix the videos' scores and point past the labels."""
    if logits.shape[-1:] != (num_labels,) or logits.reshape(-1, num_labels).shape[0] != 1:
        raise ValueError(
            f"postprocess takes one video's logits, of shape (1, {num_labels}) for {num_labels} labels, got shape "
            f"{tuple(logits.shape)}: pass several videos as a list, each is scored on its own."
        )
    return logits.reshape(-1)


# ----------------------------------------------------------------------------------------------------------------
# Registration
# ----------------------------------------------------------------------------------------------------------------
def _omniclip_model_class():
    from .modeling_omniclip import OmniCLIPModel

    return OmniCLIPModel


def register_zero_shot_video_classification_pipeline() -> None:
    """Registers `"zero-shot-video-classification"` with transformers' `pipeline()` (idempotent)."""
    if TASK_NAME in PIPELINE_REGISTRY.get_supported_tasks():
        _, task_impl, _ = PIPELINE_REGISTRY.check_task(TASK_NAME)
        if task_impl.get("impl") is ZeroShotVideoClassificationPipeline:
            return
    PIPELINE_REGISTRY.register_pipeline(
        TASK_NAME,
        pipeline_class=ZeroShotVideoClassificationPipeline,
        # OmniCLIPModel, not AutoModel: its from_pretrained also takes a plain CLIP checkpoint (wrapped at identity).
        pt_model=_omniclip_model_class(),
        type="multimodal",
    )


__all__ = [
    "ZeroShotVideoClassificationPipeline",
    "register_zero_shot_video_classification_pipeline",
    "check_batch_size",
    "check_candidate_labels",
    "check_distinct_prompts",
    "check_hypothesis_template",
    "check_text_template",
    "check_top_k",
    "collate_model_inputs",
    "plan_windows",
]
