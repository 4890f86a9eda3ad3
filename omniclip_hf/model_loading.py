# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Loading a saved OmniCLIP folder whose config.json does not fit its weights, or a base CLIP whose weights are not
all there, with one line saying so.

transformers logs a report table and raises a RuntimeError pointing at it (torch a multi-line one for an
adapter-only checkpoint); the CLI and `examples/evaluate.py` print one `error:` line naming the config and the
weights that differ instead. For weights a checkpoint lacks, transformers only logs the report and leaves them
random. No well-kept library turns that report into a message, hence this module (which `from_clip` imports, so
`save_pretrained` copies it beside the model code: it imports nothing of the package at module level).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any


# torch's load_state_dict (an adapter-only checkpoint) says which weight does not fit, in this form.
TORCH_SIZE_MISMATCH = re.compile(
    r"size mismatch for (\S+): copying a param with shape (torch\.Size\(\[[^\]]*\]\)) from checkpoint, "
    r"the shape in current model is (torch\.Size\(\[[^\]]*\]\))"
)
TORCH_SIZE = re.compile(r"torch\.Size\((\[[^\]]*\])\)")


class _HeldLoadReports:
    """While loading: transformers' LOAD REPORT table (logged as a warning before it raises on mismatched shapes)
    is held back; `release()` logs it after a load that went through, a failed load has its own one line."""

    LOGGER = "transformers.modeling_utils"

    def __init__(self) -> None:
        self.records: list = []

    def filter(self, record) -> bool:
        if "LOAD REPORT" in record.getMessage():
            self.records.append(record)
            return False
        return True

    def __enter__(self):
        import logging

        logging.getLogger(self.LOGGER).addFilter(self)
        return self

    def __exit__(self, *exc_info) -> None:
        import logging

        logging.getLogger(self.LOGGER).removeFilter(self)

    def release(self) -> None:
        import logging

        logger = logging.getLogger(self.LOGGER)
        for record in self.records:
            logger.handle(record)
        self.records = []


def load_omniclip_model(source: str | os.PathLike, **kwargs):
    """
    `OmniCLIPModel.from_pretrained(source, **kwargs)`, where a config.json that does not fit the saved weights (edited
    by hand, e.g. `num_frames` or `pta_ratio`, or copied from another model) is refused in one `ValueError` naming
    the config and the first weights whose shapes differ, instead of transformers' report table and a RuntimeError
    pointing at it (or torch's multi-line one, for an adapter-only checkpoint).
    """
    from .modeling_omniclip import OmniCLIPModel

    with _HeldLoadReports() as reports:
        try:
            model = OmniCLIPModel.from_pretrained(source, **kwargs)
        except RuntimeError as error:
            mismatched = _mismatched_weights(source, error, kwargs)
            if not mismatched:
                raise
            raise ValueError(config_mismatch_message(source, mismatched)) from None
    reports.release()
    return model


def _mismatched_weights(source, error: RuntimeError, kwargs: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(weight, shape saved, shape the config asks for) of each weight that does not fit, or [] for another error."""
    text = str(error)
    found = TORCH_SIZE_MISMATCH.findall(text)
    if found:
        return [(key, TORCH_SIZE.sub(r"\1", saved), TORCH_SIZE.sub(r"\1", wanted)) for key, saved, wanted in found]
    if "ignore_mismatched_sizes" not in text:
        return []
    # transformers names the weights only in the report it logged; a second load that keeps going lists them.
    from transformers.utils import logging as hf_logging

    from .modeling_omniclip import OmniCLIPModel

    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        _, info = OmniCLIPModel.from_pretrained(
            source, **{**kwargs, "ignore_mismatched_sizes": True, "output_loading_info": True}
        )
    except Exception:  # noqa: BLE001  (the first error is the one to report then)
        return []
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return [(key, str(list(saved)), str(list(wanted))) for key, saved, wanted in sorted(info["mismatched_keys"])]


def config_mismatch_message(source, mismatched: list[tuple[str, str, str]]) -> str:
    frames = any("temporal_embedding" in key or "frame_position_embedding" in key for key, _, _ in mismatched)
    return (
        f"{_config_file(source)} does not fit the weights saved beside it: {_shown_mismatches(mismatched)}. The "
        "config was edited (e.g. its num_frames or pta_ratio) or belongs to other weights: put back the config.json "
        "saved with these weights"
        + (" (its num_frames is the count the weights were built for; the frames sampled per clip are the "
           "processor's num_frames)" if frames else "")
        + "."
    )


def _config_file(source) -> str:
    return str(Path(source) / "config.json") if Path(source).is_dir() else f"the config.json of {source}"


def _shown_mismatches(mismatched: list[tuple[str, str, str]]) -> str:
    shown = "; ".join(f"{key} is {saved} in the weights but {wanted} for this config" for key, saved, wanted in
                      mismatched[:2])
    return shown + (f" (and {len(mismatched) - 2} more)" if len(mismatched) > 2 else "")


# Buffers older checkpoints saved and newer ones do not (or the reverse): never a weight the model lacks.
LEGACY_BUFFERS = re.compile(r"(^|\.)position_ids$")


def load_base_clip(source: str | os.PathLike, loading: dict[str, Any]):
    """
    `CLIPModel.from_pretrained(source, **loading)` for the frozen CLIP under an OmniCLIP, refused in one `ValueError`
    naming the checkpoint where its weights do not make the whole CLIP: a weight missing (transformers would only
    log a report and leave it random, so the model would score videos with it, exit status 0) or of another shape
    than its config.json asks for (an edited projection_dim). Weights the checkpoint holds beyond the model's (a
    legacy `.bin`'s buffers, another head) are left out, as transformers does.
    """
    from transformers import CLIPModel

    with _HeldLoadReports() as reports:
        try:
            # Shapes that differ are listed in the loading report rather than raised about, so they can be named.
            clip, info = CLIPModel.from_pretrained(source, **loading, output_loading_info=True,
                                                   ignore_mismatched_sizes=True)
        except Exception:
            reports.release()  # transformers' error points at its report (a weight it could not convert)
            raise
    mismatched = [(key, str(list(saved)), str(list(wanted))) for key, saved, wanted in sorted(info["mismatched_keys"])]
    if mismatched:
        raise ValueError(
            f"{_config_file(source)} does not fit the CLIP weights saved beside it: {_shown_mismatches(mismatched)}. "
            "The config was edited (e.g. its projection_dim) or belongs to other weights: put back the config.json "
            "saved with these weights."
        )
    missing = sorted(key for key in info["missing_keys"] if not LEGACY_BUFFERS.search(key))
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise ValueError(
            f"{os.fspath(source)} does not hold the whole CLIP: its weights lack {', '.join(missing[:3])}{more}, "
            "which would be left random in the frozen model: pass a complete CLIP checkpoint, as "
            "CLIPModel.save_pretrained writes it."
        )
    reports.release()  # what else it says (weights it left out) stays in the log
    return clip


__all__ = ["config_mismatch_message", "load_base_clip", "load_omniclip_model"]
