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

__all__ = [
    "OmniCLIPConfig",
    "OmniCLIPModel",
    "OmniCLIPOutput",
    "OmniCLIPPreTrainedModel",
    "OmniCLIPVideoOutput",
    "default_tokenizer_path",
]
