"""The optimisation options are refused out of their ranges, naming the flag, before anything loads (taken as given,
a negative --max_grad_norm reversed every gradient), and mixing with a batch of one clip, which never mixes."""

from __future__ import annotations

import pytest

from omniclip_hf.training.loop import parse_training_options

from .conftest import REPO_ROOT

BASE = ["--clip", "some/clip", "--train_data", "train.txt"]


@pytest.mark.parametrize("flag, value, allowed", [
    ("--max_grad_norm", "-1", ">= 0 (0: no clipping)"),
    ("--weight_decay", "-0.5", ">= 0"),
    ("--mixup_alpha", "-0.8", ">= 0 (0: no mixup)"),
    ("--cutmix_alpha", "-1", ">= 0 (0: no cutmix)"),
    ("--mix_prob", "2", "a probability in [0, 1]"),
    ("--mix_prob", "nan", "a probability in [0, 1]"),
    ("--label_smoothing", "1", "in [0, 1)"),
    ("--adam_beta1", "-0.1", "in [0, 1)"),
    ("--adam_beta2", "1.5", "in [0, 1)"),
])
def test_an_optimisation_option_out_of_range_is_refused_naming_it(flag, value, allowed):
    with pytest.raises(ValueError) as error:
        parse_training_options([*BASE, flag, value])
    assert str(error.value) == f"{flag}={float(value)} is invalid: it must be {allowed}."


def test_a_minimum_learning_rate_above_the_learning_rate_is_refused():
    with pytest.raises(ValueError, match=r"^--min_lr=0\.01 is invalid: the cosine decays from --lr=0\.002 down to it"):
        parse_training_options([*BASE, "--lr", "2e-3", "--min_lr", "1e-2"])


def test_a_batch_of_one_clip_with_mixing_on_is_refused():
    # The few-shot recipes' total batch of 8 on 8 GPUs: a clip a process, which mixup and cutmix never pair.
    recipe = str(REPO_ROOT / "examples" / "configs" / "hmdb51_few_shot_k2.yaml")
    with pytest.raises(ValueError, match=r"^--batch_size 1 with mixup/cutmix on .* a batch of one clip is never mixed"):
        parse_training_options(["--config", recipe, "--clip", "some/clip", "--batch_size", "1"])
    options = parse_training_options(["--config", recipe, "--clip", "some/clip", "--batch_size", "1",
                                      "--mixup_alpha", "0", "--cutmix_alpha", "0"])
    assert options.batch_size == 1 and not options.mixes
    assert parse_training_options([*BASE, "--batch_size", "1", "--mix_prob", "0"]).batch_size == 1
