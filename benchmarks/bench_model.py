"""Cost of OmniCLIP against bare CLIP and X-CLIP with the real ViT-B/16 shapes (random weights). Not a test.

    python benchmarks/bench_model.py                      # FLOPs, parameters, CPU inference at batch 1
    python benchmarks/bench_model.py --device cuda        # + GPU throughput and peak memory (bf16, batch 32)
    python benchmarks/bench_model.py --saved_activations  # + what a training forward keeps for backward (bf16)
    python benchmarks/bench_model.py --pta_tables_only    # only the two PTA tables below (short)

Rows:
- `clip`: the frozen CLIP B/16 vision tower + projection on the same frames, features averaged over frames.
- `clip+spg-tokens`: OmniCLIP with only the SPG prompts (what the extra K/4 tokens cost).
- `omniclip`: the full model (temporal embedding, SPG, PTA in all 12 layers, video head).
- `omniclip+clip-mlp`: with transformers' own `CLIPMLP` modules back in the frozen CLIP instead of
  `OmniCLIPQuickGELUMLP` (the same function with one elementwise pass instead of three, keeping half as much for
  backward): what that changes; then the same comparison with the two taking turns (steadier on a shared CPU).
- `omniclip+grad-ckpt` (training rows): with gradient checkpointing.
- `omniclip-naive-pta`: the same model with the textbook adapter layout (permute to (B*N, T, d'),
  `.contiguous()`, `nn.MultiheadAttention`, permute back), to show what the package's layout saves.
- `xclip`: transformers' `XCLIPModel.get_video_features` at B/16, 8 frames (full fine-tuning in training rows).
- with --compile: `clip`, `omniclip` and, at the very end, `xclip` under `torch.compile`.

Then (on cuda, or with --saved_activations) what one bf16 training forward keeps for backward (saved tensors,
weights not counted: the bulk of a training step's peak memory, nearly the same count on any device), per clip and
per batch, for OmniCLIP, OmniCLIP with CLIP's own MLP modules (see `OmniCLIPQuickGELUMLP`) and X-CLIP.

Then (on cuda, or with --pta_tables) two tables at the same shapes, each row with its share of OmniCLIP's inference
time over the 12 layers: the PTA's temporal attention alone per SDPA kernel (flash, memory-efficient, cuDNN, math;
"default" is SDPA's own choice) on the package's strided head layout and after the textbook transposed copy, and
written out without SDPA (einsum, and broadcast product-and-sum: candidates for T = 8); and one block's pieces (the
frozen CLIP layer, also with CLIP's own MLP; the adapter's LayerNorm, Down, q/k, attention, Up, the residual add; the
residual add folded into Up's GEMM as a candidate; the whole adapter with Down, q and k in one GEMM as another), to
show where the adapter's time goes.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPConfig, CLIPModel, XCLIPConfig, XCLIPModel
from transformers.models.clip.modeling_clip import CLIPMLP

from omniclip_hf import OmniCLIPModel
from omniclip_hf.modeling_omniclip import (OmniCLIPQuickGELUMLP, OmniCLIPTemporalAdapter,
                                          disable_activation_checkpointing, enable_activation_checkpointing)

B16_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  image_size=224, patch_size=16)
B16_TEXT = dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8)
CLIP_OWN_MLP = "omniclip+clip-mlp"


class NaiveTemporalAttention(nn.Module):
    """The textbook PTA layout, for comparison only: a transposed copy in and out of nn.MultiheadAttention."""

    def __init__(self, adapter: OmniCLIPTemporalAdapter):
        super().__init__()
        width = adapter.down.out_features
        num_heads = adapter.attention.num_heads
        adapter.attention = None  # replaced by nn.MultiheadAttention below
        self.adapter = adapter
        self.attention = nn.MultiheadAttention(width, num_heads, batch_first=True)
        self.attention.to(adapter.down.weight.dtype)

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        frames, tokens, _ = hidden_states.shape
        batch = frames // num_frames
        reduced = self.adapter.down(self.adapter.layer_norm(hidden_states))
        per_token = reduced.view(batch, num_frames, tokens, -1).permute(0, 2, 1, 3).reshape(batch * tokens, num_frames, -1)
        attended, _ = self.attention(per_token, per_token, per_token, need_weights=False)
        attended = attended.view(batch, tokens, num_frames, -1).permute(0, 2, 1, 3).reshape(frames, tokens, -1)
        return self.adapter.alpha * self.adapter.up(attended)


def build_models(device: torch.device, dtype: torch.dtype) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    clip = CLIPModel(CLIPConfig(vision_config=B16_VISION, text_config=B16_TEXT, projection_dim=512)).eval()
    omniclip = OmniCLIPModel.from_clip(clip, num_frames=8)
    spg_only = OmniCLIPModel.from_clip(clip, num_frames=8, use_pta=False, use_temporal_embedding=False,
                                       video_head_num_layers=0, use_video_specific_prompts=False)
    naive = OmniCLIPModel.from_clip(clip, num_frames=8)
    for block in naive.blocks:
        block.temporal_adapter = NaiveTemporalAttention(block.temporal_adapter)
    xclip = XCLIPModel(XCLIPConfig(vision_config={**B16_VISION, "num_frames": 8}, text_config=B16_TEXT,
                                   projection_dim=512))
    models = {"clip": clip, "clip+spg-tokens": spg_only, "omniclip": omniclip, "omniclip-naive-pta": naive,
              "xclip": xclip}
    return {name: model.to(device=device, dtype=dtype) for name, model in models.items()}


def video_features(name: str, model: nn.Module, videos: torch.Tensor) -> torch.Tensor:
    if name == "clip":
        batch, frames = videos.shape[:2]
        return model.get_image_features(pixel_values=videos.flatten(0, 1)).pooler_output.view(batch, frames, -1).mean(1)
    if name == "xclip":
        return model.get_video_features(pixel_values=videos).pooler_output
    return model.get_video_features(videos).pooler_output


def count_gflops(name: str, model: nn.Module, videos: torch.Tensor) -> float:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        video_features(name, model, videos)
    return counter.get_total_flops() / 1e9 / videos.shape[0]


def trainable_parameters(name: str, model: nn.Module) -> int:
    if name == "clip":  # the frozen baseline: frame averaging trains nothing
        return 0
    if name == "xclip":  # full fine-tuning
        return sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(function, device: torch.device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        function()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def inference_clips_per_second(name, model, videos, device, repeats) -> float:
    def step():
        with torch.no_grad():
            video_features(name, model, videos)

    return videos.shape[0] / time_it(step, device, repeats)


def training_loss(name, model, videos, labels, class_inputs, class_embeds) -> torch.Tensor:
    if name == "xclip":
        return F.cross_entropy(model(**class_inputs, pixel_values=videos).logits_per_video.float(), labels)
    return model(text_embeds=class_embeds, pixel_values_videos=videos, labels=labels).loss


def training_step(name, model, videos, labels, class_inputs, class_embeds, optimizer):
    optimizer.zero_grad(set_to_none=True)
    training_loss(name, model, videos, labels, class_inputs, class_embeds).backward()
    optimizer.step()


def prepare_training(name, model, batch, device, num_classes) -> tuple[list, tuple]:
    """Train mode, the trainable parameters (all of X-CLIP's: full fine-tuning), and the step's labels and class
    texts (OmniCLIP's frozen text encoder runs once, outside the step)."""
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad or name == "xclip"]
    for parameter in parameters:
        parameter.requires_grad_(True)
    labels = torch.randint(0, num_classes, (batch,), device=device)
    class_inputs = {"input_ids": torch.randint(0, 49407, (num_classes, 16), device=device)}
    class_embeds = None
    if name != "xclip":
        with torch.no_grad():
            class_embeds = model.get_text_features(**class_inputs).pooler_output
    return parameters, (labels, class_inputs, class_embeds)


def training_clips_per_second_and_peak(name, model, videos, device, repeats, num_classes, checkpointing=False):
    parameters, step_inputs = prepare_training(name, model, videos.shape[0], device, num_classes)
    if checkpointing:
        enable_activation_checkpointing(model)
    optimizer = torch.optim.AdamW(parameters, lr=1e-5, betas=(0.9, 0.98))
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    seconds = time_it(lambda: training_step(name, model, videos, *step_inputs, optimizer), device, repeats)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    del optimizer
    if checkpointing:
        disable_activation_checkpointing(model)
    model.eval()
    return videos.shape[0] / seconds, peak


def kept_for_backward_bytes(model: nn.Module, run) -> tuple[int, object]:
    """Bytes that autograd keeps for backward while `run()` builds the graph, and what `run()` returned: distinct
    storages, the model's weights not counted (they are in memory anyway)."""
    weights = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}
    kept = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = run()
    return sum(kept.values()), output


def saved_activation_mib(name, model, videos, num_classes) -> float:
    """MiB that autograd keeps for backward in one training forward: what a training step's peak memory is mostly
    made of, counted the same on any device."""
    _, step_inputs = prepare_training(name, model, videos.shape[0], videos.device, num_classes)
    kept, loss = kept_for_backward_bytes(model, lambda: training_loss(name, model, videos, *step_inputs))
    del loss
    model.eval()
    return kept / 2**20


@contextmanager
def clip_own_mlps(omniclip: OmniCLIPModel):
    """OmniCLIP with transformers' own `CLIPMLP` (QuickGELU in three passes) in its frozen CLIP, as before
    `OmniCLIPQuickGELUMLP`."""
    mlps = [module for module in omniclip.clip.modules() if type(module) is OmniCLIPQuickGELUMLP]
    for mlp in mlps:
        mlp.__class__ = CLIPMLP
    try:
        yield omniclip
    finally:
        for mlp in mlps:
            mlp.__class__ = OmniCLIPQuickGELUMLP


def omniclip_variant_rows(model, omniclip_row, videos, device, repeats, num_classes, training: bool,
                          clip_parameters: int) -> list[dict]:
    """OmniCLIP with CLIP's own MLP modules (what `OmniCLIPQuickGELUMLP` changes) and, training only, with gradient
    checkpointing; then the MLP comparison again with the two taking turns."""
    shared = {key: omniclip_row[key] for key in ("gflops_per_view", "trainable")}
    with clip_own_mlps(model):
        own = {"model": CLIP_OWN_MLP, **shared,
               "inference_clips_s": inference_clips_per_second("omniclip", model, videos, device, repeats)}
        if training:
            own["train_clips_s"], own["train_peak_gib"] = training_clips_per_second_and_peak(
                "omniclip", model, videos, device, repeats, num_classes)
    print(f"  measured {format_row(own, clip_parameters)}", flush=True)
    rows = [own]
    if training:
        checkpointed = {"model": "omniclip+grad-ckpt", **shared, "inference_clips_s": omniclip_row["inference_clips_s"]}
        checkpointed["train_clips_s"], checkpointed["train_peak_gib"] = training_clips_per_second_and_peak(
            "omniclip", model, videos, device, repeats, num_classes, checkpointing=True)
        print(f"  measured {format_row(checkpointed, clip_parameters)}", flush=True)
        rows.append(checkpointed)
    fused_mlp_interleaved(model, videos, device, repeats, num_classes, training)
    return rows


def fused_mlp_interleaved(omniclip, videos, device, repeats, num_classes, training: bool) -> None:
    """OmniCLIP's inference and training step with `OmniCLIPQuickGELUMLP` and with CLIP's own MLP modules, the two
    taking turns (medians of single calls): a shared CPU's speed drifts over the minutes that the rows take one after
    the other, so the ratio of two rows is noise at a few percent there; this one is not."""
    def step(own: bool, train: bool):
        def run():
            with clip_own_mlps(omniclip) if own else nullcontext():
                if train:
                    training_step("omniclip", omniclip, videos, *step_inputs, optimizer)
                else:
                    with torch.no_grad():
                        video_features("omniclip", omniclip, videos)
        return run

    rounds = max(repeats, 5)
    for train in (False, True) if training else (False,):
        if train:
            parameters, step_inputs = prepare_training("omniclip", omniclip, videos.shape[0], device, num_classes)
            optimizer = torch.optim.AdamW(parameters, lr=1e-5, betas=(0.9, 0.98))
        steps = {"fused": step(own=False, train=train), "own": step(own=True, train=train)}
        for run in steps.values():
            run()
        seconds = interleaved_median_seconds(steps, device, rounds)
        omniclip.eval()
        print(f"  {'training step' if train else 'inference'}, interleaved medians of {rounds}: "
              f"{seconds['fused']:.4f} s with OmniCLIPQuickGELUMLP, {seconds['own']:.4f} s with CLIP's own MLP; "
              f"clips/s fused / own {seconds['own'] / seconds['fused']:.3f}", flush=True)


def saved_activation_rows(models, frames, device, dtype, num_classes, batch: int) -> None:
    """Kept-for-backward MiB per clip (the slope between batches 1 and 2) and per batch (X-CLIP's 400 class texts
    through its trained text encoder), for OmniCLIP, OmniCLIP with CLIP's own QuickGELU modules, and X-CLIP."""
    print(f"\nKept for backward by one training forward (saved tensors, weights not counted), {dtype}, {frames} frames")
    print(f"| model | MiB per clip | MiB per batch | MiB at batch {batch} |")
    print("|---|---|---|---|")
    for name in ("omniclip", "xclip"):
        models[name].to(dtype)
    at_batch = {}
    for label, name in (("omniclip", "omniclip"), (CLIP_OWN_MLP, "omniclip"), ("xclip", "xclip")):
        with clip_own_mlps(models["omniclip"]) if label == CLIP_OWN_MLP else nullcontext():
            mib = [saved_activation_mib(name, models[name], torch.randn(size, frames, 3, 224, 224, device=device,
                                                                         dtype=dtype), num_classes) for size in (1, 2)]
        per_clip, per_batch = mib[1] - mib[0], 2 * mib[0] - mib[1]
        at_batch[label] = per_batch + batch * per_clip
        print(f"| {label} | {per_clip:.1f} | {per_batch:.1f} | {at_batch[label]:.0f} |", flush=True)
    for label in ("omniclip", CLIP_OWN_MLP):
        print(f"  kept at batch {batch}, {label} / xclip: {at_batch[label] / at_batch['xclip']:.3f}")


def pta_attention_inputs(omniclip: OmniCLIPModel, batch: int, frames: int, device, dtype):
    """The real PTA attention module of layer 0 and Down-projected tokens shaped as inside the adapter."""
    attention = omniclip.blocks[0].temporal_adapter.attention
    vision = omniclip.config.vision_config
    grid = vision.image_size // vision.patch_size
    tokens = 1 + grid * grid + (-(-grid // 2)) ** 2  # CLS, patches, SPG prompts
    reduced = torch.randn(batch, frames, tokens, attention.embed_dim, device=device, dtype=dtype)
    return attention, reduced


def textbook_layout_attention(attention, reduced: torch.Tensor) -> torch.Tensor:
    """The same attention after the usual transposed copy to (B * N * heads, T, head_dim) and back, for comparison."""
    batch, frames, tokens, width = reduced.shape

    def per_token(states):
        states = states.view(batch, frames, tokens * attention.num_heads, attention.head_dim)
        return states.transpose(1, 2).reshape(-1, frames, attention.head_dim).contiguous()

    query, key = per_token(attention.q_proj(reduced)), per_token(attention.k_proj(reduced))
    attended = F.scaled_dot_product_attention(query, key, per_token(reduced))
    return attended.view(batch, -1, frames, attention.head_dim).transpose(1, 2).reshape(reduced.shape).contiguous()


def explicit_short_attention(attention, reduced: torch.Tensor, broadcast: bool = False) -> torch.Tensor:
    """The same attention written out (scores, softmax, weighted sum), a candidate for the PTA's short T.

    SDPA's fused kernels tile the sequence in blocks of 64-128 queries and keys, so at T = 8 most of each tile is
    padding; written out, the `(B, N * heads, T, T)` scores are T / (3 * head_dim) of the q/k/v size and every step is
    a pass over small tensors. `broadcast` forms the scores as a product-and-sum over broadcast q and k (no batched
    GEMM, T times q's size in flight; what torch.compile could fuse) instead of einsum's batched GEMM.
    """
    batch, frames = reduced.shape[:2]
    heads, head_dim = attention.num_heads, attention.head_dim
    query = attention.q_proj(reduced).view(batch, frames, -1, head_dim) * head_dim ** -0.5
    key = attention.k_proj(reduced).view(batch, frames, -1, head_dim)
    value = reduced.view(batch, frames, -1, head_dim)
    if broadcast:  # (B, T, 1, S, d) * (B, 1, T, S, d) summed over d -> (B, T, T, S)
        weights = (query.unsqueeze(2) * key.unsqueeze(1)).sum(-1).softmax(dim=2)
        attended = (weights.unsqueeze(-1) * value.unsqueeze(1)).sum(2)
    else:
        weights = torch.einsum("btsd,busd->bstu", query, key).softmax(dim=-1)
        attended = torch.einsum("bstu,busd->btsd", weights, value)
    return attended.reshape(reduced.shape)


def interleaved_median_seconds(steps: dict, device: torch.device, repeats: int) -> dict:
    """Median seconds of single calls, the steps taking turns in every round: a shared CPU's slow spells then hit
    every row alike instead of one."""
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: sorted(values)[len(values) // 2] for name, values in times.items()}


def pta_attention_backend_rows(omniclip, batch, frames, device, dtype, repeats, omniclip_clips_s=None) -> None:
    """Prints the PTA attention's time per SDPA kernel; a kernel that refuses the layout says so (no fallback)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    attention, reduced = pta_attention_inputs(omniclip, batch, frames, device, dtype)
    layers = len(omniclip.config.pta_layer_indices)
    print(f"\nPTA temporal attention alone: tokens {tuple(reduced.shape)} (batch, frames, tokens, d'), "
          f"{attention.num_heads} heads of {attention.head_dim}; {layers} layers per forward")
    print("| kernel | layout | ms per layer (median) | share of omniclip inference |")
    print("|---|---|---|---|")
    backends = [("default", None)] + [(b.name.lower(), b) for b in (SDPBackend.FLASH_ATTENTION,
              SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH)]
    cases = [(name, backend, "strided heads (package)", attention) for name, backend in backends]
    cases.append(("default", None, "transposed copy (textbook)", lambda x: textbook_layout_attention(attention, x)))
    cases.append(("none (einsum)", None, "written out, candidate", lambda x: explicit_short_attention(attention, x)))
    cases.append(("none (broadcast)", None, "written out, candidate",
                  lambda x: explicit_short_attention(attention, x, broadcast=True)))

    def make_step(backend, function):
        def step():
            with torch.no_grad():
                if backend is None:
                    return function(reduced)
                with sdpa_kernel([backend]):
                    return function(reduced)
        return step

    steps, unavailable = {}, {}
    for name, backend, layout, function in cases:
        step = make_step(backend, function)
        try:
            step(), step()  # warm-up, and whether this kernel takes these inputs at all
            steps[name, layout] = step
        except Exception as error:  # "No available kernel": this kernel refuses these inputs (a row, not a test)
            unavailable[name, layout] = str(error).splitlines()[0][:60]
    with torch.no_grad():  # the candidates must compute what the package computes
        reference = attention(reduced).float()
        for name, _, layout, function in cases[-2:]:
            difference = (function(reduced).float() - reference).abs().max().item()
            print(f"# {name}, {layout}: max |difference| from the package's attention {difference:.2e} ({dtype})")
    seconds = interleaved_median_seconds(steps, device, repeats)
    for name, _, layout, _ in cases:
        if (name, layout) in unavailable:
            print(f"| {name} | {layout} | not available ({unavailable[name, layout]}) | |")
            continue
        share = ""
        if omniclip_clips_s:
            share = f"{layers * seconds[name, layout] / (batch / omniclip_clips_s):.1%}"
        print(f"| {name} | {layout} | {seconds[name, layout] * 1e3:.3f} | {share} |", flush=True)


def fused_projection_attended(adapter, hidden_states: torch.Tensor, num_frames: int,
                               written_out: bool = False) -> torch.Tensor:
    """The adapter up to Up's input with Down, q and k in one GEMM: a candidate that saves the q/k GEMMs' pass.

    `q = Wq (Wd x + bd) + bq` is itself linear in the normalised tokens, so `[Wd; Wq Wd; Wk Wd]` gives the reduced
    tokens, the queries and the keys in one pass over the `(frames, N, d)` tokens (the same function; the fused
    weight would be cached at inference). Its rows are ordered (head, {reduced, q, k}, head_dim), so each of the
    three is a strided `(B, N * heads, T, head_dim)` view that SDPA takes without a copy.
    """
    attention = adapter.attention
    heads, head_dim = attention.num_heads, attention.head_dim
    down_weight, down_bias = adapter.down.weight, adapter.down.bias
    weight = torch.stack([down_weight, attention.q_proj.weight @ down_weight, attention.k_proj.weight @ down_weight])
    bias = torch.stack([down_bias, attention.q_proj.weight @ down_bias + attention.q_proj.bias,
                        attention.k_proj.weight @ down_bias])
    # (3, heads * head_dim, ...) -> (heads, 3, head_dim, ...) -> rows in (head, part, head_dim) order
    weight = weight.view(3, heads, head_dim, -1).transpose(0, 1).reshape(3 * heads * head_dim, -1)
    bias = bias.view(3, heads, head_dim).transpose(0, 1).reshape(-1)
    frames, tokens, _ = hidden_states.shape
    fused = F.linear(adapter.layer_norm(hidden_states), weight, bias)
    fused = fused.view(frames // num_frames, num_frames, tokens * heads, 3, head_dim)
    reduced, query, key = (fused[..., part, :] for part in range(3))  # (B, T, N * heads, head_dim) views
    if written_out:
        weights = torch.einsum("btsd,busd->bstu", query * head_dim ** -0.5, key).softmax(dim=-1)
        attended = torch.einsum("bstu,busd->btsd", weights, reduced)
    else:
        attended = F.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (query, key, reduced))).transpose(1, 2)
    return attended.reshape(frames, tokens, heads * head_dim)


def frozen_layer_with_clips_own_mlp(omniclip, frozen_layer, hidden: torch.Tensor) -> torch.Tensor:
    from omniclip_hf.modeling_omniclip import run_frozen_layer

    with clip_own_mlps(omniclip):
        return run_frozen_layer(frozen_layer, hidden)


def block_cost_rows(omniclip, batch, frames, device, dtype, repeats, omniclip_clips_s=None) -> None:
    """Times the pieces of one spatial-temporal block (parallel PTA) on the real modules of layer 0, in turns."""
    from omniclip_hf.modeling_omniclip import alpha_scaled_up, run_frozen_layer

    block, frozen_layer = omniclip.blocks[0], omniclip.clip.vision_model.encoder.layers[0]
    adapter = block.temporal_adapter
    attention, reduced_4d = pta_attention_inputs(omniclip, batch, frames, device, dtype)
    tokens = reduced_4d.shape[2]
    width = omniclip.config.vision_config.hidden_size
    hidden = torch.randn(batch * frames, tokens, width, device=device, dtype=dtype)
    normed, reduced = adapter.layer_norm(hidden), reduced_4d.view(batch * frames, tokens, -1)
    frozen_out, adapted = run_frozen_layer(frozen_layer, hidden), alpha_scaled_up(adapter.up, adapter.alpha, reduced)
    query, key = attention._split_heads(reduced_4d), attention._split_heads(reduced_4d)

    def up_with_residual_in_the_gemm():  # candidate: Up's GEMM adds the frozen output (beta=1) instead of a pass
        weight, bias = adapter.up.weight * adapter.alpha, adapter.up.bias * adapter.alpha
        return torch.addmm(frozen_out.view(-1, width) + bias, reduced.view(-1, reduced.shape[-1]), weight.T)

    pieces = {
        "whole block (frozen layer + PTA + add)": lambda: block(hidden, frozen_layer=frozen_layer, num_frames=frames),
        "frozen CLIP layer": lambda: run_frozen_layer(frozen_layer, hidden),
        "frozen CLIP layer, CLIP's own MLP": lambda: frozen_layer_with_clips_own_mlp(omniclip, frozen_layer, hidden),
        "PTA whole": lambda: adapter(hidden, frames),
        "PTA LayerNorm": lambda: adapter.layer_norm(hidden),
        "PTA Down": lambda: adapter.down(normed),
        "PTA q and k projections": lambda: (attention.q_proj(reduced_4d), attention.k_proj(reduced_4d)),
        "PTA attention (SDPA only)": lambda: F.scaled_dot_product_attention(query, key, attention._split_heads(reduced_4d)),
        "PTA Up (alpha-scaled)": lambda: alpha_scaled_up(adapter.up, adapter.alpha, reduced),
        "residual add (frozen + PTA)": lambda: frozen_out + adapted,
        "candidate: add inside Up's GEMM": up_with_residual_in_the_gemm,
        "candidate: PTA whole, Down+q+k in one GEMM": lambda: alpha_scaled_up(
            adapter.up, adapter.alpha, fused_projection_attended(adapter, hidden, frames)),
        "candidate: PTA whole, one GEMM, attention written out": lambda: alpha_scaled_up(
            adapter.up, adapter.alpha, fused_projection_attended(adapter, hidden, frames, written_out=True)),
    }
    with torch.no_grad():  # the candidates must compute what the package computes (compared before the zero Up)
        attended = adapter.attention(adapter.down(normed).view(batch, frames, tokens, -1)).reshape(reduced.shape)
        for written_out in (False, True):
            difference = (fused_projection_attended(adapter, hidden, frames, written_out) - attended).abs().max()
            print(f"# Down+q+k in one GEMM{', attention written out' if written_out else ''}: max |difference| "
                  f"from the package's adapter before Up {difference.item():.2e} ({dtype})")
    with torch.no_grad():
        for piece in pieces.values():
            piece(), piece()
        seconds = interleaved_median_seconds({name: torch.no_grad()(piece) for name, piece in pieces.items()},
                                             device, repeats)
    layers = len(omniclip.config.pta_layer_indices)
    print(f"\nOne block's pieces: {batch * frames} frames x {tokens} tokens x {width}, {dtype}, medians")
    print("| piece | ms per layer | share of omniclip inference |")
    print("|---|---|---|")
    for name, value in seconds.items():
        share = f"{layers * value / (batch / omniclip_clips_s):.1%}" if omniclip_clips_s else ""
        print(f"| {name} | {value * 1e3:.3f} | {share} |", flush=True)


TABLE_HEADER = (f"| {'model':26} | GFLOPs/view | trainable params | share of CLIP | infer clips/s | train clips/s "
                "| train peak GiB |")


def rate(value: float) -> str:
    """Clips/s with 2 decimals, or 4 where the value is below 1 (CPU rows at batch 1)."""
    return f"{value:13.4f}" if value < 1 else f"{value:13.2f}"


def format_row(row: dict, clip_parameters: int) -> str:
    return (f"| {row['model']:26} | {row['gflops_per_view']:11.1f} | {row['trainable']:16,d} | "
            f"{row['trainable'] / clip_parameters:13.2%} | {rate(row['inference_clips_s'])} | "
            f"{rate(row.get('train_clips_s', float('nan')))} | {row.get('train_peak_gib', float('nan')):14.2f} |")


def print_table(rows: list[dict], clip_parameters: int) -> None:
    print(TABLE_HEADER)
    print("|" + "|".join("-" * (len(cell)) for cell in TABLE_HEADER.split("|")[1:-1]) + "|")
    for row in rows:
        print(format_row(row, clip_parameters))


def by_model(rows: list[dict]) -> dict[str, dict]:
    return {row["model"]: row for row in rows}


def compiled_rows(models, eager_rows, videos, device, repeats, num_classes, training: bool,
                  clip_parameters: int, names=("clip", "omniclip")) -> list[dict]:
    """`torch.compile` rows for the models in `names`; a failure to compile is printed and the row skipped.

    Inference compiles the feature function (`torch.compile` on a module compiles only its `forward`); training
    compiles the module, whose `forward` the training step calls (not for bare CLIP, which trains nothing).
    """
    rows = []
    for name in names:
        model, eager = models[name], eager_rows[name]
        videos = videos.to(next(model.parameters()).dtype)  # --saved_activations left the models in bf16
        row = {"model": f"{name} (torch.compile)", "gflops_per_view": eager["gflops_per_view"],
               "trainable": eager["trainable"]}
        try:
            compiled_features = torch.compile(lambda v, name=name, model=model: video_features(name, model, v))
            row["inference_clips_s"] = videos.shape[0] / time_it(
                lambda: torch.no_grad()(compiled_features)(videos), device, repeats, warmup=3)
            if training and name != "clip":
                model.compile()
                row["train_clips_s"], row["train_peak_gib"] = training_clips_per_second_and_peak(
                    name, model, videos, device, repeats, num_classes)
        except Exception as error:  # a benchmark row, not a product path: report and go on
            print(f"  torch.compile failed for {name}: {type(error).__name__}: {str(error).splitlines()[0]}")
        if "inference_clips_s" in row:
            rows.append(row)
            print(f"  measured {format_row(row, clip_parameters)}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch_size", type=int, default=None, help="default: 32 on cuda, 1 on cpu")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--num_classes", type=int, default=400)
    parser.add_argument("--skip_training", action="store_true")
    parser.add_argument("--cpu_training", action="store_true", help="time training steps on CPU too (slow)")
    parser.add_argument("--compile", action="store_true", help="also time clip, omniclip and xclip under torch.compile")
    parser.add_argument("--pta_tables", action="store_true", help="the PTA attention and block tables on CPU too")
    parser.add_argument("--saved_activations", action="store_true",
                        help="what a training forward keeps for backward, on CPU too (bf16; about 12 GB of memory)")
    parser.add_argument("--pta_tables_only", action="store_true", help="only those (no model rows)")
    args = parser.parse_args()

    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    dtype = torch.bfloat16 if on_gpu else torch.float32
    batch = args.batch_size or (32 if on_gpu else 1)
    repeats = args.repeats or (10 if on_gpu else 2)
    run_training = not args.skip_training and (on_gpu or args.cpu_training)
    if args.pta_tables_only:
        torch.manual_seed(0)
        clip = CLIPModel(CLIPConfig(vision_config=B16_VISION, text_config=B16_TEXT, projection_dim=512))
        omniclip = OmniCLIPModel.from_clip(clip, num_frames=args.frames).to(device=device, dtype=dtype).eval()
        print(f"# device: {device}; dtype {dtype}; batch {batch}; torch {torch.__version__}")
        pta_attention_backend_rows(omniclip, batch, args.frames, device, dtype, repeats)
        block_cost_rows(omniclip, batch, args.frames, device, dtype, repeats)
        return
    models = build_models(device, dtype)

    flop_videos = torch.randn(1, args.frames, 3, 224, 224, device=device, dtype=dtype)
    videos = torch.randn(batch, args.frames, 3, 224, 224, device=device, dtype=dtype)
    clip_parameters = sum(p.numel() for p in models["clip"].parameters())
    device_name = torch.cuda.get_device_name(device) if on_gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"# device: {device_name}; dtype {dtype}; batch {batch}; {args.frames} frames at 224x224; "
          f"torch {torch.__version__}")

    rows = []
    for name, model in models.items():
        row = {"model": name, "gflops_per_view": count_gflops(name, model, flop_videos)}
        row["trainable"] = trainable_parameters(name, model)
        row["inference_clips_s"] = inference_clips_per_second(name, model, videos, device, repeats)
        if run_training and name not in ("clip", "clip+spg-tokens"):
            row["train_clips_s"], row["train_peak_gib"] = training_clips_per_second_and_peak(
                name, model, videos, device, repeats, args.num_classes)
        rows.append(row)
        print(f"  measured {format_row(row, clip_parameters)}", flush=True)
        if name == "omniclip":
            rows += omniclip_variant_rows(model, row, videos, device, repeats, args.num_classes, run_training,
                                          clip_parameters)
    if args.compile:
        rows += compiled_rows(models, by_model(rows), videos, device, repeats, args.num_classes,
                              training=run_training, clip_parameters=clip_parameters)

    print_table(rows, clip_parameters)
    if on_gpu or args.pta_tables:
        omniclip_clips_s = by_model(rows)["omniclip"]["inference_clips_s"]
        pta_attention_backend_rows(models["omniclip"], batch, args.frames, device, dtype, max(repeats, 5),
                                   omniclip_clips_s)
        block_cost_rows(models["omniclip"], batch, args.frames, device, dtype, max(repeats, 5), omniclip_clips_s)

    by_name = by_model(rows)
    clip_row, omni_row, xclip_row = by_name["clip"], by_name["omniclip"], by_name["xclip"]
    print("\nratios (targets from issues 2, 14 and 15 in brackets):")
    print(f"  FLOPs omniclip / clip            {omni_row['gflops_per_view'] / clip_row['gflops_per_view']:.3f}  [<= 1.32]")
    print(f"  FLOPs clip+spg-tokens / clip     {by_name['clip+spg-tokens']['gflops_per_view'] / clip_row['gflops_per_view']:.3f}")
    print(f"  inference omniclip / clip        {omni_row['inference_clips_s'] / clip_row['inference_clips_s']:.3f}  [>= 0.75 on GPU]")
    print(f"  inference omniclip / xclip       {omni_row['inference_clips_s'] / xclip_row['inference_clips_s']:.3f}  [> 1 on GPU]")
    print(f"  inference naive-pta / omniclip   {by_name['omniclip-naive-pta']['inference_clips_s'] / omni_row['inference_clips_s']:.3f}")
    print(f"  inference omniclip / spg-tokens  {omni_row['inference_clips_s'] / by_name['clip+spg-tokens']['inference_clips_s']:.3f}  (what PTA + head cost)")
    own = by_name[CLIP_OWN_MLP]
    print(f"  inference omniclip / clip-mlp    {omni_row['inference_clips_s'] / own['inference_clips_s']:.3f}  (what the fused MLP changes)")
    if "train_clips_s" in omni_row:
        print(f"  training omniclip / xclip        {omni_row['train_clips_s'] / xclip_row['train_clips_s']:.3f}  [>= 1.2 on GPU]")
        print(f"  training omniclip / clip-mlp     {omni_row['train_clips_s'] / own['train_clips_s']:.3f}  (what the fused MLP changes)")
        if on_gpu:
            print(f"  peak memory omniclip / xclip     {omni_row['train_peak_gib'] / xclip_row['train_peak_gib']:.3f}  [<= 0.85]")
            print(f"  peak memory clip-mlp / xclip     {own['train_peak_gib'] / xclip_row['train_peak_gib']:.3f}")
            ckpt = by_name["omniclip+grad-ckpt"]
            print(f"  peak memory grad-ckpt / xclip    {ckpt['train_peak_gib'] / xclip_row['train_peak_gib']:.3f}")
            print(f"  training grad-ckpt / xclip       {ckpt['train_clips_s'] / xclip_row['train_clips_s']:.3f}")
    for name in ("clip", "omniclip"):
        if f"{name} (torch.compile)" in by_name:
            compiled = by_name[f"{name} (torch.compile)"]
            print(f"  inference {name} compiled / eager  {compiled['inference_clips_s'] / by_name[name]['inference_clips_s']:.3f}")
    if "omniclip (torch.compile)" in by_name and "clip (torch.compile)" in by_name:
        print(f"  inference omniclip / clip, both compiled  "
              f"{by_name['omniclip (torch.compile)']['inference_clips_s'] / by_name['clip (torch.compile)']['inference_clips_s']:.3f}")
    if "train_clips_s" in by_name.get("omniclip (torch.compile)", {}):
        print(f"  training omniclip compiled / xclip  {by_name['omniclip (torch.compile)']['train_clips_s'] / xclip_row['train_clips_s']:.3f}")
    if on_gpu or args.saved_activations:  # the models go to bf16, the GPU rows' dtype, on the CPU too
        saved_activation_rows(models, args.frames, device, torch.bfloat16, args.num_classes, batch=32)
    if args.compile:  # last, so that a long X-CLIP compile cannot cost the rows above: compiled against compiled
        compiled_xclip_rows(models, by_name, videos, device, repeats, args.num_classes, run_training, clip_parameters)


def compiled_xclip_rows(models, by_name, videos, device, repeats, num_classes, training, clip_parameters) -> None:
    """X-CLIP under `torch.compile`, and OmniCLIP's compiled rows against it (the other ratios compare eager
    X-CLIP, as the goals are stated)."""
    (row,) = compiled_rows(models, by_name, videos, device, repeats, num_classes, training, clip_parameters,
                           names=("xclip",)) or (None,)
    omni_compiled = by_name.get("omniclip (torch.compile)")
    if row is None or omni_compiled is None:
        return
    print(f"  inference omniclip / xclip, both compiled  "
          f"{omni_compiled['inference_clips_s'] / row['inference_clips_s']:.3f}")
    if "train_clips_s" in row and "train_clips_s" in omni_compiled:
        print(f"  training omniclip / xclip, both compiled  "
              f"{omni_compiled['train_clips_s'] / row['train_clips_s']:.3f}")
        if device.type == "cuda":
            print(f"  peak memory omniclip / xclip, both compiled  "
                  f"{omni_compiled['train_peak_gib'] / row['train_peak_gib']:.3f}")


if __name__ == "__main__":
    main()
