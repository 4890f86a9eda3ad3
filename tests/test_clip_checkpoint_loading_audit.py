"""Base CLIP checkpoints that do not load whole (weights missing, a config that does not fit them), CLIPs whose
projection width 64-channel heads do not divide, and the command's refusal of folders of other models: each refused
in one line for what it is, or built, as the audit over varied CLIP checkpoints found they were not."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from .conftest import REPO_ROOT, TOKENIZER_DIR, build_tiny_clip

SHORT_MP4 = REPO_ROOT.parent / "shared" / "videos" / "mmaction2_rawvideo_part_0.mp4"


def copy_without_weights(tiny_clip_dir, folder, dropped) -> None:
    """`tiny_clip_dir` copied to `folder`, its weights file without the keys `dropped(key)` picks."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny_clip_dir, folder)
    weights = load_file(tiny_clip_dir / "model.safetensors")
    kept = {key: value for key, value in weights.items() if not dropped(key)}
    assert len(kept) < len(weights)
    save_file(kept, folder / "model.safetensors", metadata={"format": "pt"})


@pytest.fixture(params=["visual_projection", "text tower"])
def half_clip_dir(request, tiny_clip_dir, tmp_path):
    """A CLIP folder whose weights lack the visual projection, or the whole text tower."""
    folder = tmp_path / "half-clip"
    if request.param == "visual_projection":
        copy_without_weights(tiny_clip_dir, folder, lambda key: key == "visual_projection.weight")
        return folder, "visual_projection.weight"
    copy_without_weights(tiny_clip_dir, folder, lambda key: key.startswith("text_model."))
    return folder, "text_model.embeddings.position_embedding.weight"


@pytest.fixture
def edited_projection_clip_dir(tiny_clip_dir, tmp_path):
    """A CLIP folder whose config.json says projection_dim 16 beside weights of 32."""
    folder = tmp_path / "edited-clip"
    shutil.copytree(tiny_clip_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["projection_dim"] = 16
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def one_line_value_error(call, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and "above report" not in message
    return message


# ------------------------------------------------------------------ S1: a base CLIP with weights missing
@pytest.mark.parametrize("loader", ["from_clip", "from_pretrained", "write_model_folder"])
def test_a_clip_missing_weights_is_refused_naming_the_folder_and_weight(half_clip_dir, tmp_path, loader):
    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.clip_conversion import write_model_folder

    folder, first_missing = half_clip_dir
    calls = {
        "from_clip": lambda: OmniCLIPModel.from_clip(folder),
        "from_pretrained": lambda: OmniCLIPModel.from_pretrained(folder),
        "write_model_folder": lambda: write_model_folder(str(folder), tmp_path / "out"),
    }
    message = one_line_value_error(calls[loader])
    assert str(folder) in message and first_missing in message and "random" in message
    assert not (tmp_path / "out").exists()


def test_an_adapter_over_a_base_clip_missing_weights_is_refused(tiny_clip_dir, tmp_path):
    from omniclip_hf import OmniCLIPModel

    OmniCLIPModel.from_clip(tiny_clip_dir, num_frames=2).save_adapter(tmp_path / "adapter")
    half = tmp_path / "half-clip"
    copy_without_weights(tiny_clip_dir, half, lambda key: key == "text_projection.weight")
    message = one_line_value_error(OmniCLIPModel.from_pretrained, tmp_path / "adapter", base_clip=str(half))
    assert str(half) in message and "text_projection.weight" in message


def test_classify_refuses_a_clip_missing_weights(half_clip_dir, capsys):
    from omniclip_hf.cli import main

    folder, first_missing = half_clip_dir
    assert main(["classify", str(SHORT_MP4), "--model", str(folder), "--labels", "a,b"]) == 1
    err = capsys.readouterr().err
    assert first_missing in err and "does not hold the whole CLIP" in err
    assert "video processor" not in err


def test_init_refuses_a_clip_missing_weights(half_clip_dir, tmp_path, capsys):
    from omniclip_hf.cli import main

    folder, first_missing = half_clip_dir
    assert main(["init", "--clip", str(folder), "--out", str(tmp_path / "out")]) == 1
    assert first_missing in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_legacy_bin_with_extra_keys_still_loads_exactly(tiny_clip, tmp_path):
    """Keys the checkpoint holds beyond the model's (a legacy `.bin`'s position_ids buffers, another head) are no
    reason to refuse: every weight the model needs is there."""
    from omniclip_hf import OmniCLIPModel

    folder = tmp_path / "legacy-bin"
    tiny_clip.save_pretrained(folder)
    from safetensors.torch import load_file

    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    weights["text_model.embeddings.position_ids"] = torch.arange(77)[None]
    weights["vision_model.embeddings.position_ids"] = torch.arange(17)[None]
    weights["some_old_head.weight"] = torch.zeros(2, 2)
    torch.save(weights, folder / "pytorch_model.bin")
    model = OmniCLIPModel.from_clip(folder)
    assert torch.equal(model.clip.visual_projection.weight, tiny_clip.visual_projection.weight)


# ------------------------------------------------------------------ E2: a CLIP config that does not fit its weights
@pytest.mark.parametrize("loader", ["from_clip", "from_pretrained"])
def test_a_clip_config_that_does_not_fit_its_weights_names_the_weight_and_shapes(edited_projection_clip_dir, loader):
    from omniclip_hf import OmniCLIPModel

    message = one_line_value_error(getattr(OmniCLIPModel, loader), edited_projection_clip_dir)
    assert str(edited_projection_clip_dir / "config.json") in message
    assert "text_projection.weight is [32, 32] in the weights but [16, 32] for this config" in message


def test_init_names_the_weight_whose_shape_the_clip_config_does_not_fit(edited_projection_clip_dir, tmp_path,
                                                                        capsys):
    from omniclip_hf.cli import main

    assert main(["init", "--clip", str(edited_projection_clip_dir), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "text_projection.weight is [32, 32] in the weights but [16, 32]" in err and "above report" not in err


# ------------------------------------------------------------------ R1: heads of a projection 64 does not divide
@pytest.mark.parametrize("projection_dim, heads", [(512, 8), (200, 2), (500, 5), (1000, 10), (32, 1)])
def test_default_heads_divide_the_projection_width(projection_dim, heads):
    from transformers import CLIPConfig

    from omniclip_hf import OmniCLIPConfig

    config = OmniCLIPConfig.from_clip_config(CLIPConfig(projection_dim=projection_dim))
    assert config.resolved_video_head_num_heads == heads and config.resolved_prompt_num_heads == heads
    assert config.video_head_num_heads is None and config.prompt_num_heads is None
    again = OmniCLIPConfig.from_dict(config.to_dict())
    assert again.resolved_video_head_num_heads == heads and again.video_head_num_heads is None


def test_an_explicit_head_count_that_does_not_divide_is_still_refused():
    from transformers import CLIPConfig

    from omniclip_hf import OmniCLIPConfig

    with pytest.raises(ValueError, match=r"video_head_num_heads=3 is invalid: projection_dim=200"):
        OmniCLIPConfig.from_clip_config(CLIPConfig(projection_dim=200), video_head_num_heads=3)


def test_a_clip_with_projection_200_is_wrapped_and_scores(tmp_path, clip_tokenizer):
    from omniclip_hf import OmniCLIPModel

    clip = build_tiny_clip()
    clip_200 = type(clip)(type(clip.config).from_dict({**clip.config.to_dict(), "projection_dim": 200})).eval()
    model = OmniCLIPModel.from_clip(clip_200, num_frames=2)
    assert model.config.resolved_video_head_num_heads == 2
    text = clip_tokenizer(["a", "b"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(pixel_values_videos=torch.randn(1, 2, 3, 32, 32), **text)
    assert out.logits_per_video.shape == (1, 2)


# ------------------------------------------------------------------ R2: classify on a folder of another model
def tiny_other_model(kind: str):
    """A small model of another kind, with weights and its `architectures` saved: `pipeline()` would load that class
    once OmniCLIPModel refused the folder, and fail later for another reason."""
    from transformers import CLIPTextModel, CLIPVisionModel, SiglipConfig, SiglipModel

    clip_config = build_tiny_clip().config
    if kind == "clip_vision_model":
        return CLIPVisionModel(clip_config.vision_config)
    if kind == "clip_text_model":
        return CLIPTextModel(clip_config.text_config)
    tower = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    return SiglipModel(SiglipConfig(text_config=tower, vision_config={**tower, "image_size": 32, "patch_size": 8}))


@pytest.mark.parametrize("model_type", ["clip_vision_model", "clip_text_model", "siglip"])
def test_classify_refuses_another_model_for_what_it_is(tmp_path, capsys, model_type):
    from transformers import CLIPTokenizer

    from omniclip_hf.cli import main

    folder = tmp_path / "other"
    tiny_other_model(model_type).save_pretrained(folder)
    CLIPTokenizer.from_pretrained(TOKENIZER_DIR).save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["model_type"] == model_type
    assert main(["classify", str(SHORT_MP4), "--model", str(folder), "--labels", "a,b"]) == 1
    err = capsys.readouterr().err
    assert f"holds a {model_type!r} checkpoint, neither an OmniCLIP nor a CLIP model" in err
    assert "processor_config.json" not in err and "processor settings" not in err
