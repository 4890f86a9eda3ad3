"""Colour augmentation on the training device (`--color_augmentation_on device`): the workers draw a clip's colour
jitter and grayscale and hand over uint8 crops, and `OmniCLIPVideoProcessor.finish_views` applies them, rescales and
normalises wherever the batch is. The pixels, and so the training, are exactly those of augmenting in the workers."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from omniclip_hf.training.data import collate_video_batch
from omniclip_hf.training.loop import parse_training_options
from omniclip_hf.training.run import color_augmentation_on_device
from omniclip_hf.training.trainer_collator import ClassTextCollator
from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor
from omniclip_hf.video_color_augmentation import COLOR_AUGMENTATION_SIZE

from .conftest import SHARED_DIR, TOKENIZER_DIR
from .test_training import motion_data, run, train_command, trainable_weights  # noqa: F401  (fixture)

VIDEOS = [SHARED_DIR / "videos" / "askanything_playing_guitar.mp4", SHARED_DIR / "videos" / "mmaction2_tests_test.avi"]
# Every colour branch is taken in these draws: jitter always, grayscale about half the time.
STRONG_COLOURS = {"color_jitter_prob": 1.0, "grayscale_prob": 0.5}


def processor_outputs(processor, seed: int, **kwargs):
    return processor([str(video) for video in VIDEOS], train=True, generator=torch.Generator().manual_seed(seed),
                     return_tensors="pt", **kwargs)


@pytest.mark.parametrize("num_spatial_crops", [1, 3])
def test_finishing_deferred_views_gives_the_workers_pixels_exactly(num_spatial_crops):
    processor = OmniCLIPVideoProcessor(num_frames=4, num_spatial_crops=num_spatial_crops, **STRONG_COLOURS)
    grayscale_seen = set()
    for seed in range(6):
        direct = processor_outputs(processor, seed)["pixel_values_videos"]
        deferred = processor_outputs(processor, seed, defer_color_augmentation=True)
        pixels, colors = deferred["pixel_values_videos"], deferred["color_augmentation"]
        assert pixels.dtype == torch.uint8 and pixels.shape == direct.shape  # a quarter of float32's bytes
        assert colors.shape == direct.shape[:-4] + (COLOR_AUGMENTATION_SIZE,)
        grayscale_seen |= set(colors[..., -1].flatten().tolist())
        assert torch.equal(processor.finish_views(pixels, colors), direct)
    assert grayscale_seen == {0.0, 1.0}


def test_the_drawn_colours_are_what_finish_views_applies():
    """Another clip's colour rows on the same crops give other pixels: the rows are not ignored."""
    processor = OmniCLIPVideoProcessor(num_frames=4, **STRONG_COLOURS)
    deferred = processor_outputs(processor, 0, defer_color_augmentation=True)
    direct = processor_outputs(processor, 0)["pixel_values_videos"]
    swapped = processor.finish_views(deferred["pixel_values_videos"], deferred["color_augmentation"].flip(0))
    for index in range(len(VIDEOS)):
        assert not torch.allclose(swapped[index], direct[index], atol=1e-3)
    # Without colour augmentation the finished views are the crops, rescaled and normalised.
    plain = OmniCLIPVideoProcessor(num_frames=4, color_jitter_prob=0.0, grayscale_prob=0.0)
    crops = processor_outputs(plain, 0, defer_color_augmentation=True)
    normalised = (crops["pixel_values_videos"].float() / 255 - torch.tensor(plain.image_mean)[:, None, None]) \
        / torch.tensor(plain.image_std)[:, None, None]
    torch.testing.assert_close(plain.finish_views(crops["pixel_values_videos"], crops["color_augmentation"]),
                               normalised)


def test_evaluation_views_deferred_change_nothing_and_draw_nothing():
    processor = OmniCLIPVideoProcessor(num_frames=4, num_spatial_crops=3)
    expected = processor([str(VIDEOS[0])], return_tensors="pt")["pixel_values_videos"]
    state = torch.get_rng_state()
    deferred = processor([str(VIDEOS[0])], return_tensors="pt", defer_color_augmentation=True)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(processor.finish_views(deferred["pixel_values_videos"], deferred["color_augmentation"]),
                       expected)
    assert "defer_color_augmentation" not in processor.to_dict()


def test_mismatched_views_and_colours_are_refused_in_one_line():
    processor = OmniCLIPVideoProcessor(num_frames=4)
    deferred = processor_outputs(processor, 0, defer_color_augmentation=True)
    with pytest.raises(ValueError, match=r"^finish_views: pixel_values_videos \(2, 4, 3, 224, 224\) and "
                                         r"color_augmentation \(1, 10\) do not belong together"):
        processor.finish_views(deferred["pixel_values_videos"], deferred["color_augmentation"][:1])


def test_trainer_collator_refuses_deferred_views():
    processor = OmniCLIPVideoProcessor(num_frames=4)
    deferred = processor_outputs(processor, 0, defer_color_augmentation=True)
    items = [{"pixel_values_videos": deferred["pixel_values_videos"][0],
              "color_augmentation": deferred["color_augmentation"][0], "labels": 0}]
    batch = collate_video_batch([{**item, "index": 0} for item in items])
    assert batch["color_augmentation"].shape == (1, COLOR_AUGMENTATION_SIZE)
    from transformers import CLIPTokenizer

    collator = ClassTextCollator(CLIPTokenizer.from_pretrained(TOKENIZER_DIR), ["a", "b"])
    with pytest.raises(ValueError, match="deferred colour augmentation"):
        collator(items)


@pytest.mark.parametrize(("flag", "device", "on_device"), [
    ("auto", "cuda", True), ("auto", "cpu", False), ("workers", "cuda", False), ("device", "cpu", True),
])
def test_auto_puts_colour_augmentation_on_a_gpu(flag, device, on_device):
    options = parse_training_options(["--clip", "x", "--train_data", "y", "--color_augmentation_on", flag])
    accelerator = SimpleNamespace(device=torch.device(device))
    assert color_augmentation_on_device(options, accelerator) is on_device


def test_an_unknown_place_is_refused_in_one_line(tiny_clip_dir, motion_data, tmp_path):
    result = run(train_command(tiny_clip_dir, motion_data, tmp_path / "run", "--color_augmentation_on", "gpu"))
    assert result.returncode != 0
    assert "--color_augmentation_on='gpu' is invalid: use one of auto, workers, device." in result.stderr
    assert "Traceback" not in result.stderr


def test_training_with_colours_on_the_device_equals_training_with_them_in_the_workers(tiny_clip_dir, motion_data,
                                                                                       tmp_path):
    """Three steps each way (the device here is the CPU; one run through a worker): the same trainable weights."""
    weights = {}
    for place, workers in (("workers", "0"), ("device", "1")):
        output = tmp_path / place
        command = train_command(tiny_clip_dir, motion_data, output, "--max_steps", "3", "--checkpointing_steps", "3",
                                "--color_augmentation_on", place, "--num_workers", workers)
        result = run(command)
        assert result.returncode == 0, result.stderr[-3000:]
        weights[place] = trainable_weights(output / "checkpoints" / "step_00000003")
    assert weights["workers"].keys() == weights["device"].keys()
    for name, tensor in weights["workers"].items():
        assert torch.equal(weights["device"][name], tensor), name


@pytest.mark.parametrize(("place", "dtype"), [("device", torch.uint8), ("workers", torch.float32)])
def test_the_flag_decides_what_the_loader_hands_over(motion_data, place, dtype):
    from omniclip_hf.training.data import load_video_dataset
    from omniclip_hf.training.loop import build_video_processor
    from omniclip_hf.training.run import training_loader

    options = parse_training_options(["--clip", "x", "--train_data", str(motion_data / "train"), "--batch_size", "2",
                                      "--num_workers", "0", "--color_augmentation_on", place])
    data = load_video_dataset(options.train_data, str(motion_data / "labels.txt"))
    accelerator = SimpleNamespace(device=torch.device("cpu"), num_processes=1,
                                  prepare_data_loader=lambda loader, device_placement: loader)  # one process: as it is
    _, loader, _ = training_loader(options, accelerator, data, build_video_processor(32, 4))
    batch = next(iter(loader))
    assert batch["pixel_values_videos"].dtype == dtype
    assert ("color_augmentation" in batch) == (place == "device")


def test_the_colour_draws_are_torchvisions_colour_jitter_and_grayscale():
    """Drawn and applied in two steps, the colours equal torchvision's `RandomApply(ColorJitter)` + `RandomGrayscale`
    from the same seed (factors kept as float32 in the row: at most one grey level apart, rarely). The grayscale runs
    on a plain tensor: torchvision has no grayscale kernel for `tv_tensors.Video` and passes a Video through as it is,
    which left every training clip in colour before 2026-12-02 (`grayscale_prob` did nothing)."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    from omniclip_hf.video_color_augmentation import apply_color_augmentation, draw_color_augmentation

    clip = OmniCLIPVideoProcessor(num_frames=4, do_normalize=False, do_rescale=False)(
        str(VIDEOS[0]), return_tensors="pt")["pixel_values_videos"][0].to(torch.uint8)
    jitter, settings = (0.4, 0.4, 0.2, 0.1), (0.8, 0.5)
    colour_jitter, grayscale = v2.RandomApply([v2.ColorJitter(*jitter)], p=settings[0]), v2.RandomGrayscale(settings[1])
    changed = 0
    for seed in range(12):
        torch.manual_seed(seed)
        expected = grayscale(colour_jitter(tv_tensors.Video(clip)).as_subclass(torch.Tensor))
        torch.manual_seed(seed)
        row = draw_color_augmentation(settings[0], v2.ColorJitter(*jitter), settings[1])
        ours = apply_color_augmentation(clip[None], row[None])[0]
        difference = (ours.int() - expected.int()).abs()
        assert difference.max() <= 1 and (difference > 0).float().mean() < 0.01, seed
        changed += not torch.equal(ours, clip)
    assert changed >= 8  # most draws change the colours


@pytest.mark.parametrize("defer", [False, True])
def test_grayscale_turns_every_frame_of_a_training_clip_gray(defer):
    processor = OmniCLIPVideoProcessor(num_frames=4, color_jitter_prob=0.0, grayscale_prob=1.0, do_normalize=False)
    outputs = processor_outputs(processor, 0, defer_color_augmentation=defer)
    pixels = outputs["pixel_values_videos"]
    if defer:
        pixels = processor.finish_views(pixels, outputs["color_augmentation"])
    assert torch.equal(pixels[:, :, 0], pixels[:, :, 1]) and torch.equal(pixels[:, :, 1], pixels[:, :, 2])
    in_colour = processor_outputs(OmniCLIPVideoProcessor(num_frames=4, color_jitter_prob=0.0, grayscale_prob=0.0,
                                                         do_normalize=False), 0)["pixel_values_videos"]
    assert not torch.equal(in_colour[:, :, 0], in_colour[:, :, 1])


def test_finish_views_takes_the_deferred_calls_normalisation():
    """`--video_processor_overrides` reach the workers' call; the loop passes the same settings to `finish_views`."""
    processor = OmniCLIPVideoProcessor(num_frames=4, **STRONG_COLOURS)
    override = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}
    direct = processor_outputs(processor, 1, **override)["pixel_values_videos"]
    deferred = processor_outputs(processor, 1, defer_color_augmentation=True, **override)
    finished = processor.finish_views(deferred["pixel_values_videos"], deferred["color_augmentation"],
                                      defer_color_augmentation=True, **override)
    assert torch.equal(finished, direct)
    assert not torch.equal(processor.finish_views(deferred["pixel_values_videos"], deferred["color_augmentation"]),
                           direct)
