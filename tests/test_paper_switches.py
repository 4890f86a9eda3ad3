"""Where the paper is explicit (issue 15), and config switches that cannot be silently ignored.

Every switch of the ablation set must change what a model with non-zero weights computes; SPG is eq. 6 exactly;
`pta_mode="cascade"` is an ST-Adapter before the frozen layer; the PTA's attention without value and output
projections is the old adapter with those folded into Down and Up; logits are float32 under autocast; the SSv2
recipe trains against a fixed classifier; frame order is learnt with the video head reduced to a mean.
"""

from __future__ import annotations

import json
import math
import zlib

import pytest
import torch
import torch.nn.functional as F

from omniclip_hf import OmniCLIPConfig, OmniCLIPModel
from omniclip_hf.modeling_omniclip import run_frozen_layer
from omniclip_hf.training.loop import parse_training_options

from .conftest import REPO_ROOT, build_tiny_clip, frame_order_clips, load_benchmark

FRAMES = 4
NO_PROMPTS = dict(use_video_specific_prompts=False)


def videos(batch=2, frames=FRAMES, size=32, seed=0):
    return torch.randn(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


def class_texts(clip_tokenizer, names=("archery", "juggling balls", "playing harp")):
    return clip_tokenizer([f"a video of {name} action" for name in names], padding=True, return_tensors="pt")


def randomise_by_name(model: OmniCLIPModel, std: float = 0.1) -> OmniCLIPModel:
    """Gives every trainable parameter non-zero values drawn from a seed of its name, so two models built with
    different switches share the values of every parameter they have in common. The temporal attention's query
    and key maps get larger values: with small ones attention is uniform and the head split cannot matter."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
                scale = 1.0 if "temporal_adapter.attention" in name else std
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    return model.eval()


def load_ablation_rows() -> dict[str, dict]:
    return load_benchmark("bench_ablation").ROWS


# Every switch of the ablation table (bench_ablation's rows) plus the config's other model switches.
SWITCHES = {f"row {name}": overrides for name, overrides in load_ablation_rows().items() if overrides}
SWITCHES.update({
    "spg_pooling=max": dict(spg_pooling="max"),
    "spg_projector=False": dict(spg_projector=False),
    "spg_layers=every": dict(spg_layers="every"),
    "spg_projector_init=random": dict(spg_projector_init="random"),
    "pta_mode=cascade_attention": dict(pta_mode="cascade_attention"),
    "pta_alpha_init=0.5": dict(pta_alpha_init=0.5),
    "pta_head_dim=8": dict(pta_head_dim=8),
    "video_head_num_layers=0": dict(video_head_num_layers=0),
    "video_head_num_layers=2": dict(video_head_num_layers=2),
    "use_temporal_embedding=False": dict(use_temporal_embedding=False),
    "use_video_specific_prompts=False": dict(use_video_specific_prompts=False),
    "prompt_layers=1": dict(prompt_layers=1),
    "prompt_alpha=0.5": dict(prompt_alpha=0.5),
})


def test_ablation_rows_include_the_residual_spg_and_the_cascades():
    rows = load_ablation_rows()
    assert rows["spg_residual"] == {"spg_residual": True}
    assert rows["cascade"] == {"pta_mode": "cascade"}
    assert rows["cascade_attention"] == {"pta_mode": "cascade_attention"}


@pytest.fixture(scope="module")
def four_layer_clip():
    """Four vision layers, as the motion benchmark's stand-in, so that the `layers_*` rows are not all layers."""
    return build_tiny_clip(vision_layers=4)


@pytest.mark.parametrize("overrides", SWITCHES.values(), ids=SWITCHES.keys())
def test_every_switch_changes_the_output_of_a_model_with_nonzero_weights(four_layer_clip, clip_tokenizer, overrides):
    tiny_clip = four_layer_clip
    inputs = dict(**class_texts(clip_tokenizer), pixel_values_videos=videos())
    default = randomise_by_name(OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES))
    switched = randomise_by_name(OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, **overrides))
    # Initial values (alpha, prompt_alpha) are overwritten by the randomisation; the switch must still act.
    if set(overrides) <= {"pta_alpha_init", "prompt_alpha"}:
        switched = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, **overrides).eval()
        default = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).eval()
        for model in (default, switched):  # leave the zero init, keep alpha and prompt_alpha as initialised
            with torch.no_grad():
                for name, parameter in model.named_parameters():
                    if parameter.requires_grad and not name.endswith("alpha"):
                        generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
                        parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
        assert not torch.equal(dict(default.named_parameters())[_alpha_name(overrides)],
                               dict(switched.named_parameters())[_alpha_name(overrides)])
    with torch.no_grad():
        reference = default(**inputs).logits_per_video
        changed = switched(**inputs).logits_per_video
    # float32 rounding moves these logits by about 1e-6; every switch moves them by 5e-4 or more.
    assert (reference - changed).abs().max() > 1e-4, f"{overrides} left the logits unchanged"


def _alpha_name(overrides: dict) -> str:
    return "blocks.0.temporal_adapter.alpha" if "pta_alpha_init" in overrides else "video_specific_prompts.alpha"


# ------------------------------------------------------------------------------------------------ SPG (eq. 6)
def test_spg_default_is_eq6_projector_of_the_average(tiny_clip):
    assert OmniCLIPConfig().spg_residual is False
    model = randomise_by_name(OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES))
    spg = model.self_prompt_generator
    patches = torch.randn(3, 16, 64)  # 4x4 grid of width 64
    average = pooled_2x2(patches)
    expected = spg.fc2(F.gelu(spg.fc1(average)))
    torch.testing.assert_close(spg(patches, (4, 4)), expected)


def pooled_2x2(patches: torch.Tensor) -> torch.Tensor:
    """`(frames, 16, d)` tokens of a 4x4 grid -> the mean of each 2x2 block, computed without pooling ops."""
    grid = patches.view(patches.shape[0], 2, 2, 2, 2, patches.shape[-1])  # (frames, block row, row, block col, col, d)
    return grid.mean(dim=(2, 4)).reshape(patches.shape[0], 4, patches.shape[-1])


def test_spg_projector_starts_as_the_identity_so_the_prompts_start_as_the_pooled_tokens(tiny_clip):
    """Eq. 6 with the default init: Projector(Avg(V)) = Avg(V) before training, to float32 rounding, for tokens
    of any size (GELU(x) - GELU(-x) = x), in a model built from a CLIP and in one built from its config."""
    patches = torch.randn(3, 16, 64, generator=torch.Generator().manual_seed(0)) * 5
    for model in (OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES),
                  OmniCLIPModel(OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES).config)):
        spg = model.self_prompt_generator
        assert spg.fc1.out_features == 2 * 64
        with torch.no_grad():
            torch.testing.assert_close(spg(patches, (4, 4)), pooled_2x2(patches), rtol=0, atol=1e-5)
    randomly_started = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, spg_projector_init="random")
    with torch.no_grad():
        assert (randomly_started.self_prompt_generator(patches, (4, 4)) - pooled_2x2(patches)).abs().max() > 0.1


# ------------------------------------------------------------------------------------------------ cascade
def test_cascade_is_an_st_adapter_before_the_frozen_layer(tiny_clip):
    model = randomise_by_name(OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, pta_mode="cascade", **NO_PROMPTS))
    block, frozen = model.blocks[0], model.clip.vision_model.encoder.layers[0]
    adapter = block.temporal_adapter
    tokens = torch.randn(2 * FRAMES, 1 + 16 + 4, 64)  # CLS, 4x4 patches, 2x2 SPG prompts
    with torch.no_grad():
        added = adapter(tokens, FRAMES, (4, 4))
        output = block(tokens, frozen_layer=frozen, num_frames=FRAMES, grid=(4, 4))
        torch.testing.assert_close(output, run_frozen_layer(frozen, tokens + added))
    assert torch.equal(added[:, 0], torch.zeros_like(added[:, 0]))  # CLS passes unchanged

    # Patches: Down, depth-wise 3x3x3 convolution over (frames, rows, columns), Up, alpha; written out directly.
    def st_adapter(part, grid):
        reduced = adapter.down(part).view(2, FRAMES, *grid, -1).permute(0, 4, 1, 2, 3)
        convolved = F.conv3d(reduced, adapter.conv.weight, adapter.conv.bias, padding=1, groups=reduced.shape[1])
        return adapter.alpha * adapter.up(convolved.permute(0, 2, 3, 4, 1).reshape(2 * FRAMES, -1, reduced.shape[1]))

    with torch.no_grad():
        torch.testing.assert_close(added[:, 1:17], st_adapter(tokens[:, 1:17], (4, 4)))
        torch.testing.assert_close(added[:, 17:], st_adapter(tokens[:, 17:], (2, 2)))  # prompts on their own grid


def test_cascade_convolution_sees_neighbours_in_time_and_space_only(tiny_clip):
    model = randomise_by_name(OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, pta_mode="cascade", **NO_PROMPTS))
    adapter = model.blocks[0].temporal_adapter
    tokens = torch.randn(FRAMES, 1 + 16, 64)
    changed = tokens.clone()
    changed[0, 1] += 1.0  # frame 0, patch (row 0, column 0)
    with torch.no_grad():
        difference = (adapter(changed, FRAMES, (4, 4)) - adapter(tokens, FRAMES, (4, 4))).abs().amax(dim=-1)
    moved = difference[:, 1:].view(FRAMES, 4, 4) > 1e-6
    expected = torch.zeros(FRAMES, 4, 4, dtype=torch.bool)
    expected[:2, :2, :2] = True  # frames 0-1, rows 0-1, columns 0-1: the 3x3x3 neighbourhood inside the volume
    assert torch.equal(moved, expected)


def test_untrained_cascade_adds_nothing_and_its_convolution_gets_gradient(tiny_clip, clip_tokenizer):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, pta_mode="cascade")
    adapter = model.blocks[0].temporal_adapter
    assert torch.equal(adapter.conv.weight, torch.zeros_like(adapter.conv.weight))
    assert adapter.up.weight.abs().max() > 0 and adapter.down.weight.abs().max() > 0
    output = model.train()(**class_texts(clip_tokenizer), pixel_values_videos=videos(), labels=torch.tensor([0, 1]))
    output.loss.backward()
    assert adapter.conv.weight.grad.abs().max() > 0


# ------------------------------------------------------------------------------------------------ cheaper PTA
def test_pta_without_value_and_output_projections_represents_the_old_adapter(tiny_clip):
    """The old adapter's value and output projections fold into Down, query/key and Up: same outputs."""
    torch.manual_seed(0)
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, use_spg=False, **NO_PROMPTS).double()
    adapter = model.blocks[0].temporal_adapter
    width, bottleneck = 64, adapter.down.out_features
    old = {name: torch.randn(bottleneck, bottleneck, dtype=torch.float64) * 0.3 for name in ("q", "k", "v", "o")}
    old_bias = {name: torch.randn(bottleneck, dtype=torch.float64) * 0.1 for name in old}
    down_w, down_b = torch.randn(bottleneck, width, dtype=torch.float64) * 0.1, torch.randn(bottleneck, dtype=torch.float64)
    up_w, up_b = torch.randn(width, bottleneck, dtype=torch.float64) * 0.1, torch.randn(width, dtype=torch.float64)
    tokens = torch.randn(2 * FRAMES, 17, width, dtype=torch.float64)

    def old_adapter(x):  # LayerNorm -> Down -> attention across frames with q, k, v, out -> Up, one head
        reduced = F.linear(adapter.layer_norm(x), down_w, down_b).view(2, FRAMES, 17, -1).transpose(1, 2)
        q, k, v = (F.linear(reduced, old[n], old_bias[n]) for n in ("q", "k", "v"))
        attended = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(bottleneck), dim=-1) @ v
        attended = F.linear(attended, old["o"], old_bias["o"]).transpose(1, 2).reshape(2 * FRAMES, 17, -1)
        return adapter.alpha * F.linear(attended, up_w, up_b)

    value_inverse = torch.linalg.inv(old["v"])
    with torch.no_grad():
        adapter.down.weight.copy_(old["v"] @ down_w)
        adapter.down.bias.copy_(old["v"] @ down_b + old_bias["v"])
        for name, projection in (("q", adapter.attention.q_proj), ("k", adapter.attention.k_proj)):
            projection.weight.copy_(old[name] @ value_inverse)
            if projection.bias is not None:  # the key projection has none: a key bias only shifts softmax rows
                projection.bias.copy_(old_bias[name] - old[name] @ value_inverse @ old_bias["v"])
        adapter.up.weight.copy_(up_w @ old["o"])
        adapter.up.bias.copy_(up_w @ old_bias["o"] + up_b)
        torch.testing.assert_close(adapter(tokens, FRAMES), old_adapter(tokens), atol=1e-9, rtol=1e-9)
    assert not hasattr(adapter.attention, "v_proj") and not hasattr(adapter.attention, "out_proj")


# ------------------------------------------------------------------------------------------------ float32 logits
def test_logits_and_view_average_are_float32_under_bfloat16_autocast(tiny_clip, clip_tokenizer):
    model = randomise_by_name(OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES))
    model.clip.logit_scale.data.fill_(math.log(100.0))
    multi_view = torch.stack([videos(seed=1), videos(seed=2)], dim=1)  # (batch, views, frames, 3, h, w)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(**class_texts(clip_tokenizer), pixel_values_videos=multi_view)
    assert output.logits_per_video.dtype == torch.float32
    video, text = output.video_embeds.float(), output.text_embeds.float()  # (B, V, D), (B, V, C, D)
    cosine = torch.einsum("bvd,bvcd->bvc", F.normalize(video, dim=-1), F.normalize(text, dim=-1))
    expected = (100.0 * cosine).mean(dim=1)
    torch.testing.assert_close(output.logits_per_video, expected, atol=1e-4, rtol=0)
    # bfloat16 arithmetic here would be off by far more than that:
    rounded = (100.0 * cosine.bfloat16()).bfloat16().mean(dim=1, dtype=torch.bfloat16).float()
    assert (rounded - expected).abs().max() > 1e-2


# ------------------------------------------------------------------------------------------------ SSv2 recipe
def test_ssv2_recipe_trains_against_a_fixed_classifier(tiny_clip, clip_tokenizer):
    options = parse_training_options(["--config", str(REPO_ROOT / "examples" / "configs" / "ssv2_supervised.yaml"),
                                      "--clip", "x"])
    overrides = json.loads(options.model_overrides)
    assert overrides == {"use_video_specific_prompts": False}
    model = randomise_by_name(OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, **overrides))
    texts = class_texts(clip_tokenizer)
    with torch.no_grad():
        first = model(**texts, pixel_values_videos=videos(seed=0)).text_embeds
        second = model(**texts, pixel_values_videos=videos(seed=1)).text_embeds
        frozen_text = tiny_clip.get_text_features(**texts).pooler_output
    assert first.shape == frozen_text.shape  # one embedding per class, not per video
    torch.testing.assert_close(first, frozen_text)
    torch.testing.assert_close(second, frozen_text)


# ------------------------------------------------------------------------------------------------ frame order
def test_frame_order_is_learnt_with_the_video_head_reduced_to_a_mean(tiny_clip, clip_tokenizer):
    """Brightening vs the same frames darkening, as in test_modeling, but the head is a plain mean over frames:
    order must come through the temporal embedding and the adapters, inside the frozen layers."""
    pixel_values, labels = frame_order_clips(FRAMES)
    inputs = class_texts(clip_tokenizer, names=("forward", "backward"))

    def final_training_loss(**overrides):
        torch.manual_seed(0)
        model = OmniCLIPModel.from_clip(tiny_clip, num_frames=FRAMES, video_head_num_layers=0, use_spg=False,
                                        **overrides).train()
        assert model.video_head.frame_position_embedding is None and len(model.video_head.layers) == 0
        optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=3e-3)
        for _ in range(40):
            optimizer.zero_grad()
            model(**inputs, pixel_values_videos=pixel_values, labels=labels).loss.backward()
            optimizer.step()
        with torch.no_grad():
            return model.eval()(**inputs, pixel_values_videos=pixel_values, labels=labels).loss.item()

    omniclip_loss = final_training_loss()
    # The same mean head without the temporal embedding and adapters: a frame average, at best chance per pair.
    frame_average_loss = final_training_loss(use_temporal_embedding=False, use_pta=False)
    assert frame_average_loss > math.log(2) - 0.05
    assert omniclip_loss < 0.25 * frame_average_loss
