"""Config fields of the wrong type are refused naming the field (a "false" string is truthy: the module it switches
off was built); `initializer_factor` reaches the CLIP it scales; the Trainer collator names videos of unequal shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omniclip_hf import OmniCLIPConfig, OmniCLIPModel

from .conftest import tiny_clip_config


@pytest.mark.parametrize("field, value, message", [
    ("use_spg", "false", "it must be true or false"),
    ("use_video_specific_prompts", "False", "it must be true or false"),
    ("use_pta", 0, "it must be true or false"),
    ("spg_residual", "no", "it must be true or false"),
    ("pta_ratio", True, "it must be a number > 0"),
    ("num_frames", True, "it must be an integer >= 1"),
    ("video_head_num_layers", 1.0, "it must be an integer >= 0"),
    ("pta_layers", [0.9, 2.7], "it must be a list of integer layer indices"),
    ("pta_layers", 3, "it must be a list of integer layer indices"),
    ("label_smoothing", "0.1", "it must be a number"),
    ("prompt_alpha", None, "it must be a number"),
    ("video_head_num_heads", 0, "it must be an integer >= 1, or null"),
])
def test_a_field_of_the_wrong_type_is_refused_naming_it(field, value, message):
    with pytest.raises(ValueError, match=rf"^OmniCLIPConfig\.{field}=.* is invalid: {message}"):
        OmniCLIPConfig.from_clip_config(tiny_clip_config(), **{field: value})


def test_numpy_integers_are_accepted_as_json_would_give_them():
    config = OmniCLIPConfig.from_clip_config(tiny_clip_config(), pta_layers=(np.int64(0), 2), num_frames=np.int64(4))
    assert config.pta_layers == [0, 2] and config.pta_layer_indices == [0, 2]


def test_initializer_factor_scales_the_random_initialisation_of_a_clip_built_from_the_config():
    def projection_std(factor: float) -> float:
        torch.manual_seed(0)
        model = OmniCLIPModel(OmniCLIPConfig.from_clip_config(tiny_clip_config(), initializer_factor=factor))
        return model.clip.text_projection.weight.std().item()

    assert projection_std(4.0) == pytest.approx(4 * projection_std(1.0), rel=0.05)


def test_the_trainer_collator_names_videos_of_unequal_shapes(clip_tokenizer):
    from omniclip_hf.training.trainer_collator import ClassTextCollator

    collator = ClassTextCollator(clip_tokenizer, ["yoga", "archery"])
    items = [{"pixel_values_videos": torch.zeros(4, 3, 32, 32), "labels": 0},
             {"pixel_values_videos": torch.zeros(8, 3, 32, 32), "labels": 1}]
    with pytest.raises(ValueError, match=r"different shapes \[\(4, 3, 32, 32\), \(8, 3, 32, 32\)\].*num_frames"):
        collator(items)
