# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""The tiny CLIP stand-in: a short pretraining run learns, and saves an ordinary CLIP folder."""

import json

import numpy as np
import pytest
import torch
from transformers import CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

from omniclip_hf.motion_benchmark import tiny_clip as tc

# A reduced run (~20 s here; the full demo is 200 steps of 64 frames). Measured with this setting for seeds 0, 1, 2:
# loss (mean of the first vs last 10 steps) 3.51 -> 2.90, 3.47 -> 3.00, 3.48 -> 3.07; held-out colour accuracy
# 44.5%, 51.5%, 46.0% (chance 12.5%). The thresholds below leave room for that spread.
SHORT_RUN = dict(steps=60, batch_size=32, eval_images=200, max_seconds=None, seed=0, verbose=False)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, worker_id):
    """The pretrained folder and the metrics `pretrain_tiny_clip` returned. Under pytest-xdist the tests of this
    module run on several workers: the first one pretrains (20 s) into a folder they share, under a lock, and
    writes the returned metrics beside it; the others read them back rather than pretrain again."""
    if worker_id == "master":
        out = tmp_path_factory.mktemp("tiny_clip")
        return out, tc.pretrain_tiny_clip(out, **SHORT_RUN)
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "tiny_clip_short_run"
    returned = shared.with_name(shared.name + "_returned.json")
    with FileLock(str(shared) + ".lock"):
        if not returned.is_file():
            returned.write_text(json.dumps(tc.pretrain_tiny_clip(shared / "clip", **SHORT_RUN)))
    return shared / "clip", json.loads(returned.read_text())


@pytest.mark.runs_long
def test_loss_falls_clearly(short_run):
    _, metrics = short_run
    curve = metrics["loss_curve_every_10_steps"]
    assert metrics["steps_done"] == SHORT_RUN["steps"]
    assert curve[-1] < curve[0] - 0.3, f"loss curve {curve}"


def test_colour_zero_shot_beats_chance_on_heldout_combinations(short_run):
    # Colour is learned first; on (colour, shape) combinations never seen in training it must clearly beat 1/8.
    _, metrics = short_run
    accuracy = metrics["zero_shot_heldout_combinations"]
    assert accuracy["colour"] > metrics["chance"]["colour"] + 0.15, accuracy


def test_saved_folder_is_an_ordinary_clip_checkpoint(short_run):
    out, metrics = short_run
    model = CLIPModel.from_pretrained(out).eval()
    tokenizer = CLIPTokenizer.from_pretrained(out)
    processor = CLIPProcessor.from_pretrained(out)
    assert isinstance(processor.image_processor, CLIPImageProcessor)
    assert model.config.vision_config.image_size == 64 and model.config.text_config.vocab_size == len(tokenizer)
    # The real CLIP tokenizer (same ids as openai/clip-vit-base-patch16).
    assert tokenizer("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]

    # The reloaded model gives the saved zero-shot numbers: weights and processor round-trip.
    frames, captions = tc.make_eval_set(SHORT_RUN["seed"], SHORT_RUN["eval_images"], 64, heldout=True)
    reloaded = tc.evaluate_zero_shot(model, tc.CaptionTokens(tokenizer), frames, captions)
    assert reloaded == pytest.approx(metrics["zero_shot_heldout_combinations"], abs=1e-6)
    pixel_values = processor(images=list(frames[:4]), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(pixel_values, tc.frames_to_pixel_values(frames[:4]), atol=1e-4, rtol=0)

    on_disk = json.loads((out / tc.METRICS_FILE).read_text())
    assert on_disk["zero_shot_heldout_combinations"] == metrics["zero_shot_heldout_combinations"]


def test_heldout_combinations_never_appear_in_training_batches():
    rng = np.random.default_rng(0)
    backgrounds = tc.make_background_bank(rng, 4, 64)
    batch = tc.sample_training_batch(rng, backgrounds, batch_size=200, group_size=8)
    assert not any(tc.is_heldout_combination(c.colour, c.shape) for _, c in batch)
    heldout = [tc.sample_captioned_frame(rng, backgrounds, heldout=True)[1] for _ in range(50)]
    assert all(tc.is_heldout_combination(c.colour, c.shape) for c in heldout)


def test_contrastive_loss_treats_repeated_captions_as_positives():
    image = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=-1)
    text = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    scale = torch.tensor(np.log(100.0))
    matched = tc.contrastive_loss(image, text, torch.tensor([0, 0, 1]), scale)
    swapped = tc.contrastive_loss(image, text, torch.tensor([1, 1, 0]), scale)
    # Images 0 and 1 share caption 0: image -> text is perfect (0); text -> image splits caption 0's target evenly
    # over both, costing log(2) for that caption and 0 for caption 1, so the loss is (0 + log(2) / 2) / 2. Counting
    # image 1 as a negative of caption 0 (plain CLIP loss) would give more; a mismatched assignment costs far more.
    assert matched.item() == pytest.approx(np.log(2) / 4, abs=1e-3)
    assert swapped.item() > 10


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps"),
    ({"batch_size": 1}, "batch_size"),
    ({"image_size": 16}, "image_size"),
    ({"text_warmup_fraction": 1.0}, "text_warmup_fraction"),
])
def test_bad_settings_raise_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tc.pretrain_tiny_clip(tmp_path, **{**SHORT_RUN, **kwargs})
