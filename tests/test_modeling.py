"""Model core: weight loading, exact equivalences at initialisation, training, ablations, save/load, losses."""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, CLIPModel

from omniclip_hf import OmniCLIPConfig, OmniCLIPModel
from omniclip_hf.modeling_omniclip import disable_activation_checkpointing, enable_activation_checkpointing

from .conftest import REPO_ROOT, build_tiny_clip, frame_order_clips, load_benchmark, tiny_clip_config

FRAMES = 4
ALL_OFF = dict(use_pta=False, use_spg=False, use_video_specific_prompts=False)


def videos(batch=2, frames=FRAMES, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, size, size, generator=generator)


def class_texts(clip_tokenizer, names=("archery", "juggling balls", "playing harp")):
    texts = [f"a video of {name} action" for name in names]
    return clip_tokenizer(texts, padding=True, return_tensors="pt")


def clip_frame_average(clip, pixel_values_videos):
    batch, frames = pixel_values_videos.shape[:2]
    with torch.no_grad():
        features = clip.get_image_features(pixel_values=pixel_values_videos.flatten(0, 1)).pooler_output
    return features.view(batch, frames, -1).mean(dim=1)


# ------------------------------------------------------------------------------------------------ loading
@pytest.mark.parametrize("source", ["memory", "folder"])
def test_from_clip_copies_every_clip_tensor_and_freezes_it(tiny_clip, tiny_clip_dir, source):
    model = OmniCLIPModel.from_clip(tiny_clip if source == "memory" else str(tiny_clip_dir), num_frames=FRAMES)
    reference = tiny_clip.state_dict()
    loaded = model.clip.state_dict()
    assert set(reference) == set(loaded)
    for name, tensor in reference.items():
        assert torch.equal(loaded[name], tensor), name
    assert all(not parameter.requires_grad for parameter in model.clip.parameters())
    assert model.num_trainable_parameters() > 0
    if source == "folder":
        assert model.config.base_clip_name_or_path == str(tiny_clip_dir)


def test_from_clip_rejects_other_inputs():
    with pytest.raises(ValueError, match="CLIP checkpoint name, a folder path or a transformers CLIPModel"):
        OmniCLIPModel.from_clip(42)


@pytest.mark.parametrize(
    "geometry, expected_prompts",
    [
        (dict(image_size=224, patch_size=32), 16),  # B/32: 7x7 grid, odd -> ceil -> 4x4
        (dict(image_size=224, patch_size=16), 49),  # B/16: 14x14 -> 7x7
        (dict(image_size=224, patch_size=14), 64),  # L/14: 16x16 -> 8x8
    ],
)
def test_clip_vit_geometries(geometry, expected_prompts):
    clip = build_tiny_clip(vision_layers=1, vision_width=32, **geometry)
    model = OmniCLIPModel.from_clip(clip, num_frames=2).eval()
    grid = geometry["image_size"] // geometry["patch_size"]
    with torch.no_grad():
        output = model.get_video_features(videos(batch=1, frames=2, size=224))
    assert output.last_hidden_state.shape == (1, 2, 1 + grid * grid + expected_prompts, 32)
    assert output.pooler_output.shape == (1, 32)


# ------------------------------------------------------------------------------------------------ equivalences
def test_untrained_model_with_everything_off_is_clip_frame_average(tiny_clip):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, **ALL_OFF).eval()
    pixel_values = videos()
    with torch.no_grad():
        video_embeds = model.get_video_features(pixel_values).pooler_output
    torch.testing.assert_close(video_embeds, clip_frame_average(tiny_clip, pixel_values), atol=1e-5, rtol=0)


@pytest.mark.parametrize("pta_mode", ["parallel", "attention_parallel", "cascade", "cascade_attention"])
def test_untrained_pta_changes_nothing(tiny_clip, pta_mode):
    model = OmniCLIPModel.from_clip(
        tiny_clip, num_frames=FRAMES, use_spg=False, use_video_specific_prompts=False, pta_mode=pta_mode
    ).eval()
    assert model.config.use_pta and len(model.config.pta_layer_indices) == 3
    pixel_values = videos()
    with torch.no_grad():
        video_embeds = model.get_video_features(pixel_values).pooler_output
    torch.testing.assert_close(video_embeds, clip_frame_average(tiny_clip, pixel_values), atol=1e-5, rtol=0)


def test_spg_prompts_change_the_features(tiny_clip):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, use_pta=False, use_video_specific_prompts=False)
    pixel_values = videos()
    with torch.no_grad():
        video_embeds = model.eval().get_video_features(pixel_values).pooler_output
    difference = (video_embeds - clip_frame_average(tiny_clip, pixel_values)).abs().max()
    assert difference > 1e-3


def test_trained_pta_mixes_information_across_frames(tiny_clip):
    """After Up leaves zero, changing one frame changes the features of the other frames (temporal attention)."""
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, **{**ALL_OFF, "use_pta": True}).eval()
    torch.manual_seed(1)
    for block in model.blocks:
        for parameter in block.temporal_adapter.parameters():
            torch.nn.init.normal_(parameter, std=0.2)
    frame_average = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, **ALL_OFF).eval()
    pixel_values = videos(batch=1)
    changed = pixel_values.clone()
    changed[0, -1] = torch.randn_like(changed[0, -1])
    with torch.no_grad():
        before = model.get_video_features(pixel_values).frame_embeds
        after = model.get_video_features(changed).frame_embeds
        unadapted_before = frame_average.get_video_features(pixel_values).frame_embeds
        unadapted_after = frame_average.get_video_features(changed).frame_embeds
    assert torch.equal(unadapted_before[0, 0], unadapted_after[0, 0])  # CLIP alone sees frames one by one
    assert (before[0, 0] - after[0, 0]).abs().max() > 1e-3
    # Frames of another video in the batch stay untouched: attention never crosses clips.
    pair = torch.cat([pixel_values, videos(batch=1, seed=5)])
    pair_changed = torch.cat([changed, videos(batch=1, seed=5)])
    with torch.no_grad():
        torch.testing.assert_close(
            model.get_video_features(pair).frame_embeds[1], model.get_video_features(pair_changed).frame_embeds[1]
        )


def test_text_features_match_clip(tiny_clip, clip_tokenizer):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES)
    inputs = class_texts(clip_tokenizer)
    with torch.no_grad():
        ours = model.get_text_features(**inputs).pooler_output
        theirs = tiny_clip.get_text_features(**inputs).pooler_output
    torch.testing.assert_close(ours, theirs)


# ------------------------------------------------------------------------------------------------ training
def expected_trainable_parameters(config: OmniCLIPConfig, num_adapter_layers: int) -> int:
    """Counts the parameters of the modules the config enables, independently of the model code."""
    d, D = config.vision_config.hidden_size, config.projection_dim
    bottleneck = round(d * config.pta_ratio)
    linear = lambda fan_in, fan_out, bias=True: fan_in * fan_out + (fan_out if bias else 0)  # noqa: E731
    # query, key (no bias: a key bias only shifts each softmax row), value and output projections
    attention = lambda width: 4 * linear(width, width) - width  # noqa: E731
    mlp = lambda width: linear(width, 4 * width) + linear(4 * width, width)  # noqa: E731
    total = 0
    if config.use_temporal_embedding:
        total += config.num_frames * d
    if config.use_pta:
        # LayerNorm, Down, query and key (no bias) projections (no value or output projection), Up, alpha
        per_layer = (2 * d + linear(d, bottleneck) + linear(bottleneck, bottleneck)
                     + linear(bottleneck, bottleneck, bias=False) + linear(bottleneck, d) + 1)
        if config.pta_mode == "cascade":  # ST-Adapter: Down, depth-wise 3x3x3 convolution, Up, alpha
            per_layer = linear(d, bottleneck) + bottleneck * 27 + bottleneck + linear(bottleneck, d) + 1
        total += num_adapter_layers * per_layer
    if config.use_spg and config.spg_projector:
        # A 2d-wide hidden layer when the projector starts as the identity (eq. 6, the default), d wide otherwise.
        hidden = 2 * d if config.spg_projector_init == "identity" and not config.spg_residual else d
        total += linear(d, hidden) + linear(hidden, d)
    if config.video_head_num_layers:
        total += config.num_frames * D + config.video_head_num_layers * (4 * D + attention(D) + mlp(D))
    if config.use_video_specific_prompts:
        total += 2 * d + linear(d, D, bias=False) + 2 * D + config.prompt_layers * (4 * D + attention(D) + mlp(D)) + D
    return total


@pytest.mark.parametrize(
    "overrides, adapter_layers",
    [
        ({}, 3),
        (dict(use_spg=False), 3),
        (dict(pta_mode="cascade"), 3),
        (dict(use_pta=False), 0),
        (dict(pta_layers=[0, 2], spg_projector=False), 2),
        (dict(use_video_specific_prompts=False, video_head_num_layers=0, use_temporal_embedding=False), 3),
    ],
)
def test_trainable_count_matches_enabled_modules(tiny_clip, overrides, adapter_layers):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, **overrides)
    assert model.num_trainable_parameters() == expected_trainable_parameters(model.config, adapter_layers)


def test_training_steps_reach_every_trainable_parameter_and_no_clip_parameter(tiny_clip, clip_tokenizer):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).train()
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    inputs = class_texts(clip_tokenizer)
    got_gradient = set()
    for step in range(2):
        optimizer.zero_grad()
        output = model(**inputs, pixel_values_videos=videos(seed=step), labels=torch.tensor([0, 2]))
        output.loss.backward()
        for name, parameter in model.named_parameters():
            if parameter.requires_grad and parameter.grad is not None and parameter.grad.abs().sum() > 0:
                got_gradient.add(name)
        optimizer.step()
    assert all(parameter.grad is None for parameter in model.clip.parameters())
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable and not any(name.startswith("clip.") for name in trainable)
    assert trainable - got_gradient == set()


ABLATIONS = [
    dict(use_pta=True, use_spg=False),
    dict(use_pta=False, use_spg=True),
    dict(use_pta=True, use_spg=True),
    dict(pta_mode="attention_parallel"),
    dict(pta_mode="cascade"),
    dict(pta_mode="cascade_attention"),
    dict(pta_layers=[0]),
    dict(pta_layers=[1, 2]),
    dict(spg_pooling="max"),
    dict(spg_projector=False),
    dict(spg_pooling="max", spg_projector=False),
    dict(spg_residual=True),
    dict(spg_layers="every"),
    dict(pta_ratio=1 / 8),
    dict(pta_ratio=1.0),
    dict(use_video_specific_prompts=False),
    dict(video_head_num_layers=0, use_pta=False, use_spg=False),
]


@pytest.mark.parametrize("overrides", ABLATIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_every_ablation_runs_forward_and_backward(tiny_clip, clip_tokenizer, overrides):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, **overrides).train()
    output = model(**class_texts(clip_tokenizer), pixel_values_videos=videos(), labels=torch.tensor([1, 0]))
    assert output.logits_per_video.shape == (2, 3)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert any(parameter.grad is not None for parameter in model.trainable_parameters())


def test_gradient_checkpointing_gives_the_same_gradients(tiny_clip, clip_tokenizer):
    inputs = class_texts(clip_tokenizer)
    gradients = []
    for checkpointing in (False, True):
        model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, use_temporal_embedding=False)
        torch.manual_seed(3)
        for parameter in model.trainable_parameters():  # leave the zero init so every path carries gradient
            torch.nn.init.normal_(parameter, std=0.05)
        if checkpointing:
            enable_activation_checkpointing(model)
            assert all(block.gradient_checkpointing for block in model.blocks)
        model.train()
        model(**inputs, pixel_values_videos=videos(), labels=torch.tensor([0, 1])).loss.backward()
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad})
    assert gradients[0].keys() == gradients[1].keys()
    for name in gradients[0]:
        torch.testing.assert_close(gradients[0][name], gradients[1][name], msg=name)


def test_reentrant_checkpointing_that_would_train_no_adapter_is_refused(tiny_clip):
    """With neither the temporal embedding nor SPG, the first block's input needs no gradient: reentrant checkpointing
    (asked for explicitly, e.g. through Trainer's gradient_checkpointing_kwargs) left all 30 adapter weights without
    gradients, with only torch's warning said. With the temporal embedding on, it trains and is allowed."""
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, use_temporal_embedding=False, use_spg=False)
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    with pytest.raises(ValueError, match="use_reentrant=True in the checkpointing arguments would leave every PTA "
                                         "adapter without gradients"):
        enable({"use_reentrant": True})
    assert not any(block.gradient_checkpointing for block in model.blocks)
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, use_spg=False)
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable({"use_reentrant": True})
    assert all(block.gradient_checkpointing for block in model.blocks)


def test_activation_checkpointing_is_non_reentrant_under_either_name_without_a_stray_warning(tiny_clip):
    """Non-reentrant even when other checkpoint arguments are given (reentrant checkpointing gives no gradient to a
    block whose input does not require grad); the installed transformers' current name for the method warns about
    nothing, and the deprecated one (transformers 5.2x) warns once, about the call the user made."""
    import warnings

    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES)
    current = getattr(model, "activation_checkpointing_enable", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (current or model.gradient_checkpointing_enable)({"preserve_rng_state": False})
    assert [str(warning.message) for warning in caught] == []
    for block in model.blocks:
        assert block._gradient_checkpointing_func.keywords == {"use_reentrant": False, "preserve_rng_state": False}
    if current is not None:
        disable_activation_checkpointing(model)
        assert not any(block.gradient_checkpointing for block in model.blocks)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.gradient_checkpointing_enable({"preserve_rng_state": False})
        assert [type(warning.message) for warning in caught] == [FutureWarning]
        assert all(block._gradient_checkpointing_func.keywords["use_reentrant"] is False for block in model.blocks)


@functools.lru_cache(maxsize=1)
def bench_model():
    """`benchmarks/bench_model.py`, whose counter of what autograd keeps and whose switch back to CLIP's QuickGELU the
    tests below use (so the benchmark's count is tested here too)."""
    return load_benchmark("bench_model")


def clip_mlp_and_fused(dtype):
    """A small frozen CLIP MLP and the same module as `OmniCLIPQuickGELUMLP`, in `dtype`."""
    from transformers import CLIPVisionConfig
    from transformers.models.clip.modeling_clip import CLIPMLP

    from omniclip_hf.modeling_omniclip import OmniCLIPQuickGELUMLP

    torch.manual_seed(0)
    clip_mlp = CLIPMLP(CLIPVisionConfig(hidden_size=48, intermediate_size=192)).to(dtype).requires_grad_(False)
    fused = copy.deepcopy(clip_mlp)
    fused.__class__ = OmniCLIPQuickGELUMLP
    return clip_mlp, fused


def test_fused_quick_gelu_mlp_is_clips_mlp_up_to_rounding():
    """Outputs and input gradients against float64: within twice the error of CLIP's own module (or a few ulps where
    that is zero), in float64, float32 and bf16, and under bf16 autocast (where the 1.702 scales the weights)."""
    inputs = torch.randn(3, 7, 48, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    grad_output = torch.randn(3, 7, 48, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact_mlp, _ = clip_mlp_and_fused(torch.float64)
    exact_input = inputs.clone().requires_grad_()
    exact_output = exact_mlp(exact_input)
    exact_output.backward(grad_output)
    for dtype, autocast in ((torch.float64, False), (torch.float32, False), (torch.bfloat16, False),
                            (torch.bfloat16, True)):  # float32 weights and inputs under bf16 autocast
        errors = {}
        for name, mlp in zip(("clip", "fused"), clip_mlp_and_fused(torch.float32 if autocast else dtype)):
            leaf = inputs.to(torch.float32 if autocast else dtype).clone().requires_grad_()
            with torch.autocast("cpu", dtype=dtype, enabled=autocast):
                output = mlp(leaf)
            output.backward(grad_output.to(output.dtype))
            errors[name] = ((output.double() - exact_output).abs().max().item(),
                            (leaf.grad.double() - exact_input.grad).abs().max().item())
        for which, scale in ((0, exact_output), (1, exact_input.grad)):
            few_ulps = 4 * torch.finfo(dtype).eps * scale.abs().max().item()
            assert errors["fused"][which] <= 2 * max(errors["clip"][which], few_ulps), (dtype, errors)


def test_fused_quick_gelu_mlp_runs_clips_forward_when_a_linear_layer_is_wrapped():
    """A quantized or PEFT-adapted fc1/fc2 has a forward of its own that the fused GEMMs would skip."""

    class LinearWithLowRankUpdate(nn.Module):  # what an adapter library puts in place of a Linear
        def __init__(self, base: nn.Linear):
            super().__init__()
            self.base, self.update = base, nn.Linear(base.in_features, base.out_features, bias=False)

        def forward(self, hidden_states):
            return self.base(hidden_states) + self.update(hidden_states)

    clip_mlp, fused = clip_mlp_and_fused(torch.float32)
    for mlp in (clip_mlp, fused):
        torch.manual_seed(5)
        mlp.fc2 = LinearWithLowRankUpdate(mlp.fc2)
    inputs = torch.randn(3, 7, 48)
    assert torch.equal(fused(inputs), clip_mlp(inputs))


def elementwise_calls(run, wide: int) -> list[str]:
    """The elementwise aten calls that `run()` makes on tensors of two or more dims whose last dim is `wide`."""
    elementwise = ("aten::mul", "aten::sigmoid", "aten::silu", "aten::add", "aten::div", "aten::silu_backward",
                   "aten::sigmoid_backward", "aten::mul_", "aten::add_")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as profile:
        run()
    return sorted(event.name for event in profile.events() if event.name in elementwise and event.input_shapes
                  and len(event.input_shapes[0]) >= 2 and event.input_shapes[0][-1] == wide)


def test_fused_quick_gelu_mlp_makes_one_elementwise_pass_over_the_hidden_tensor():
    """CLIP's MLP scales, takes the sigmoid and multiplies (three passes over the `(..., 4d)` hidden tensor); the
    fused one runs SiLU alone there, forward and backward (the 1.702 rides in the GEMMs, or in the weights when a
    bf16 backward follows)."""
    clip_mlp, fused = clip_mlp_and_fused(torch.float32)
    inputs = torch.randn(3, 7, 48)
    with torch.no_grad():
        assert elementwise_calls(lambda: clip_mlp(inputs), 192) == ["aten::mul", "aten::mul", "aten::sigmoid"]
        assert elementwise_calls(lambda: fused(inputs), 192) == ["aten::silu"]

    def backward_calls(wide: int, autocast: bool) -> list[str]:
        leaf = inputs.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            output = fused(leaf)
        return elementwise_calls(lambda: output.backward(torch.ones_like(output)), wide)

    # Under autocast (mixed-precision training) the 1.702 scales the weights, whose cast copies autograd keeps
    # anyway: SiLU's backward is the one pass over the hidden tensor, and nothing scales fc1's input gradient.
    assert backward_calls(192, autocast=True) == ["aten::silu_backward"]
    assert backward_calls(48, autocast=True) == []
    # Without autocast it stays addmm's alpha, whose backward scales fc2's and fc1's input gradients in passes of
    # their own, rather than keeping scaled weight copies.
    assert backward_calls(192, autocast=False) == ["aten::mul", "aten::silu_backward"]
    assert backward_calls(48, autocast=False) == ["aten::mul"]


def test_training_keeps_one_tensor_per_frozen_mlp_with_gradients_equal_to_rounding(tiny_clip, clip_tokenizer):
    """Every trainable gradient of a float32 training step with the fused MLPs is as close to the float64 gradient of
    CLIP's own MLPs as float32 rounding allows: within twice the worst error of CLIP's own float32 step, relative to
    each tensor's scale (measured: fused 7.4e-5 with two threads and 1.2e-4 with one, CLIP's own 1.1e-4 with either; a
    0.1% change of the MLP gives 4e-4), and training keeps exactly one hidden tensor per frozen layer less."""
    from contextlib import nullcontext

    from omniclip_hf.modeling_omniclip import OmniCLIPQuickGELUMLP

    inputs = class_texts(clip_tokenizer)

    def training_step(mlp_kind: str, dtype: torch.dtype, autocast: bool = False):
        model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, use_temporal_embedding=False)
        assert all(type(layer.mlp) is OmniCLIPQuickGELUMLP for layer in model.clip.vision_model.encoder.layers)
        torch.manual_seed(3)
        for parameter in model.trainable_parameters():  # leave the zero init so every path carries gradient
            torch.nn.init.normal_(parameter, std=0.05)
        model.to(dtype).train()
        with bench_model().clip_own_mlps(model) if mlp_kind == "clip's own" else nullcontext():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                kept, output = bench_model().kept_for_backward_bytes(model, lambda: model(
                    **inputs, pixel_values_videos=videos().to(dtype), labels=torch.tensor([0, 1])))
            output.loss.backward()
        return kept, {name: p.grad.double() for name, p in model.named_parameters() if p.requires_grad}

    _, exact = training_step("clip's own", torch.float64)
    (kept_fused, fused), (kept_own, own) = (training_step(kind, torch.float32) for kind in ("fused", "clip's own"))
    # The yardstick is the rounding of CLIP's own float32 step, whose worst tensor is 1.1e-4 of its scale here (and
    # moves with the threads' summation order): the fused MLP's errors stay within twice that.
    own_worst = max(((own[name] - gradient).abs().max() / gradient.abs().max()).item() for name, gradient in exact.items())
    for name, gradient in exact.items():
        tolerance = max(1e-4, 2 * own_worst) * gradient.abs().max().item()
        torch.testing.assert_close(fused[name], gradient, rtol=0, atol=tolerance, msg=name)
    # What the fused MLP leaves out: one (frames, tokens, intermediate) tensor per vision layer; under autocast, where
    # the 1.702 scales the weights, the scaled weights' bf16 copies take the place of the casts CLIP's MLP keeps.
    vision = tiny_clip.config.vision_config
    tokens = 1 + (vision.image_size // vision.patch_size) ** 2 + 4  # CLS, 4x4 patches, 2x2 SPG prompts
    hidden_elements = 2 * FRAMES * tokens * vision.intermediate_size
    assert kept_own - kept_fused == vision.num_hidden_layers * hidden_elements * 4
    (kept_fused, _), (kept_own, _) = (training_step(kind, torch.float32, autocast=True)
                                      for kind in ("fused", "clip's own"))
    assert kept_own - kept_fused == vision.num_hidden_layers * hidden_elements * 2
    # With bf16 weights the scaled copies come on top: fc1's and fc2's, a fixed cost whatever the batch.
    (kept_fused, _), (kept_own, _) = (training_step(kind, torch.bfloat16) for kind in ("fused", "clip's own"))
    weight_elements = 2 * vision.hidden_size * vision.intermediate_size
    assert kept_own - kept_fused == vision.num_hidden_layers * (hidden_elements - weight_elements) * 2


def test_a_clip_with_another_activation_keeps_its_mlp():
    from transformers.models.clip.modeling_clip import CLIPMLP

    config = tiny_clip_config()
    config.vision_config.hidden_act = config.text_config.hidden_act = "gelu"
    torch.manual_seed(0)
    model = OmniCLIPModel.from_clip(CLIPModel(config), num_frames=FRAMES)
    mlps = [layer.mlp for layer in model.clip.vision_model.encoder.layers]
    assert {(type(mlp), type(mlp.activation_fn).__name__) for mlp in mlps} == {(CLIPMLP, "GELUActivation")}


def test_model_learns_frame_order_that_frame_averaging_cannot(tiny_clip, clip_tokenizer):
    """Class 0: a clip that brightens over time; class 1: the same frames reversed (darkens).

    Each pair has the same frames, so the same frame average: only the order tells the classes apart.
    """
    pixel_values, labels = frame_order_clips(FRAMES)
    inputs = class_texts(clip_tokenizer, names=("forward", "backward"))

    def final_training_loss(**overrides):
        torch.manual_seed(0)
        model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, **overrides).train()
        optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=3e-3)
        for _ in range(40):
            optimizer.zero_grad()
            loss = model(**inputs, pixel_values_videos=pixel_values, labels=labels).loss
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            return model.eval()(**inputs, pixel_values_videos=pixel_values, labels=labels).loss.item()

    omniclip_loss = final_training_loss(use_spg=False)
    # Frame averaging: no temporal module; only the prompt generator trains, and its context is a frame mean
    # too, so it can at best reach chance within each reversed pair.
    frame_average_loss = final_training_loss(
        use_temporal_embedding=False, video_head_num_layers=0, use_pta=False, use_spg=False
    )
    assert frame_average_loss > math.log(2) - 0.05
    assert omniclip_loss < 0.25 * frame_average_loss


# ------------------------------------------------------------------------------------------------ save / load
def test_save_and_load_round_trip_gives_identical_logits(tiny_clip, clip_tokenizer, tmp_path):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).eval()
    torch.manual_seed(4)
    for parameter in model.trainable_parameters():  # a "trained" state, so zero-initialised weights must load
        torch.nn.init.normal_(parameter, std=0.05)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    saved_config = json.loads((tmp_path / "config.json").read_text())
    assert saved_config["model_type"] == "omniclip"
    assert saved_config["auto_map"] == {
        "AutoConfig": "configuration_omniclip.OmniCLIPConfig",
        "AutoModel": "modeling_omniclip.OmniCLIPModel",
    }
    assert (tmp_path / "modeling_omniclip.py").exists() and (tmp_path / "configuration_omniclip.py").exists()

    inputs = dict(**class_texts(clip_tokenizer), pixel_values_videos=videos())
    with torch.no_grad():
        expected = model(**inputs).logits_per_video
        for loader in (OmniCLIPModel, AutoModel):
            reloaded = loader.from_pretrained(tmp_path).eval()
            assert isinstance(reloaded, OmniCLIPModel)
            assert all(not p.requires_grad for p in reloaded.clip.parameters())
            torch.testing.assert_close(reloaded(**inputs).logits_per_video, expected, rtol=0, atol=0)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), OmniCLIPConfig)


def test_saved_folder_loads_with_trust_remote_code_without_the_package(tiny_clip, clip_tokenizer, tmp_path):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).eval()
    model.save_pretrained(tmp_path / "model")
    inputs = dict(**class_texts(clip_tokenizer), pixel_values_videos=videos())
    with torch.no_grad():
        expected = model(**inputs).logits_per_video
    torch.save({key: value for key, value in inputs.items()}, tmp_path / "inputs.pt")
    # The same thread count as here: bit-equal sums, whatever share of the cores this test process has.
    script = f"""
import sys, torch
from transformers import AutoModel
torch.set_num_threads({torch.get_num_threads()})
model = AutoModel.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True).eval()
assert "omniclip_hf" not in sys.modules, "the package must not be imported"
inputs = torch.load({str(tmp_path / "inputs.pt")!r})
with torch.no_grad():
    torch.save(model(**inputs).logits_per_video, {str(tmp_path / "logits.pt")!r})
print(type(model).__module__)
"""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "transformers_modules" in result.stdout
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------ losses
def test_losses_match_a_direct_computation(tiny_clip, clip_tokenizer):
    inputs = dict(**class_texts(clip_tokenizer), pixel_values_videos=videos())
    hard = torch.tensor([2, 0])
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.1, 0.1, 0.8]])
    for smoothing in (0.0, 0.1):
        model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, label_smoothing=smoothing).eval()
        with torch.no_grad():
            logits = model(**inputs).logits_per_video
            log_probs = logits.log_softmax(dim=-1)
            num_classes = logits.shape[1]
            for labels, targets in ((hard, F.one_hot(hard, num_classes).float()), (soft, soft)):
                smoothed = targets * (1 - smoothing) + smoothing / num_classes
                expected = -(smoothed * log_probs).sum(dim=-1).mean()
                loss = model(**inputs, labels=labels).loss
                torch.testing.assert_close(loss, expected)


def test_multi_view_input_averages_logits_over_views(tiny_clip, clip_tokenizer):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).eval()
    text = class_texts(clip_tokenizer)
    views = torch.stack([videos(seed=0), videos(seed=1), videos(seed=2)], dim=1)  # (B, V, T, 3, H, W)
    with torch.no_grad():
        multi = model(**text, pixel_values_videos=views).logits_per_video
        single = torch.stack([model(**text, pixel_values_videos=views[:, v]).logits_per_video for v in range(3)])
    torch.testing.assert_close(multi, single.mean(dim=0))


def test_precomputed_text_embeds_equal_input_ids(tiny_clip, clip_tokenizer):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).eval()
    text = class_texts(clip_tokenizer)
    with torch.no_grad():
        text_embeds = model.get_text_features(**text).pooler_output
        from_ids = model(**text, pixel_values_videos=videos()).logits_per_video
        from_embeds = model(text_embeds=text_embeds, pixel_values_videos=videos()).logits_per_video
    torch.testing.assert_close(from_ids, from_embeds)


def test_text_embeds_of_another_dtype_are_cast_to_the_models(tiny_clip, clip_tokenizer):
    """float64 embeddings (from numpy) or float32 ones given to a bfloat16 model failed inside torch ("mixed dtype")."""
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).eval()
    text = class_texts(clip_tokenizer)
    with torch.no_grad():
        text_embeds = model.get_text_features(**text).pooler_output
        expected = model(text_embeds=text_embeds, pixel_values_videos=videos()).logits_per_video
        from_float64 = model(text_embeds=text_embeds.double(), pixel_values_videos=videos()).logits_per_video
        model.to(torch.bfloat16)
        from_float32 = model(text_embeds=text_embeds, pixel_values_videos=videos().bfloat16()).logits_per_video
    torch.testing.assert_close(from_float64, expected, rtol=0, atol=1e-6)
    assert from_float32.shape == expected.shape and torch.isfinite(from_float32).all()
    with pytest.raises(ValueError, match="text_embeds must be a float tensor"):
        model(text_embeds=torch.ones(3, text_embeds.shape[1], dtype=torch.long), pixel_values_videos=videos())


@pytest.mark.parametrize(
    "input_ids, message",
    [
        (torch.ones(3, 5), r"input_ids must hold token ids \(an integer tensor\), got torch.float32"),
        (torch.ones(3, 78, dtype=torch.long), "input_ids has 78 tokens a text, more than CLIP's 77: tokenize with "
                                              "truncation=True"),
    ],
)
def test_input_ids_that_are_not_token_ids_of_clips_length_say_so(tiny_clip, input_ids, message):
    """torch's embedding error (float ids) and CLIP's position error (too long), neither naming a remedy."""
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES)
    with pytest.raises(ValueError, match=message):
        model(input_ids=input_ids, pixel_values_videos=videos())


@pytest.mark.parametrize("change", ["mask_columns", "mask_rows", "mask_list", "ids_list", "embeds_list"])
def test_text_inputs_of_another_shape_or_type_say_so(tiny_clip, clip_tokenizer, change):
    """A mask of another tokenization was used as it came (fewer columns: the scores of other texts, with nothing
    said) or failed inside transformers' masking; lists failed with AttributeError on `.dim`."""
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES)
    text = class_texts(clip_tokenizer)
    ids, mask = text["input_ids"], text["attention_mask"]
    inputs, message = {
        "mask_columns": ({"input_ids": ids, "attention_mask": mask[:, :3]}, r"attention_mask must be a tensor of "
                                                                            r"input_ids' shape \(3, \d+\), got \(3, 3\)"),
        "mask_rows": ({"input_ids": ids, "attention_mask": mask[:2]}, r"input_ids' shape .* got \(2, \d+\)"),
        "mask_list": ({"input_ids": ids, "attention_mask": mask.tolist()}, "input_ids' shape .* got list"),
        "ids_list": ({"input_ids": ids.tolist()}, "input_ids must be a torch.Tensor, got list"),
        "embeds_list": ({"text_embeds": [[0.0] * model.config.projection_dim] * 3},
                        "text_embeds must be a torch.Tensor .* got list"),
    }[change]
    with pytest.raises(ValueError, match=message):
        model(**inputs, pixel_values_videos=videos())


# ------------------------------------------------------------------------------------------------ other shapes
def test_other_frame_counts_and_resolutions_at_inference(tiny_clip, clip_tokenizer):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).eval()
    text = class_texts(clip_tokenizer)
    with torch.no_grad():
        for frames, size in [(FRAMES, 32), (8, 32), (16, 32), (1, 32), (FRAMES, 48), (3, 40)]:
            output = model(**text, pixel_values_videos=videos(batch=1, frames=frames, size=size))
            assert output.logits_per_video.shape == (1, 3)
            assert torch.isfinite(output.logits_per_video).all()


def test_temporal_embedding_interpolates_linearly(tiny_clip):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES)
    with torch.no_grad():
        model.temporal_embedding.weight.copy_(torch.arange(FRAMES, dtype=torch.float)[:, None].expand(FRAMES, 64))
    # Frame j of T is sampled at time (j + 0.5) / T of the clip (the segment's middle), where the trained row
    # (j + 0.5) * FRAMES / T - 0.5 sits; a single frame, sampled mid-clip, gets the middle of the table.
    for length in (1, 3, 2 * FRAMES, 4 * FRAMES):
        times = (torch.arange(length, dtype=torch.float) + 0.5) / length
        expected = (times * FRAMES - 0.5).clamp(0, FRAMES - 1)
        torch.testing.assert_close(model.temporal_embedding(length)[:, 0], expected)
    assert torch.equal(model.temporal_embedding(FRAMES), model.temporal_embedding.weight)


def test_bfloat16_forward(tiny_clip, clip_tokenizer):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).to(torch.bfloat16).eval()
    with torch.no_grad():
        output = model(**class_texts(clip_tokenizer), pixel_values_videos=videos().to(torch.bfloat16))
    assert output.video_embeds.dtype == torch.bfloat16
    assert output.logits_per_video.dtype == torch.float32  # logits always in float32 (docs/design.md)
    assert torch.isfinite(output.logits_per_video).all()


def test_torch_compile_runs(tiny_clip, clip_tokenizer):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).eval()
    inputs = dict(**class_texts(clip_tokenizer), pixel_values_videos=videos())
    compiled = torch.compile(model, backend="aot_eager", fullgraph=False)
    with torch.no_grad():
        torch.testing.assert_close(compiled(**inputs).logits_per_video, model(**inputs).logits_per_video)


@pytest.mark.parametrize("autocast", [False, True])
def test_a_training_step_compiles_to_one_graph(tiny_clip, clip_tokenizer, autocast):
    """No graph break in a training forward, with or without bf16 autocast (where the fused MLP picks where its 1.702
    goes: torch 2.11's compile could not trace `torch.amp.is_autocast_available` and broke the graph at every
    frozen MLP)."""
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).train()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        output = compiled(**class_texts(clip_tokenizer), pixel_values_videos=videos(), labels=torch.tensor([0, 1]))
    output.loss.backward()
    assert all(parameter.grad is not None for parameter in model.trainable_parameters())


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "pixel_values, message",
    [
        (torch.randn(4, 3, 32, 32), "must have 5 dims"),
        (torch.randn(2, FRAMES, 1, 32, 32), "3 channels"),
        (torch.randn(2, FRAMES, 32, 32, 3), "3 channels"),
        (torch.randn(2, 0, 3, 32, 32), "zero frames"),
        (torch.zeros(2, FRAMES, 3, 32, 32, dtype=torch.uint8), "float tensor"),
        (torch.randn(2, FRAMES, 3, 4, 4), "smaller than one"),
        (None, "pixel_values_videos is missing"),
    ],
)
def test_bad_videos_raise_clear_errors(tiny_clip, clip_tokenizer, pixel_values, message):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES)
    with pytest.raises(ValueError, match=message):
        model(**class_texts(clip_tokenizer), pixel_values_videos=pixel_values)


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.tensor([0, 3]), r"class indices in \[0, 2\]"),
        (torch.tensor([-1, 0]), r"class indices in \[0, 2\]"),
        (torch.tensor([0, 1, 2]), "3 entries for a batch of 2"),
        (torch.rand(2, 4), r"soft labels must have shape \(batch, num_classes\) = \(2, 3\)"),
        (torch.tensor([[0, 1], [1, 0]]), "class indices of shape"),
        (torch.tensor([0.0, 1.0]), "class indices of shape"),
        ([0, 1], "labels must be a torch.Tensor of class indices .* got list"),
    ],
)
def test_bad_labels_raise_clear_errors(tiny_clip, clip_tokenizer, labels, message):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES)
    with pytest.raises(ValueError, match=message):
        model(**class_texts(clip_tokenizer), pixel_values_videos=videos(), labels=labels)


def test_missing_text_raises_clear_error(tiny_clip):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES)
    with pytest.raises(ValueError, match="the class texts are missing"):
        model(pixel_values_videos=videos())
    with pytest.raises(ValueError, match="unexpected arguments"):
        model(pixel_values=videos())


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("pta_ratio", 0, "pta_ratio=0 is invalid: it must be a number > 0"),
        ("pta_ratio", -0.5, "pta_ratio=-0.5 is invalid"),
        ("pta_layers", [0, 12], r"pta_layers=\[0, 12\] is invalid: layer indices are 0-based and must lie in 0..2"),
        ("pta_mode", "serial", "allowed values are 'parallel', 'attention_parallel', 'cascade'"),
        ("spg_pooling", "min", "allowed values are 'avg', 'max'"),
        ("spg_layers", "last", "allowed values are 'input', 'every'"),
        ("num_frames", 0, "num_frames=0 is invalid"),
        ("text_template", "a video of action", "containing"),
        # Holds "{}" but formats to one prompt for every class (it passed), or cannot be formatted (KeyError later).
        ("text_template", "a video of {{}}", r"OmniCLIPConfig.text_template='a video of \{\{\}\}' never inserts the label"),
        ("text_template", "{} in {place}", r"OmniCLIPConfig.text_template='\{\} in \{place\}' cannot be filled"),
        ("label_smoothing", 1.5, r"label_smoothing=1.5 is invalid"),
    ],
)
def test_invalid_config_values_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        OmniCLIPConfig.from_clip_config(tiny_clip_config(), **{field: value})


def test_config_round_trip_keeps_every_field(tmp_path):
    config = OmniCLIPConfig.from_clip_config(tiny_clip_config(), num_frames=16, pta_layers=[0, 1], spg_pooling="max")
    config.save_pretrained(tmp_path)
    loaded = OmniCLIPConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.vision_config.patch_size == 8 and loaded.text_config.hidden_size == 32
    assert loaded.pta_layer_indices == [0, 1]


def test_readme_snippet_runs(tiny_clip_dir):
    """The README's usage snippet, with the hub id replaced by a tiny local CLIP folder (no network here)."""
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = readme.split("```python")[1:]
    snippet = next(block.split("```")[0] for block in blocks if "OmniCLIPModel.from_clip" in block)
    snippet = snippet.replace('"openai/clip-vit-base-patch16"', repr(str(tiny_clip_dir)))
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert "probabilities" in namespace and namespace["probabilities"].shape[-1] == 3


def test_integer_labels_of_any_width_give_the_int64_loss(tiny_clip, clip_tokenizer):
    """int32 (numpy's default on some platforms) or uint8 class indices passed the label checks and then failed inside
    torch's cross_entropy ("expected scalar type Long")."""
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).eval()
    inputs = {**class_texts(clip_tokenizer), "pixel_values_videos": videos()}
    with torch.no_grad():
        expected = model(**inputs, labels=torch.tensor([0, 2])).loss
        for dtype in (torch.int32, torch.int16, torch.uint8):
            assert torch.equal(model(**inputs, labels=torch.tensor([0, 2], dtype=dtype)).loss, expected)
