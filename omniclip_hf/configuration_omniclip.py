# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""OmniCLIP model configuration."""

from __future__ import annotations

import copy
import numbers
from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import CLIPConfig, CLIPTextConfig, CLIPVisionConfig, PretrainedConfig
from transformers.utils import logging


logger = logging.get_logger(__name__)

PTA_MODES = ("parallel", "attention_parallel", "cascade", "cascade_attention")
SPG_POOLINGS = ("avg", "max")
SPG_PROJECTOR_INITS = ("identity", "random")
SPG_LAYERS = ("input", "every")
# The fields the model's modules are built from (which exist, their shapes, their kind): changed on a built model they
# change nothing it computes, and saved they describe other modules than its weights (`spg_projector_init` too: an
# identity start makes the projector twice as wide). Every other field is read when the model runs (text_template,
# label_smoothing, spg_layers, output flags) or only when weights are initialised.
# Fields that switch a module on or off, and the fields that are plain numbers (checked as such before their ranges).
SWITCH_FIELDS = ("use_temporal_embedding", "use_pta", "use_spg", "spg_projector", "spg_residual",
                 "use_video_specific_prompts")
NUMBER_FIELDS = ("pta_alpha_init", "prompt_alpha", "label_smoothing", "initializer_range", "initializer_factor",
                 "logit_scale_init_value")


def is_integer(value: Any) -> bool:
    """An integer, numpy's and torch's scalars included (numbers.Integral); not a bool (True would be a count of 1).
    Shared with the processor and the pipeline, which check their arguments alike."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real_number(value: Any) -> bool:
    """A real number (numpy's too), not a bool; NaN and infinities included, for the caller's range to refuse."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def heads_dividing(width: int, head_dim: int) -> int:
    """Attention heads of `head_dim` channels each where `width` allows, at least one, and fewer until they divide
    `width` (attention splits the width evenly between its heads): 512 -> 8, 200 -> 2, 48 -> 1."""
    heads = max(1, width // head_dim)
    while width % heads:
        heads -= 1
    return heads


ARCHITECTURE_FIELDS = (
    "num_frames", "use_temporal_embedding", "use_pta", "pta_layers", "pta_ratio", "pta_mode", "pta_head_dim",
    "use_spg", "spg_pooling", "spg_projector", "spg_residual", "spg_projector_init", "video_head_num_layers",
    "video_head_num_heads",
    "use_video_specific_prompts", "prompt_layers", "prompt_num_heads",
)


def _as_sub_config(value: Any, config_class: type[PretrainedConfig]) -> PretrainedConfig:
    """Accepts a sub-config as `None` (defaults), a dict (a saved config) or a config instance."""
    if value is None:
        return config_class()
    if isinstance(value, dict):
        return config_class(**value)
    if isinstance(value, config_class):
        return value
    if isinstance(value, PretrainedConfig):
        return config_class(**value.to_dict())
    raise ValueError(f"expected a dict or a {config_class.__name__}, got {type(value).__name__}")


# Two labels that any template placing its label must turn into two different prompts (they differ in their first
# and last characters, so a template reading one character of the label, `{[0]}` or `{[-1]}`, still tells them apart).
_PROBE_LABELS = ("first probe label a", "second probe label b")


def check_text_template(template: Any, argument: str = "template") -> str:
    """
    Validates a prompt template: a string with `{}` where the label goes, that `str.format` fills with a label.

    The template is filled with two different labels, which must give different prompts: `"a video of {{}}"` holds
    the characters `{}` but formats to the literal text `a video of {}` for every label (all labels would score
    alike), and `"{} in {place}"` fails inside `format`.

    Raises:
        `ValueError`: one line naming `argument` and the template.
    """
    if not isinstance(template, str) or "{}" not in template:
        raise ValueError(
            f"{argument}={template!r} must be a string containing '{{}}' where the label goes, e.g. "
            "'a video of {} action' (or '{}' for labels that are already full sentences)."
        )
    try:
        prompts = [template.format(label) for label in _PROBE_LABELS]
    except (IndexError, KeyError, ValueError, AttributeError, TypeError) as error:
        raise ValueError(
            f"{argument}={template!r} cannot be filled with one label ({type(error).__name__}: {error}); use a single "
            "'{}' and double any other braces ('{{', '}}')."
        ) from None
    if prompts[0] == prompts[1]:
        raise ValueError(
            f"{argument}={template!r} never inserts the label (it formats to {prompts[0]!r} for every label, so all "
            "labels would score alike): write a single '{}', not '{{}}', where the label goes."
        )
    return template



class OmniCLIPConfig(PretrainedConfig):
    r"""
    Configuration of an [`OmniCLIPModel`]: a frozen CLIP image-text model (its `text_config` and `vision_config`
    are ordinary CLIP sub-configs) plus the trainable video modules of OmniCLIP (Liu, Li, Yu, 2024).
    Every choice the paper leaves open is a field here; `docs/design.md` explains each default.

    Args:
        text_config (`dict` or `CLIPTextConfig`, *optional*):
            Configuration of the frozen CLIP text encoder.
        vision_config (`dict` or `CLIPVisionConfig`, *optional*):
            Configuration of the frozen CLIP vision encoder.
        projection_dim (`int`, *optional*, defaults to 512):
            Width `D` of CLIP's joint image-text space.
        logit_scale_init_value (`float`, *optional*, defaults to 2.6592):
            CLIP's initial logit scale (the loaded checkpoint's value replaces it; it stays frozen).
        num_frames (`int`, *optional*, defaults to 8):
            Frames per clip the temporal embeddings are sized for. Other frame counts work at inference: the
            temporal embeddings are interpolated linearly.
        use_temporal_embedding (`bool`, *optional*, defaults to `True`):
            Add a learnable, zero-initialised temporal embedding `TE` to every token of frame t (eq. 1).
        use_pta (`bool`, *optional*, defaults to `True`):
            Run a parallel temporal adapter (PTA, eqs. 3, 4, 7) beside the frozen vision layers in `pta_layers`.
        pta_layers (`list[int]`, *optional*):
            0-based indices of the vision layers that get an adapter; `None` means all of them (Table 10).
        pta_ratio (`float`, *optional*, defaults to 0.25):
            Bottleneck width of the adapter as a fraction of the vision width `d` (Table 8).
        pta_mode (`str`, *optional*, defaults to `"parallel"`):
            Where the adapter sits (Table 11): `"parallel"` (beside the whole layer, the method),
            `"attention_parallel"` (beside the attention sub-layer only), `"cascade"` (the paper's cascade: an
            ST-Adapter, Down -> depth-wise 3D convolution -> Up, before the layer) or `"cascade_attention"` (the
            attention adapter after the layer, reading its output).
        pta_alpha_init (`float`, *optional*, defaults to 1.0):
            Initial value of each adapter's learnable fusion scalar `alpha` (eq. 4).
        pta_head_dim (`int`, *optional*, defaults to 64):
            Head width of the adapter's temporal self-attention (at least one head).
        use_spg (`bool`, *optional*, defaults to `True`):
            Add the self-prompt generator's `K/4` pooled prompt tokens (eq. 6).
        spg_pooling (`str`, *optional*, defaults to `"avg"`):
            `"avg"` or `"max"` 2x2 pooling of the patch grid (Table 9).
        spg_projector (`bool`, *optional*, defaults to `True`):
            Map the pooled tokens through a 2-layer MLP projector (Table 9).
        spg_residual (`bool`, *optional*, defaults to `False`):
            Off: prompts are `Projector(Avg(V))`, eq. 6 exactly. On: `pooled + MLP(pooled)` with the MLP's last layer
            zero-initialised, so training starts from the plain pooled tokens.
        spg_projector_init (`str`, *optional*, defaults to `"identity"`):
            How eq. 6's projector starts. `"identity"`: a hidden layer of width `2d` whose two Linears start as
            `[I; -I]` and `[I, -I]`, so `Projector(x) = GELU(x) - GELU(-x) = x` exactly and the prompts start as the
            pooled tokens (the frozen CLIP reads tokens it knows). `"random"`: a hidden layer of width `d` at the
            library's random init (the prompts start as a random projection). Ignored with `spg_residual`.
        spg_layers (`str`, *optional*, defaults to `"input"`):
            `"input"`: prompts computed once from the embeddings and carried through every layer (section 3.1);
            `"every"`: recomputed from each layer's patch tokens, replacing the previous prompts (eq. 6's index).
        video_head_num_layers (`int`, *optional*, defaults to 1):
            Transformer layers of the video head over the per-frame CLS features (eq. 5); 0 means a plain mean.
        video_head_num_heads (`int`, *optional*):
            Attention heads of the video head; defaults to `projection_dim // 64`, fewer where that does not
            divide `projection_dim` (at least one).
        use_video_specific_prompts (`bool`, *optional*, defaults to `True`):
            Enrich the class text features with X-CLIP-style video-specific prompts. Off, text features depend on
            the labels only and can be cached.
        prompt_layers (`int`, *optional*, defaults to 2):
            Cross-attention layers of the video-specific prompt generator.
        prompt_alpha (`float`, *optional*, defaults to 0.1):
            Initial value of the prompt generator's learnable scale vector.
        prompt_num_heads (`int`, *optional*):
            Attention heads of the prompt generator; defaults to `projection_dim // 64`, fewer where that does not
            divide `projection_dim` (at least one).
        text_template (`str`, *optional*, defaults to `"a video of {} action"`):
            Template that turns a class name into the text the frozen text encoder reads; `{}` is the name.
        label_smoothing (`float`, *optional*, defaults to 0.0):
            Label smoothing of the cross-entropy loss (eq. 9). The paper's recipes train with 0.1.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the new modules' weights that are not zeroed.
        initializer_factor (`float`, *optional*, defaults to 1.0):
            `CLIPConfig.initializer_factor`: scales the random initialisation of a CLIP built from this config (not
            one loaded from a checkpoint, whose weights are kept).
        base_clip_name_or_path (`str`, *optional*):
            The CLIP checkpoint the frozen weights came from; adapter-only checkpoints load it first.

    Example:

    ```python
    >>> from transformers import CLIPConfig
    >>> from omniclip_hf import OmniCLIPConfig, OmniCLIPModel

    >>> config = OmniCLIPConfig.from_clip_config(CLIPConfig(), num_frames=8, pta_ratio=0.25)
    >>> model = OmniCLIPModel(config)
    ```"""

    model_type = "omniclip"
    # Trainer's evaluation keeps only the class logits (the rest has per-batch shapes that do not concatenate).
    keys_to_ignore_at_inference = [
        "logits_per_text", "video_embeds", "text_embeds", "text_model_output", "vision_model_output"
    ]
    sub_configs = {"text_config": CLIPTextConfig, "vision_config": CLIPVisionConfig}

    def __init__(
        self,
        text_config: dict | CLIPTextConfig | None = None,
        vision_config: dict | CLIPVisionConfig | None = None,
        projection_dim: int = 512,
        logit_scale_init_value: float = 2.6592,
        num_frames: int = 8,
        use_temporal_embedding: bool = True,
        use_pta: bool = True,
        pta_layers: list[int] | None = None,
        pta_ratio: float = 0.25,
        pta_mode: str = "parallel",
        pta_alpha_init: float = 1.0,
        pta_head_dim: int = 64,
        use_spg: bool = True,
        spg_pooling: str = "avg",
        spg_projector: bool = True,
        spg_residual: bool = False,
        spg_projector_init: str = "identity",
        spg_layers: str = "input",
        video_head_num_layers: int = 1,
        video_head_num_heads: int | None = None,
        use_video_specific_prompts: bool = True,
        prompt_layers: int = 2,
        prompt_alpha: float = 0.1,
        prompt_num_heads: int | None = None,
        text_template: str = "a video of {} action",
        label_smoothing: float = 0.0,
        initializer_range: float = 0.02,
        initializer_factor: float = 1.0,
        base_clip_name_or_path: str | None = None,
        **kwargs,
    ):
        self.text_config = _as_sub_config(text_config, CLIPTextConfig)
        self.vision_config = _as_sub_config(vision_config, CLIPVisionConfig)
        self.projection_dim = projection_dim
        self.logit_scale_init_value = logit_scale_init_value
        self.num_frames = num_frames
        self.use_temporal_embedding = use_temporal_embedding
        self.use_pta = use_pta
        # numpy integers become ints (JSON has no other); anything else is left for validation to name.
        self.pta_layers = ([int(i) if is_integer(i) else i for i in pta_layers]
                           if isinstance(pta_layers, (list, tuple)) else pta_layers)
        self.pta_ratio = pta_ratio
        self.pta_mode = pta_mode
        self.pta_alpha_init = pta_alpha_init
        self.pta_head_dim = pta_head_dim
        self.use_spg = use_spg
        self.spg_pooling = spg_pooling
        self.spg_projector = spg_projector
        self.spg_residual = spg_residual
        self.spg_projector_init = spg_projector_init
        self.spg_layers = spg_layers
        self.video_head_num_layers = video_head_num_layers
        self.video_head_num_heads = video_head_num_heads
        self.use_video_specific_prompts = use_video_specific_prompts
        self.prompt_layers = prompt_layers
        self.prompt_alpha = prompt_alpha
        self.prompt_num_heads = prompt_num_heads
        self.text_template = text_template
        self.label_smoothing = label_smoothing
        self.initializer_range = initializer_range
        self.initializer_factor = initializer_factor
        self.base_clip_name_or_path = base_clip_name_or_path
        super().__init__(**kwargs)
        if __name__.startswith("omniclip_hf.") and hasattr(self, "custom_pipelines"):
            # Saved for hosts without this package (pipeline(..., trust_remote_code=True) runs the copied pipeline
            # code); here the package's own registered pipeline serves the task, and transformers would otherwise
            # insist on trust_remote_code. OmniCLIPModel.save_pretrained writes the entry again.
            del self.custom_pipelines
        self._run_validation()

    def _run_validation(self) -> None:
        """Runs the base class's `validate()` (which calls every `validate_*` method, ours included) at construction,
        re-raising a failed check as the plain one-line `ValueError` it started as."""
        try:
            self.validate()
        except ValueError:
            raise
        except Exception as error:  # huggingface_hub's Strict*ValidationError wraps the ValueError of the check
            cause = error.__cause__
            if isinstance(cause, (ValueError, TypeError)):
                raise ValueError(str(cause)) from None
            raise

    def architecture(self) -> dict[str, Any]:
        """The `ARCHITECTURE_FIELDS` and their values."""
        return {name: copy.deepcopy(getattr(self, name)) for name in ARCHITECTURE_FIELDS}

    # ------------------------------------------------------------------ derived values
    @property
    def pta_layer_indices(self) -> list[int]:
        """The vision layers that carry an adapter (empty when PTA is off)."""
        if not self.use_pta:
            return []
        if self.pta_layers is None:
            return list(range(self.vision_config.num_hidden_layers))
        return sorted(set(self.pta_layers))

    @property
    def pta_hidden_size(self) -> int:
        """Bottleneck width d' = round(d * pta_ratio) of the adapter (at least 1)."""
        return max(1, round(self.vision_config.hidden_size * self.pta_ratio))

    @property
    def pta_num_heads(self) -> int:
        """Heads of the temporal attention: width `pta_head_dim` each where d' allows, at least one."""
        return heads_dividing(self.pta_hidden_size, self.pta_head_dim)

    @property
    def resolved_video_head_num_heads(self) -> int:
        """`video_head_num_heads`, or (null) heads of 64 channels that divide `projection_dim`, as the adapter's."""
        return self.video_head_num_heads or heads_dividing(self.projection_dim, 64)

    @property
    def resolved_prompt_num_heads(self) -> int:
        """`prompt_num_heads`, or (null) heads of 64 channels that divide `projection_dim`, as the adapter's."""
        return self.prompt_num_heads or heads_dividing(self.projection_dim, 64)

    # ------------------------------------------------------------------ validation
    def validate_omniclip_fields(self) -> None:
        """Raises `ValueError` naming the field, its value and what is allowed.

        A `validate_*` method: the base class's strict-dataclass `validate()` runs it with its own checks (at
        construction and in `save_pretrained`), so it does not replace them.
        """

        def fail(field: str, allowed: str) -> None:
            raise ValueError(f"OmniCLIPConfig.{field}={getattr(self, field)!r} is invalid: {allowed}.")

        for field in SWITCH_FIELDS:  # "false" is truthy: the module would be built with nothing said
            if not isinstance(getattr(self, field), bool):
                fail(field, "it must be true or false (a bool, not a string or number)")
        for field in NUMBER_FIELDS:
            if not is_real_number(getattr(self, field)):
                fail(field, "it must be a number")
        for field in ("video_head_num_heads", "prompt_num_heads"):
            if getattr(self, field) is not None and not (is_integer(getattr(self, field)) and getattr(self, field) >= 1):
                fail(field, "it must be an integer >= 1, or null for projection_dim / 64")
        num_layers = self.vision_config.num_hidden_layers
        if not is_integer(self.num_frames) or self.num_frames < 1:
            fail("num_frames", "it must be an integer >= 1")
        if not (is_real_number(self.pta_ratio) and self.pta_ratio > 0):
            fail("pta_ratio", "it must be a number > 0 (the paper's Table 8 tries 1/8, 1/4, 1/2 and 1)")
        if self.pta_mode not in PTA_MODES:
            fail("pta_mode", f"allowed values are {', '.join(repr(m) for m in PTA_MODES)}")
        if self.pta_layers is not None:
            if not isinstance(self.pta_layers, list) or not all(is_integer(i) for i in self.pta_layers):
                fail("pta_layers", "it must be a list of integer layer indices, or null for every layer")
            bad = [i for i in self.pta_layers if not 0 <= i < num_layers]
            if bad:
                fail("pta_layers", f"layer indices are 0-based and must lie in 0..{num_layers - 1} (got {bad})")
        if not is_integer(self.pta_head_dim) or self.pta_head_dim < 1:
            fail("pta_head_dim", "it must be an integer >= 1")
        if self.pta_alpha_init == 0:
            # Up (the cascade's convolution) starts at zero: each one's gradient is proportional to the other, so at
            # 0 both stay 0 and no adapter ever trains.
            fail("pta_alpha_init", "it must be a nonzero number (the adapters' Up starts at zero, so with alpha 0 "
                 "neither ever gets a gradient)")
        if self.spg_pooling not in SPG_POOLINGS:
            fail("spg_pooling", f"allowed values are {', '.join(repr(m) for m in SPG_POOLINGS)}")
        if self.spg_projector_init not in SPG_PROJECTOR_INITS:
            fail("spg_projector_init", f"allowed values are {', '.join(repr(m) for m in SPG_PROJECTOR_INITS)}")
        if self.spg_layers not in SPG_LAYERS:
            fail("spg_layers", f"allowed values are {', '.join(repr(m) for m in SPG_LAYERS)}")
        if not is_integer(self.video_head_num_layers) or self.video_head_num_layers < 0:
            fail("video_head_num_layers", "it must be an integer >= 0 (0 is a plain mean over frames)")
        if not is_integer(self.prompt_layers) or self.prompt_layers < 1:
            fail("prompt_layers", "it must be an integer >= 1 (turn prompts off with use_video_specific_prompts)")
        for field, width in (
            ("video_head_num_heads", self.resolved_video_head_num_heads),
            ("prompt_num_heads", self.resolved_prompt_num_heads),
        ):
            if self.projection_dim % width:
                fail(field, f"projection_dim={self.projection_dim} must be divisible by the number of heads {width}")
        try:  # "a video of {{}}" holds "{}" but inserts no label: every class would get one prompt
            check_text_template(self.text_template, "OmniCLIPConfig.text_template")
        except ValueError as error:
            raise ValueError(str(error)) from None
        if not 0.0 <= self.label_smoothing < 1.0:
            fail("label_smoothing", "it must lie in [0, 1)")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_clip_config(cls, clip_config: CLIPConfig, **overrides) -> OmniCLIPConfig:
        """Builds an OmniCLIP configuration around a `CLIPConfig`; keyword arguments set OmniCLIP fields."""
        if not isinstance(clip_config, CLIPConfig):
            raise ValueError(
                f"from_clip_config expects a transformers CLIPConfig, got {type(clip_config).__name__}; "
                "load one with CLIPConfig.from_pretrained(name_or_path)."
            )
        base = {
            "text_config": clip_config.text_config.to_dict(),
            "vision_config": clip_config.vision_config.to_dict(),
            "projection_dim": clip_config.projection_dim,
            "logit_scale_init_value": clip_config.logit_scale_init_value,
            "initializer_factor": clip_config.initializer_factor,
        }
        base.update(overrides)
        return cls(**base)

    def to_clip_config(self) -> CLIPConfig:
        """The `CLIPConfig` of the frozen image-text model inside."""
        return CLIPConfig(
            text_config=self.text_config.to_dict(),
            vision_config=self.vision_config.to_dict(),
            projection_dim=self.projection_dim,
            logit_scale_init_value=self.logit_scale_init_value,
            initializer_factor=self.initializer_factor,  # scales the random initialisation of a CLIP built here
        )


def _register_strict_validators(config_class: type[PretrainedConfig]) -> type[PretrainedConfig]:
    """Makes the base class's `validate()` collect this class's `validate_*` checks too.

    Transformers' configs are huggingface_hub strict dataclasses (every supported release, 5.17 on): `@strict` lists
    the class validators of the class it decorates, so a subclass must be decorated for its own checks to run.
    """
    original_init = config_class.__init__
    decorated = strict(config_class)
    decorated.__init__ = original_init  # keep the keyword constructor (strict only adds validation)
    return decorated


OmniCLIPConfig = _register_strict_validators(OmniCLIPConfig)


def changed_architecture_fields(built: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """The `ARCHITECTURE_FIELDS` that `asked` sets to another value than `built` (fields either lacks are not
    compared: a checkpoint saved before a field existed, a keyword not given), in `ARCHITECTURE_FIELDS` order."""
    return [name for name in ARCHITECTURE_FIELDS if name in built and name in asked and asked[name] != built[name]]


__all__ = ["ARCHITECTURE_FIELDS", "OmniCLIPConfig", "PTA_MODES", "SPG_LAYERS", "SPG_POOLINGS", "changed_architecture_fields"]
