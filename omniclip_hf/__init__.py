# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""OmniCLIP for Hugging Face Transformers: a frozen CLIP image-text model becomes a video recognizer.

Importing the package registers `omniclip` with the Auto classes (config, model, video processor, processor).
"""

from pathlib import Path

from transformers import AutoConfig, AutoModel

from .configuration_omniclip import OmniCLIPConfig
from .modeling_omniclip import OmniCLIPModel, OmniCLIPOutput, OmniCLIPPreTrainedModel, OmniCLIPVideoOutput

__version__ = "0.1.0"


def default_tokenizer_path() -> str:
    """Folder of CLIP's real BPE tokenizer shipped with the package (same ids as OpenAI's; MIT)."""
    return str(Path(__file__).parent / "tokenizer")


AutoConfig.register("omniclip", OmniCLIPConfig, exist_ok=True)
AutoModel.register(OmniCLIPConfig, OmniCLIPModel, exist_ok=True)

# Input side: video processor and processor (decoding, sampling, multi-view, augmentation, tokenizer).
from transformers import AutoProcessor, AutoVideoProcessor  # noqa: E402

from .processing_omniclip import OmniCLIPProcessor, label_to_text, labels_to_prompts, load_label_names  # noqa: E402
from .video_processing_omniclip import OmniCLIPVideoMetadata, OmniCLIPVideoProcessor  # noqa: E402

AutoVideoProcessor.register(OmniCLIPConfig, OmniCLIPVideoProcessor, exist_ok=True)
AutoProcessor.register(OmniCLIPConfig, OmniCLIPProcessor, exist_ok=True)
# save_pretrained of each then copies its code and writes `auto_map`, so `trust_remote_code=True` loads them
# where this package is not installed (the model and config do the same from modeling_omniclip.py).
OmniCLIPVideoProcessor.register_for_auto_class("AutoVideoProcessor")
OmniCLIPProcessor.register_for_auto_class("AutoProcessor")

__all__ = [
    "OmniCLIPConfig",
    "OmniCLIPModel",
    "OmniCLIPOutput",
    "OmniCLIPPreTrainedModel",
    "OmniCLIPVideoOutput",
    "default_tokenizer_path",
    "OmniCLIPProcessor",
    "OmniCLIPVideoMetadata",
    "OmniCLIPVideoProcessor",
    "label_to_text",
    "labels_to_prompts",
    "load_label_names",
]

# Zero-shot video classification pipeline: `transformers.pipeline("zero-shot-video-classification", model=folder)`.
from .pipeline_omniclip import (  # noqa: E402
    ZeroShotVideoClassificationPipeline,
    register_zero_shot_video_classification_pipeline,
)

register_zero_shot_video_classification_pipeline()
__all__ += ["ZeroShotVideoClassificationPipeline", "register_zero_shot_video_classification_pipeline"]
