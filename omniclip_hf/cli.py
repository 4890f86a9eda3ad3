# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""The `omniclip` command: zero-shot classification of video files, model summaries and attention pictures.

    omniclip classify VIDEO [VIDEO ...] --model PATH (--labels "a,b,c" | --labels-file FILE) [--top-k 5] [--json]
                                        [--segment-seconds S]
    omniclip info PATH
    omniclip explain VIDEO --model PATH (--labels ... | --labels-file FILE) --out FILE.png [--colour-scale tile]
    omniclip init --clip CLIP --out FOLDER [--num-frames 8]

A model is a folder or a Hub id (with --revision), of an OmniCLIP or of a plain CLIP (then frame-averaged CLIP).

Errors print one line on stderr and exit with status 1 (2 for a malformed command line); `--debug` shows the
traceback instead. Output cut short by a closed pipe (`omniclip classify ... | head`) ends quietly with status 141,
as a Unix tool killed by SIGPIPE does.

torch, transformers and the model code are imported inside the commands that use them, so `omniclip --help` and
malformed command lines answer at once (the console script, `omniclip_launcher`, parses before the package loads).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from .cli_checks import (
    CommandError,
    check_labels_with_tokenizer,
    check_local_model_files,
    check_model_source,
    check_template,
    check_videos,
    fixed_frame_count,
    load_pipeline,
    one_line,
    read_labels,
    warn_about_short_videos,
)


PROGRAM = "omniclip"
PACKAGE_LOGGER = "omniclip_hf"  # the package's modules log under it (transformers' get_logger(__name__))
DEFAULT_TOP_K = 5
DTYPES = ("auto", "float32", "bfloat16", "float16")
WINDOW_WIDTH = 17  # "1234.56-1240.00 s"


# ----------------------------------------------------------------------------------------------------------------
# classify
# ----------------------------------------------------------------------------------------------------------------
def format_table(video: str, result: list, video_width: int, segments: bool) -> list[str]:
    """Rows of the classification table for one video (its name on its first row only)."""
    rows = []
    windows = result if segments else [{"labels": result}]
    first = True
    for window in windows:
        span = f"{window['start']:.2f}-{window['end']:.2f} s".ljust(WINDOW_WIDTH) + "  " if segments else ""
        for rank, prediction in enumerate(window["labels"], start=1):
            name = video if first else ""
            rows.append(f"{name:<{video_width}}  {span}{rank:>4}  {prediction['score']:6.4f}  {prediction['label']}")
            first = False
            span = " " * len(span)
    return rows


def table_header(video_width: int, segments: bool) -> str:
    span = "window".ljust(WINDOW_WIDTH) + "  " if segments else ""
    return f"{'video':<{video_width}}  {span}{'rank':>4}  {'score':>6}  label"


def json_line(video: str, result: list, segments: bool) -> str:
    key = "segments" if segments else "labels"
    return json.dumps({"video": video, key: result}, ensure_ascii=False)


def json_error_line(video: str, error: str) -> str:
    """The record of a video that failed: a reader of the JSON lines sees every video it asked for, not only those
    that scored (the error line on stderr says the same)."""
    return json.dumps({"video": video, "error": error}, ensure_ascii=False)


def classify_in_batches(pipe, videos: list[str], batch_size: int, call_kwargs: dict[str, Any], debug: bool):
    """Yields `(video, result, None)`, or `(video, None, error message)` for a video that failed: a failing batch is
    retried one video at a time to name the bad file."""
    from tqdm.auto import tqdm

    # The bar shows only on a terminal (disable=None) and only when there is more than one video.
    with tqdm(total=len(videos), disable=None if len(videos) > 1 else True, file=sys.stderr, unit="video") as bar:
        for start in range(0, len(videos), batch_size):
            chunk = videos[start : start + batch_size]
            try:
                outcomes = [(result, None) for result in pipe(list(chunk), batch_size=batch_size, **call_kwargs)]
            except (ValueError, OSError, RuntimeError):
                if debug and len(chunk) == 1:
                    raise
                outcomes = []
                for video in chunk:
                    try:
                        outcomes.append((pipe(video, **call_kwargs), None))
                    except (ValueError, OSError, RuntimeError) as error:
                        if debug:
                            raise
                        error_line(f"{video}: {one_line(error)}")
                        outcomes.append((None, one_line(error)))
            for video, (result, error) in zip(chunk, outcomes):
                yield video, result, error
            bar.update(len(chunk))


def emit(text: str) -> None:
    """Prints a result line without breaking the progress bar on stderr (tqdm redraws it below)."""
    from tqdm.auto import tqdm

    tqdm.write(text, file=sys.stdout)
    sys.stdout.flush()


def run_classify(args: argparse.Namespace) -> int:
    check_videos(args.videos)
    labels = read_labels(args.labels, args.labels_file)
    top_k = args.top_k if args.top_k is not None else min(DEFAULT_TOP_K, len(labels))
    if not 1 <= top_k <= len(labels):
        raise CommandError(f"--top-k {top_k} is out of range: there are {len(labels)} labels, so use 1 to {len(labels)}.")
    if args.segment_seconds is not None and not 0 < args.segment_seconds < float("inf"):
        raise CommandError(f"--segment-seconds {args.segment_seconds} is invalid: it must be a number of seconds > 0.")
    if args.template is not None:
        check_template(args.template)
    if args.batch_size < 1:
        raise CommandError(f"--batch-size {args.batch_size} is invalid: it must be >= 1.")
    check_local_model_files(check_model_source(args.model, args.revision))

    pipe = load_pipeline(args.model, args.device, args.dtype, args.revision)
    # labels only the model's tokenizer tells apart ("t-shirt" and "t - shirt"): refused once, not per video
    check_labels_with_tokenizer(pipe, labels, args.template)
    segments = args.segment_seconds is not None
    call_kwargs: dict[str, Any] = {"candidate_labels": labels, "top_k": top_k}
    if segments:
        call_kwargs["segment_seconds"] = args.segment_seconds
    if args.template is not None:
        call_kwargs["hypothesis_template"] = args.template

    video_width = max(len("video"), *(len(video) for video in args.videos))
    # The header goes out with the first row: a run where every video fails leaves stdout empty, not a bare header.
    header_pending = not args.json
    failures = 0
    for video, result, error in classify_in_batches(pipe, list(args.videos), args.batch_size, call_kwargs, args.debug):
        if error is not None:
            failures += 1
            if args.json:
                emit(json_error_line(video, error))
            continue
        warn_about_short_videos([video], pipe.video_processor)  # beside its rows, not all before the first one
        if args.json:
            emit(json_line(video, result, segments))
        else:
            rows = format_table(video, result, video_width, segments)
            if rows and header_pending:
                rows.insert(0, table_header(video_width, segments))
                header_pending = False
            if rows:
                emit("\n".join(rows))
    return 1 if failures else 0


# ----------------------------------------------------------------------------------------------------------------
# info
# ----------------------------------------------------------------------------------------------------------------
def describe_model(model, processor=None) -> list[str]:
    """Lines summarising a loaded OmniCLIP model: base CLIP, architecture choices and parameter counts."""
    config = model.config
    vision, text = config.vision_config, config.text_config
    trainable = model.num_trainable_parameters()
    total = sum(parameter.numel() for parameter in model.parameters())
    frozen = total - trainable
    adapter_layers = config.pta_layer_indices
    lines = [
        f"base CLIP:        {config.base_clip_name_or_path or 'unknown'}",
        f"vision encoder:   {vision.num_hidden_layers} layers, width {vision.hidden_size}, "
        f"patch {vision.patch_size}, image {vision.image_size}",
        f"text encoder:     {text.num_hidden_layers} layers, width {text.hidden_size}; projection {config.projection_dim}",
        f"frames:           {config.num_frames} (temporal embedding {'on' if config.use_temporal_embedding else 'off'})",
    ]
    from .modeling_omniclip import OmniCLIPConvolutionAdapter, OmniCLIPTemporalAdapter

    adapters = [module for module in model.modules()
                if isinstance(module, (OmniCLIPTemporalAdapter, OmniCLIPConvolutionAdapter))]
    if config.use_pta:
        where = "all" if len(adapter_layers) == vision.num_hidden_layers else ",".join(map(str, adapter_layers))
        # Heads only where the adapter attends across frames ("cascade" is ST-Adapter's 3D convolution).
        attention = getattr(adapters[0], "attention", None) if adapters else None
        inside = (
            f"{attention.num_heads} head{'s' if attention.num_heads != 1 else ''}" if attention is not None
            else "depth-wise 3D convolution" if adapters else None
        )
        alpha = mean_abs(adapter.alpha for adapter in adapters)
        lines.append(
            f"temporal adapter: {config.pta_mode}, layers {where}, ratio {config.pta_ratio} "
            f"(width {config.pta_hidden_size}{', ' + inside if inside else ''})"
            + (f", alpha {alpha:.4g} (mean |alpha| loaded)" if alpha is not None else "")
        )
    else:
        lines.append("temporal adapter: off")
    if config.use_spg:
        lines.append(
            f"self-prompts:     {config.spg_pooling} pooling, projector {'on' if config.spg_projector else 'off'}, "
            f"layers {config.spg_layers}"
        )
    else:
        lines.append("self-prompts:     off")
    lines.append(f"video head:       {config.video_head_num_layers} layer(s)")
    prompts = getattr(model, "video_specific_prompts", None)
    if config.use_video_specific_prompts and prompts is not None:
        # The scale the loaded weights apply, not the config's starting value (training moves it; 0 = no prompts).
        lines.append(
            f"video prompts:    {config.prompt_layers} layers, alpha {mean_abs([prompts.alpha]):.4g} "
            f"(mean |alpha| loaded; initial {config.prompt_alpha})"
        )
    else:
        lines.append("video prompts:    off")
    lines.append(f"text template:    {config.text_template!r}")
    lines.append(
        f"parameters:       {trainable:,} trainable, {frozen:,} frozen "
        f"({100 * trainable / max(frozen, 1):.2f}% of the frozen CLIP)"
    )
    video_processor = getattr(processor, "video_processor", processor)
    if video_processor is not None:
        lines.append(f"processor:        {describe_video_processor(video_processor)}")
        lines.extend(f"                  ({difference})" for difference in processor_differences(config, video_processor))
    return lines


def processor_differences(config, video_processor) -> list[str]:
    """What the processor feeds the model other than the config's frame count and the checkpoint's frame size: the
    model then runs with its temporal embedding resampled or its position embeddings interpolated, which `classify`
    and the pipeline do without a word (a processor saved or edited apart from its model)."""
    differences = []
    count = fixed_frame_count(video_processor)
    if count is not None and count != config.num_frames:
        differences.append(f"the model was made for {config.num_frames} frames: it runs on {count}, its temporal "
                           "embedding resampled")
    crop, image_size = video_processor.crop_size, config.vision_config.image_size
    if crop and (crop["height"], crop["width"]) != (image_size, image_size):
        differences.append(f"the CLIP's frames are {image_size}x{image_size}: it runs on {crop['height']}x"
                           f"{crop['width']}, its position embeddings interpolated")
    return differences


def mean_abs(parameters) -> float | None:
    """The mean absolute value over the given tensors' elements (`None` without any)."""
    values = [parameter.detach().float().abs().reshape(-1) for parameter in parameters]
    if not values:
        return None
    import torch

    return float(torch.cat(values).mean())


def describe_video_processor(video_processor) -> str:
    """`8 frames` (or `2 frames a second`, sampling by rate as the processor then does), sampling, views, crop."""
    crop = video_processor.crop_size
    crop_text = f"{crop['height']}x{crop['width']}" if crop else "none"
    count = fixed_frame_count(video_processor)
    if count is None:
        fps = video_processor.fps
        frames = f"{fps:g} frame{'s' if fps != 1 else ''} a second"
    else:
        frames = f"{count} frames"
    return (
        f"{frames}, {video_processor.sampling} sampling, "
        f"{video_processor.num_temporal_clips} clip(s) x {video_processor.num_spatial_crops} crop(s), crop {crop_text}"
    )


def run_info(args: argparse.Namespace) -> int:
    from transformers.utils import logging as hf_logging

    from .model_loading import load_omniclip_model
    from .processing_omniclip import PROCESSOR_CONFIG_FILES, OmniCLIPProcessor

    check_model_source(args.path, args.revision, flag="")
    path = args.path
    hub_kwargs = {"revision": args.revision} if args.revision else {}
    try:
        model = load_omniclip_model(path, **hub_kwargs)
    except (OSError, ValueError, TypeError) as error:
        raise CommandError(f"could not load an OmniCLIP model from {args.path}: {one_line(error)}") from None
    processor, processor_note = None, None
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    clip_source = getattr(model, "wrapped_clip_source", None)
    try:
        if clip_source is not None:
            # A plain CLIP: the pipeline (and classify) make the video processor from the CLIP's image processor.
            from .clip_conversion import video_processor_for_clip

            processor = video_processor_for_clip(
                clip_source, model.config.vision_config.image_size, model.config.num_frames, **hub_kwargs
            )
            processor_note = "made from the CLIP's image processor when the pipeline wraps it; none saved"
        else:
            processor = OmniCLIPProcessor.from_pretrained(path, **hub_kwargs)
    except (OSError, ValueError, TypeError) as error:
        processor = None  # a model folder without a processor still has a summary
        if Path(path).is_dir() and not any((Path(path) / name).is_file() for name in PROCESSOR_CONFIG_FILES):
            processor_note = "none saved in this folder (the pipeline and `classify` need one)"
        else:  # saved but unreadable (or a Hub model's): the loader's own reason
            processor_note = f"could not be loaded: {one_line(error)}"
    finally:
        hf_logging.set_verbosity(verbosity)
    kind = "plain CLIP, wrapped as OmniCLIP at the identity" if clip_source is not None else None
    print(f"OmniCLIP model:   {args.path}" + (f" ({kind})" if kind else ""))
    print("\n".join(describe_model(model, processor)))
    if processor is None or clip_source is not None:
        print(f"processor:        {processor_note}" if processor is None else f"                  ({processor_note})")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# init
# ----------------------------------------------------------------------------------------------------------------
def run_init(args: argparse.Namespace) -> int:
    from .clip_conversion import write_model_folder

    if args.num_frames < 1:
        raise CommandError(f"--num-frames {args.num_frames} is invalid: it must be >= 1.")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CommandError(f"--out {args.out} already exists and is not an empty folder: choose a new folder.")
    check_model_source(args.clip, args.revision, flag="--clip")
    try:
        folder = write_model_folder(
            args.clip, out, num_frames=args.num_frames, **({"revision": args.revision} if args.revision else {})
        )
    except (OSError, ValueError) as error:
        raise CommandError(f"could not make an OmniCLIP model from {args.clip}: {one_line(error)}") from None
    print(f"wrote {folder}: {args.clip} as OmniCLIP at CLIP's identity (frame-averaged CLIP scores, SPG off), "
          "tokenizer, video processor; to train the paper's model, train from the CLIP itself (examples/train.py "
          "--clip)")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# explain
# ----------------------------------------------------------------------------------------------------------------
def run_explain(args: argparse.Namespace) -> int:
    from .attention_figure import (
        MAX_TILE_SIZE,
        describe_explanation,
        figure_too_large,
        render_explanation,
        save_png_atomically,
    )
    from .attention_maps import explain_video

    check_videos([args.video])
    labels = read_labels(args.labels, args.labels_file)
    out = Path(args.out)
    if not out.parent.exists():
        raise CommandError(f"cannot write {args.out}: folder {out.parent} does not exist.")
    if not out.parent.is_dir():
        raise CommandError(f"cannot write {args.out}: {out.parent} is a file, not a folder.")
    if out.suffix.lower() != ".png":
        raise CommandError(f"--out {args.out} must be a .png file.")
    if out.is_dir():
        raise CommandError(f"--out {args.out} is a folder: give the path of the .png file to write.")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise CommandError(f"cannot write {args.out}: folder {out.parent} is not writable.")
    if args.tile_size < 16:
        raise CommandError(f"--tile-size {args.tile_size} is too small: use at least 16 pixels.")
    if args.tile_size > MAX_TILE_SIZE:  # the picture is (96 + frames * tile) x (28 + 3 * tile) pixels, in memory
        raise CommandError(f"--tile-size {args.tile_size} is too large: use at most {MAX_TILE_SIZE} pixels.")
    if args.template is not None:
        check_template(args.template)
    check_local_model_files(check_model_source(args.model, args.revision))

    pipe = load_pipeline(args.model, args.device, args.dtype, args.revision)
    text_embeds = check_labels_with_tokenizer(pipe, labels, args.template)  # classify's checks, before the video
    warn_about_short_videos([args.video], pipe.video_processor)
    try:
        explanation = explain_video(
            pipe.model, pipe.video_processor, args.video, labels, pipe.tokenizer, hypothesis_template=args.template,
            text_embeds=text_embeds,
        )
    except (ValueError, OSError, RuntimeError) as error:
        raise CommandError(f"{args.video}: {one_line(error)}") from None
    # The frame count is known once the video is sampled (a processor sampling by rate gives a long video hundreds).
    too_large = figure_too_large(len(explanation.frames), *explanation.frames.shape[1:3], args.tile_size)
    if too_large:
        raise CommandError(f"--tile-size {args.tile_size} {too_large}")
    figure = render_explanation(
        explanation, tile_size=args.tile_size, title=Path(args.video).name, colour_scale=args.colour_scale
    )
    try:
        save_png_atomically(figure, out)
    except OSError as error:
        raise CommandError(f"cannot write {args.out}: {one_line(error)}") from None
    print(f"wrote {out} ({figure.width}x{figure.height} pixels, {len(explanation.frames)} frames)")
    print("\n".join(ranked_scores_lines(args.video, explanation, labels)))
    print("\n".join(describe_explanation(explanation, args.colour_scale)))
    return 0


def ranked_scores_lines(video: str, explanation, labels: list[str]) -> list[str]:
    """OmniCLIP's scores in classify's table (the same numbers: logits averaged over the processor's views), then
    plain CLIP's best label beside them."""
    top_k = min(DEFAULT_TOP_K, len(labels))
    video_width = max(len("video"), len(video))
    lines = [table_header(video_width, False)]
    lines += format_table(video, explanation.omniclip_predictions[:top_k], video_width, False)
    best = explanation.clip_predictions[0]
    lines.append(f"plain CLIP (frames averaged): {best['label']} {best['score']:.4f}")
    return lines


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------
def error_line(message: str) -> None:
    print(f"{PROGRAM}: error: {message}", file=sys.stderr, flush=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"{PROGRAM}: warning: {one_line(message)}", file=sys.stderr, flush=True)


class _PackageLogAsWarning(logging.Handler):
    """Prints the package's logged warnings (a model folder holding another version's code, ...) as the command
    prints its `UserWarning`s: one line with the program's prefix, when they happen."""

    def emit(self, record: logging.LogRecord) -> None:
        kind = "warning" if record.levelno < logging.ERROR else "error"
        print(f"{PROGRAM}: {kind}: {one_line(record.getMessage())}", file=sys.stderr, flush=True)


@contextmanager
def package_logs_as_warnings() -> Iterator[None]:
    """Routes the package's loggers' warnings through `_PackageLogAsWarning`; they would otherwise reach Python's
    last-resort handler, which prints the bare message."""
    package_logger = logging.getLogger(PACKAGE_LOGGER)
    handler = _PackageLogAsWarning(logging.WARNING)
    propagates = package_logger.propagate
    package_logger.addHandler(handler)
    package_logger.propagate = False
    try:
        yield
    finally:
        package_logger.removeHandler(handler)
        package_logger.propagate = propagates


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and library logs")

    def add_model_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--model", required=True, metavar="PATH", help="OmniCLIP or CLIP model: a folder or a Hub id"
        )
        parser.add_argument("--revision", help="branch, tag or commit of a Hub model")
        labels = parser.add_mutually_exclusive_group(required=True)
        labels.add_argument(
            "--labels", help='two or more labels separated by commas (or semicolons), e.g. "archery,juggling balls"'
        )
        labels.add_argument(
            "--labels-file", metavar="FILE", help="a .txt file with one class name a line, or a .csv with 'name'"
        )
        parser.add_argument("--template", help="prompt template with {} for the label (default: the model's)")
        parser.add_argument("--device", help="e.g. cpu, cuda, cuda:1 (default: the first GPU if any)")
        parser.add_argument("--dtype", choices=DTYPES, default="auto", help="bfloat16/float16 for GPUs")

    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Zero-shot video recognition with OmniCLIP (frozen CLIP + temporal adapters)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    classify = commands.add_parser(
        "classify", parents=[common], help="score videos against labels", description="Score videos against labels."
    )
    classify.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (mp4, avi, webm, ...)")
    add_model_arguments(classify)
    classify.add_argument("--top-k", type=int, help=f"labels shown per video (default: {DEFAULT_TOP_K} or all)")
    classify.add_argument("--json", action="store_true", help="one JSON object a line instead of a table "
                          '(a video that fails: {"video": ..., "error": ...})')
    classify.add_argument("--segment-seconds", type=float, metavar="S", help="classify consecutive windows of S s")
    classify.add_argument("--batch-size", type=int, default=1, help="videos (or windows) per model call")
    classify.set_defaults(handler=run_classify)

    info = commands.add_parser(
        "info", parents=[common], help="summarise a saved model", description="Summarise a saved OmniCLIP model."
    )
    info.add_argument("path", metavar="PATH", help="OmniCLIP or CLIP model: a folder or a Hub id")
    info.add_argument("--revision", help="branch, tag or commit of a Hub model")
    info.set_defaults(handler=run_info)

    init = commands.add_parser(
        "init",
        parents=[common],
        help="make an OmniCLIP model folder from a CLIP",
        description="Write a complete OmniCLIP model folder (model, tokenizer, video processor) from a CLIP "
        "checkpoint; untrained, it classifies as frame-averaged CLIP.",
    )
    init.add_argument("--clip", required=True, metavar="CLIP", help="a CLIP folder or Hub id")
    init.add_argument("--out", required=True, metavar="FOLDER", help="the new model folder")
    init.add_argument("--revision", help="branch, tag or commit of a Hub CLIP")
    init.add_argument("--num-frames", type=int, default=8, help="frames per clip (default: 8)")
    init.set_defaults(handler=run_init)

    explain = commands.add_parser(
        "explain",
        parents=[common],
        help="draw CLIP's and OmniCLIP's attention maps",
        description="Draw the sampled frames and the last layer's CLS attention of plain CLIP and of OmniCLIP.",
    )
    explain.add_argument("video", metavar="VIDEO", help="a video file")
    add_model_arguments(explain)
    explain.add_argument("--out", required=True, metavar="FILE.png", help="where to write the picture")
    explain.add_argument(
        "--tile-size", type=int, default=160,
        help="height of each picture tile in pixels (16 to 1024; the picture at most 64 million pixels)"
    )
    explain.add_argument(
        "--colour-scale",
        choices=("shared", "tile"),
        default="shared",
        help="shared: one colour scale, 0 to the largest weight (at least 4x the uniform weight), for every heat map "
        "(default); tile: each map its own min..max (shows the shape of weak maps, not how they compare)",
    )
    explain.set_defaults(handler=run_explain)
    return parser


def _quiet_libraries() -> None:
    """Keeps stderr for our own messages: no weight-loading bars or library info logs."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed command line (`--help` and usage errors exit here, before any heavy import)."""
    return build_parser().parse_args(argv)


def silence_closed_stdout() -> None:
    """After the reader of our output went away (`| head`): later writes and the final flush go nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # stdout without a file descriptor (e.g. captured in tests): nothing will flush to the pipe


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `omniclip` console script; returns the exit status."""
    return run(parse_arguments(argv))


def run(args: argparse.Namespace) -> int:
    """Runs a parsed command; every error becomes one line on stderr (unless `--debug`)."""
    if not args.debug:
        _quiet_libraries()
    previous_showwarning = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with package_logs_as_warnings():
            return args.handler(args)
    except KeyboardInterrupt:
        error_line("interrupted.")
        return 130
    except BrokenPipeError:
        silence_closed_stdout()
        return 141  # 128 + SIGPIPE, what `yes | head` leaves as yes's status
    except Exception as error:  # noqa: BLE001  (every error becomes one line unless --debug)
        if args.debug:
            raise
        error_line(one_line(error))
        return 1
    finally:
        warnings.showwarning = previous_showwarning


if __name__ == "__main__":
    sys.exit(main())
