# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""The `omniclip` command's input checks: labels, model sources, video files, devices, and the pipeline loaded from
a model, each problem a `CommandError` of one line. Like `omniclip_hf.cli`, nothing heavy is imported at module level:
torch and transformers load inside the functions that use them."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any, Sequence


class CommandError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def one_line(error: BaseException | str) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


# ----------------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------------
# --labels separates labels with commas; semicolons and line breaks separate too, so "yoga; archery" (or a list
# pasted one a line) is two labels rather than one that scores 1.0. Labels containing them go in --labels-file.
LABEL_SEPARATORS = re.compile(r"[,;\n]")
LABEL_FILE_SUFFIXES = (".txt", ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml")
# Leading bytes of still-image formats PyAV would otherwise read as a one-frame "video" (GIF is left out: it moves).
IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def split_labels(text: str) -> list[str]:
    """`--labels` as a list: split on commas, semicolons and line breaks, each label stripped of outer spaces."""
    stripped = text.strip()
    if stripped and not LABEL_SEPARATORS.search(stripped):
        if Path(stripped).is_file() or stripped.lower().endswith(LABEL_FILE_SUFFIXES):
            raise CommandError(label_file_as_labels_message(stripped))
    candidates = [label.strip() for label in LABEL_SEPARATORS.split(text)]
    if all(not label for label in candidates):
        raise CommandError('--labels is empty: give comma-separated labels, e.g. --labels "running,cooking".')
    if len(candidates) == 1:
        raise CommandError(
            f"--labels {stripped!r} is one label, and a softmax over one label always scores 1.0: give two or more, "
            'separated by commas, e.g. --labels "yoga,archery".'
        )
    return candidates


def label_file_as_labels_message(name: str) -> str:
    """What to do with a label file given to `--labels`: pass it as --labels-file, where the loader reads its format
    (recommending that for a .json or .yaml file would only trade one error for another)."""
    from .processing_omniclip import LABEL_FILE_FORMATS, is_readable_label_file_name

    if is_readable_label_file_name(name):
        return (
            f"--labels {name} looks like a label file: pass it as --labels-file {name} "
            '(--labels takes the labels themselves, e.g. --labels "yoga,archery").'
        )
    return (
        f"--labels {name} looks like a label file, and {Path(name).suffix} files are not read as class lists: write "
        f'{LABEL_FILE_FORMATS}, and pass that as --labels-file (or the labels themselves as --labels "yoga,archery").'
    )


def read_labels(labels: str | None, labels_file: str | None) -> list[str]:
    """
    The candidate labels: `--labels` split on commas, semicolons or line breaks (kept as typed, minus surrounding
    spaces), or a label file (a .txt or suffix-less file with one dataset class name a line, or a .csv with a `name`
    column; other suffixes are refused) turned into natural text (`brush_hair` -> `brush hair`, `ApplyEyeMakeup` ->
    `apply eye makeup`).
    """
    from .pipeline_omniclip import check_candidate_labels
    from .processing_omniclip import LABEL_FILE_FORMATS, label_to_text, load_label_names

    if labels_file is not None:
        path = Path(labels_file)
        if path.is_dir():
            raise CommandError(
                f"--labels-file {labels_file} is a folder; pass the label file itself: {LABEL_FILE_FORMATS}."
            )
        if not path.is_file():
            raise CommandError(f"label file {labels_file} does not exist.")
        try:
            names = load_label_names(path)
        except ValueError as error:
            raise CommandError(one_line(error)) from None
        if len(names) == 1:
            raise CommandError(
                f"label file {labels_file} has one label ({names[0]!r}), and a softmax over one label always scores "
                "1.0: give two or more, one a line."
            )
        candidates = [label_to_text(name) for name in names]
    else:
        candidates = split_labels(labels)
    try:
        return list(check_candidate_labels(candidates))
    except ValueError as error:
        message = str(error).replace("candidate_labels has", "the labels have").replace("candidate_labels", "labels")
        raise CommandError(message) from None


def check_template(template: str) -> str:
    from .pipeline_omniclip import check_hypothesis_template

    try:
        return check_hypothesis_template(template)
    except ValueError as error:
        raise CommandError(str(error).replace("hypothesis_template", "--template")) from None


def looks_like_hub_id(model: str) -> bool:
    """`name` or `owner/name` that is not a local path (Hub ids have at most one slash and no path prefixes)."""
    return (
        not Path(model).exists()
        and model.count("/") <= 1
        and not model.startswith((".", "/", "~"))
        and "\\" not in model
        and all(part and all(char.isalnum() or char in "-_." for char in part) for part in model.split("/"))
    )


def check_model_source(model: str, revision: str | None = None, flag: str = "--model") -> Path | None:
    """A local model folder (checked as such and returned), or a Hub id whose config can be read (cached, or online).
    Errors name the argument `flag` (`--model`, `--clip`; "" for a positional one, which names only the value)."""
    if looks_like_hub_id(model) and "/" in model:
        from .modeling_omniclip import read_checkpoint_config

        try:
            read_checkpoint_config(model, {"revision": revision} if revision else {})
        except (OSError, ValueError) as error:
            raise CommandError(f"{flag} {one_line(error)}".lstrip()) from None
        return None
    return check_model_folder(model, flag)


def check_local_model_files(path: Path | None) -> None:
    """An OmniCLIP folder must hold its tokenizer and processor; a plain CLIP folder neither (its video processor
    is built from the CLIP config when it is wrapped, and without vocabulary files it gets the package's copy of
    CLIP's tokenizer, with a warning, as the pipeline and `omniclip init` do). A folder of another model (SigLIP,
    X-CLIP, a CLIP vision or text tower) is refused for what it is, before its missing files are named."""
    if path is None:
        return
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        config = None  # unreadable config: loading reports it with the file's name
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if isinstance(config, dict) and model_type not in ("omniclip", "clip"):
        refuse_other_model(path)
    if model_type != "clip":
        check_processor_files(path, needs_processor_settings=model_type == "omniclip")


def refuse_other_model(path: Path) -> None:
    """The refusal `OmniCLIPModel.from_pretrained` gives a folder that holds neither an OmniCLIP nor a CLIP model
    (it reads only config.json to say so), as the command's one line."""
    from .modeling_omniclip import OmniCLIPModel

    try:
        OmniCLIPModel.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise CommandError(f"could not load the model and its processor from {path}: {one_line(error)}") from None
    raise CommandError(f"could not load the model and its processor from {path}: it holds neither an OmniCLIP "
                       "nor a CLIP model (config.json's model_type).")


def check_model_folder(model: str, flag: str = "--model") -> Path:
    path = Path(model)
    if not path.exists():
        raise CommandError(f"model folder {model} does not exist (nor is it a Hub id of the form owner/name).")
    if not path.is_dir():
        raise CommandError(f"{flag} {model} is a file; pass the folder written by save_pretrained().".lstrip())
    if not (path / "config.json").is_file():
        raise CommandError(
            f"model folder {model} holds no config.json: it is not a saved model (use model.save_pretrained() and "
            "processor.save_pretrained() on the same folder)."
        )
    return path


def local_video_path(video: str) -> Path | None:
    """The local file a video argument names: the path itself, or a file:// URL's path; `None` for an http(s) URL,
    which only the download can check (the decoder reports its failures naming the URL)."""
    from .video_sources import file_url_to_path, is_file_url, is_url

    if is_url(video):
        return None
    if is_file_url(video):
        try:
            return Path(file_url_to_path(video))
        except ValueError as error:  # a file:// URL naming another host
            raise CommandError(one_line(error)) from None
    return Path(video)


def check_videos(videos: Sequence[str]) -> None:
    """Each video a local file that exists and is no folder or still image (named as given, URLs included)."""
    local = {video: path for video in videos if (path := local_video_path(video)) is not None}
    missing = [video for video, path in local.items() if not path.exists()]
    if missing:
        raise CommandError(f"video file{'s' if len(missing) > 1 else ''} not found: {', '.join(missing)}.")
    folders = [video for video, path in local.items() if path.is_dir()]
    if folders:
        empty = [folder for folder in folders if not any(local[folder].iterdir())]
        what = "an empty folder" if len(empty) == len(folders) else "a folder"
        raise CommandError(
            f"not a video file ({what}): {', '.join(folders)}; pass the video files themselves, e.g. "
            f"{local[folders[0]] / '*.mp4'}."
        )
    for video, path in local.items():
        image_format = still_image_format(path)
        if image_format:
            raise CommandError(
                f"{video} is a {image_format} image, not a video: OmniCLIP recognises motion, and a still picture "
                "would be scored as a video whose frames never change. Pass a video file."
            )


def frames_in_file(path: Path) -> tuple[int, float | None] | None:
    """The frames a video file holds (its packets, counted without decoding, as the decoder counts them before
    sampling) and its frame rate; `None` where it cannot be read (the decoder reports that, naming the file)."""
    from .video_decoding import _first_video_stream, index_video_stream
    from .video_sources import open_video_container

    label = str(path)
    try:
        with open_video_container(str(path)) as container:
            index = index_video_stream(container, _first_video_stream(container, label), label)
            return index.num_frames, index.fps
    except Exception:  # noqa: BLE001  (any failure to read is the decoder's to report, with its own message)
        return None


def header_promises_frames(path: Path, count: int) -> bool:
    """Whether the file's header counts enough frames that the decoder finds at least `count` of them or refuses the
    file as truncated (it does below `MIN_PRESENT_SHARE` of the announced count): then no demux of the whole file is
    needed to tell it is not short, where an hour of video takes seconds to demux, once more before its decoding.

    Only a header that counts frames (MP4, AVI) promises: where a Matroska header states a duration alone, the
    decoder's announced count may use a lower rate, measured from the packets."""
    from .video_decoding import MIN_PRESENT_SHARE, _first_video_stream, announced_frame_count, stream_fps
    from .video_sources import open_video_container

    try:
        with open_video_container(str(path)) as container:
            stream = _first_video_stream(container, str(path))
            # Without the other streams' measured end, a container-wide duration counts here: the decoder's own
            # announced count is then this one or higher, never lower.
            announced = announced_frame_count(container, stream, stream_fps(stream)) if stream.frames else None
    except Exception:  # noqa: BLE001  (any failure to read is the decoder's to report, with its own message)
        return False
    return announced is not None and MIN_PRESENT_SHARE * announced >= count


def fixed_frame_count(video_processor: Any) -> int | None:
    """The frames the processor samples from every video, or `None` where it samples by rate (a saved `fps` wins
    over `num_frames`)."""
    if getattr(video_processor, "fps", None) is not None:
        return None
    return video_processor.num_frames or type(video_processor).num_frames


def warn_about_short_videos(videos: Sequence[str], video_processor: Any) -> None:
    """A `UserWarning` naming each local video with fewer frames than a clip samples: its frames are repeated to
    fill the clip, so it is scored as a video that barely moves (the reason a still picture is refused)."""
    from transformers.video_utils import VideoMetadata

    clip_frames = fixed_frame_count(video_processor)
    for video in videos:
        path = local_video_path(video)
        if path is None or not path.is_file():
            continue
        if clip_frames is not None and header_promises_frames(path, clip_frames):
            continue
        counted = frames_in_file(path)
        if counted is None:
            continue
        num_frames, fps = counted
        try:
            clip = video_processor.sample_frames(VideoMetadata(total_num_frames=num_frames, fps=fps), do_augment=False)
        except (ValueError, TypeError):
            continue  # settings sampling refuses are the decoder's to report, naming the video
        sampled = len(clip[0])
        if num_frames < sampled:
            warnings.warn(
                f"{video} has {num_frames} frame{'s' if num_frames != 1 else ''}, fewer than the {sampled} the model "
                "samples: frames are repeated to fill the clip, so it is scored as a video that barely moves.",
                UserWarning,
                stacklevel=2,
            )


def still_image_format(path: str | Path) -> str | None:
    """The image format named by the file's leading bytes (PNG, JPEG, BMP, TIFF, WebP), or `None`."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return None  # unreadable: the decoder reports it with the file's name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for signature, name in IMAGE_SIGNATURES.items() if head.startswith(signature)), None)


def check_processor_files(path: Path, needs_processor_settings: bool = True) -> None:
    """A local model folder must hold the tokenizer and the processor the pipeline loads beside the weights."""
    from .processing_omniclip import check_processor_folder

    try:
        check_processor_folder(path, needs_processor_settings)
    except FileNotFoundError as error:
        raise CommandError(one_line(error)) from None


def loading_error(model: str, error: BaseException, kwargs: dict[str, Any]) -> str:
    """One line saying why `pipeline()` could not load `model`. transformers' own message for a model class that
    failed wraps that class's whole traceback: the model is loaded here on its own to report the cause itself."""
    text = str(error)
    if "needs a video processor" in text:
        return processor_loading_error(model, kwargs) or one_line(error)
    if not text.startswith(f"Could not load model {model}") and not is_plain_clip(model, kwargs):
        return one_line(error)
    loading = {name: kwargs[name] for name in ("dtype", "revision") if name in kwargs}
    from .model_loading import load_omniclip_model

    try:
        load_omniclip_model(model, **loading)
    except Exception as cause:  # noqa: BLE001  (whatever stopped the pipeline's load, in one line)
        return one_line(cause)
    # It loads on its own: the last line of each traceback transformers kept is its error.
    causes = []
    for part in text.split("while loading with ")[1:]:
        lines = [line.strip() for line in part.splitlines() if line.strip()]
        if lines:
            causes.append(lines[-1])
    return "; ".join(causes) or one_line(error)


def processor_loading_error(model: str, kwargs: dict[str, Any]) -> str | None:
    """Why a local model folder's saved processor does not load (`pipeline()` then goes on without one and reports
    only that it needs a video processor), as `omniclip info` reports it; `None` without a saved one or when it
    loads."""
    from .processing_omniclip import PROCESSOR_CONFIG_FILES, OmniCLIPProcessor

    folder = Path(model)
    if not folder.is_dir() or not any((folder / name).is_file() for name in PROCESSOR_CONFIG_FILES):
        return None
    try:
        OmniCLIPProcessor.from_pretrained(folder, **{name: kwargs[name] for name in ("revision",) if name in kwargs})
    except Exception as error:  # noqa: BLE001  (whatever stopped it, in one line)
        return f"its processor could not be loaded: {one_line(error)}"
    return None


def is_plain_clip(model: str, kwargs: dict[str, Any]) -> bool:
    """Whether `model` is a plain CLIP checkpoint. Where OmniCLIPModel refuses one (a weight missing), `pipeline()`
    goes on to the class its config names, `CLIPModel`, which loads it half random and fails later for another
    reason (no video processor): the refusal is the cause to report."""
    from .modeling_omniclip import read_checkpoint_config

    try:
        config = read_checkpoint_config(model, {name: kwargs[name] for name in ("revision",) if name in kwargs})
    except (OSError, ValueError):
        return False
    return config.get("model_type") == "clip"


def check_device(device: str) -> None:
    """`--device` names a device this machine has (torch would say "Found no NVIDIA driver", or list every device
    type it knows, only once the model moves there): the check examples/evaluate.py makes."""
    from .training.loop import check_device_name

    try:
        check_device_name(device, "--device")
    except ValueError as error:
        raise CommandError(str(error)) from None


def check_labels_with_tokenizer(pipe, labels: list[str], template: str | None):
    """The labels' text embeddings from the pipeline, which refuses labels only its tokenizer tells apart
    ("t-shirt" and "t - shirt") and warns about a label cut to CLIP's context length: checked once, before any video."""
    try:
        return pipe.text_embeddings(labels, template)
    except ValueError as error:
        raise CommandError(str(error).replace("candidate_labels has", "the labels have")) from None


def load_pipeline(model: str, device: str | None, dtype: str, revision: str | None = None):
    """The zero-shot video classification pipeline of a saved model folder or Hub id (OmniCLIP, or a plain CLIP
    wrapped as frame-averaged CLIP), with its tokenizer and processor."""
    import torch
    from transformers import pipeline

    import omniclip_hf  # noqa: F401  (registers the pipeline task and the Auto classes)

    kwargs: dict[str, Any] = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
    if device is not None:
        check_device(device)
        kwargs["device"] = device
    if revision is not None:
        kwargs["revision"] = revision
    try:
        return pipeline("zero-shot-video-classification", model=model, **kwargs)
    except (OSError, ValueError, TypeError) as error:
        raise CommandError(
            f"could not load the model and its processor from {model}: {loading_error(model, error, kwargs)}"
        ) from None


# ----------------------------------------------------------------------------------------------------------------
# argparse checks shared by the examples and the benchmarks (each error names its flag, as `parser.error` prints it)
# ----------------------------------------------------------------------------------------------------------------
def at_least(parser, minimum: float, flags: dict) -> None:
    """Each flag's value (a number, a list of them, or None for "the default") must be `minimum` or more: a count of
    0 would otherwise be taken for "the default" (`args.x or default`) or divide by zero."""
    for flag, value in flags.items():
        for number in value if isinstance(value, list) else [value]:
            if number is not None and number < minimum:
                parser.error(f"{flag} {number}: must be at least {minimum}")


def above(parser, minimum: float, flags: dict) -> None:
    """Each flag's value (a number, a list of them, or None for "the default") must be more than `minimum` (rates,
    durations)."""
    for flag, value in flags.items():
        for number in value if isinstance(value, list) else [value]:
            if number is not None and number <= minimum:
                parser.error(f"{flag} {number}: must be more than {minimum}")
