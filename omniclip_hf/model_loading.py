# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Loading a saved OmniCLIP folder whose config.json does not fit its weights, with one line saying so.

transformers logs a report table and raises a RuntimeError pointing at it (torch a multi-line one for an
adapter-only checkpoint); the CLI and `examples/evaluate.py` print one `error:` line naming the config and the
weights that differ instead. No well-kept library turns that report into a message, hence this module.
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
    config = Path(source) / "config.json" if Path(source).is_dir() else f"the config.json of {source}"
    shown = "; ".join(f"{key} is {saved} in the weights but {wanted} for this config" for key, saved, wanted in
                      mismatched[:2])
    more = f" (and {len(mismatched) - 2} more)" if len(mismatched) > 2 else ""
    frames = any("temporal_embedding" in key or "frame_position_embedding" in key for key, _, _ in mismatched)
    return (
        f"{config} does not fit the weights saved beside it: {shown}{more}. The config was edited (e.g. its "
        "num_frames or pta_ratio) or belongs to other weights: put back the config.json saved with these weights"
        + (" (its num_frames is the count the weights were built for; the frames sampled per clip are the "
           "processor's num_frames)" if frames else "")
        + "."
    )


__all__ = ["config_mismatch_message", "load_omniclip_model"]
