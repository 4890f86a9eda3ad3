"""Where OmniCLIP's adapter time goes, at ViT-B/16 shapes (random weights). Not a test; `bench_model.py` prints these
tables on cuda (or with --pta_tables, --pta_tables_only), each row with its share of OmniCLIP's inference time over
the 12 layers:

- the PTA's temporal attention alone per SDPA kernel (flash, memory-efficient, cuDNN, math; "default" is SDPA's own
  choice) on the package's strided head layout and after the textbook transposed copy, and written out without SDPA
  (einsum, and broadcast product-and-sum: candidates for T = 8);
- one block's pieces: the frozen CLIP layer, also with CLIP's own MLP; the adapter's LayerNorm, Down, q/k, attention,
  Up, the residual add; the residual add folded into Up's GEMM as a candidate; the whole adapter with Down, q and k
  in one GEMM as another;
- the same in training, forward + backward: the block, the frozen layer, the adapter, and its attention per SDPA
  kernel and written out.

Every candidate is checked against the package's computation before it is timed.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from bench_model import clip_own_mlps, interleaved_median_seconds
from omniclip_hf import OmniCLIPModel
from omniclip_hf.modeling_omniclip import alpha_scaled_up, run_frozen_layer


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
    head_dim = attention.head_dim
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
    with clip_own_mlps(omniclip):
        return run_frozen_layer(frozen_layer, hidden)


def block_cost_rows(omniclip, batch, frames, device, dtype, repeats, omniclip_clips_s=None) -> None:
    """Times the pieces of one spatial-temporal block (parallel PTA) on the real modules of layer 0, in turns."""
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


def block_training_rows(omniclip, batch, frames, device, dtype, repeats, omniclip_train_clips_s=None) -> None:
    """Forward + backward of one block's pieces as training runs them (the input carries gradient, the adapter's
    weights take theirs, the frozen layer's none), in turns: what the training goal's time is made of, and whether
    the PTA's short attention (T = 8) costs more backward than its size says, per kernel and written out."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    block, frozen_layer = omniclip.blocks[0], omniclip.clip.vision_model.encoder.layers[0]
    adapter = block.temporal_adapter
    attention, reduced_4d = pta_attention_inputs(omniclip, batch, frames, device, dtype)
    tokens, width = reduced_4d.shape[2], omniclip.config.vision_config.hidden_size
    was_training = omniclip.training
    omniclip.train()
    hidden = torch.randn(batch * frames, tokens, width, device=device, dtype=dtype, requires_grad=True)
    reduced = reduced_4d.clone().requires_grad_()

    def sdpa_attention(backend):
        def run():
            with sdpa_kernel([backend]):
                return attention(reduced)
        return run

    pieces = {
        "whole block (frozen layer + PTA + add)": (hidden, lambda: block(hidden, frozen_layer=frozen_layer,
                                                                          num_frames=frames)),
        "frozen CLIP layer": (hidden, lambda: run_frozen_layer(frozen_layer, hidden)),
        "PTA whole": (hidden, lambda: adapter(hidden, frames)),
        "PTA attention with q/k, SDPA's choice": (reduced, lambda: attention(reduced)),
        "PTA attention with q/k, flash": (reduced, sdpa_attention(SDPBackend.FLASH_ATTENTION)),
        "PTA attention with q/k, memory-efficient": (reduced, sdpa_attention(SDPBackend.EFFICIENT_ATTENTION)),
        "PTA attention with q/k, math": (reduced, sdpa_attention(SDPBackend.MATH)),
        "PTA attention with q/k, written out (einsum)": (reduced, lambda: explicit_short_attention(attention, reduced)),
    }

    def training_step(leaf, forward):
        def run():
            omniclip.zero_grad(set_to_none=True)
            leaf.grad = None
            output = forward()
            output.backward(torch.ones_like(output))
        return run

    steps, unavailable = {}, {}
    for name, (leaf, forward) in pieces.items():
        step = training_step(leaf, forward)
        try:
            step(), step()  # warm-up, and whether this kernel takes these inputs at all
            steps[name] = step
        except RuntimeError as error:  # "No available kernel": this kernel refuses these inputs (a row, not a test)
            unavailable[name] = str(error).splitlines()[0][:60]
    seconds = interleaved_median_seconds(steps, device, repeats)
    omniclip.zero_grad(set_to_none=True)
    omniclip.train(was_training)
    layers = len(omniclip.config.pta_layer_indices)
    print(f"\nOne block's pieces in training, forward + backward: {batch * frames} frames x {tokens} tokens x {width}, "
          f"{dtype}, medians")
    print("| piece | ms per layer | share of an omniclip training step |")
    print("|---|---|---|")
    for name in pieces:
        if name in unavailable:
            print(f"| {name} | not available ({unavailable[name]}) | |")
            continue
        share = (f"{layers * seconds[name] / (batch / omniclip_train_clips_s):.1%}"
                 if omniclip_train_clips_s else "")
        print(f"| {name} | {seconds[name] * 1e3:.3f} | {share} |", flush=True)


if __name__ == "__main__":  # the tables need bench_model.py's models: alone, this file would print nothing
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    parser.error("these tables are printed by bench_model.py: run `python benchmarks/bench_model.py "
                 "--pta_tables_only` (with --device cuda on a GPU)")
