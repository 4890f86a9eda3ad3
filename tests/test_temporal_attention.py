"""The PTA's temporal attention and the package's other attention modules: the SDPA path, with the head layout that
needs no copy, computes exactly the textbook attention, and the layout is one SDPA's fused kernels accept."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from omniclip_hf.modeling_omniclip import OmniCLIPAttention, OmniCLIPTemporalAttention

BATCH, FRAMES, POSITIONS, WIDTH, HEADS = 2, 8, 5, 24, 3


def randomised(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return module.eval()


def textbook_attention(query, key, value, num_heads: int) -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim)) v along dim 1 of `(B, L, *P, d)`, position by position and head by head,
    after the transposed copy `(B * P, L, d)` the usual implementations make."""
    batch, length, *positions, width = query.shape
    head_dim = width // num_heads

    def per_position_heads(states):  # (B, L, *P, d) -> (B * P * heads, L, head_dim), copied
        states = states.reshape(batch, states.shape[1], -1, num_heads, head_dim)
        return states.permute(0, 2, 3, 1, 4).reshape(-1, states.shape[1], head_dim).contiguous()

    q, k, v = per_position_heads(query), per_position_heads(key), per_position_heads(value)
    weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(head_dim), dim=-1)
    attended = (weights @ v).view(batch, -1, num_heads, length, head_dim)
    return attended.permute(0, 3, 1, 2, 4).reshape(batch, length, *positions, width)


def states(seed: int, length: int = FRAMES) -> torch.Tensor:
    return torch.randn(BATCH, length, POSITIONS, WIDTH, generator=torch.Generator().manual_seed(seed))


def test_pta_temporal_attention_equals_textbook_attention_across_frames():
    attention = randomised(OmniCLIPTemporalAttention(WIDTH, HEADS))
    hidden_states = states(1)
    with torch.no_grad():
        expected = textbook_attention(attention.q_proj(hidden_states), attention.k_proj(hidden_states), hidden_states,
                                      HEADS)
        torch.testing.assert_close(attention(hidden_states), expected, rtol=1e-6, atol=1e-6)


def test_cross_attention_equals_textbook_attention():
    attention = randomised(OmniCLIPAttention(WIDTH, HEADS))
    queries, context = states(2, length=3), states(3)
    with torch.no_grad():
        attended = textbook_attention(attention.q_proj(queries), attention.k_proj(context), attention.v_proj(context),
                                      HEADS)
        torch.testing.assert_close(attention(queries, context), attention.out_proj(attended), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", [SDPBackend.FLASH_ATTENTION, SDPBackend.MATH])
def test_pta_head_layout_runs_on_sdpa_kernels_without_a_copy_of_the_tokens(backend):
    # Restricted to one backend, SDPA raises "No available kernel" for a layout that backend refuses: the strided
    # (B, P * heads, T, head_dim) view of the tokens must be accepted by the fused (flash) kernel as it is.
    attention = randomised(OmniCLIPTemporalAttention(WIDTH, HEADS))
    hidden_states = states(4)
    with torch.no_grad():
        reference = attention(hidden_states)
        with sdpa_kernel([backend]):
            torch.testing.assert_close(attention(hidden_states), reference, rtol=1e-6, atol=1e-6)
        # The heads are a view of the projected tokens: no transposed copy goes into the kernel.
        assert attention._split_heads(hidden_states)._base is hidden_states
