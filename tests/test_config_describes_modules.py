"""A model's config says which modules it has. A field they are built from (`ARCHITECTURE_FIELDS`), changed on a
built model or asked of a saved one, changed nothing the model computed: saved, the folder then loaded as other
modules (a pta_mode or spg_pooling edit, other scores) or not at all (num_frames, use_spg), and
`from_pretrained(folder, num_frames=8)` ended in transformers' report table and a RuntimeError."""

from __future__ import annotations

import json

import pytest
import torch

from omniclip_hf import OmniCLIPModel

from .test_training_run_settings import four_frame_model_dir  # noqa: F401 (fixture)


@pytest.fixture()
def saved_model(tmp_path, tiny_clip):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4)
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


@pytest.mark.parametrize("field, value", [("pta_mode", "cascade_attention"), ("spg_pooling", "max"),
                                          ("num_frames", 8), ("use_spg", False), ("spg_projector_init", "random")])
def test_saving_after_a_modules_field_changed_is_refused(tiny_clip, tmp_path, field, value):
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4)
    was = getattr(model.config, field)
    setattr(model.config, field, value)
    message = f"^model.config.{field} is {value!r}, but the model was built with {was!r} and still computes"
    with pytest.raises(ValueError, match=message):
        model.save_pretrained(tmp_path / "full")
    with pytest.raises(ValueError, match=message):
        model.save_adapter(tmp_path / "adapter", base_clip_name_or_path="some/clip")
    assert not (tmp_path / "full").exists() and not (tmp_path / "adapter").exists()
    setattr(model.config, field, was)
    model.config.text_template = "a clip of {}"  # read when the model runs: saved as it is
    model.save_pretrained(tmp_path / "full")
    assert OmniCLIPModel.from_pretrained(tmp_path / "full").config.text_template == "a clip of {}"


@pytest.mark.parametrize("field, value", [("num_frames", 8), ("use_spg", False), ("pta_head_dim", 8)])
def test_loading_with_a_modules_field_other_than_the_saved_one_is_refused(saved_model, field, value):
    """pta_head_dim changes no shape: the weights loaded and the heads split them otherwise, with nothing said."""
    from transformers import AutoModel

    message = rf"^from_pretrained\('{saved_model}', {field}={value!r}\): {field} is .* in the saved model"
    with pytest.raises(ValueError, match=message):
        OmniCLIPModel.from_pretrained(saved_model, **{field: value})
    with pytest.raises(ValueError, match=message):  # AutoModel hands over a config with the keyword applied
        AutoModel.from_pretrained(saved_model, **{field: value})
    saved = json.loads((saved_model / "config.json").read_text())[field]
    assert getattr(OmniCLIPModel.from_pretrained(saved_model, **{field: saved}).config, field) == saved


def test_ignore_mismatched_sizes_still_asks_for_new_modules(saved_model):
    """transformers' own way to load a checkpoint into modules of other shapes (those are initialised again)."""
    model = OmniCLIPModel.from_pretrained(saved_model, num_frames=8, ignore_mismatched_sizes=True)
    assert model.temporal_embedding.weight.shape[0] == 8


def test_an_adapter_takes_the_callers_fields_and_refuses_a_modules_field(tiny_clip_dir, tmp_path):
    """The caller's fields were dropped for an adapter-only checkpoint (a full one applies them)."""
    OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4).save_adapter(tmp_path / "adapter")
    model = OmniCLIPModel.from_pretrained(tmp_path / "adapter", text_template="a clip of {}", label_smoothing=0.1)
    assert model.config.text_template == "a clip of {}" and model.config.label_smoothing == 0.1
    with pytest.raises(ValueError, match=r"num_frames=8\): num_frames is 4 in the saved model"):
        OmniCLIPModel.from_pretrained(tmp_path / "adapter", num_frames=8)


def test_training_a_model_folder_refuses_overrides_of_its_modules(four_frame_model_dir):  # noqa: F811
    from omniclip_hf.training.loop import parse_training_options
    from omniclip_hf.training.run import load_model_and_processor

    options = parse_training_options(["--model", str(four_frame_model_dir), "--train_data", "x",
                                      "--model_overrides", '{"use_spg": false, "label_smoothing": 0.2}'])
    with pytest.raises(ValueError, match=r"^--model_overrides use_spg: the --model's modules are built with "
                                         r"use_spg=True, which its weights fit; change them with --clip"):
        load_model_and_processor(options)
    options = parse_training_options(["--model", str(four_frame_model_dir), "--train_data", "x",
                                      "--model_overrides", '{"use_spg": true, "text_template": "a clip of {}"}'])
    model, _ = load_model_and_processor(options)
    assert model.config.text_template == "a clip of {}"
    with torch.no_grad():
        assert model.self_prompt_generator is not None


def test_automodel_passes_the_callers_fields_to_an_adapter(tiny_clip_dir, tmp_path):
    """AutoModel applies them to the config it hands over, which the adapter path read again from the folder."""
    from transformers import AutoModel

    OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4).save_adapter(tmp_path / "adapter")
    model = AutoModel.from_pretrained(tmp_path / "adapter", text_template="a clip of {}")
    assert model.config.text_template == "a clip of {}"


def test_a_model_of_other_modules_loads_without_a_false_refusal(tiny_clip, tiny_clip_dir, tmp_path):
    """The checks compare what was asked with what was saved: a model of non-default modules loads as it is, directly,
    through AutoModel (which pipeline() uses) and as an adapter."""
    from transformers import AutoModel

    built = dict(pta_layers=[0, 2], pta_mode="attention_parallel", spg_pooling="max", spg_projector_init="random",
                 video_head_num_layers=2, prompt_layers=1)
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4, **built)
    model.save_pretrained(tmp_path / "model")
    for loaded in (OmniCLIPModel.from_pretrained(tmp_path / "model"), AutoModel.from_pretrained(tmp_path / "model")):
        assert {name: getattr(loaded.config, name) for name in built} == built
    model.save_adapter(tmp_path / "adapter", base_clip_name_or_path=str(tiny_clip_dir))
    assert OmniCLIPModel.from_pretrained(tmp_path / "adapter").config.pta_layers == [0, 2]
