"""An adapter-only checkpoint holds no CLIP weight: loaded over another CLIP of the same shapes (the base folder
overwritten, another checkpoint under the same name) its modules would read other features with nothing said.
`save_adapter` records a fingerprint of the base CLIP's weights, and loading compares it in any dtype."""

import json
import logging
import shutil

import pytest
import torch

from .conftest import build_tiny_clip


@pytest.fixture()
def adapter_over_a_base_folder(tmp_path, tiny_clip):
    """An adapter saved over a tiny CLIP in `tmp_path/base`, named by that folder in its config."""
    from omniclip_hf import OmniCLIPModel

    base = tmp_path / "base"
    tiny_clip.save_pretrained(base)
    model = OmniCLIPModel.from_clip(str(base), num_frames=4)
    model.save_adapter(tmp_path / "adapter")
    return base, tmp_path / "adapter"


def replace_base_with(base, clip) -> None:
    shutil.rmtree(base)
    clip.save_pretrained(base)


def test_the_fingerprint_is_recorded_and_the_same_clip_loads_in_every_dtype(adapter_over_a_base_folder, caplog):
    from omniclip_hf import OmniCLIPModel

    _, adapter = adapter_over_a_base_folder
    assert len(json.loads((adapter / "config.json").read_text())["base_clip_fingerprint"]) == 9
    with caplog.at_level(logging.WARNING):
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            model = OmniCLIPModel.from_pretrained(adapter, dtype=dtype)
            assert model.clip.logit_scale.dtype == dtype
    assert "another CLIP" not in caplog.text


def test_a_base_folder_that_now_holds_another_clip_is_refused(adapter_over_a_base_folder):
    from omniclip_hf import OmniCLIPModel

    base, adapter = adapter_over_a_base_folder
    replace_base_with(base, build_tiny_clip(seed=1))
    with pytest.raises(ValueError, match="holds adapters trained over another CLIP than the one loaded from") as error:
        OmniCLIPModel.from_pretrained(adapter)
    assert str(adapter) in str(error.value) and "\n" not in str(error.value)


def test_a_fine_tuned_copy_of_the_base_clip_is_refused(adapter_over_a_base_folder, tiny_clip):
    """Weights moved by a tenth of their typical size, as a fine-tuning run might, under the same folder."""
    from omniclip_hf import OmniCLIPModel

    base, adapter = adapter_over_a_base_folder
    tuned = build_tiny_clip(seed=0)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for parameter in tuned.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(noise * parameter.abs().mean() * 0.1)
    replace_base_with(base, tuned)
    with pytest.raises(ValueError, match="another CLIP"):
        OmniCLIPModel.from_pretrained(adapter)


def test_another_clip_chosen_with_base_clip_is_loaded_with_a_warning(adapter_over_a_base_folder, tmp_path, caplog):
    from omniclip_hf import OmniCLIPModel

    _, adapter = adapter_over_a_base_folder
    other = tmp_path / "other"
    build_tiny_clip(seed=1).save_pretrained(other)
    with caplog.at_level(logging.WARNING):
        model = OmniCLIPModel.from_pretrained(adapter, base_clip=str(other))
    assert "another CLIP" in caplog.text and f"base_clip={str(other)!r} was asked for" in caplog.text
    assert model.config.base_clip_name_or_path == str(other)
    caplog.clear()
    copy_of_the_base = tmp_path / "copy"
    build_tiny_clip(seed=0).save_pretrained(copy_of_the_base)
    with caplog.at_level(logging.WARNING):
        OmniCLIPModel.from_pretrained(adapter, base_clip=str(copy_of_the_base))  # the same weights elsewhere
    assert "another CLIP" not in caplog.text


def test_an_adapter_saved_before_the_fingerprint_is_not_checked(adapter_over_a_base_folder):
    from omniclip_hf import OmniCLIPModel

    base, adapter = adapter_over_a_base_folder
    config = json.loads((adapter / "config.json").read_text())
    del config["base_clip_fingerprint"]
    (adapter / "config.json").write_text(json.dumps(config))
    replace_base_with(base, build_tiny_clip(seed=1))
    OmniCLIPModel.from_pretrained(adapter)


def test_a_base_clip_that_cannot_be_loaded_is_named_as_the_adapters_base(adapter_over_a_base_folder, monkeypatch):
    """The error named only a folder the user never passed (the config's base_clip_name_or_path)."""
    from omniclip_hf import OmniCLIPModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base, adapter = adapter_over_a_base_folder
    shutil.rmtree(base)
    with pytest.raises(OSError, match=rf"^{adapter} is an adapter-only checkpoint over the CLIP {base} \(its config's "
                                      r"base_clip_name_or_path\), which cannot be loaded: .* Pass base_clip= a folder .*"
                                      r"\(through pipeline\(\), model_kwargs=\{'base_clip': \.\.\.\}\)\.$"):
        OmniCLIPModel.from_pretrained(adapter)


def test_the_fingerprint_is_taken_from_the_weights_save_adapter_is_given(tiny_clip_dir, tmp_path):
    """Under FSDP or ZeRO-3 the model's own CLIP parameters are shards (or empty) and the full weights come as
    `state_dict`: the fingerprint of the shards made the right base CLIP refused on loading."""
    from omniclip_hf import OmniCLIPModel

    gathered = OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4).state_dict()
    sharded = OmniCLIPModel.from_clip(build_tiny_clip(seed=1), num_frames=4)  # stands for shards of other values
    sharded.save_adapter(tmp_path / "adapter", base_clip_name_or_path=str(tiny_clip_dir), state_dict=gathered)
    OmniCLIPModel.from_pretrained(tmp_path / "adapter")  # the base CLIP the weights are of: accepted


def test_an_adapter_keeps_its_saved_fields_and_names_a_misspelt_keyword(adapter_over_a_base_folder, tmp_path, caplog):
    """from_clip rebuilt an adapter model from its modules' fields alone: id2label (which train.py writes) and the
    output flags were dropped, and a misspelt keyword accepted silently."""
    from omniclip_hf import OmniCLIPModel

    base, _ = adapter_over_a_base_folder
    model = OmniCLIPModel.from_clip(str(base), num_frames=4)
    model.config.id2label, model.config.label2id = {0: "archery", 1: "run"}, {"archery": 0, "run": 1}
    model.config.output_hidden_states = True
    model.save_adapter(tmp_path / "labelled")
    loaded = OmniCLIPModel.from_pretrained(tmp_path / "labelled")
    assert loaded.config.id2label == {0: "archery", 1: "run"} and loaded.config.output_hidden_states is True
    assert OmniCLIPModel.from_pretrained(tmp_path / "labelled", output_hidden_states=False).config.output_hidden_states is False
    with caplog.at_level(logging.WARNING):
        OmniCLIPModel.from_pretrained(tmp_path / "labelled", label_smothing=0.1)
    assert "ignores 'label_smothing': no configuration field of OmniCLIPConfig (misspelt?)" in caplog.text


def test_a_zero_adapter_scale_is_refused():
    """The adapters' Up starts at zero: with alpha 0 as well neither gets a gradient, and nothing ever trains."""
    from omniclip_hf import OmniCLIPConfig

    with pytest.raises(ValueError, match="pta_alpha_init=0.0 is invalid: it must be a nonzero number"):
        OmniCLIPConfig(pta_alpha_init=0.0)
