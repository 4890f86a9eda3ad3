# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""PyTorch OmniCLIP: a frozen CLIP image-text model adapted for video recognition.

Liu, Li, Yu, "OmniCLIP: Adapting CLIP for Video Recognition with Spatial-Temporal Omni-Scale Feature Learning"
(ECAI 2024). The frozen CLIP modules are reused by composition (`OmniCLIPModel.clip` is an ordinary
`transformers.CLIPModel`); this file adds only the trainable video modules:

- a temporal embedding added to every token of a frame (eq. 1);
- the self-prompt generator (SPG, eq. 6): pooled patch tokens appended as prompt tokens;
- parallel temporal adapters (PTA, eqs. 3, 4, 7) beside the frozen vision layers;
- a video head over the per-frame CLS features (eq. 5);
- X-CLIP-style video-specific text prompts.

This file imports only torch, transformers and sibling modules that need nothing else (its configuration,
`atomic_writes`, `model_loading`), so that `save_pretrained` can copy them next to the weights and the Hub can load
a checkpoint with `trust_remote_code=True`.
"""

from __future__ import annotations

import copy
import inspect
import os
import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPModel, PreTrainedModel
from transformers import initialization as init
from transformers.activations import QuickGELUActivation
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.clip.modeling_clip import CLIPAttention, CLIPMLP
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, logging
from transformers.utils.generic import can_return_tuple


try:  # transformers >= 5.2x: the output-capturing decorator lives in its own module
    from transformers.utils.output_capturing import capture_outputs, maybe_install_capturing_hooks
except ImportError:  # earlier 5.x: the same mechanism, named check_model_inputs
    from transformers.utils.generic import check_model_inputs as capture_outputs

    maybe_install_capturing_hooks = None

from .atomic_writes import write_files_into_folder
from .configuration_omniclip import ARCHITECTURE_FIELDS, OmniCLIPConfig, changed_architecture_fields


logger = logging.get_logger(__name__)

ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"


# Keywords of `from_pretrained` that say where files come from, and those that say how weights are loaded; the
# CLIP inside `from_clip` and the adapter-only path take both, as `from_pretrained` would.
HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only", "force_download", "proxies", "subfolder")


def hub_kwargs_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keywords of `kwargs` that say where a checkpoint's files come from (`HUB_KWARGS`)."""
    return {key: value for key, value in kwargs.items() if key in HUB_KWARGS}


LOADING_KWARGS = HUB_KWARGS + (
    "dtype", "device_map", "attn_implementation", "max_memory", "offload_folder", "offload_state_dict",
    "use_safetensors", "key_mapping", "low_cpu_mem_usage",
)
# A plain CLIP wrapped for zero-shot use: every OmniCLIP module that can start as the identity does (PTA, temporal
# embedding, video head, video-specific prompts with a zero scale); SPG's prompt tokens change CLIP's attention
# however they start, so they are off. The model computes exactly CLIP's frame-averaged scores.
CLIP_AT_IDENTITY = {"use_spg": False, "prompt_alpha": 0.0}


def split_loading_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Splits keywords into `from_pretrained` loading keywords (with `torch_dtype` renamed `dtype`) and the rest."""
    kwargs = dict(kwargs)
    if "torch_dtype" in kwargs:
        dtype = kwargs.pop("torch_dtype")
        kwargs.setdefault("dtype", dtype)
    loading = {name: kwargs.pop(name) for name in LOADING_KWARGS if name in kwargs}
    return loading, kwargs


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def read_checkpoint_config(name_or_path, hub_kwargs: dict[str, Any]) -> dict[str, Any]:
    """`config.json` of a folder or Hub repo as a dict; one-line errors for a folder without it or an id that
    cannot be fetched (offline and not cached, unknown repo)."""
    from transformers import PretrainedConfig

    name = os.fspath(name_or_path)
    if os.path.isdir(name):
        if not os.path.isfile(os.path.join(name, "config.json")):
            raise FileNotFoundError(
                f"{name} holds no config.json, so it is not a saved model: pass a folder written by save_pretrained() "
                "(an OmniCLIP or a CLIP model), or make one with `omniclip init --clip CLIP --out FOLDER`."
            )
    elif os.path.exists(name):
        raise ValueError(f"{name} is a file; pass the model folder (the one holding config.json) or a Hub id.")
    try:
        config_dict, _ = PretrainedConfig.get_config_dict(name, **hub_kwargs_of(hub_kwargs))
    except (OSError, ValueError) as error:
        if os.path.isdir(name):
            raise ValueError(f"{name}/config.json cannot be read: {one_line(error)}") from None
        if not is_hub_repo_id(name):
            raise FileNotFoundError(
                f"{name}: no such folder (nor a Hub id, which is 'name' or 'namespace/name'): check the path to "
                "the folder save_pretrained() wrote."
            ) from None
        if _hub_offline() or hub_kwargs.get("local_files_only"):
            raise OSError(
                f"{name} is not a local folder and is not in the Hugging Face cache, and downloading is off "
                "(HF_HUB_OFFLINE=1 or local_files_only): download it once online, or pass a local folder."
            ) from None
        raise OSError(
            f"{name} is neither a local folder nor a Hub model that could be fetched "
            f"({first_sentences(one_line(error))})."
        ) from None
    return config_dict


def is_hub_repo_id(name: str) -> bool:
    """Whether `name` can be a Hub repo id at all; one that cannot is a local path that does not exist."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def first_sentences(text: str, limit: int = 240) -> str:
    """The whole sentences of `text` that fit in `limit` characters (at least the first, whole): a library's long
    message shortened without cutting an address or a word in half."""
    sentences = re.split(r"(?<=\.) ", text)
    kept = sentences[0]
    for sentence in sentences[1:]:
        if len(kept) + 1 + len(sentence) > limit:
            break
        kept += " " + sentence
    return kept


def check_config_fields(method: str, overrides: dict[str, Any]) -> None:
    """One line naming keywords that are neither loading keywords nor configuration fields (a typo would otherwise
    become a silent extra config attribute)."""
    from transformers import PretrainedConfig

    known = set(inspect.signature(OmniCLIPConfig.__init__).parameters) | set(LOADING_KWARGS)
    known |= set(getattr(PretrainedConfig, "__dataclass_fields__", {})) | set(PretrainedConfig().to_dict())
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"{method} got unknown arguments {unknown}: pass OmniCLIPConfig fields (num_frames, pta_ratio, use_spg, "
            "...) or from_pretrained's loading keywords (dtype, device_map, revision, ...)."
        )


def check_weight_files(folder: str) -> None:
    """Opens the headers of a local folder's safetensors files, so a truncated or corrupt file is named in one line
    instead of failing deep inside safetensors (a truncated file's header no longer matches its size)."""
    from safetensors import safe_open

    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            path = os.path.join(folder, name)
            try:
                with safe_open(path, framework="pt") as handle:
                    handle.keys()
            except Exception as error:  # safetensors raises its own SafetensorError (or OSError)
                raise damaged_file_error(path, error) from None


def one_line(error: BaseException) -> str:
    """A library's error message on one line (safetensors and huggingface_hub write several)."""
    return " ".join(str(error).split())


def damaged_file_error(path: str | os.PathLike, error: BaseException) -> ValueError:
    return ValueError(f"{path} is damaged or incomplete ({one_line(error)}): save or download it again.")


def full_weight_files(folder: str | os.PathLike) -> list[str]:
    """The full checkpoint's weight files (and shard index) `save_pretrained` writes in `folder`."""
    names = [name for name in os.listdir(folder) if name.startswith(("model", "pytorch_model"))
             and name.endswith((".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json"))]
    return [os.path.join(folder, name) for name in sorted(names)]


def _find_adapter_file(name_or_path, config_dict: dict[str, Any], hub_kwargs: dict[str, Any]) -> str | None:
    """Path of `adapter_model.safetensors` when `name_or_path` is an adapter-only checkpoint (folder or Hub repo).

    Hub repos are recognised by their config (`save_adapter` writes `checkpoint_format="adapter"`), so loading
    needs no file listing: nothing beyond `from_pretrained`'s own downloads, and nothing at all when cached.
    """
    name = os.fspath(name_or_path)
    if os.path.isdir(name):
        adapter = os.path.join(name, ADAPTER_WEIGHTS_NAME)
        if not os.path.isfile(adapter):
            return None
        # The config names the format the folder was last saved in, as on the Hub; a folder without the mark (saved
        # before it was written) is an adapter only where it holds no full weights.
        if config_dict.get("checkpoint_format") == "adapter":
            return adapter
        return None if full_weight_files(name) else adapter
    if config_dict.get("checkpoint_format") != "adapter":
        return None
    from transformers.utils import cached_file

    return cached_file(name, ADAPTER_WEIGHTS_NAME, **hub_kwargs_of(hub_kwargs))


# How many values of the frozen CLIP `base_clip_fingerprint` reads, spread evenly over all its weights.
FINGERPRINT_SAMPLES = 65536
# Odd multipliers of the multiplicative hashes giving each projection its fixed +-1 direction (Knuth's constant and
# others): integer arithmetic, so the directions are the same under every torch version and on every device.
FINGERPRINT_HASHES = (2654435761, 2246822519, 3266489917, 668265263, 374761393, 2869860233, 1500450271, 3084996963)
# A projection moves by about the relative size of a change of the weights: casting to bfloat16 (relative rounding
# 2^-9) by a few thousandths; another CLIP moves each by about 1.4 (the difference of two standard normals).
FINGERPRINT_TOLERANCE = 0.05


def base_clip_fingerprint(clip: nn.Module, state_dict: dict[str, torch.Tensor] | None = None) -> list[float] | None:
    """Nine numbers that tell one CLIP's weights from another's in any dtype: the root mean square of a sample of
    `FINGERPRINT_SAMPLES` values taken at even steps over all its parameters, then the sample's projections on eight
    fixed +-1 directions, in units of its norm (each about a standard normal).

    `save_adapter` records it, since an adapter-only checkpoint holds no CLIP weight: loaded over another CLIP of the
    same shapes (another checkpoint under the same name or folder, or one whose weights moved by about a tenth of
    their size; a light fine-tune moves them less and passes), its modules would read other features unsaid. Not a digest of the bytes: loading in bfloat16 or float16 must still match.
    None when the weights cannot be read (on the meta device, offloaded, or quantised to integers).
    """
    if state_dict is None:
        parameters = [parameter.detach() for parameter in clip.parameters()]
    else:  # the full weights gathered from a sharded model (its own parameters are shards, or empty under ZeRO-3)
        parameters = [state_dict.get(f"clip.{name}") for name, _ in clip.named_parameters()]
        if any(parameter is None for parameter in parameters):
            return None
        parameters = [parameter.detach() for parameter in parameters]
    unreadable = (type(p) is not torch.Tensor or p.device.type == "meta" or not p.is_floating_point() for p in parameters)
    if not parameters or any(unreadable) or any(p.numel() == 0 for p in parameters):  # a shard, offloaded, quantised
        return None
    total = sum(parameter.numel() for parameter in parameters)
    stride = max(1, total // FINGERPRINT_SAMPLES)
    samples, offset = [], 0
    for parameter in parameters:
        first = (-offset) % stride  # the sample's positions continue across parameters
        samples.append(parameter.reshape(-1)[first::stride].to("cpu", torch.float64))
        offset += parameter.numel()
    sample = torch.cat(samples)
    norm = sample.norm()
    if not torch.isfinite(norm) or norm == 0:
        return None
    positions = torch.arange(sample.numel(), dtype=torch.int64)
    fingerprint = [float(norm / sample.numel() ** 0.5)]
    for multiplier in FINGERPRINT_HASHES:
        signs = ((positions * multiplier) % 2**32 >= 2**31).to(torch.float64) * 2 - 1
        fingerprint.append(float(sample @ signs / norm))
    return [float(f"{value:.6g}") for value in fingerprint]


def fingerprints_differ(recorded: list[float], loaded: list[float]) -> bool:
    """Whether two `base_clip_fingerprint`s are of different CLIPs (not merely of one CLIP in two dtypes)."""
    if len(recorded) != len(loaded):
        return True
    rms_recorded, rms_loaded = recorded[0], loaded[0]
    if abs(rms_recorded - rms_loaded) > FINGERPRINT_TOLERANCE * max(abs(rms_recorded), 1e-12):
        return True
    return any(abs(a - b) > FINGERPRINT_TOLERANCE for a, b in zip(recorded[1:], loaded[1:]))


def check_config_describes_modules(model: nn.Module) -> None:
    """Refuses, in one line, to save a model whose config was changed after it was built in a field its modules are
    built from (`ARCHITECTURE_FIELDS`): the model still computes with its modules, and the folder would load as
    other modules (or not at all)."""
    built = getattr(model, "_built_architecture", None) or {}
    changed = changed_architecture_fields(built, model.config.architecture())
    if changed:
        name, was = changed[0], built[changed[0]]
        raise ValueError(
            f"model.config.{name} is {getattr(model.config, name)!r}, but the model was built with {was!r} and still "
            f"computes with those modules: put {name} back to {was!r} before saving, or build a model with it "
            f"(OmniCLIPModel.from_clip(clip, {name}=...)) and train it."
        )


def is_omniclip_config(config: Any) -> bool:
    """An OmniCLIP config, also the class of another module: under remote code (AutoModel with
    `trust_remote_code=True`) the config class AutoConfig loads and this file's `OmniCLIPConfig` are copies in two
    dynamic modules, and `isinstance` said no: the config AutoModel passed, with the caller's fields, was dropped."""
    return getattr(config, "model_type", None) == OmniCLIPConfig.model_type and hasattr(config, "architecture")


def check_architecture_overrides(name_or_path, saved: dict[str, Any], kwargs: dict[str, Any],
                                 config: OmniCLIPConfig | None = None) -> None:
    """Refuses, in one line, `from_pretrained(checkpoint, num_frames=8)` (or a `config=` saying so, as AutoModel
    passes the keywords): a field the modules are built from, other than the saved one, builds modules the saved
    weights do not fit (transformers' report table and a RuntimeError; or, for a field that changes no shape such as
    `pta_head_dim`, other computations, unsaid)."""
    asked = config.architecture() if is_omniclip_config(config) else {}
    asked.update({field: kwargs[field] for field in ARCHITECTURE_FIELDS if field in kwargs})
    changed = changed_architecture_fields(saved, asked)
    if changed:
        field, value = changed[0], asked[changed[0]]
        frames = (" (videos of any frame count run as they are: the temporal embeddings are interpolated)"
                  if field == "num_frames" else "")
        raise ValueError(
            f"from_pretrained({os.fspath(name_or_path)!r}, {field}={value!r}): {field} is {saved[field]!r} in "
            f"the saved model, whose weights fit only those modules: leave {field} out{frames}, or build a new "
            f"model with it (OmniCLIPModel.from_clip(clip, {field}=...)) and train it."
        )


def check_base_clip(folder, config: OmniCLIPConfig, clip: nn.Module, base: str, chosen_by_caller: bool) -> None:
    """An adapter-only checkpoint loaded over a CLIP other than the one it was saved over: refused in one line when
    the config named that CLIP (the folder or Hub repo now holds other weights), a warning when the caller chose it
    with `base_clip=` (on purpose, perhaps). Checkpoints saved before the fingerprint was recorded are not checked."""
    recorded = getattr(config, "base_clip_fingerprint", None)
    loaded = base_clip_fingerprint(clip) if recorded else None
    if loaded is None or not fingerprints_differ(recorded, loaded):
        return
    message = (f"{folder} holds adapters trained over another CLIP than the one loaded from {base} (same shapes, "
               "other weights), so its scores would be meaningless")
    if chosen_by_caller:
        logger.warning(f"{message}; base_clip={base!r} was asked for, so it is used.")
        return
    raise ValueError(f"{message}: pass base_clip= the CLIP the adapters were saved over, or load a full checkpoint.")


# ----------------------------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class OmniCLIPVideoOutput(ModelOutput):
    r"""
    Output of [`OmniCLIPModel.get_video_features`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_frames, num_tokens, vision_hidden_size)`):
            Tokens of the last vision layer: CLS, the `K` patch tokens, then the SPG prompt tokens (if any).
        pooler_output (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
            The video embeddings: per-frame CLS features aggregated by the video head (eq. 5).
        frame_embeds (`torch.FloatTensor` of shape `(batch_size, num_frames, projection_dim)`):
            Per-frame CLS features after CLIP's `post_layernorm` and `visual_projection` (before the video head).
        video_context (`torch.FloatTensor` of shape `(batch_size, num_patches, projection_dim)`, *optional*):
            Frame-averaged patch features the video-specific prompt generator attends to (when enabled).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            Input of the first vision layer and output of each layer, each `(batch_size * num_frames, num_tokens,
            vision_hidden_size)`.
        attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
            Softmax weights of each frozen CLIP vision layer, `(batch_size * num_frames, num_heads, num_tokens,
            num_tokens)`, recorded by transformers' output capturing as in `CLIPVisionModel` (needs
            `attn_implementation="eager"`, as CLIP does).
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    frame_embeds: torch.FloatTensor | None = None
    video_context: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class OmniCLIPOutput(ModelOutput):
    r"""
    Output of [`OmniCLIPModel.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` are given):
            Cross-entropy of the video-to-class-text logits (eq. 9), with the config's label smoothing.
        logits_per_video (`torch.FloatTensor` of shape `(batch_size, num_classes)`):
            `exp(logit_scale) * cos(video, class text)` (eq. 8); averaged over views for multi-view input.
        logits_per_text (`torch.FloatTensor` of shape `(num_classes, batch_size)`):
            The transpose of `logits_per_video`; None when the class texts came once per video (3-D `input_ids`, as
            `ClassTextCollator` sends them), where every output runs along the batch.
        video_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
            Unnormalised video embeddings (`(batch_size, num_views, projection_dim)` for multi-view input).
        text_embeds (`torch.FloatTensor` of shape `(num_classes, projection_dim)` or `(batch_size, num_classes, projection_dim)`):
            Unnormalised class text embeddings; per video when video-specific prompts are enabled.
        text_model_output (`BaseModelOutputWithPooling`, *optional*):
            Output of [`OmniCLIPModel.get_text_features`] (absent when `text_embeds` were passed in).
        vision_model_output (`OmniCLIPVideoOutput`):
            Output of [`OmniCLIPModel.get_video_features`].
    """

    loss: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    text_model_output: BaseModelOutputWithPooling | None = None
    vision_model_output: OmniCLIPVideoOutput | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(
            self[key].to_tuple() if key in ("text_model_output", "vision_model_output") else self[key]
            for key in self.keys()
        )

    def __getitem__(self, key):
        # `output["logits"]` is `logits_per_video`, the name Transformers' classification models give their class
        # logits: Trainer's label smoother (`label_smoothing_factor`) reads that key, and failed with KeyError. Only
        # the key: no second field, so tuples and Trainer's predictions stay one array.
        if key == "logits" and "logits" not in self.keys() and self.logits_per_video is not None:
            return self.logits_per_video
        return super().__getitem__(key)


# ----------------------------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------------------------
def zero_initialised(linear: nn.Linear) -> nn.Linear:
    """Marks a Linear whose weight and bias `_init_weights` sets to zero, so the branch it ends adds nothing at init.

    The mark sits on the Linear itself because transformers initialises custom-code modules that hold no
    parameters of their own (a layer made only of sub-modules) by skipping them.
    """
    linear.zero_init = True
    return linear


def split_merge_identity(kind: str, weight: torch.Tensor) -> torch.Tensor:
    """The weight of a `d -> 2d` Linear giving `[x, -x]` (`"split"`) or of a `2d -> d` one giving `a - b` (`"merge"`).

    Through a GELU in between they compose to the identity: `GELU(x) - GELU(-x) = x (Phi(x) + Phi(-x)) = x`.
    """
    width = min(weight.shape)
    eye = torch.eye(width, dtype=weight.dtype, device=weight.device)
    return torch.cat([eye, -eye], dim=0 if kind == "split" else 1)


def own_storage_if_tracked(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """An output that autograd records is handed out as a tensor of its own, not as a view of another one.

    FSDP2 hooks every grad-requiring output of a wrapped module for its pre-backward all-gather; an in-place op on a
    view output would bypass that hook, so it warns "returned a view tensor". Copies only views that carry autograd
    history (training): inference and outputs that are not views cost nothing.
    """
    if tensor is not None and tensor.requires_grad and tensor._base is not None:
        return tensor.clone()
    return tensor


def interpolate_along_time(table: torch.Tensor, length: int) -> torch.Tensor:
    """Resamples a `(rows, width)` embedding table to `length` rows by linear interpolation.

    Lets a model trained on 8 frames run on 16 or 32 (X-CLIP checkpoints cannot). Row j of `length` is read at the
    time the frame samplers take frame j, the middle `(j + 0.5) / length` of its segment (`align_corners=False`;
    `True` shifted frames towards the ends, and gave a single frame, sampled mid-clip, the first frame's row).
    """
    if table.shape[0] == length:
        return table
    resized = F.interpolate(table.T.unsqueeze(0), size=length, mode="linear", align_corners=False)
    return resized.squeeze(0).T


class OmniCLIPHeadsAlongDimOne(nn.Module):
    """Query and key projections and the head layout shared by the package's attention modules.

    Attention runs along dim 1 of `(batch, length, *positions, width)` tensors; every position of the extra dims
    attends on its own, so the PTA's attention across the T frames of each token position needs no transpose of the
    big token tensor: `(B, T, N, d')` is viewed as `(B, T, N * heads, head_dim)` and transposed (a stride change,
    not a copy) to SDPA's `(B, N * heads, T, head_dim)` layout.

    The key projection has no bias: a bias on the keys adds the same `q . b` to every logit of a query's row, which
    the softmax removes, so its gradient is exactly zero and an optimizer like AdamW would only turn rounding noise
    into steps of the learning rate's size (why Whisper's key projections have none either).
    """

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=False)

    def _split_heads(self, states: torch.Tensor) -> torch.Tensor:
        batch, length = states.shape[:2]
        # (B, L, *P, d) -> (B, L, prod(P) * heads, head_dim) -> (B, prod(P) * heads, L, head_dim): views only.
        return states.view(batch, length, -1, self.head_dim).transpose(1, 2)


class OmniCLIPAttention(OmniCLIPHeadsAlongDimOne):
    """Multi-head attention along dim 1 (see `OmniCLIPHeadsAlongDimOne`) with value and output projections: the
    video head's self-attention and the prompt generator's cross-attention."""

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__(embed_dim, num_heads)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, hidden_states: torch.Tensor, key_value_states: torch.Tensor | None = None) -> torch.Tensor:
        key_value_states = hidden_states if key_value_states is None else key_value_states
        query = self._split_heads(self.q_proj(hidden_states))
        key = self._split_heads(self.k_proj(key_value_states))
        value = self._split_heads(self.v_proj(key_value_states))
        attended = F.scaled_dot_product_attention(query, key, value)
        attended = attended.transpose(1, 2).reshape(hidden_states.shape[:-1] + (self.embed_dim,))
        return self.out_proj(attended)


def alpha_scaled_up(up: nn.Linear, alpha: torch.Tensor, hidden_states: torch.Tensor) -> torch.Tensor:
    """`alpha * Up(x)` for the adapters; alpha scales the small Up weights instead of the big output, which saves one
    pass over the `(frames, N, d)` tokens."""
    return F.linear(hidden_states, up.weight * alpha, up.bias * alpha)


class OmniCLIPTemporalEmbedding(nn.Module):
    """Learnable per-frame embedding `TE` (eq. 1), zero-initialised, interpolated for other frame counts."""

    def __init__(self, num_frames: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_frames, width))

    def forward(self, num_frames: int) -> torch.Tensor:
        return interpolate_along_time(self.weight, num_frames)


class OmniCLIPSelfPromptGenerator(nn.Module):
    """Self-prompt generator (SPG, eq. 6): 2x2 pooling of the patch grid (K/4 tokens) and a 2-layer projector.

    The projector starts as the identity by default (`spg_projector_init="identity"`): its hidden layer is `2d` wide,
    `fc1 = [I; -I]` and `fc2 = [I, -I]`, and `GELU(x) - GELU(-x) = x` for every x, so the prompts start as the plain
    pooled tokens (the paper's "Avg." row of Table 9), tokens the frozen CLIP already reads, and training refines them.
    The paper gives the projector as "two-layer MLPs" and no init; a random one makes the prompts a random projection
    that every frame's attention reads (docs/design.md). With `spg_residual` the prompts are `pooled + MLP(pooled)`
    and the MLP's last layer starts at zero instead.
    """

    def __init__(self, config: OmniCLIPConfig):
        super().__init__()
        width = config.vision_config.hidden_size
        self.pool = F.avg_pool2d if config.spg_pooling == "avg" else F.max_pool2d
        self.residual = config.spg_residual
        if config.spg_projector:
            starts_as_identity = config.spg_projector_init == "identity" and not self.residual
            hidden = 2 * width if starts_as_identity else width
            self.fc1 = nn.Linear(width, hidden)
            self.activation = nn.GELU()
            self.fc2 = nn.Linear(hidden, width)
            if self.residual:
                zero_initialised(self.fc2)
            elif starts_as_identity:
                self.fc1.identity_init = "split"  # x -> [x, -x]
                self.fc2.identity_init = "merge"  # [a, b] -> a - b
        else:
            self.fc1 = self.activation = self.fc2 = None

    def forward(self, patch_tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """`patch_tokens` `(frames, K, d)` on an `grid = (h, w)` raster -> prompts `(frames, ceil(h/2) * ceil(w/2), d)`."""
        grid_tokens = patch_tokens.unflatten(1, grid).permute(0, 3, 1, 2)
        # ceil_mode keeps the last row/column of odd grids (B/32 at 224 has 7x7 patches -> 4x4 prompts).
        pooled = self.pool(grid_tokens, kernel_size=2, stride=2, ceil_mode=True).flatten(2).transpose(1, 2)
        if self.fc1 is None:
            return pooled
        projected = self.fc2(self.activation(self.fc1(pooled)))
        return pooled + projected if self.residual else projected


class OmniCLIPTemporalAttention(OmniCLIPHeadsAlongDimOne):
    """Self-attention across the T frames of every token position, without value and output projections.

    Inside the adapter the value projection would follow Down and the output projection would precede Up: both are
    linear maps that Down and Up absorb (the softmax weights of a row sum to one, so the output bias passes into
    Up's bias; the value map can be folded into Down while the query and key maps take its inverse), so dropping
    them keeps the function class and saves `2 d'^2` multiply-adds per token. The query and key projections stay:
    their product is a rank-`head_dim` bilinear form per head that no Linear outside the softmax can absorb.

    The head layout (`OmniCLIPHeadsAlongDimOne`) lets attention run where the tokens lie, with no copy.
    """

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        query = self._split_heads(self.q_proj(hidden_states))
        key = self._split_heads(self.k_proj(hidden_states))
        value = self._split_heads(hidden_states)
        attended = F.scaled_dot_product_attention(query, key, value)
        return attended.transpose(1, 2).reshape(hidden_states.shape)


class OmniCLIPTemporalAdapter(nn.Module):
    """Parallel temporal adapter (PTA, eq. 7): LayerNorm -> Down -> self-attention across frames -> Up, times alpha.

    Every token position (CLS, patches and SPG prompts) attends over the T frames of its own clip. `Up` is
    zero-initialised, so an untrained adapter adds exactly nothing. The attention has no value or output
    projection of its own (`OmniCLIPTemporalAttention`: Down and Up play those roles).
    """

    def __init__(self, config: OmniCLIPConfig):
        super().__init__()
        width = config.vision_config.hidden_size
        bottleneck = config.pta_hidden_size
        self.layer_norm = nn.LayerNorm(width, eps=config.vision_config.layer_norm_eps)
        self.down = nn.Linear(width, bottleneck)
        self.attention = OmniCLIPTemporalAttention(bottleneck, config.pta_num_heads)
        self.up = zero_initialised(nn.Linear(bottleneck, width))
        # A one-element vector, not a 0-dim scalar: FSDP2's fully_shard cannot shard 0-dim parameters.
        self.alpha = nn.Parameter(torch.full((1,), float(config.pta_alpha_init)))

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        frames, num_tokens, _ = hidden_states.shape
        reduced = self.down(self.layer_norm(hidden_states))
        reduced = reduced.view(frames // num_frames, num_frames, num_tokens, -1)
        # reshape, not view: with one head, the math SDPA backend's output is a strided view here.
        attended = self.attention(reduced).reshape(frames, num_tokens, -1)
        return alpha_scaled_up(self.up, self.alpha, attended)


class OmniCLIPConvolutionAdapter(nn.Module):
    """ST-Adapter (Pan et al., NeurIPS 2022), the paper's "cascade" of Table 11: Down -> depth-wise 3D convolution
    over frames x height x width -> Up, added to the tokens before the frozen layer reads them.

    As in ST-Adapter there is no LayerNorm or activation, and the convolution starts at zero (so the adapter adds
    nothing at initialisation while Down and Up start random and pass gradient to it). The convolution needs a
    grid: the patch tokens lie on the `h x w` patch grid; the SPG prompt tokens are 2x2-pooled patches and lie on
    their own `ceil(h/2) x ceil(w/2)` grid, convolved there with the same kernel; the CLS token has no place on a
    grid and passes unchanged, as in ST-Adapter. `alpha` scales Up as in the PTA.
    """

    kernel_size = (3, 3, 3)

    def __init__(self, config: OmniCLIPConfig):
        super().__init__()
        width = config.vision_config.hidden_size
        bottleneck = config.pta_hidden_size
        self.down = nn.Linear(width, bottleneck)
        self.conv = nn.Conv3d(bottleneck, bottleneck, self.kernel_size, padding=tuple(k // 2 for k in self.kernel_size),
                              groups=bottleneck)
        self.conv.zero_init = True
        self.up = nn.Linear(bottleneck, width)
        self.alpha = nn.Parameter(torch.full((1,), float(config.pta_alpha_init)))

    def _convolve(self, tokens: torch.Tensor, num_frames: int, grid: tuple[int, int]) -> torch.Tensor:
        """`(frames, h * w, d')` tokens of one grid -> the same shape, convolved over (T, h, w) per clip."""
        frames, count, channels = tokens.shape
        volume = tokens.view(frames // num_frames, num_frames, *grid, channels).permute(0, 4, 1, 2, 3)
        return self.conv(volume).permute(0, 2, 3, 4, 1).reshape(frames, count, channels)

    def forward(self, hidden_states: torch.Tensor, num_frames: int, grid: tuple[int, int]) -> torch.Tensor:
        num_patches = grid[0] * grid[1]
        reduced = self.down(hidden_states[:, 1:])
        parts = [self._convolve(reduced[:, :num_patches], num_frames, grid)]
        if reduced.shape[1] > num_patches:  # SPG prompts
            parts.append(self._convolve(reduced[:, num_patches:], num_frames, (-(-grid[0] // 2), -(-grid[1] // 2))))
        updated = alpha_scaled_up(self.up, self.alpha, torch.cat(parts, dim=1))
        return torch.cat([torch.zeros_like(hidden_states[:, :1]), updated], dim=1)


QUICK_GELU_SCALE = 1.702  # CLIP's QuickGELU is x * sigmoid(1.702 x) (transformers' QuickGELUActivation)


class OmniCLIPQuickGELUMLP(CLIPMLP):
    """CLIP's MLP, `fc2(x * sigmoid(1.702 x))` with `x = fc1(h)`, computed with one elementwise pass instead of three.

    `x * sigmoid(1.702 x) = SiLU(1.702 x) / 1.702`. fc1's GEMM scales its output by 1.702 (`addmm`'s alpha, the bias
    scaled with it) and fc2's by 1 / 1.702, so between the two GEMMs runs torch's fused SiLU kernel, where CLIP's
    QuickGELU makes three passes (scale, sigmoid, product) over the `(frames, N, 4d)` hidden tensor, the widest of a
    layer. On a CPU, eager inference ran 1.05x and a training step 1.11x faster for it (docs/design.md; the GPU is yet
    to measure); the function is the same, and the scaling happens in the GEMMs' accumulators, so outputs differ from
    CLIP's by rounding only (tests). When a backward follows in bf16 or fp16, the 1.702 scales the weights instead
    (`_scale_weights`). When fc1 or fc2 is not a plain `nn.Linear` (quantized, or wrapped by an adapter
    library such as PEFT), the MLP runs CLIP's own forward, which calls them.

    Training keeps less, too: every frozen layer lies on the gradient's path to the adapters below it, and autograd
    keeps both `x` and the sigmoid's output of CLIP's QuickGELU for backward, two `(frames, N, 4d)` tensors per layer
    (277 of the 580 MiB per clip that a bf16 ViT-B/16 training forward keeps); SiLU keeps only its input, and its
    backward is one fused pass (`benchmarks/bench_model.py --saved_activations`).

    `use_fused_quick_gelu_mlps` swaps the class of the frozen CLIP's MLP modules in place (as
    `torch.nn.utils.parametrize` does): same parameters, same state dict, still a `CLIPMLP`.
    """

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if type(self.fc1) is not nn.Linear or type(self.fc2) is not nn.Linear:  # their own forward must run
            return super().forward(hidden_states)
        fc1, fc2 = self.fc1, self.fc2
        if self._scale_weights(hidden_states):
            scaled = F.linear(hidden_states, fc1.weight * QUICK_GELU_SCALE, fc1.bias * QUICK_GELU_SCALE)
            return F.linear(F.silu(scaled), fc2.weight * (1 / QUICK_GELU_SCALE), fc2.bias)
        flat = hidden_states.reshape(-1, hidden_states.shape[-1])
        scaled = torch.addmm(fc1.bias * QUICK_GELU_SCALE, flat, fc1.weight.t(), alpha=QUICK_GELU_SCALE)
        output = torch.addmm(fc2.bias, F.silu(scaled), fc2.weight.t(), alpha=1 / QUICK_GELU_SCALE)
        return output.view(*hidden_states.shape[:-1], output.shape[-1])

    def _scale_weights(self, hidden_states: torch.Tensor) -> bool:
        """Whether the 1.702 scales the weights rather than riding in the GEMMs as `addmm`'s alpha: when a backward
        follows (in training the layer's input carries the adapters' gradient) in bf16 or fp16 (autocast, or
        low-precision weights). addmm's backward multiplies its input gradient by alpha in a pass of its own, over
        the `(..., 4d)` tensor for fc2 and the `(..., d)` one for fc1: memory-bound passes on a GPU. Scaled weights
        cost a pass over the weights instead, and autograd keeps the scaled copies: under autocast in place of the
        cast copies it keeps anyway, with bf16 weights on top of them (2 x 4.5 MiB per ViT-B/16 layer, a fixed cost
        whatever the batch). In float32 and float64 (CPU training, precision checks) the 1.702 stays in the GEMMs:
        the copies would be 18 MiB a layer, a quarter of what a float32 training forward of one clip keeps per layer."""
        if not torch.is_grad_enabled() or not (hidden_states.requires_grad or fc_requires_grad(self.fc1)):
            return False
        device_type = hidden_states.device.type
        autocast = autocast_available(device_type) and torch.is_autocast_enabled(device_type)
        compute_dtype = torch.get_autocast_dtype(device_type) if autocast else hidden_states.dtype
        return compute_dtype in (torch.bfloat16, torch.float16)


@torch.compiler.assume_constant_result
def autocast_available(device_type: str) -> bool:
    """`torch.amp.is_autocast_available` (False for `meta`, whose `is_autocast_enabled` raises), as a constant per
    device type: torch.compile in torch 2.11 cannot trace it and broke the graph at every frozen MLP."""
    return torch.amp.is_autocast_available(device_type)


def fc_requires_grad(linear: nn.Linear) -> bool:
    return any(parameter.requires_grad for parameter in linear.parameters())


def use_fused_quick_gelu_mlps(clip: nn.Module) -> None:
    """Makes the CLIP's QuickGELU MLPs `OmniCLIPQuickGELUMLP`s (the same function; see there). MLPs with another
    activation ("gelu": one fused pass already, keeping only its input) are left as they are."""
    for module in clip.modules():
        if type(module) is CLIPMLP and type(module.activation_fn) is QuickGELUActivation:
            module.__class__ = OmniCLIPQuickGELUMLP


def hook_frozen_vision_attentions(vision_model: nn.Module) -> None:
    """Installs transformers' output-capturing hooks in CLIP's vision model (once: it keeps its own mark), where
    `get_video_features` records the frozen layers' attention weights. Installed only when attentions are asked for,
    as transformers does, so a compiled model without them has no hooks to trace."""
    if maybe_install_capturing_hooks is not None:  # an earlier transformers' check_model_inputs installs its own
        maybe_install_capturing_hooks(vision_model)


def warn_if_attentions_cannot_be_returned(attn_implementation: str | None) -> None:
    """Only eager attention computes the weights: under SDPA or flash attention `attentions` came back empty with
    nothing said here, where transformers' own models warn (the layers are called one by one, past its warning)."""
    if attn_implementation not in (None, "eager"):
        logger.warning_once(
            f"`{attn_implementation}` attention returns no attention weights, so `attentions` is empty: load the model "
            'with attn_implementation="eager" (or call model.set_attn_implementation("eager")) to get them.'
        )


def run_frozen_layer(frozen_layer: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """Calls a frozen `CLIPEncoderLayer` (vision layers take no attention mask)."""
    output = frozen_layer(hidden_states, None)
    return output[0] if isinstance(output, tuple) else output


class OmniCLIPSpatialTemporalBlock(GradientCheckpointingLayer):
    """One spatial-temporal block (eqs. 2-4): a frozen CLIP vision layer and, where configured, its adapter.

    The frozen layer is passed in at call time rather than registered here, so its weights live only under
    `clip.` in the state dict. `pta_mode` places the adapter as in Table 11.
    """

    def __init__(self, config: OmniCLIPConfig, has_adapter: bool):
        super().__init__()
        self.mode = config.pta_mode
        adapter_class = OmniCLIPConvolutionAdapter if self.mode == "cascade" else OmniCLIPTemporalAdapter
        self.temporal_adapter = adapter_class(config) if has_adapter else None

    def forward(self, hidden_states: torch.Tensor, frozen_layer: nn.Module, num_frames: int,
                grid: tuple[int, int] | None = None) -> torch.Tensor:
        adapter = self.temporal_adapter
        if adapter is None:
            return run_frozen_layer(frozen_layer, hidden_states)
        if self.mode == "parallel":  # V^i = ViT_i(V^{i-1}) + alpha * PTA_i(V^{i-1})
            return run_frozen_layer(frozen_layer, hidden_states) + adapter(hidden_states, num_frames)
        if self.mode == "cascade":  # ST-Adapter: the frozen layer reads the adapted tokens
            return run_frozen_layer(frozen_layer, hidden_states + adapter(hidden_states, num_frames, grid))
        if self.mode == "cascade_attention":  # the attention adapter after the layer, reading its output
            spatial = run_frozen_layer(frozen_layer, hidden_states)
            return spatial + adapter(spatial, num_frames)
        # "attention_parallel": beside the frozen attention sub-layer only, composed from the layer's own modules.
        attention_output = frozen_layer.self_attn(frozen_layer.layer_norm1(hidden_states), attention_mask=None)[0]
        fused = hidden_states + attention_output + adapter(hidden_states, num_frames)
        return fused + frozen_layer.mlp(frozen_layer.layer_norm2(fused))


class OmniCLIPFeedForward(nn.Module):
    def __init__(self, width: int, expansion: int = 4):
        super().__init__()
        self.fc1 = nn.Linear(width, width * expansion)
        self.activation = nn.GELU()
        self.fc2 = nn.Linear(width * expansion, width)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(hidden_states)))


class OmniCLIPVideoHeadLayer(nn.Module):
    """Pre-LN transformer layer over the frame axis; output projections start at zero (identity at init)."""

    def __init__(self, width: int, num_heads: int, eps: float):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(width, eps=eps)
        self.self_attn = OmniCLIPAttention(width, num_heads)
        self.layer_norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = OmniCLIPFeedForward(width)
        zero_initialised(self.self_attn.out_proj)
        zero_initialised(self.mlp.fc2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.self_attn(self.layer_norm1(hidden_states))
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


class OmniCLIPVideoHead(nn.Module):
    """Video head (eq. 5): frame-position embedding, attention over the T frame features, then the mean over T.

    At initialisation (zero position embedding, zero output projections) it is exactly the frame average.
    """

    def __init__(self, config: OmniCLIPConfig):
        super().__init__()
        width = config.projection_dim
        # Without layers the head is a plain mean, and a position embedding would only add a constant.
        self.frame_position_embedding = (
            nn.Parameter(torch.zeros(config.num_frames, width)) if config.video_head_num_layers else None
        )
        self.layers = nn.ModuleList(
            OmniCLIPVideoHeadLayer(width, config.resolved_video_head_num_heads, config.vision_config.layer_norm_eps)
            for _ in range(config.video_head_num_layers)
        )

    def forward(self, frame_embeds: torch.Tensor) -> torch.Tensor:
        hidden_states = frame_embeds
        if self.frame_position_embedding is not None:
            hidden_states = hidden_states + interpolate_along_time(self.frame_position_embedding, frame_embeds.shape[1])
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states.mean(dim=1)


class OmniCLIPPromptGeneratorLayer(nn.Module):
    """Class text features cross-attend to the video's patch features (X-CLIP's video-specific prompts)."""

    def __init__(self, width: int, num_heads: int, eps: float):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(width, eps=eps)
        self.cross_attn = OmniCLIPAttention(width, num_heads)
        self.layer_norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = OmniCLIPFeedForward(width)

    def forward(self, text_states: torch.Tensor, video_context: torch.Tensor) -> torch.Tensor:
        text_states = text_states + self.cross_attn(self.layer_norm1(text_states), video_context)
        return text_states + self.mlp(self.layer_norm2(text_states))


class OmniCLIPVideoSpecificPrompts(nn.Module):
    """`text_c + alpha_p * CrossAttn(text_c, visual)`: per-video class text features (section 3.1, after X-CLIP).

    `visual` is the last layer's patch tokens -> LayerNorm -> Linear to D -> mean over frames.
    """

    def __init__(self, config: OmniCLIPConfig):
        super().__init__()
        width = config.projection_dim
        eps = config.vision_config.layer_norm_eps
        self.visual_layernorm = nn.LayerNorm(config.vision_config.hidden_size, eps=eps)
        self.visual_projection = nn.Linear(config.vision_config.hidden_size, width, bias=False)
        self.context_layernorm = nn.LayerNorm(width, eps=eps)
        self.layers = nn.ModuleList(
            OmniCLIPPromptGeneratorLayer(width, config.resolved_prompt_num_heads, eps)
            for _ in range(config.prompt_layers)
        )
        self.alpha = nn.Parameter(torch.full((width,), float(config.prompt_alpha)))

    def video_context(self, patch_tokens: torch.Tensor) -> torch.Tensor:
        """`(B, T, K, d)` last-layer patch tokens -> `(B, K, D)` frame-averaged visual context."""
        # The projection is linear, so averaging over frames before it gives the same result T times cheaper.
        return self.visual_projection(self.visual_layernorm(patch_tokens).mean(dim=1))

    def forward(self, text_embeds: torch.Tensor, video_context: torch.Tensor) -> torch.Tensor:
        """`(C, D)` class text embeddings and `(B, K, D)` context -> `(B, C, D)` video-specific text embeddings."""
        context = self.context_layernorm(video_context)
        prompts = text_embeds.unsqueeze(0).expand(video_context.shape[0], -1, -1)
        for layer in self.layers:
            prompts = layer(prompts, context)
        return text_embeds.unsqueeze(0) + self.alpha * prompts


PIPELINE_TASK = "zero-shot-video-classification"
# The pipeline's file and the file it imports, copied beside the model code for `trust_remote_code=True`.
PIPELINE_MODULE_FILE = "pipeline_omniclip.py"


def custom_pipelines_entry() -> dict[str, Any]:
    """The config's `custom_pipelines`: the zero-shot pipeline's class in its copied file, for remote code."""
    return {PIPELINE_TASK: {"impl": "pipeline_omniclip.ZeroShotVideoClassificationPipeline", "pt": ["AutoModel"],
                            "tf": [], "type": "multimodal"}}


# Fields of an adapter's saved config that describe the base CLIP or the saving, not this model: from_clip sets them.
_ADAPTER_FIELDS_FROM_CLIP = ("text_config", "vision_config", "projection_dim", "logit_scale_init_value", "model_type",
                             "architectures", "auto_map", "transformers_version", "_name_or_path", "dtype",
                             "torch_dtype", "base_clip_name_or_path", "base_clip_fingerprint", "custom_pipelines",
                             "checkpoint_format")


# Keywords that are used before this point, not config fields: AutoModel's config (`saved`), base_clip, remote code's.
_AUTO_CLASS_KWARGS = ("config", "base_clip", "trust_remote_code", "code_revision", "adapter_kwargs")


def keep_saved_and_callers_fields(config: OmniCLIPConfig, saved: OmniCLIPConfig, built: list[str],
                                  callers: dict[str, Any]) -> None:
    """An adapter-only model is rebuilt with `from_clip` from its modules' fields: the saved config's other fields
    (`id2label`, which examples/train.py writes, `output_hidden_states`, `problem_type`, ...) and the caller's
    keyword arguments go onto `config` as `from_pretrained` applies them to a full checkpoint; other keywords are
    named in a warning. They were dropped: an adapter model forgot its classes, a misspelt keyword with nothing said."""
    for name in saved.to_dict():  # `built`: the OmniCLIP fields from_clip was given, the caller's applied
        if name not in _ADAPTER_FIELDS_FROM_CLIP and name not in built and hasattr(saved, name):
            setattr(config, name, getattr(saved, name))
    ignored = []
    for name, value in callers.items():
        if name in _AUTO_CLASS_KWARGS or name.startswith("_"):
            continue  # AutoModel's own (its config is `saved` already)
        if hasattr(config, name):
            setattr(config, name, value)
        else:
            ignored.append(name)
    if ignored:  # a loading argument of transformers this path does not take, or a misspelt field
        logger.warning("OmniCLIPModel.from_pretrained of an adapter-only checkpoint ignores %s: no configuration field "
                       "of OmniCLIPConfig (misspelt?) nor a loading argument it passes on (%s).",
                       ", ".join(repr(name) for name in ignored), ", ".join(LOADING_KWARGS))


def pipeline_code_files(model_source: str | os.PathLike | None = None) -> list[str] | None:
    """The pipeline's module and every module it imports, relatively and recursively (as transformers gathers a
    model's code, `get_relative_import_files`), where all of them lie together: beside this file, in the package;
    else, in a remote-code copy of the model (which holds the model's and config's files alone), in the folder the
    model was loaded from, `model_source` (a local folder, or a Hub repo's cached snapshot). `None` where neither
    holds them: a remote-code model saved again, even into its own folder, lost its pipeline (and one saved from the
    package held the pipeline's module without the decoding modules it imports)."""
    for pipeline in (os.path.join(os.path.dirname(os.path.abspath(__file__)), PIPELINE_MODULE_FILE),
                     _pipeline_file_of(model_source)):
        files = _with_relative_imports(pipeline)
        if files:
            return files
    return None


def warn_if_saved_code_differs(name_or_path) -> None:
    """Warns where a saved folder's copy of this package's code differs from the code running it: the package's
    modules compute its outputs here, while `trust_remote_code=True` runs the folder's copy (the only code a user
    without the package has), so the same folder gave two answers with nothing said (a changed interpolation of the
    temporal embedding, for one). Not for Hub ids: their files are not read here."""
    folder = os.fspath(name_or_path)
    if not os.path.isdir(folder):
        return
    import filecmp

    package = os.path.dirname(os.path.abspath(__file__))
    differing = [name for name in sorted(os.listdir(folder)) if name.endswith(".py")
                 and os.path.isfile(os.path.join(package, name))
                 and not filecmp.cmp(os.path.join(folder, name), os.path.join(package, name), shallow=False)]
    if differing:
        logger.warning(
            "%s holds another version's code (%s) than the omniclip-hf running it: this package's code computes the "
            "model's outputs here, and the folder's copy where it is loaded with trust_remote_code=True, which can "
            "differ; save the model again (save_pretrained, and its processor) to give the folder this version's code.",
            folder, ", ".join(differing),
        )


def _pipeline_file_of(model_source: str | os.PathLike | None) -> str | None:
    """The pipeline module of the checkpoint a model was loaded from: in its folder, or in the local cache of its
    Hub repo (nothing is downloaded)."""
    if not model_source:
        return None
    source = os.fspath(model_source)
    if os.path.isdir(source):
        return os.path.join(source, PIPELINE_MODULE_FILE)
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(source, PIPELINE_MODULE_FILE)
    except ValueError:  # not a repo id
        return None
    return cached if isinstance(cached, str) else None


def _with_relative_imports(pipeline: str | None) -> list[str] | None:
    from transformers.dynamic_module_utils import get_relative_import_files

    if not pipeline or not os.path.isfile(pipeline):
        return None
    files = [pipeline, *get_relative_import_files(pipeline)]
    return files if all(os.path.isfile(path) for path in files) else None


def set_custom_pipelines(config: OmniCLIPConfig, pipeline_files: list[str] | None) -> None:
    """Names the zero-shot pipeline in `config` (`custom_pipelines`) when its code is saved beside it, else removes
    the entry, saying so."""
    if pipeline_files:
        config.custom_pipelines = custom_pipelines_entry()
        return
    if hasattr(config, "custom_pipelines"):
        del config.custom_pipelines
    logger.warning("Saved without the zero-shot pipeline's code (this model's code is a remote-code copy, which does "
                   "not hold it, and the folder it was loaded from holds none): the folder loads with "
                   "trust_remote_code=True; its pipeline needs omniclip-hf installed.")


def copy_pipeline_code(save_directory: str | os.PathLike, pipeline_files: list[str] | None) -> None:
    """Copies the pipeline's code (`pipeline_code_files`) next to a saved model."""
    import shutil

    for path in pipeline_files or []:
        shutil.copyfile(path, os.path.join(os.fspath(save_directory), os.path.basename(path)))


def _mark_initialised(module: nn.Module) -> None:
    """Flags every sub-module, parameter and buffer as initialised, as `from_pretrained` flags loaded weights, so
    `post_init` initialises only the new modules around them."""
    for sub_module in module.modules():
        sub_module._is_hf_initialized = True
    for tensor in (*module.parameters(), *module.buffers()):
        tensor._is_hf_initialized = True


# Weights that checkpoints of earlier versions hold and that this one may drop: the key biases of the package's
# attention modules (a key bias adds a constant to each softmax row, which the softmax removes; docs/design.md).
_DROPPABLE_WEIGHTS = re.compile(r"\.k_proj\.bias$")


def check_loaded_weights(source, loading_info: dict[str, list]) -> None:
    """Raises one line where a full checkpoint does not hold exactly this model's weights (unless the caller asked for
    the loading report, `output_loading_info=True`, or passed `state_dict=`).

    transformers only logs a report for such a checkpoint and leaves the missing modules at their initial values
    (the identity here), so a checkpoint of another version would score videos with part of its training lost,
    and nothing said: an adapter from before issue 15 holds value/output projections this one has folded away.
    """
    unexpected = [key for key in loading_info["unexpected_keys"] if not _DROPPABLE_WEIGHTS.search(key)]
    missing = list(loading_info["missing_keys"])
    if unexpected or missing:
        found = ", ".join(part for part in (f"unexpected weights {unexpected[:4]}" if unexpected else "",
                                            f"missing weights {missing[:4]}" if missing else "") if part)
        raise ValueError(f"{source}: the checkpoint does not match this version of OmniCLIPModel ({found}); it was "
                         "saved by another version of omniclip-hf or another model: retrain it, or load it with the "
                         "version that saved it (docs/design.md lists the changes that break checkpoints).")


# Keywords transformers passes to models beside the model's own arguments (Trainer's loss keywords, output flags,
# attention-backend keywords); anything else is a misspelling.
_TRANSFORMERS_KEYWORDS = frozenset(TransformersKwargs.__annotations__)


def check_keywords(method: str, kwargs: dict[str, Any], accepted: str) -> None:
    """Raises one line naming unexpected keywords (Transformers' own keywords pass)."""
    unknown = sorted(set(kwargs) - _TRANSFORMERS_KEYWORDS)
    if unknown:
        raise ValueError(f"{method} got unexpected arguments {unknown}; it takes {accepted}.")


# ----------------------------------------------------------------------------------------------------------------
# Pre-trained model base
# ----------------------------------------------------------------------------------------------------------------
class OmniCLIPPreTrainedModel(PreTrainedModel):
    """Weight initialisation, gradient checkpointing and the `from_pretrained` / `save_pretrained` machinery."""

    config_class = OmniCLIPConfig
    config: OmniCLIPConfig
    base_model_prefix = "omniclip"
    main_input_name = "pixel_values_videos"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_attention_backend = True
    # Vision attentions are recorded in the frozen CLIP's attention modules by transformers' output capturing
    # (`capture_outputs` on `get_video_features`). Hidden states are collected by the block loop itself: CLIP's own
    # recorder for hidden states sits on the frozen `CLIPEncoderLayer`s, whose output is not the block's output
    # once an adapter runs beside them.
    _can_record_outputs = {"attentions": CLIPAttention}
    # Transformers' Trainer passes `num_items_in_batch`, the labels of the whole accumulated batch, so each micro-batch's
    # summed loss is divided by it: the step's gradient is the mean over its videos however the micro-batches split
    # them (dividing each micro-batch's mean by the accumulation steps over-weighted a short last micro-batch). For
    # soft (mixup) labels Trainer's count is videos x classes (`classification_loss` divides it back).
    accepts_loss_kwargs = True
    _no_split_modules = ["OmniCLIPSpatialTemporalBlock", "CLIPEncoderLayer", "CLIPTextEmbeddings", "CLIPVisionEmbeddings"]

    def _init_weights(self, module: nn.Module) -> None:
        """Every new module starts as the identity on CLIP's features (see the spec's "Trainable versus frozen")."""
        super()._init_weights(module)
        if isinstance(module, (nn.Linear, nn.Conv3d)) and getattr(module, "zero_init", False):
            init.zeros_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and getattr(module, "identity_init", None):
            init.copy_(module.weight, split_merge_identity(module.identity_init, module.weight))
            init.zeros_(module.bias)
        elif isinstance(module, OmniCLIPTemporalEmbedding):
            init.zeros_(module.weight)
        elif isinstance(module, (OmniCLIPTemporalAdapter, OmniCLIPConvolutionAdapter)):
            init.constant_(module.alpha, self.config.pta_alpha_init)
        elif isinstance(module, OmniCLIPVideoHead) and module.frame_position_embedding is not None:
            init.zeros_(module.frame_position_embedding)
        elif isinstance(module, OmniCLIPVideoSpecificPrompts):
            init.constant_(module.alpha, self.config.prompt_alpha)

    def initialize_weights(self) -> None:
        clip = getattr(self, "clip", None)
        if isinstance(clip, CLIPModel):
            # CLIP's own initialisation first, as CLIPModel.from_pretrained runs it. Inside a custom-code model,
            # transformers skips the modules that hold no parameter of their own, and CLIP's scheme for its
            # attention and MLP weights lives on such modules (CLIPAttention, CLIPMLP); the whole-model pass below
            # would give those weights the generic initialisation instead. Whatever this pass initialises is flagged,
            # so the pass below leaves it (and loaded weights are flagged, so neither pass touches them).
            clip.initialize_weights()
        super().initialize_weights()
        if isinstance(clip, CLIPModel):
            # CLIP's own _init_weights leaves its logit scale to the constructor, which a model built on the meta
            # device (from_pretrained) never ran; this module holds no parameter of its own, so transformers skips
            # _init_weights on it for custom code: set it here (a loaded value is flagged and kept).
            init.constant_(clip.logit_scale, self.config.logit_scale_init_value)

    # Non-reentrant checkpointing also gives gradients when a block's input does not require grad (e.g. PTA on,
    # temporal embedding off: the frozen patch embedding feeds the first block), so it is the default here even when
    # other checkpoint arguments are given. Transformers renamed the method (5.2x: `activation_checkpointing_enable`,
    # the old name a deprecated alias that calls it); the override goes on the installed version's own method, so
    # that neither name warns about a call the user did not make.
    if hasattr(PreTrainedModel, "activation_checkpointing_enable"):

        def activation_checkpointing_enable(self, activation_checkpointing_kwargs: dict | None = None, **kwargs):
            activation_checkpointing_kwargs = {"use_reentrant": False, **(activation_checkpointing_kwargs or {})}
            self._check_reentrant_checkpointing(activation_checkpointing_kwargs)
            super().activation_checkpointing_enable(activation_checkpointing_kwargs, **kwargs)

    else:

        def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None, **kwargs):
            gradient_checkpointing_kwargs = {"use_reentrant": False, **(gradient_checkpointing_kwargs or {})}
            self._check_reentrant_checkpointing(gradient_checkpointing_kwargs)
            super().gradient_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    def _check_reentrant_checkpointing(self, checkpointing_kwargs: dict) -> None:
        """Reentrant checkpointing gives a block's weights no gradient when its input needs none: with neither the
        temporal embedding nor SPG (both trainable, before the first block), no adapter would train, with only torch's
        warning said."""
        first_input_trains = self.config.use_temporal_embedding or self.config.use_spg
        if checkpointing_kwargs.get("use_reentrant") and self.config.use_pta and not first_input_trains:
            raise ValueError(
                "use_reentrant=True in the checkpointing arguments would leave every PTA adapter without gradients "
                "here (neither the temporal embedding nor SPG is on, so the first block's input needs none): leave "
                "use_reentrant out (non-reentrant checkpointing is the default)."
            )


def enable_activation_checkpointing(model: PreTrainedModel) -> None:
    """Turns on activation (gradient) checkpointing under the installed transformers' name for it."""
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable()


def disable_activation_checkpointing(model: PreTrainedModel) -> None:
    disable = getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable
    disable()


# ----------------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------------
class OmniCLIPModel(OmniCLIPPreTrainedModel):
    r"""
    OmniCLIP: a frozen `CLIPModel` (in `self.clip`) plus the trainable video modules.

    Build one from any CLIP checkpoint with [`OmniCLIPModel.from_clip`]; reload a trained one with
    `OmniCLIPModel.from_pretrained(folder)` or `AutoModel.from_pretrained(folder)`.

    Example:

    ```python
    >>> import torch
    >>> from transformers import AutoTokenizer
    >>> from omniclip_hf import OmniCLIPModel

    >>> model = OmniCLIPModel.from_clip("openai/clip-vit-base-patch16")  # frozen CLIP + new video modules
    >>> tokenizer = AutoTokenizer.from_pretrained("openai/clip-vit-base-patch16")
    >>> texts = [model.config.text_template.format(name) for name in ["archery", "juggling balls"]]
    >>> text_inputs = tokenizer(texts, padding=True, return_tensors="pt")
    >>> videos = torch.randn(2, 8, 3, 224, 224)  # (batch, frames, channels, height, width), CLIP-normalised
    >>> outputs = model(**text_inputs, pixel_values_videos=videos, labels=torch.tensor([0, 1]))
    >>> outputs.logits_per_video.shape, outputs.loss.shape
    (torch.Size([2, 2]), torch.Size([]))
    ```
    """

    def __init__(self, config: OmniCLIPConfig, clip: CLIPModel | None = None):
        super().__init__(config)
        if clip is None:
            clip_config = config.to_clip_config()
            # CLIP's models are built on this config's own sub-configs (see below), with the attention kind each
            # of them names (the public setter would overwrite theirs with the top-level one).
            clip_config.text_config, clip_config.vision_config = config.text_config, config.vision_config
            clip_config._attn_implementation_internal = config._attn_implementation
            clip = CLIPModel._from_config(clip_config)
        else:  # a loaded CLIP (from_clip): keep its weights through post_init's initialisation
            _mark_initialised(clip)
        self.clip = clip
        use_fused_quick_gelu_mlps(clip)  # CLIP's MLP function in fewer passes, keeping half as much for backward
        # One config object per sub-model, as in transformers' composite models: this config's sub-configs are the
        # ones CLIP's text and vision models read, so what is set on them (attention kind, output flags) reaches CLIP.
        config.text_config = clip.config.text_config
        config.vision_config = clip.config.vision_config

        vision = config.vision_config
        self.temporal_embedding = (
            OmniCLIPTemporalEmbedding(config.num_frames, vision.hidden_size) if config.use_temporal_embedding else None
        )
        self.self_prompt_generator = OmniCLIPSelfPromptGenerator(config) if config.use_spg else None
        adapter_layers = set(config.pta_layer_indices)
        self.blocks = nn.ModuleList(
            OmniCLIPSpatialTemporalBlock(config, has_adapter=index in adapter_layers)
            for index in range(vision.num_hidden_layers)
        )
        self.video_head = OmniCLIPVideoHead(config)
        self.video_specific_prompts = (
            OmniCLIPVideoSpecificPrompts(config) if config.use_video_specific_prompts else None
        )
        self.post_init()
        self.freeze_clip()
        # transformers' output capturing, on the first recording from this model, would hook the whole tree below it,
        # CLIP's text and vision models included even when they have hooked themselves already: each of their layers
        # was then recorded twice (transformers 5.17 to 5.25). Marked as hooked, this model leaves them to hook
        # themselves once (`hook_frozen_vision_attentions`, and CLIP's text model on its own first recording).
        self._output_capturing_hooks_installed = True
        self._built_architecture = config.architecture()  # what save_pretrained checks the config still says

    # ------------------------------------------------------------------ frozen CLIP
    def freeze_clip(self) -> None:
        """Freezes every CLIP parameter; only the OmniCLIP modules train."""
        self.clip.requires_grad_(False)
        self.clip.eval()

    def train(self, mode: bool = True) -> OmniCLIPModel:
        # The frozen CLIP always runs in eval mode: a frozen backbone should not apply dropout, and its own
        # layers must not checkpoint themselves inside our checkpointed blocks.
        super().train(mode)
        self.clip.eval()
        return self

    def set_attn_implementation(self, attn_implementation: str | dict, **kwargs) -> None:
        """Sets the frozen CLIP's attention kind (the only attention with a choice: the new modules' small
        attentions always run SDPA and return no weights) and records it in this config."""
        self.clip.set_attn_implementation(attn_implementation, **kwargs)
        # CLIP's text and vision models read this config's own sub-configs, so they are set now; record the top-level
        # kind only (the public setter would also overwrite the sub-configs, undoing a per-sub-config dict).
        self.config._attn_implementation_internal = self.clip.config._attn_implementation

    def get_input_embeddings(self) -> nn.Module:
        """The frozen CLIP text encoder's token embedding (the model's only vocabulary input), as `CLIPTextModel`."""
        return self.clip.text_model.embeddings.token_embedding

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.clip.text_model.embeddings.token_embedding = value

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [parameter for parameter in self.parameters() if parameter.requires_grad]

    def num_trainable_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.trainable_parameters())

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        r"""
        Loads a saved OmniCLIP: a full checkpoint (`model.safetensors`), or an adapter-only one
        (`adapter_model.safetensors`, see [`~OmniCLIPModel.save_adapter`]), for which the base CLIP named in the
        config (`base_clip_name_or_path`, or `base_clip=` here) is loaded first.

        A plain CLIP checkpoint (folder or Hub id) is wrapped instead, with every new module at the identity
        ([`CLIP_AT_IDENTITY`]): the model then computes CLIP's frame-averaged scores, and a log line says so.
        All of `from_pretrained`'s keywords apply (`dtype`, `device_map`, `revision`, `output_loading_info`, ...).
        """
        if pretrained_model_name_or_path is None or kwargs.get("state_dict") is not None or kwargs.get("gguf_file"):
            return cls._load_full(pretrained_model_name_or_path, *args, **kwargs)
        config = kwargs.get("config")
        if is_omniclip_config(config):  # AutoModel passes the config it read
            config_dict = config.to_dict()
        else:
            config_dict = read_checkpoint_config(pretrained_model_name_or_path, kwargs)
        model_type = config_dict.get("model_type")
        if model_type == "clip":
            return cls._wrap_clip_checkpoint(pretrained_model_name_or_path, kwargs)
        if model_type != OmniCLIPConfig.model_type:
            raise ValueError(
                f"{pretrained_model_name_or_path} holds a {model_type or 'model of unknown type'!r} checkpoint, "
                "neither an OmniCLIP nor a CLIP model: pass a folder or Hub id of one of those."
            )
        warn_if_saved_code_differs(pretrained_model_name_or_path)
        if not kwargs.get("ignore_mismatched_sizes"):  # transformers' way to ask for new modules where shapes differ
            # AutoModel (or a caller) passes a config with the keywords applied: compare it with the saved one.
            saved = read_checkpoint_config(pretrained_model_name_or_path, kwargs) if is_omniclip_config(config) \
                else config_dict
            check_architecture_overrides(pretrained_model_name_or_path, saved, kwargs, config)
        adapter_file = _find_adapter_file(pretrained_model_name_or_path, config_dict, kwargs)
        if adapter_file is not None:
            return cls._from_adapter(pretrained_model_name_or_path, adapter_file, kwargs)
        kwargs.pop("base_clip", None)
        if os.path.isdir(os.fspath(pretrained_model_name_or_path)):
            check_weight_files(os.fspath(pretrained_model_name_or_path))
        return cls._load_full(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def _load_full(cls, pretrained_model_name_or_path, *args, **kwargs):
        wants_loading_info = kwargs.pop("output_loading_info", False)
        model, loading_info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True,
                                                      **kwargs)
        # A caller who asks for the loading report, or hands over the weights itself, reads what was missing there
        # (transformers' convention, which its common tests check); everyone else gets the one-line refusal.
        if not wants_loading_info and kwargs.get("state_dict") is None:
            check_loaded_weights(pretrained_model_name_or_path, loading_info)
        # Loading replaces the parameters, which resets requires_grad: freeze CLIP again.
        model.freeze_clip()
        return (model, loading_info) if wants_loading_info else model

    @classmethod
    def _wrap_clip_checkpoint(cls, name_or_path, kwargs: dict[str, Any]):
        output_loading_info = kwargs.pop("output_loading_info", False)
        loading, overrides = split_loading_kwargs(kwargs)
        # What callers such as pipeline() pass about the call itself, not about the model.
        for name in ("base_clip", "config", "trust_remote_code", "code_revision", "adapter_kwargs"):
            overrides.pop(name, None)
        overrides = {name: value for name, value in overrides.items() if not name.startswith("_")}
        logger.warning(
            f"{name_or_path} is a plain CLIP checkpoint: wrapped as OmniCLIP with every new module at the identity, "
            "so it scores videos as frame-averaged CLIP (train it, or save it with `omniclip init`)."
        )
        model = cls.from_clip(name_or_path, **loading, **{**CLIP_AT_IDENTITY, **overrides})
        model.wrapped_clip_source = os.fspath(name_or_path)  # the pipeline builds the video processor from it
        if output_loading_info:
            return model, {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
        return model

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`, plus what the Hub needs to run the zero-shot pipeline without this
        package: the pipeline's code beside the model code, named in the config's `custom_pipelines`."""
        pipeline_files = pipeline_code_files(self.name_or_path)
        set_custom_pipelines(self.config, pipeline_files)
        if hasattr(self.config, "checkpoint_format"):  # a full checkpoint now, whatever the model was loaded from
            del self.config.checkpoint_format
        check_config_describes_modules(self)
        if kwargs.get("is_main_process", True) is False:  # another process writes the folder: nothing to stage here
            super().save_pretrained(save_directory, *args, **kwargs)
            return
        if kwargs.get("push_to_hub"):  # the repo transformers names after the folder: the target's, not the staging's
            kwargs.setdefault("repo_id", os.fspath(save_directory).split(os.path.sep)[-1])
        save = super().save_pretrained

        def write(staging):
            save(staging, *args, **kwargs)
            copy_pipeline_code(staging, pipeline_files)

        def stale(written: set[str]) -> list[str]:
            # The adapter's weights, and the full weights of an earlier save that this one did not write (another
            # sharding): transformers removes those itself when it writes into the folder.
            return [ADAPTER_WEIGHTS_NAME, *(os.path.basename(path) for path in full_weight_files(save_directory))]

        # Staged, so that a failure leaves the folder's earlier model whole (`write_files_into_folder`).
        write_files_into_folder(save_directory, write, stale)

    def save_adapter(self, save_directory: str | os.PathLike, base_clip_name_or_path: str | None = None,
                     state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """
        Saves only the trainable OmniCLIP weights (`adapter_model.safetensors`) and the config, which names the
        base CLIP; `OmniCLIPModel.from_pretrained(folder)` loads the base CLIP, then these weights. The model code
        is copied too (`auto_map`), and the pipeline's (`custom_pipelines`), as with `save_pretrained`.
        `state_dict` (default: the model's own) is the full state dict to take the weights from, e.g. one gathered
        from an FSDP-sharded model, as in `save_pretrained`.
        """
        from safetensors.torch import save_file
        from transformers.dynamic_module_utils import custom_object_save

        check_config_describes_modules(self)
        base = base_clip_name_or_path or self.config.base_clip_name_or_path
        if not base:
            raise ValueError(
                "save_adapter needs the base CLIP's name or folder: pass base_clip_name_or_path= (the model was not "
                "built by from_clip with a name, so the config does not know it)."
            )
        self.config.base_clip_name_or_path = base
        config = copy.deepcopy(self.config)
        # Marks the checkpoint in its config, so loading from the Hub knows it without listing the repo's files.
        config.checkpoint_format = "adapter"
        config.base_clip_fingerprint = base_clip_fingerprint(self.clip, state_dict)
        # As save_pretrained, the zero-shot pipeline for hosts without this package: its code beside the model code,
        # named in the config's `custom_pipelines` (the model card's pipeline(..., trust_remote_code=True)).
        pipeline_files = pipeline_code_files(self.name_or_path)
        set_custom_pipelines(config, pipeline_files)
        adapter_weights = {
            name: tensor.detach().contiguous().cpu()
            for name, tensor in (self.state_dict() if state_dict is None else state_dict).items()
            if not name.startswith("clip.")
        }

        def write(staging):
            # What save_pretrained does for custom code: copy this file and its config file, and write auto_map.
            custom_object_save(self, staging, config=config)
            config.save_pretrained(staging)
            copy_pipeline_code(staging, pipeline_files)
            save_file(adapter_weights, os.path.join(staging, ADAPTER_WEIGHTS_NAME), metadata={"format": "pt"})

        # Staged, so that a failure leaves the folder's earlier model whole; a full save's weights there go.
        write_files_into_folder(save_directory, write,
                                lambda written: [os.path.basename(path) for path in full_weight_files(save_directory)])

    @classmethod
    def _from_adapter(cls, folder, adapter_file: str, kwargs: dict[str, Any]):
        from safetensors.torch import load_file

        output_loading_info = kwargs.pop("output_loading_info", False)
        loading, callers_fields = split_loading_kwargs(kwargs)
        # AutoModel passes the config it read, the caller's fields (text_template, ...) applied to it.
        passed = kwargs.get("config")
        config = passed if is_omniclip_config(passed) else OmniCLIPConfig.from_pretrained(
            folder, **hub_kwargs_of(loading))
        base = kwargs.pop("base_clip", None) or config.base_clip_name_or_path
        if not base:
            raise ValueError(f"{folder}: adapter-only checkpoint without base_clip_name_or_path; pass base_clip=.")
        clip_fields = ("self", "kwargs", "text_config", "vision_config", "projection_dim", "logit_scale_init_value")
        omniclip_fields = [name for name in inspect.signature(OmniCLIPConfig.__init__).parameters if name not in clip_fields]
        overrides = {name: getattr(config, name) for name in omniclip_fields}
        # The caller's fields (text_template, label_smoothing, ...) as from_pretrained applies them to a full checkpoint.
        overrides.update({name: value for name, value in callers_fields.items() if name in omniclip_fields})
        overrides["base_clip_name_or_path"] = base
        # The Hub keywords named the adapter repo; the base CLIP is its own repo (its revision is not this one's).
        clip_loading = {k: v for k, v in loading.items() if k not in ("revision", "subfolder")}
        try:
            model = cls.from_clip(base, **clip_loading, **overrides)
        except OSError as error:  # not found, not cached, offline: say whose base CLIP it is and how to give another
            named_by = "base_clip=" if base != config.base_clip_name_or_path else "its config's base_clip_name_or_path"
            raise OSError(f"{folder} is an adapter-only checkpoint over the CLIP {base} ({named_by}), which cannot be "
                          f"loaded: {one_line(error)} Pass base_clip= a folder or Hub id holding that CLIP (through "
                          "pipeline(), model_kwargs={'base_clip': ...}).") from None
        try:
            adapter_weights = load_file(adapter_file)
        except Exception as error:
            raise damaged_file_error(adapter_file, error) from None
        check_base_clip(folder, config, model.clip, base, chosen_by_caller=base != config.base_clip_name_or_path)
        keep_saved_and_callers_fields(model.config, config, omniclip_fields,
                                      {k: v for k, v in callers_fields.items() if k not in omniclip_fields})
        missing, unexpected = model.load_state_dict(adapter_weights, strict=False, assign=False)
        loading_info = {"missing_keys": [name for name in missing if not name.startswith("clip.")],
                        "unexpected_keys": unexpected, "mismatched_keys": [], "error_msgs": []}
        check_loaded_weights(folder, loading_info)  # the same rule as a full checkpoint (an old key bias is dropped)
        model.freeze_clip()
        model.eval()
        return (model, loading_info) if output_loading_info else model

    @classmethod
    def from_clip(
        cls,
        clip: str | os.PathLike | CLIPModel,
        clip_loading_kwargs: dict[str, Any] | None = None,
        **kwargs,
    ) -> OmniCLIPModel:
        r"""
        Wraps a CLIP checkpoint: its weights are loaded exactly and frozen, the OmniCLIP modules are initialised
        as the spec says (an untrained model with SPG off gives CLIP's frame-averaged features).

        The CLIP is loaded once, by `CLIPModel.from_pretrained`, straight into the model (no random CLIP is built);
        a checkpoint that lacks any of its weights, or whose config.json does not fit them, is refused.
        The whole model takes the loaded CLIP's dtype and device; see docs/design.md ("Transformers conventions and loading", "dtype of the trainable modules") for
        training with a half-precision CLIP.

        Args:
            clip (`str`, `os.PathLike` or `CLIPModel`):
                A Hub id such as `"openai/clip-vit-base-patch16"` (needs a connection the first time), a local
                folder written by `CLIPModel.save_pretrained`, or a `CLIPModel` already in memory.
            clip_loading_kwargs (`dict`, *optional*):
                More keywords for `CLIPModel.from_pretrained`.
            kwargs:
                `from_pretrained`'s loading keywords (`dtype`/`torch_dtype`, `device_map`, `attn_implementation`,
                `revision`, `token`, `cache_dir`, `local_files_only`, ...) go to the CLIP's loading; the others are
                OmniCLIP configuration fields, e.g. `num_frames=16, pta_ratio=0.5, use_spg=False`.
        """
        loading, config_overrides = split_loading_kwargs({**(clip_loading_kwargs or {}), **kwargs})
        if isinstance(clip, CLIPModel):
            # A copy: the caller's CLIP stays as it was (not frozen, not cast, not shared between models).
            clip_model = copy.deepcopy(clip)
            dtype = loading.get("dtype")
            if isinstance(dtype, str) and dtype != "auto":
                dtype = getattr(torch, dtype)
            if isinstance(dtype, torch.dtype):
                clip_model.to(dtype)
            if loading.get("attn_implementation"):
                clip_model.set_attn_implementation(loading["attn_implementation"])
            if isinstance(loading.get("device_map"), (str, torch.device)) and loading["device_map"] != "auto":
                clip_model.to(loading["device_map"])
            source = getattr(clip.config, "_name_or_path", None) or getattr(clip, "name_or_path", None) or None
            if source and os.path.isdir(source):  # a folder it was loaded from: absolute, as for a path (below)
                source = os.path.abspath(source)
        elif isinstance(clip, (str, os.PathLike)):
            config_dict = read_checkpoint_config(clip, loading)
            if config_dict.get("model_type") != "clip":
                raise ValueError(
                    f"{os.fspath(clip)} holds a {config_dict.get('model_type')!r} checkpoint; from_clip needs a CLIP "
                    "model (model_type 'clip')."
                )
            if os.path.isdir(os.fspath(clip)):
                check_weight_files(os.fspath(clip))
            from .model_loading import load_base_clip

            # Refused in one line where a weight is missing (transformers would leave it random) or of another shape.
            clip_model = load_base_clip(clip, loading)
            # A local folder by its absolute path: relative, an adapter saved from this model loaded its base from no
            # other folder, and publishing read it as a Hub id there.
            source = os.path.abspath(clip) if os.path.isdir(os.fspath(clip)) else os.fspath(clip)
        else:
            raise ValueError(
                f"from_clip expects a CLIP checkpoint name, a folder path or a transformers CLIPModel, "
                f"got {type(clip).__name__}."
            )
        config_overrides.setdefault("base_clip_name_or_path", source)
        check_config_fields("from_clip", config_overrides)
        config = OmniCLIPConfig.from_clip_config(clip_model.config, **config_overrides)
        config._attn_implementation = clip_model.config._attn_implementation
        clip_parameter = next(clip_model.parameters())
        # The new modules are built on the CLIP's device in its dtype, as from_pretrained builds a whole model.
        with torch.device(clip_parameter.device if clip_parameter.device.type != "meta" else "cpu"):
            model = cls(config, clip=clip_model)
        if clip_parameter.dtype != torch.float32:
            for name, module in model.named_children():
                if name != "clip":
                    module.to(clip_parameter.dtype)
        model.config.dtype = clip_parameter.dtype
        if getattr(clip_model, "hf_device_map", None):
            model.hf_device_map = {f"clip.{key}": value for key, value in clip_model.hf_device_map.items()}
        model.freeze_clip()
        return model

    # ------------------------------------------------------------------ input checks
    def _check_videos(self, pixel_values_videos: torch.Tensor | None) -> None:
        if pixel_values_videos is None:
            raise ValueError(
                "pixel_values_videos is missing: pass a float tensor (batch, frames, 3, height, width), "
                "e.g. the output of OmniCLIPVideoProcessor / OmniCLIPProcessor(videos=...)."
            )
        if not isinstance(pixel_values_videos, torch.Tensor):
            raise ValueError(
                f"pixel_values_videos must be a torch.Tensor, got {type(pixel_values_videos).__name__}; "
                "use the processor with return_tensors='pt'."
            )
        shape = tuple(pixel_values_videos.shape)
        if pixel_values_videos.dim() != 5:
            raise ValueError(
                f"pixel_values_videos must have 5 dims (batch, frames, 3, height, width), got shape {shape}. "
                "For a single video add a batch dim with .unsqueeze(0); multi-view input (batch, views, frames, "
                "3, height, width) goes to forward(), not get_video_features()."
            )
        if shape[0] == 0 or shape[1] == 0:
            raise ValueError(f"pixel_values_videos has zero videos or zero frames: shape {shape}.")
        if shape[2] != self.config.vision_config.num_channels:
            raise ValueError(
                f"pixel_values_videos must have {self.config.vision_config.num_channels} channels in dim 2 "
                f"(batch, frames, channels, height, width), got shape {shape}. "
                "Channels-last frames (..., height, width, 3) must be permuted first."
            )
        patch = self.config.vision_config.patch_size
        if shape[3] < patch or shape[4] < patch:
            raise ValueError(f"frames of {shape[3]}x{shape[4]} pixels are smaller than one {patch}x{patch} patch.")
        if not pixel_values_videos.is_floating_point():
            raise ValueError(
                f"pixel_values_videos must be a float tensor (CLIP-normalised), got dtype {pixel_values_videos.dtype}."
            )

    def _check_labels(self, labels: torch.Tensor, batch_size: int, num_classes: int) -> None:
        if not isinstance(labels, torch.Tensor):
            raise ValueError(f"labels must be a torch.Tensor of class indices (batch,) or soft targets (batch, "
                             f"num_classes), got {type(labels).__name__}: wrap it with torch.tensor(...).")
        if labels.dim() == 1 and not labels.is_floating_point():
            if labels.shape[0] != batch_size:
                raise ValueError(f"labels has {labels.shape[0]} entries for a batch of {batch_size} videos.")
            if not torch.compiler.is_compiling() and labels.numel() and (
                labels.min() < 0 or labels.max() >= num_classes
            ):
                raise ValueError(
                    f"labels must be class indices in [0, {num_classes - 1}] (one per class text), "
                    f"got values from {int(labels.min())} to {int(labels.max())}."
                )
            return
        if labels.dim() == 2 and labels.is_floating_point():
            if tuple(labels.shape) != (batch_size, num_classes):
                raise ValueError(
                    f"soft labels must have shape (batch, num_classes) = ({batch_size}, {num_classes}), "
                    f"got {tuple(labels.shape)}."
                )
            return
        raise ValueError(
            f"labels must be class indices of shape ({batch_size},) (an integer tensor) or soft targets of shape "
            f"({batch_size}, {num_classes}) (a float tensor), got dtype {labels.dtype} and shape {tuple(labels.shape)}."
        )

    def _check_frame_size(self, pixel_values_videos: torch.Tensor, interpolate_pos_encoding: Any) -> None:
        """`interpolate_pos_encoding=False` takes frames of the checkpoint's size only, as CLIP's vision embeddings
        do; left out or `True`, any size is interpolated."""
        if interpolate_pos_encoding is not None and not isinstance(interpolate_pos_encoding, bool):
            raise TypeError(f"interpolate_pos_encoding must be True, False or None, got {interpolate_pos_encoding!r}.")
        image_size = self.config.vision_config.image_size
        height, width = pixel_values_videos.shape[-2:]
        if interpolate_pos_encoding is False and (height, width) != (image_size, image_size):
            raise ValueError(f"pixel_values_videos has {height}x{width} frames, not the checkpoint's "
                             f"{image_size}x{image_size}, and interpolate_pos_encoding=False: resize the frames to "
                             f"{image_size}x{image_size}, or leave interpolate_pos_encoding out (other sizes then have "
                             "the position embeddings interpolated).")

    # ------------------------------------------------------------------ encoders
    def _embed_frames(self, frames: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Frozen patch + position embeddings (interpolated for other sizes) plus the temporal embedding (eq. 1)."""
        vision_config = self.config.vision_config
        image_size = vision_config.image_size
        height, width = frames.shape[-2:]
        needs_interpolation = (height, width) != (image_size, image_size)
        embeddings = self.clip.vision_model.embeddings(frames, interpolate_pos_encoding=needs_interpolation)
        if self.temporal_embedding is not None:
            per_frame = self.temporal_embedding(num_frames).to(embeddings.dtype)
            embeddings = (embeddings.unflatten(0, (-1, num_frames)) + per_frame[None, :, None, :]).flatten(0, 1)
        return embeddings

    def _replace_prompts(self, hidden_states: torch.Tensor, num_patches: int, grid: tuple[int, int]) -> torch.Tensor:
        """Appends SPG prompts computed from the patch tokens, dropping any previous prompts (eq. 6)."""
        tokens = hidden_states[:, : 1 + num_patches]
        prompts = self.self_prompt_generator(tokens[:, 1:], grid)
        return torch.cat([tokens, prompts], dim=1)

    @capture_outputs(tie_last_hidden_states=False)
    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> OmniCLIPVideoOutput | tuple:
        r"""
        Encodes videos: all frames of the batch go through each frozen CLIP vision layer in one pass.

        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(batch_size, num_frames, 3, height, width)`):
                CLIP-normalised frames. Any frame count and any size work; temporal and position embeddings are
                interpolated. As in CLIP, pixels past the last whole patch (right and bottom) are not read.
            output_hidden_states (`bool`, *optional*, defaults to `config.output_hidden_states`):
                Also return the token states after the embeddings and after each layer.
            output_attentions (`bool`, *optional*, defaults to `config.output_attentions`):
                Also return each frozen vision layer's attention weights (with `attn_implementation="eager"`).
            interpolate_pos_encoding (`bool`, *optional*):
                CLIP's and X-CLIP's keyword. Left out or `True`, frames of another size than the checkpoint's have
                the position embeddings interpolated (as CLIP does with `True`); `False` refuses them, as CLIP does.
            return_dict (`bool`, *optional*, defaults to `config.return_dict`):
                Return an [`OmniCLIPVideoOutput`] rather than a tuple.

        Returns:
            [`OmniCLIPVideoOutput`] whose `pooler_output` is the video embedding `(batch_size, projection_dim)`,
            matching what `CLIPModel.get_image_features` returns in transformers 5.
        """
        check_keywords("get_video_features", kwargs, "pixel_values_videos, output_hidden_states, output_attentions, "
                       "interpolate_pos_encoding, return_dict")
        self._check_videos(pixel_values_videos)
        self._check_frame_size(pixel_values_videos, interpolate_pos_encoding)
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        output_hidden_states = bool(output_hidden_states)
        batch_size, num_frames, channels, height, width = pixel_values_videos.shape
        patch = self.config.vision_config.patch_size
        grid = (height // patch, width // patch)
        num_patches = grid[0] * grid[1]
        vision = self.clip.vision_model
        if kwargs.get("output_attentions", self.config.output_attentions):
            hook_frozen_vision_attentions(vision)
            warn_if_attentions_cannot_be_returned(vision.config._attn_implementation)

        hidden_states = self._embed_frames(pixel_values_videos.reshape(-1, channels, height, width), num_frames)
        if self.self_prompt_generator is not None:
            hidden_states = self._replace_prompts(hidden_states, num_patches, grid)
        hidden_states = vision.pre_layrnorm(hidden_states)

        all_hidden_states = (hidden_states,) if output_hidden_states else None
        recompute_prompts = self.self_prompt_generator is not None and self.config.spg_layers == "every"
        for index, (block, frozen_layer) in enumerate(zip(self.blocks, vision.encoder.layers)):
            if recompute_prompts and index > 0:
                hidden_states = self._replace_prompts(hidden_states, num_patches, grid)
            hidden_states = block(hidden_states, frozen_layer=frozen_layer, num_frames=num_frames, grid=grid)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)

        class_tokens = vision.post_layernorm(hidden_states[:, 0]).unflatten(0, (batch_size, num_frames))
        # Projected after the unflatten: the bias-free projection then returns a tensor of its own, not a view.
        frame_embeds = self.clip.visual_projection(class_tokens)
        video_embeds = self.video_head(frame_embeds)
        last_hidden_state = hidden_states.unflatten(0, (batch_size, num_frames))
        video_context = None
        if self.video_specific_prompts is not None:
            video_context = self.video_specific_prompts.video_context(last_hidden_state[:, :, 1 : 1 + num_patches])

        output = OmniCLIPVideoOutput(
            # Copied (in training only) after every use above: nothing saved for backward holds on to the copy.
            last_hidden_state=own_storage_if_tracked(last_hidden_state),
            pooler_output=video_embeds,
            frame_embeds=own_storage_if_tracked(frame_embeds),
            video_context=video_context,
            hidden_states=all_hidden_states,
        )
        return output

    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling | tuple:
        r"""
        Encodes class texts with the frozen CLIP text encoder and `text_projection`.

        Args:
            input_ids (`torch.LongTensor` of shape `(num_texts, sequence_length)`):
                Token ids of the class texts (e.g. `config.text_template.format(label)` through the CLIP tokenizer).
            attention_mask (`torch.Tensor` of shape `(num_texts, sequence_length)`, *optional*):
                Padding mask from the tokenizer.
            output_hidden_states, output_attentions, return_dict (`bool`, *optional*):
                As for `CLIPModel.get_text_features`: the text encoder's per-layer states and attention weights,
                recorded by the frozen `CLIPTextModel` itself.

        Returns:
            `BaseModelOutputWithPooling` whose `pooler_output` holds the projected text embeddings
            `(num_texts, projection_dim)`, as `CLIPModel.get_text_features` returns in transformers 5.
        """
        check_keywords(
            "get_text_features", kwargs,
            "input_ids, attention_mask, position_ids, output_hidden_states, output_attentions, return_dict",
        )
        if input_ids is None:
            raise ValueError(
                "input_ids is missing: tokenize the class texts, e.g. processor(text=[...]) or "
                "tokenizer([template.format(name) for name in labels], padding=True, return_tensors='pt')."
            )
        if not isinstance(input_ids, torch.Tensor):
            raise ValueError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}: tokenize with "
                             "return_tensors='pt', e.g. processor(text=[...], return_tensors='pt').")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (num_texts, sequence_length), got {tuple(input_ids.shape)}.")
        if attention_mask is not None and (
                not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape):
            # A mask of another tokenization (other padding, other texts) changes the embeddings with nothing said.
            got = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else type(attention_mask).__name__
            raise ValueError(f"attention_mask must be a tensor of input_ids' shape {tuple(input_ids.shape)}, got {got}: "
                             "pass the mask the tokenizer returned with these input_ids.")
        if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
            raise ValueError(f"input_ids must hold token ids (an integer tensor), got {input_ids.dtype}: tokenize the "
                             "class texts, e.g. processor(text=[...], return_tensors='pt').")
        if 0 in input_ids.shape:  # torch's reshape error names neither
            raise ValueError(f"input_ids has shape {tuple(input_ids.shape)}: give at least one class text of at least "
                             "one token.")
        vocab_size = self.clip.config.text_config.vocab_size
        if (input_ids.device.type == "cpu" and not torch.compiler.is_compiling()
                and not 0 <= int(input_ids.min()) <= int(input_ids.max()) < vocab_size):
            # Checked where it costs no device sync nor graph break (tokenizers return CPU tensors); torch's
            # IndexError names nothing.
            raise ValueError(f"input_ids holds token ids outside CLIP's vocabulary [0, {vocab_size}): tokenize the "
                             "class texts with this CLIP's tokenizer (the processor's).")
        longest = self.clip.config.text_config.max_position_embeddings
        if input_ids.shape[1] > longest:  # CLIP's own error names no remedy
            raise ValueError(f"input_ids has {input_ids.shape[1]} tokens a text, more than CLIP's {longest}: tokenize "
                             f"with truncation=True (the processor does), or shorten the class texts.")
        for flag in ("output_hidden_states", "output_attentions"):
            if kwargs.get(flag) is None:
                kwargs[flag] = getattr(self.config, flag)
        text_outputs = self.clip.text_model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, return_dict=True, **kwargs
        )
        text_outputs.pooler_output = self.clip.text_projection(text_outputs.pooler_output)
        return text_outputs

    # ------------------------------------------------------------------ forward
    @can_return_tuple
    def forward(
        self,
        pixel_values_videos: torch.FloatTensor | None = None,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        text_embeds: torch.FloatTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        return_loss: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> OmniCLIPOutput | tuple:
        r"""
        Scores every video against every class text (eqs. 8-9).

        Args:
            input_ids (`torch.LongTensor` of shape `(num_classes, sequence_length)`):
                The tokenized class texts (one per class, shared by the whole batch). Also
                `(batch_size, num_classes, sequence_length)` holding the same class texts for every video, as
                `ClassTextCollator` sends them so that a split along the batch (`nn.DataParallel`) keeps every class;
                rows that differ are refused.
            attention_mask (`torch.Tensor` of shape `(num_classes, sequence_length)`, *optional*):
                Padding mask of `input_ids`, of the same shape.
            pixel_values_videos (`torch.FloatTensor` of shape `(batch_size, num_frames, 3, height, width)`):
                CLIP-normalised frames. Multi-view input `(batch_size, num_views, num_frames, 3, height, width)`
                is encoded view by view and the logits are averaged over views.
            labels (`torch.LongTensor` of shape `(batch_size,)` or `torch.FloatTensor` of shape `(batch_size, num_classes)`, *optional*):
                Class indices, or soft targets (mixup/cutmix); gives `loss`, the cross-entropy with the config's
                label smoothing.
            text_embeds (`torch.FloatTensor` of shape `(num_classes, projection_dim)`, *optional*):
                Precomputed `get_text_features(...).pooler_output`, instead of `input_ids`: the frozen text
                encoder then does not run (label sets reused across batches).
            return_loss (`bool`, *optional*):
                `False` skips the loss even when `labels` are given (the loss needs `labels`; CLIP-style callers
                pass `return_loss=True` with them).
            output_hidden_states, output_attentions (`bool`, *optional*, default to the config's):
                Also return the per-layer states and attention weights of the video and text encoders (in
                `vision_model_output` and `text_model_output`).
            interpolate_pos_encoding (`bool`, *optional*):
                As in [`~OmniCLIPModel.get_video_features`]: left out or `True`, any frame size; `False`, the
                checkpoint's only.
            return_dict (`bool`, *optional*, defaults to `config.return_dict`):
                Return an [`OmniCLIPOutput`] rather than a tuple.
            num_items_in_batch (`int` or `torch.Tensor`, *optional*):
                With class indices, the videos in the whole (gradient-accumulated) batch; with soft targets
                `(batch_size, num_classes)`, videos x classes, as Trainer counts `labels != -100`. The loss is then
                the summed cross-entropy divided by the number of videos, as Transformers' loss functions do.
        """
        check_keywords(
            "OmniCLIPModel.forward", kwargs,
            "pixel_values_videos, input_ids, attention_mask, labels, text_embeds, position_ids, return_loss, "
            "output_hidden_states, output_attentions, interpolate_pos_encoding, return_dict and Transformers' own "
            "keywords (num_items_in_batch, ...)",
        )
        per_video_texts = isinstance(input_ids, torch.Tensor) and input_ids.dim() == 3
        if per_video_texts:  # (batch, classes, length): one set per video
            texts = (input_ids,) if attention_mask is None else (input_ids, attention_mask)
            if texts[-1].shape != input_ids.shape or input_ids.shape[0] == 0 or any(
                t.stride(0) != 0 and not torch.equal(t, t[:1].expand_as(t)) for t in texts
            ):
                mask_shape = None if attention_mask is None else tuple(attention_mask.shape)
                raise ValueError(f"3-D input_ids {tuple(input_ids.shape)} (attention_mask {mask_shape}) must repeat one "
                                 "(num_classes, sequence_length) set of class texts for every video, as "
                                 "ClassTextCollator sends them; pass (num_classes, sequence_length) otherwise.")
            input_ids, attention_mask = input_ids[0], None if attention_mask is None else attention_mask[0]
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        output_flags = {
            name: getattr(self.config, name) if value is None else value
            for name, value in (("output_hidden_states", output_hidden_states), ("output_attentions", output_attentions))
        }
        num_views = None
        if isinstance(pixel_values_videos, torch.Tensor) and pixel_values_videos.dim() == 6:
            num_views = pixel_values_videos.shape[1]
            pixel_values_videos = pixel_values_videos.flatten(0, 1)
        self._check_videos(pixel_values_videos)

        text_outputs = None
        if text_embeds is not None and input_ids is not None:  # one would be dropped with nothing said
            raise ValueError("pass either input_ids (the tokenized class texts) or text_embeds (from "
                             "get_text_features()), not both.")
        if text_embeds is None:
            if input_ids is None:
                raise ValueError(
                    "the class texts are missing: pass input_ids (the tokenized class names, e.g. from "
                    "OmniCLIPProcessor(text=...)) or precomputed text_embeds from get_text_features()."
                )
            text_outputs = self.get_text_features(
                input_ids, attention_mask, position_ids, return_dict=True, **output_flags, **kwargs
            )
            text_embeds = text_outputs.pooler_output
        elif not isinstance(text_embeds, torch.Tensor):
            raise ValueError(f"text_embeds must be a torch.Tensor (from get_text_features()), got "
                             f"{type(text_embeds).__name__}.")
        elif text_embeds.dim() != 2 or text_embeds.shape[-1] != self.config.projection_dim:
            raise ValueError(
                f"text_embeds must have shape (num_classes, {self.config.projection_dim}), got {tuple(text_embeds.shape)}."
            )
        elif not text_embeds.is_floating_point():
            raise ValueError(f"text_embeds must be a float tensor (from get_text_features()), got {text_embeds.dtype}.")
        else:  # embeddings kept from a model in another dtype (float64 from numpy, float32 from an fp32 model)
            text_embeds = text_embeds.to(self.dtype)

        video_outputs = self.get_video_features(pixel_values_videos, return_dict=True,
                                                interpolate_pos_encoding=interpolate_pos_encoding, **output_flags,
                                                **kwargs)
        video_embeds = video_outputs.pooler_output
        if self.video_specific_prompts is not None:
            text_embeds = self.video_specific_prompts(text_embeds, video_outputs.video_context)

        logits_per_video = self.similarity_logits(video_embeds, text_embeds)
        if num_views is not None:
            logits_per_video = logits_per_video.unflatten(0, (-1, num_views)).mean(dim=1)
            video_embeds = video_embeds.unflatten(0, (-1, num_views))
            if text_embeds.dim() == 3:
                text_embeds = text_embeds.unflatten(0, (-1, num_views))

        loss = None
        if labels is not None and return_loss is not False:
            self._check_labels(labels, logits_per_video.shape[0], logits_per_video.shape[1])
            if not labels.is_floating_point():
                labels = labels.long()  # int32 or uint8 indices (numpy's defaults on some platforms): cross_entropy takes int64
            loss = self.classification_loss(logits_per_video, labels, num_items_in_batch)

        logits_per_text = own_storage_if_tracked(logits_per_video.T)
        if per_video_texts:
            # Every output along the batch: nn.DataParallel gathers the replicas' outputs along dim 0, and
            # `(num_classes, part of the batch)` logits of unequal parts cannot be joined (an epoch's last batch).
            logits_per_text = None
            if text_embeds.dim() == 2:
                text_embeds = text_embeds.expand(logits_per_video.shape[0], -1, -1)
        output = OmniCLIPOutput(
            loss=loss,
            logits_per_video=logits_per_video,
            logits_per_text=logits_per_text,
            video_embeds=own_storage_if_tracked(video_embeds),
            text_embeds=own_storage_if_tracked(text_embeds),
            text_model_output=text_outputs,
            vision_model_output=video_outputs,
        )
        return output

    def classification_loss(
        self, logits_per_video: torch.Tensor, labels: torch.Tensor, num_items_in_batch: int | torch.Tensor | None = None
    ) -> torch.Tensor:
        """Cross-entropy of the class logits (eq. 9) with the config's label smoothing; the mean over videos, or
        the sum divided by `num_items_in_batch` (videos in the gradient-accumulated batch) when given. For soft
        labels `(batch_size, num_classes)` it is Trainer's count, `labels != -100` over every entry: videos times
        classes."""
        reduction = "mean" if num_items_in_batch is None else "sum"
        if num_items_in_batch is not None and labels.dim() == 2:
            num_items_in_batch = num_items_in_batch / labels.shape[1]
        loss = F.cross_entropy(
            logits_per_video.float(),
            labels.to(logits_per_video.device),
            label_smoothing=self.config.label_smoothing,
            reduction=reduction,
        )
        if num_items_in_batch is not None:
            loss = loss / torch.as_tensor(num_items_in_batch, device=loss.device, dtype=loss.dtype)
        return loss

    def similarity_logits(self, video_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """`exp(logit_scale) * cos(video, text)` (eq. 8) for `(B, D)` videos and `(C, D)` or `(B, C, D)` texts.

        Always in float32, whatever the model's dtype or autocast: with a logit scale of 100, bfloat16 rounding
        of a cosine (8 bits of mantissa) would move a logit by about 0.1.
        """
        with torch.autocast(device_type=video_embeds.device.type, enabled=False):
            video_embeds = F.normalize(video_embeds.float(), dim=-1)
            text_embeds = F.normalize(text_embeds.float(), dim=-1)
            scale = self.clip.logit_scale.float().exp()
            if text_embeds.dim() == 2:
                return scale * video_embeds @ text_embeds.T
            return scale * torch.einsum("bd,bcd->bc", video_embeds, text_embeds)


OmniCLIPConfig.register_for_auto_class()
OmniCLIPModel.register_for_auto_class("AutoModel")

__all__ = ["OmniCLIPModel", "OmniCLIPOutput", "OmniCLIPPreTrainedModel", "OmniCLIPVideoOutput"]
