"""Transformers' own common model tests (`ModelTesterMixin`, `ConfigTester` of the installed version) on OmniCLIP.

The suite's files come from the installed transformers version's sdist (see tests/transformers_suite.py; `make test`
fetches them once). Tests that do not fit OmniCLIP are skipped below, each with its reason; docs/design.md
("Transformers' common model tests") lists them beside the ones transformers' own `CLIPModelTest` skips for CLIP.
"""

from __future__ import annotations

import os
import unittest

import pytest

from tests import transformers_suite
from tests.conftest import tiny_clip_config

_missing = transformers_suite.missing_reason()
if _missing is not None:
    pytest.skip(_missing, allow_module_level=True)
pytest.importorskip("parameterized", reason="transformers' common tests import `parameterized` (pip install -e .[dev])")

_suite = transformers_suite.load_suite()
ModelTesterMixin = _suite.modeling.ModelTesterMixin
ConfigTester = _suite.configuration.ConfigTester
floats_tensor = _suite.modeling.floats_tensor
ids_tensor = _suite.modeling.ids_tensor
random_attention_mask = _suite.modeling.random_attention_mask

from transformers import CLIPConfig, CLIPModel  # noqa: E402

from omniclip_hf import OmniCLIPConfig, OmniCLIPModel  # noqa: E402

# The common tests want models under 1M parameters: CLIP's 49408-token vocabulary alone is 1.6M at width 32.
VOCAB_SIZE = 99


def tiny_common_clip_config() -> CLIPConfig:
    """conftest's tiny CLIP with two vision layers (the common tests want at most two) and a small vocabulary."""
    config = tiny_clip_config(vision_layers=2)
    text_config = config.text_config
    text_config.vocab_size = VOCAB_SIZE
    text_config.bos_token_id, text_config.eos_token_id, text_config.pad_token_id = VOCAB_SIZE - 2, VOCAB_SIZE - 1, 1
    return config


class SubModelTester:
    """What the common tests of `get_text_features` / `get_video_features` / `get_image_features` read from a
    composite model's per-encoder testers: the encoder's layer count and its inputs."""

    def __init__(self, config, num_hidden_layers: int, inputs: dict):
        self.config = config
        self.num_hidden_layers = num_hidden_layers
        self.inputs = inputs

    def prepare_config_and_inputs_for_common(self):
        return self.config, dict(self.inputs)


class TinyCLIPTester:
    """What both testers below share: the tiny CLIP's sub-configs, and the text-encoder sub-tester they hand to the
    mixin (as transformers' CLIP tester does)."""

    def __init__(self, parent, batch_size: int = 2, seq_length: int = 7):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = True
        clip_config = tiny_common_clip_config()
        self.text_config = clip_config.text_config
        self.vision_config = clip_config.vision_config
        self.image_size = clip_config.vision_config.image_size

    @property
    def text_model_tester(self) -> SubModelTester:
        config, inputs = self.prepare_config_and_inputs_for_common()
        text_inputs = {key: inputs[key] for key in ("input_ids", "attention_mask")}
        return SubModelTester(config, self.text_config.num_hidden_layers, text_inputs)


class OmniCLIPModelTester(TinyCLIPTester):
    """Tiny OmniCLIP inputs in the form the common tests expect, as transformers' `CLIPModelTester` does for CLIP.

    `batch_size` counts videos; the class texts are shared by the batch, and their number is not a multiple of the
    batch size, so `test_batching_equivalence` slices the videos and keeps every class.
    """

    def __init__(self, parent, batch_size: int = 2, num_frames: int = 4, num_classes: int = 3, seq_length: int = 7):
        super().__init__(parent, batch_size, seq_length)
        self.num_frames = num_frames
        self.num_classes = num_classes

    def get_config(self) -> OmniCLIPConfig:
        return OmniCLIPConfig.from_clip_config(tiny_common_clip_config(), num_frames=self.num_frames)

    def prepare_config_and_inputs_for_common(self):
        videos = floats_tensor([self.batch_size, self.num_frames, 3, self.image_size, self.image_size])
        inputs = {
            "pixel_values_videos": videos,
            "input_ids": ids_tensor([self.num_classes, self.seq_length], VOCAB_SIZE),
            "attention_mask": random_attention_mask([self.num_classes, self.seq_length]),
            # As CLIPModelTester passes return_loss=True: the output then holds the loss the training tests need.
            "labels": ids_tensor([self.batch_size], self.num_classes),
        }
        return self.get_config(), inputs

    @property
    def video_model_tester(self) -> SubModelTester:
        config, inputs = self.prepare_config_and_inputs_for_common()
        video_inputs = {"pixel_values_videos": inputs["pixel_values_videos"]}
        return SubModelTester(config, self.vision_config.num_hidden_layers, video_inputs)


class OmniCLIPModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (OmniCLIPModel,)
    _is_composite = True
    # The eager/SDPA comparison feeds the main input (the videos) plus these; the class texts are the other half.
    additional_model_inputs = ["input_ids"]

    def setUp(self):
        self.model_tester = OmniCLIPModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=OmniCLIPConfig, has_text_modality=False,
            common_properties=["projection_dim", "num_frames", "logit_scale_init_value"],
        )

    def test_config(self):
        self.config_tester.run_common_tests()

    # The three tests below read `hidden_states` / `attentions` at the top of the output, as a single-encoder model
    # returns them. Like CLIPOutput (transformers' CLIPModelTest skips the same three), OmniCLIPOutput keeps them per
    # encoder, in `vision_model_output` and `text_model_output`; the mixin's get_video_features /
    # get_text_features tests check those (layer counts, output flags from the call and from the config).
    @unittest.skip(reason="hidden states are per encoder (vision_model_output, text_model_output), as for CLIPModel")
    def test_hidden_states_output(self):
        pass

    @unittest.skip(reason="attentions are per encoder (vision_model_output, text_model_output), as for CLIPModel")
    def test_attention_outputs(self):
        pass

    @unittest.skip(reason="hidden states and attentions are per encoder, as for CLIPModel")
    def test_retain_grad_hidden_states_attentions(self):
        pass

    # The mixin's gradient-checkpointing check watches the model's first `GradientCheckpointingLayer`, which in
    # OmniCLIP is a layer of the frozen CLIP's text encoder: OmniCLIP keeps the frozen CLIP in eval mode, so that
    # layer never checkpoints (a frozen encoder stores no activations for backward) and the check finds it called
    # once. What OmniCLIP checkpoints are its own spatial-temporal blocks (each wraps a frozen vision layer and its
    # adapter); the same check, with all its assertions, runs on the first of them here.
    def _check_gradient_checkpointing_on_omniclip_blocks(self, **kwargs):
        self.all_model_classes = (OmniCLIPModelBlocksListedFirst,)
        self.check_training_gradient_checkpointing(**kwargs)

    def test_training_gradient_checkpointing(self):
        self._check_gradient_checkpointing_on_omniclip_blocks()

    def test_training_gradient_checkpointing_use_reentrant_false(self):
        self._check_gradient_checkpointing_on_omniclip_blocks(gradient_checkpointing_kwargs={"use_reentrant": False})

    def test_training_gradient_checkpointing_use_reentrant_true(self):
        self._check_gradient_checkpointing_on_omniclip_blocks(gradient_checkpointing_kwargs={"use_reentrant": True})


class OmniCLIPModelBlocksListedFirst(OmniCLIPModel):
    """OmniCLIP with the frozen CLIP registered last, so that `model.modules()` meets OmniCLIP's checkpointed blocks
    before CLIP's own layers (the order of registration changes nothing else)."""

    def __init__(self, config):
        super().__init__(config)
        self._modules["clip"] = self._modules.pop("clip")


class CLIPModelTester(TinyCLIPTester):
    """The same tiny CLIP, as transformers' `CLIPModelTester` feeds `CLIPModel` (one text per image)."""

    def get_config(self) -> CLIPConfig:
        return tiny_common_clip_config()

    def prepare_config_and_inputs_for_common(self):
        inputs = {
            "input_ids": ids_tensor([self.batch_size, self.seq_length], VOCAB_SIZE),
            "attention_mask": random_attention_mask([self.batch_size, self.seq_length]),
            "pixel_values": floats_tensor([self.batch_size, 3, self.image_size, self.image_size]),
            "return_loss": True,
        }
        return self.get_config(), inputs

    @property
    def vision_model_tester(self) -> SubModelTester:
        config, inputs = self.prepare_config_and_inputs_for_common()
        return SubModelTester(config, self.vision_config.num_hidden_layers, {"pixel_values": inputs["pixel_values"]})


class CLIPModelReferenceTest(ModelTesterMixin):
    """The same mixin on transformers' own `CLIPModel`, with nothing skipped: which tests fail for CLIP itself
    (docs/design.md's comparison). Collected only with `OMNICLIP_COMMON_TESTS_CLIP=1`: it tests transformers, not
    this package."""

    all_model_classes = (CLIPModel,)
    _is_composite = True
    additional_model_inputs = ["pixel_values"]

    def setUp(self):
        self.model_tester = CLIPModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=CLIPConfig, has_text_modality=False,
            common_properties=["projection_dim", "logit_scale_init_value"],
        )

    def test_config(self):
        self.config_tester.run_common_tests()


if os.environ.get("OMNICLIP_COMMON_TESTS_CLIP") == "1":
    CLIPModelReferenceTest = type("CLIPModelReferenceTest", (CLIPModelReferenceTest, unittest.TestCase), {})
