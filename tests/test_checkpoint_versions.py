"""A full checkpoint that does not hold exactly this model's weights is refused in one line, not loaded in part
(unless the caller asks for transformers' loading report, `output_loading_info=True`, which then names them).

transformers only logs a report for unexpected or missing weights and leaves missing modules at their initial
values, which for OmniCLIP is the identity: a checkpoint of an earlier version (an adapter with value and output
projections, say) would score videos with part of its training silently lost.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from omniclip_hf import OmniCLIPModel

ADAPTER = "blocks.0.temporal_adapter.attention"


@pytest.fixture()
def saved_omniclip(tmp_path, tiny_clip):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4)
    with torch.no_grad():  # off the identity, so a lost module would change the scores
        for parameter in model.trainable_parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    model.save_pretrained(tmp_path)
    return model, tmp_path


def rewrite_weights(folder, edit) -> None:
    weights = load_file(str(folder / "model.safetensors"))
    edit(weights)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_a_checkpoint_from_before_the_folded_value_projection_is_refused(saved_omniclip):
    _, folder = saved_omniclip
    width = load_file(str(folder / "model.safetensors"))[f"{ADAPTER}.q_proj.weight"].shape[0]
    rewrite_weights(folder, lambda w: w.update({f"{ADAPTER}.v_proj.weight": torch.eye(width),
                                                f"{ADAPTER}.out_proj.weight": torch.eye(width)}))
    with pytest.raises(ValueError, match=r"does not match this version of OmniCLIPModel \(unexpected weights "
                                         r"\['blocks\.0\.temporal_adapter\.attention\.(v_proj|out_proj)"):
        OmniCLIPModel.from_pretrained(folder)


def test_a_checkpoint_missing_a_trained_module_is_refused(saved_omniclip):
    _, folder = saved_omniclip
    rewrite_weights(folder, lambda w: w.pop("video_head.frame_position_embedding"))
    with pytest.raises(ValueError, match=rf"{folder}: .*missing weights \['video_head\.frame_position_embedding'\]"):
        OmniCLIPModel.from_pretrained(folder)
    # Asking for the loading report is transformers' way to handle a partial checkpoint: the report names it.
    _, info = OmniCLIPModel.from_pretrained(folder, output_loading_info=True)
    assert set(info["missing_keys"]) == {"video_head.frame_position_embedding"}


def test_a_key_bias_of_an_earlier_version_is_dropped_without_changing_the_scores(saved_omniclip, clip_tokenizer):
    model, folder = saved_omniclip
    width = load_file(str(folder / "model.safetensors"))[f"{ADAPTER}.q_proj.weight"].shape[0]
    rewrite_weights(folder, lambda w: w.update({f"{ADAPTER}.k_proj.bias": torch.randn(width)}))
    loaded = OmniCLIPModel.from_pretrained(folder)  # no refusal: the bias changes nothing
    _, info = OmniCLIPModel.from_pretrained(folder, output_loading_info=True)
    assert set(info["unexpected_keys"]) == {f"{ADAPTER}.k_proj.bias"}
    inputs = dict(**clip_tokenizer(["a video of archery action", "a video of juggling action"], padding=True,
                                   return_tensors="pt"),
                  pixel_values_videos=torch.randn(2, 4, 3, 32, 32))
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(**inputs).logits_per_video, model.eval()(**inputs).logits_per_video)


def test_an_adapter_only_checkpoint_follows_the_same_rule(tmp_path, tiny_clip_dir):
    """An old adapter's key bias is dropped; its folded-away value projection is refused, naming the folder."""
    model = OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4)
    model.save_adapter(tmp_path)
    adapter = tmp_path / "adapter_model.safetensors"
    weights = load_file(str(adapter))
    width = weights[f"{ADAPTER}.q_proj.weight"].shape[0]
    save_file({**weights, f"{ADAPTER}.k_proj.bias": torch.randn(width)}, str(adapter), metadata={"format": "pt"})
    OmniCLIPModel.from_pretrained(tmp_path)
    save_file({**weights, f"{ADAPTER}.v_proj.weight": torch.eye(width)}, str(adapter), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=rf"{tmp_path}: .*unexpected weights \['{ADAPTER}\.v_proj\.weight'\]"):
        OmniCLIPModel.from_pretrained(tmp_path)
