# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Processor for OmniCLIP: CLIP's tokenizer plus [`OmniCLIPVideoProcessor`], and label-name helpers."""

from __future__ import annotations

import csv
import difflib
import inspect
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any, Sequence

from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin, TextKwargs

# The template check the config, the pipeline and the processor share (the configuration file is in every model
# folder saved for remote code, and saving this processor copies the files it imports along).
from .configuration_omniclip import check_text_template, is_integer


DEFAULT_TEXT_TEMPLATE = "a video of {} action"
# What a saved processor folder holds: CLIP's tokenizer (either form) and the processor settings.
TOKENIZER_FILE_SETS = (("tokenizer.json",), ("vocab.json", "merges.txt"))
PROCESSOR_CONFIG_FILES = ("processor_config.json", "video_preprocessor_config.json", "preprocessor_config.json")

# A lowercase letter or digit followed by a capital starts a new word (ApplyEyeMakeup); so does the last capital
# of a run followed by a lowercase letter (an acronym before a word: "UCFDataset" -> "UCF Dataset").
_CAMEL_CASE_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def label_to_text(name: str) -> str:
    """
    Turns a dataset class name into natural text for a prompt.

    Underscores become spaces (HMDB51: `brush_hair` -> `brush hair`), CamelCase is split (UCF101: `ApplyEyeMakeup` ->
    `apply eye makeup`, `YoYo` -> `yo yo`), text is lowercased (CLIP's tokenizer lowercases anyway) and runs of
    spaces collapse. Names that are already text (Kinetics, SSv2) keep their words and punctuation.
    """
    if not isinstance(name, str):
        raise ValueError(f"A label name must be a string, got {type(name).__name__}: {name!r}.")
    text = name.replace("_", " ")
    text = _CAMEL_CASE_BOUNDARY.sub(" ", text)
    text = " ".join(text.split()).lower()
    if not text:
        raise ValueError(f"Label name {name!r} is empty once cleaned; every class needs a name.")
    return text


def labels_to_prompts(names: list[str], template: str = DEFAULT_TEXT_TEMPLATE) -> list[str]:
    """
    Fills `template` (with `{}` where the name goes) with the natural text of each label name.

    Example:

    ```python
    >>> labels_to_prompts(["brush_hair", "ApplyEyeMakeup"])
    ['a video of brush hair action', 'a video of apply eye makeup action']
    ```"""
    check_text_template(template)
    return [template.format(label_to_text(name)) for name in names]


# The label files read: plain text (a `.txt`, or a file without a suffix) and CSV. Any other suffix is refused: read
# as text, a JSON, YAML or TSV file's syntax became the class names (`[`, `"yoga",`, `- yoga`) and was scored.
LABEL_TEXT_SUFFIXES = ("", ".txt")
LABEL_CSV_SUFFIX = ".csv"
LABEL_FILE_FORMATS = "a text file (.txt or no suffix) with one class name a line, or a CSV (.csv) with a 'name' column"


def load_label_names(path: str | os.PathLike) -> list[str]:
    """
    Reads class names in index order: a text file (`.txt`, or no suffix) with one name a line, or a CSV (`.csv`) with
    a `name` column (and optionally an `id` column giving the order, as X-CLIP's `kinetics_600_labels.csv`). A text
    file whose every line is `<integer> <name>` (UCF101's `classInd.txt`: `1 ApplyEyeMakeup`) is an index file: the
    names ordered by their integer, without it, as a CSV's `id` column orders them. Any other suffix (`.json`,
    `.yaml`, `.tsv`, ...) is refused with a `ValueError`, and a folder is named as one.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"Label file {path} is a folder; pass the label file itself: {LABEL_FILE_FORMATS}.")
    if not path.is_file():
        raise FileNotFoundError(f"Label file {path} does not exist.")
    check_label_file_suffix(path)
    text = _read_label_text(path)
    if path.suffix.lower() == LABEL_CSV_SUFFIX:
        names = _load_csv_label_names(path, text)
    else:
        names = _load_text_label_names(path, text)
    if not names:  # an empty class list scored nothing, or failed later naming no file
        raise ValueError(f"Label file {path} lists no class names: write one name a line, or a CSV with a 'name' "
                         "column and a row per class.")
    return names


def is_readable_label_file_name(path: str | os.PathLike) -> bool:
    """Whether `load_label_names` reads a file of this name (a `.txt`, a `.csv`, or no suffix)."""
    return Path(path).suffix.lower() in (*LABEL_TEXT_SUFFIXES, LABEL_CSV_SUFFIX)


def check_label_file_suffix(path: str | os.PathLike) -> None:
    """Refuses, in one line, a label file whose suffix names a format `load_label_names` does not parse."""
    if not is_readable_label_file_name(path):
        raise ValueError(
            f"Label file {path}: {Path(path).suffix} files are not read as class lists; give {LABEL_FILE_FORMATS}."
        )


def _load_csv_label_names(path: Path, text: str) -> list[str]:
    """The `name` column of a label CSV, in the order of its `id` column if it has one; a row without a name, with
    a name that is empty once cleaned or with an `id` that is not a whole number is refused naming the file and line."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []  # (line number, row): the line a row ends on, as the file's reader counts them from 1
    for row in reader:
        rows.append((reader.line_num, row))
    if not rows and "name" in (reader.fieldnames or []):
        return []  # a header and no row
    if not rows or "name" not in rows[0][1]:
        raise ValueError(f"Label file {path} must be a CSV with a 'name' column (and optionally 'id').")
    has_ids = "id" in rows[0][1]
    entries = []
    for line_number, row in rows:
        name = _checked_label_name(path, line_number, (row["name"] or "").strip())
        index = 0
        if has_ids:
            raw = (row["id"] or "").strip()
            try:
                index = int(raw)
            except ValueError:
                raise ValueError(
                    f"Label file {path}, line {line_number}: id {raw!r} is not a whole number; the 'id' column "
                    "gives each class's index (0, 1, 2, ...): fix that line, or drop the 'id' column to keep the "
                    "file's order."
                ) from None
        entries.append((index, name))
    if has_ids:
        entries.sort(key=lambda entry: entry[0])
    return [name for _, name in entries]


# `1 ApplyEyeMakeup`: a line of an index file (an integer, blanks, a name).
_INDEXED_NAME = re.compile(r"^(-?\d+)\s+(\S.*)$")


def _load_text_label_names(path: Path, text: str) -> list[str]:
    """One name a non-empty line, or the names of an index file (`_indexed_label_names`)."""
    lines = [(line_number, line.strip()) for line_number, line in enumerate(text.splitlines(), start=1)
             if line.strip()]
    indexed = [(line_number, _INDEXED_NAME.match(line)) for line_number, line in lines]
    if indexed and all(match for _, match in indexed):
        return _indexed_label_names(path, [(line_number, int(match[1]), match[2]) for line_number, match in indexed])
    return [_checked_label_name(path, line_number, line) for line_number, line in lines]


def _indexed_label_names(path: Path, entries: list[tuple[int, int, str]]) -> list[str]:
    """The names of `(line, index, name)` entries in index order. Read as names, the numbers went into the prompts
    ("a video of 1 apply eye makeup action"). Two lines with one index are refused: which class it is cannot be told.
    The names' positions are the class indices (from 0) that annotation files' index labels count in."""
    line_of_index: dict[int, int] = {}
    for line_number, index, _ in entries:
        if index in line_of_index:
            raise ValueError(
                f"Label file {path}, lines {line_of_index[index]} and {line_number} both give index {index}; as an "
                "index file ('<index> <name>' lines) each class needs its own index: fix one of them."
            )
        line_of_index[index] = line_number
    return [_checked_label_name(path, line_number, name.strip())
            for line_number, _, name in sorted(entries, key=lambda entry: entry[1])]


def _checked_label_name(path: Path, line_number: int, name: str) -> str:
    """`name`, refused with the file and line when it is empty once cleaned (as `label_to_text` cleans it)."""
    try:
        label_to_text(name)
    except ValueError:
        raise ValueError(
            f"Label file {path}, line {line_number}: the class name {name!r} is empty"
            f"{' once cleaned' if name else ''}; every class needs a name: write it there, or delete the line."
        ) from None
    return name


def _read_label_text(path: Path) -> str:
    """The file as UTF-8 text; a binary file (a video, an archive, a model) is refused in one line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"Label file {path} is not UTF-8 text (undecodable byte at offset {error.start}): give one class name a "
            "line, or a CSV with a 'name' column."
        ) from None
    if "\x00" in text:
        raise ValueError(
            f"Label file {path} is binary (it holds NUL bytes): give one class name a line, or a CSV with a 'name' "
            "column."
        )
    return text


def _named_parameters(function: Any) -> set[str]:
    """The keyword names a function declares (not its `*args` or `**kwargs`); none where it has no signature."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {parameter.name for parameter in parameters
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)}


def _did_you_mean(unknown: list[str], known: set[str]) -> str:
    """` (did you mean 'num_frames'?)` for the close matches of misspelt keywords, or nothing."""
    matches = [match for name in unknown for match in difflib.get_close_matches(name, sorted(known), 1, 0.75)]
    return f" (did you mean {', '.join(repr(match) for match in matches)}?)" if matches else ""


def _common_tensor_type(tensor_types: list[Any]) -> Any:
    """The one `return_tensors` of the modalities given, for the joint batch; `None` (each part as its modality
    returned it) when they differ, so that one modality's choice is not converted into the other's."""
    return tensor_types[0] if len(set(map(str, tensor_types))) == 1 else None


def tokenizer_vocabulary_shortfall(tokenizer: Any, vocab_size: int | None) -> str | None:
    """
    Why `tokenizer` cannot be CLIP's for a text model of `vocab_size` tokens, or `None` when it can be: transformers
    loads a folder without vocabulary files as a tokenizer of its special tokens alone, which gives every word the
    same id (so every label the same score). Fewer tokens than half the vocabulary is that case.
    """
    if vocab_size and len(tokenizer) < vocab_size // 2:
        return f"has a tokenizer of only {len(tokenizer)} tokens for a text model of {vocab_size} (no vocabulary files)"
    return None


def limit_tokenizer_length(tokenizer: Any, max_position_embeddings: int | None) -> Any:
    """
    Sets `tokenizer.model_max_length` to at most the text model's `max_position_embeddings` and returns the
    tokenizer: CLIP's tokenizer says 77 whatever the model, and a CLIP of fewer positions then got 77-token
    `input_ids` from the processor (truncated to 77), which its text model refuses.
    """
    if is_integer(max_position_embeddings) and max_position_embeddings > 0:
        own = getattr(tokenizer, "model_max_length", None)
        if not is_integer(own) or own > max_position_embeddings:
            tokenizer.model_max_length = int(max_position_embeddings)
    return tokenizer


def tokenize_label_prompts(tokenizer: Any, labels: Sequence[str], prompts: Sequence[str], max_length: int,
                           stacklevel: int = 3) -> tuple[Any, list[list[int]]]:
    """
    The label prompts as the text encoder reads them: padded, and truncated to `max_length` (the text model's
    `max_position_embeddings`) with a `UserWarning` naming each label whose prompt is cut, where CLIP would read a
    different text than the one given. The pipeline, evaluation and the Trainer collator tokenize labels with it.

    Returns:
        The `"pt"` encoding, and each prompt's full (untruncated) ids, for `check_distinct_prompts` to tell
        truncation apart as the cause of equal prompts.
    """
    full_ids = tokenizer(list(prompts), add_special_tokens=True, verbose=False)["input_ids"]
    for label, ids in zip(labels, full_ids):
        if len(ids) > max_length:
            warnings.warn(
                f"Label {label!r} gives a prompt of {len(ids)} tokens, longer than CLIP's {max_length}; it is "
                f"truncated to its first {max_length} tokens.",
                UserWarning,
                stacklevel=stacklevel,
            )
    tokens = tokenizer(list(prompts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return tokens, [list(ids) for ids in full_ids]


def check_processor_folder(folder: str | os.PathLike, needs_processor_settings: bool = True) -> None:
    """
    Raises `FileNotFoundError` naming the folder and what it lacks when a local folder has no tokenizer files or no
    processor settings (transformers would instead suggest installing sentencepiece, or ask for a
    `video_preprocessor_config.json` this package never writes). A plain CLIP folder needs no processor settings
    (`needs_processor_settings=False`): its video processor is made from the CLIP's image size when it is wrapped.
    """
    folder = Path(folder)
    if not any(all((folder / name).is_file() for name in names) for names in TOKENIZER_FILE_SETS):
        raise FileNotFoundError(
            f"model folder {folder} holds no tokenizer files (tokenizer.json, or vocab.json and merges.txt): save "
            f"CLIP's tokenizer there, e.g. processor.save_pretrained('{folder}') with an OmniCLIPProcessor."
        )
    if needs_processor_settings and not any((folder / name).is_file() for name in PROCESSOR_CONFIG_FILES):
        raise FileNotFoundError(
            f"model folder {folder} holds no processor settings (processor_config.json): save the processor there, "
            f"e.g. OmniCLIPProcessor(OmniCLIPVideoProcessor(), tokenizer).save_pretrained('{folder}')."
        )


def _text_positions_of_folder(folder: str | os.PathLike) -> int | None:
    """`text_config.max_position_embeddings` of the model saved in `folder` (OmniCLIP or CLIP), or `None`."""
    import json

    try:
        with open(Path(folder) / "config.json", encoding="utf-8") as handle:
            text_config = json.load(handle).get("text_config") or {}
    except (OSError, ValueError, AttributeError):  # no model beside the processor, or no readable config
        return None
    return text_config.get("max_position_embeddings") if isinstance(text_config, dict) else None


class OmniCLIPProcessor(ProcessorMixin):
    r"""
    Wraps CLIP's tokenizer and an [`OmniCLIPVideoProcessor`] into one processor.

    `processor(text=..., videos=..., return_tensors="pt")` returns the tokenizer's `input_ids` and `attention_mask`
    (padded to the longest text by default) and the video processor's `pixel_values_videos`. Keyword arguments that
    are video processor settings (`num_frames`, `sampling`, `train`, `generator`, ...) go to the video processor,
    the others to the tokenizer; `text_kwargs={...}` and `videos_kwargs={...}` pass them explicitly. A keyword that
    neither takes (a misspelt `num_frame=8`) is refused with a `TypeError` naming it.

    Args:
        video_processor ([`OmniCLIPVideoProcessor`]):
            The video processor.
        tokenizer ([`CLIPTokenizer`] or [`CLIPTokenizerFast`]):
            CLIP's tokenizer.
        text_template (`str`, *optional*, defaults to `"a video of {} action"`):
            Prompt template of [`~OmniCLIPProcessor.prompts_for_labels`].

    Example:

    ```python
    >>> from transformers import CLIPTokenizer
    >>> from omniclip_hf import default_tokenizer_path
    >>> from omniclip_hf.processing_omniclip import OmniCLIPProcessor
    >>> from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor

    >>> processor = OmniCLIPProcessor(OmniCLIPVideoProcessor(), CLIPTokenizer.from_pretrained(default_tokenizer_path()))
    >>> prompts = processor.prompts_for_labels(["brush_hair", "ApplyEyeMakeup"])
    >>> inputs = processor(text=prompts, videos="clip.mp4", return_tensors="pt")
    ```"""

    def __init__(self, video_processor=None, tokenizer=None, text_template: str = DEFAULT_TEXT_TEMPLATE, **kwargs):
        if video_processor is None:
            raise ValueError("OmniCLIPProcessor needs a video_processor (an OmniCLIPVideoProcessor).")
        if tokenizer is None:
            raise ValueError(
                "OmniCLIPProcessor needs a tokenizer (CLIP's, e.g. from omniclip_hf.default_tokenizer_path())."
            )
        self.text_template = check_text_template(text_template, "text_template")
        super().__init__(video_processor, tokenizer, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """As `ProcessorMixin.from_pretrained`; a local folder missing the tokenizer or the settings is named first."""
        local = os.path.isdir(pretrained_model_name_or_path) and not kwargs.get("subfolder")
        if local:
            check_processor_folder(pretrained_model_name_or_path)
        processor = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        if local:  # a folder written before `omniclip init` limited the tokenizer to the model's positions
            limit_tokenizer_length(processor.tokenizer, _text_positions_of_folder(pretrained_model_name_or_path))
        return processor

    def _video_kwarg_names(self) -> set[str]:
        return set(self.video_processor.valid_kwargs.__annotations__) | {"train", "generator", "backend"}

    def _text_kwarg_names(self) -> set[str]:
        """
        What the tokenizer takes: transformers' `TextKwargs` (what `ProcessorMixin` routes to a tokenizer) and the
        named parameters of the tokenizer's call and encoding methods. The tokenizer itself takes any keyword and
        ignores the unknown ones, so this list is what tells a typo from a tokenizer argument.
        """
        names = set(TextKwargs.__annotations__)
        for method in (self.tokenizer.__call__, getattr(self.tokenizer, "_encode_plus", None)):
            if method is not None:
                names |= _named_parameters(method)
        return names - {"self", "text"}

    def _refuse_unknown_kwargs(
        self, flat: dict[str, Any], text_kwargs: dict[str, Any], video_kwargs: dict[str, Any]
    ) -> None:
        """
        Raises `TypeError` naming every keyword that neither the video processor nor the tokenizer takes (and every
        one in `text_kwargs` / `videos_kwargs` that its side does not take), whether or not `text` or `videos` was
        given: transformers' `ProcessorMixin` would only log that it ignores them, and a misspelt setting
        (`num_frame=8`) then silently leaves the saved one in force. Tokenizer arguments stay allowed without `text`
        (as in transformers, where they are routed to the tokenizer and unused).
        """
        video_names, text_names = self._video_kwarg_names(), self._text_kwarg_names()
        for where, given, allowed, why in (
            ("", flat, video_names | text_names, "neither the video processor nor the tokenizer takes them (video "
             "settings: OmniCLIPVideoProcessorKwargs; tokenizer arguments: padding, truncation, max_length, ...)"),
            (" in text_kwargs", text_kwargs, text_names, "the tokenizer does not take them (video settings go in "
             "videos_kwargs)"),
            (" in videos_kwargs", video_kwargs, video_names, "the video processor does not take them (see "
             "OmniCLIPVideoProcessorKwargs; tokenizer arguments go in text_kwargs)"),
        ):
            unknown = sorted(set(given) - allowed)
            if unknown:
                raise TypeError(
                    f"OmniCLIPProcessor got unexpected keyword arguments{where} {unknown}"
                    f"{_did_you_mean(unknown, allowed)}: {why}."
                )

    def __call__(self, text: str | list[str] | None = None, videos: Any = None, **kwargs) -> BatchFeature:
        r"""
        Args:
            text (`str` or `list[str]`, *optional*):
                Text(s) to tokenize, e.g. class prompts.
            videos (*optional*):
                Anything [`OmniCLIPVideoProcessor`] accepts: one video or a batch.
            return_tensors (`str` or [`~utils.TensorType`], *optional*):
                `"pt"` or `"np"` for stacked arrays.
            kwargs:
                Video processor settings for this call, or tokenizer arguments.

        Returns:
            [`BatchFeature`] with `input_ids` and `attention_mask` (when `text` is given), `pixel_values_videos`
            (when `videos` is given) and `video_metadata` (with `return_metadata=True`).
        """
        if text is None and videos is None:
            raise ValueError("Pass `text`, `videos` or both to OmniCLIPProcessor.")
        if kwargs.pop("images", None) is not None:
            raise ValueError("OmniCLIPProcessor takes videos, not images; pass a single image as a one-frame video.")
        if kwargs.pop("audio", None) is not None:
            raise ValueError("OmniCLIPProcessor takes videos and text, not audio.")
        # transformers' older convention: `common_kwargs` apply to every modality, below the call's own keywords.
        for key, value in dict(kwargs.pop("common_kwargs", None) or {}).items():
            kwargs.setdefault(key, value)
        return_tensors = kwargs.pop("return_tensors", None)
        text_kwargs = dict(kwargs.pop("text_kwargs", None) or {})
        video_kwargs = dict(kwargs.pop("videos_kwargs", None) or {})
        self._refuse_unknown_kwargs(kwargs, text_kwargs, video_kwargs)
        video_names = self._video_kwarg_names()
        for key in list(kwargs):
            (video_kwargs if key in video_names else text_kwargs)[key] = kwargs.pop(key)

        # A modality's own return_tensors (in text_kwargs / videos_kwargs) applies to it, the call's to the others,
        # as in transformers' processors; passing both reached the tokenizer or video processor twice.
        text_tensors = text_kwargs.pop("return_tensors", return_tensors)
        video_tensors = video_kwargs.pop("return_tensors", return_tensors)
        data: dict[str, Any] = {}
        if text is not None:
            data.update(self._tokenize(text, text_tensors, text_kwargs))
        video_metadata = None
        if videos is not None:
            video_outputs = self.video_processor(videos, return_tensors=video_tensors, **video_kwargs)
            video_metadata = video_outputs.pop("video_metadata", None)
            data.update(video_outputs)
        batch = BatchFeature(data=data, tensor_type=_common_tensor_type(
            [kind for kind, given in ((text_tensors, text), (video_tensors, videos)) if given is not None]
        ))
        if video_metadata is not None:
            batch["video_metadata"] = video_metadata
        return batch

    def _tokenize(self, text: Any, return_tensors: Any, text_kwargs: dict[str, Any]) -> dict[str, Any]:
        """
        Tokenizes padded to the longest text and, unless the caller sets `truncation`, truncated to the tokenizer's
        `model_max_length` (CLIP's 77 positions) with a warning naming each text cut, as the pipeline does: longer
        `input_ids` would fail inside the model's position embeddings.
        """
        texts = [text] if isinstance(text, str) else text
        if isinstance(texts, (list, tuple)) and len(texts) == 0:
            raise ValueError("text is an empty list: pass at least one string (e.g. the prompts of your labels).")
        if not isinstance(texts, (list, tuple)) or not all(isinstance(item, str) for item in texts):
            kind = type(text).__name__ if not isinstance(texts, (list, tuple)) else "a list with non-strings"
            raise ValueError(f"text must be a string or a list of strings, got {kind}.")
        text_kwargs.setdefault("padding", True)
        max_length = text_kwargs.get("max_length") or self._text_max_length()
        if "truncation" not in text_kwargs and max_length is not None:
            self._warn_about_long_texts(texts, max_length)
            text_kwargs.update(truncation=True, max_length=max_length)
        return self.tokenizer(text, return_tensors=return_tensors, **text_kwargs)

    def _text_max_length(self) -> int | None:
        # Tokenizers without a known limit report a huge sentinel (int(1e30)); CLIP's says 77. Where the processor
        # knows its model (`processor_for_clip`, or a model folder's config.json in `from_pretrained`), the tokenizer's
        # limit is already bounded by the text model's positions (`limit_tokenizer_length`).
        limit = getattr(self.tokenizer, "model_max_length", None)
        return int(limit) if isinstance(limit, int) and 0 < limit < 100_000 else None

    def _warn_about_long_texts(self, texts: list[str], max_length: int) -> None:
        lengths = [len(ids) for ids in self.tokenizer(list(texts), verbose=False)["input_ids"]]
        for text, length in zip(texts, lengths):
            if length > max_length:
                shown = text if len(text) <= 60 else text[:57] + "..."
                warnings.warn(
                    f"Text {shown!r} is {length} tokens, longer than the tokenizer's {max_length}; it is truncated "
                    f"to its first {max_length} tokens (pass truncation=False to keep it whole).",
                    UserWarning,
                    stacklevel=4,
                )

    def prompts_for_labels(self, names: list[str], template: str | None = None) -> list[str]:
        """Natural-text prompts for dataset class names, filled into `template` (default: `self.text_template`)."""
        return labels_to_prompts(names, template or self.text_template)

    @property
    def model_input_names(self) -> list[str]:
        return list(self.tokenizer.model_input_names) + list(self.video_processor.model_input_names)


__all__ = [
    "OmniCLIPProcessor",
    "check_processor_folder",
    "limit_tokenizer_length",
    "tokenize_label_prompts",
    "tokenizer_vocabulary_shortfall",
    "label_to_text",
    "labels_to_prompts",
    "load_label_names",
    "DEFAULT_TEXT_TEMPLATE",
]
