"""`omniclip explain` (colour scale, label checks, output path, uncovered pixels, header) and `omniclip info`
(loaded alphas, fps processors, adapter heads, plain CLIP and damaged processors), and the commands' one-line errors."""

from __future__ import annotations

import os
import shutil
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from .conftest import REPO_ROOT, TOKENIZER_DIR

VIDEO = REPO_ROOT.parent / "shared" / "videos" / "mmaction2_tests_test.avi"
LABELS = ["applying eye makeup", "archery"]


def run_cli(capsys, *arguments):
    """`omniclip ARGUMENTS` in this process: (exit status, stdout, stderr)."""
    from omniclip_hf.cli import main

    status = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def save_model_folder(folder, model, **processor_settings):
    """`model` saved with CLIP's tokenizer and an OmniCLIPVideoProcessor (32 px crops, `processor_settings`)."""
    from transformers import CLIPTokenizer

    from omniclip_hf import OmniCLIPProcessor, OmniCLIPVideoProcessor

    model.save_pretrained(folder)
    settings = {"num_frames": 4, "size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32},
                **processor_settings}
    tokenizer = CLIPTokenizer.from_pretrained(TOKENIZER_DIR)
    OmniCLIPProcessor(OmniCLIPVideoProcessor(**settings), tokenizer, text_template=model.config.text_template
                      ).save_pretrained(folder)
    return folder


def explanation_of(clip_maps, omniclip_maps, frame_size=(32, 32), patch_size=None):
    from omniclip_hf.attention_maps import AttentionExplanation

    frames = np.random.default_rng(0).integers(0, 255, (len(clip_maps), *frame_size, 3), dtype=np.uint8)
    maps = {"clip_maps": np.asarray(clip_maps, dtype=np.float32), "omniclip_maps": np.asarray(omniclip_maps, dtype=np.float32)}
    return AttentionExplanation(frames=frames, **maps, **({"patch_size": patch_size} if patch_size else {}))


def near_uniform_and_peaked():
    flat = np.full((4, 4), 1 / 16, dtype=np.float32)
    flat[0, 0] += 1e-4  # max/min 1.0016
    peaked = np.full((4, 4), 0.001, dtype=np.float32)
    peaked[0, 0] = 0.985  # max/min 985
    return flat, peaked


# ----------------------------------------------------------------------------------------------------------------
# 1. One colour scale, and each tile's patch mass
# ----------------------------------------------------------------------------------------------------------------
def test_near_uniform_and_peaked_maps_no_longer_render_identically():
    from omniclip_hf.attention_figure import heatmap_overlay

    flat, peaked = near_uniform_and_peaked()
    frame = np.full((32, 32, 3), 128, dtype=np.uint8)
    # Each map on its own: colour proportional to weight, so the flat map is flat and the peaked one is not.
    flat_image = np.asarray(heatmap_overlay(frame, flat, (64, 64))).astype(int)
    peaked_image = np.asarray(heatmap_overlay(frame, peaked, (64, 64))).astype(int)
    assert not np.array_equal(flat_image, peaked_image)
    assert flat_image.std(axis=(0, 1)).max() < 3  # drawn flat, not stretched blue -> red
    assert peaked_image.std(axis=(0, 1)).max() > 20


def test_clip_and_omniclip_maps_share_one_colour_scale_in_the_figure():
    from omniclip_hf.attention_figure import HEADER_HEIGHT, ROW_LABEL_WIDTH, render_explanation

    flat, peaked = near_uniform_and_peaked()
    # Frame 0: CLIP flat, OmniCLIP peaked; frame 1 the other way round.
    explanation = explanation_of([flat, peaked], [peaked, flat])
    tile = 64
    pixels = np.asarray(render_explanation(explanation, tile_size=tile)).astype(int)

    def heat_tile(row, column):  # the top of the tile: the patch-mass box sits at the bottom left
        top = HEADER_HEIGHT + row * tile
        left = ROW_LABEL_WIDTH + column * tile
        return pixels[top : top + tile // 2, left : left + tile]

    clip_flat, omni_peaked = heat_tile(1, 0), heat_tile(2, 0)
    assert np.abs(clip_flat - omni_peaked).mean() > 10  # per-tile min..max drew these two alike
    # On the shared scale (0 .. 0.985) the flat map's weights (~0.06) are all near the blue end: more blue than red.
    flat_heat = clip_flat.reshape(-1, 3).mean(axis=0)
    assert flat_heat[2] > flat_heat[0] + 30, flat_heat
    # The same map gets the same colours whichever row (and frame) it is in: one scale for the figure. The frames
    # under them differ (random pixels), so the mean colours are compared.
    for flat_tile, peaked_tile in ((heat_tile(1, 0), heat_tile(2, 0)), (heat_tile(2, 1), heat_tile(1, 1))):
        assert np.abs(flat_tile.reshape(-1, 3).mean(0) - heat_tile(1, 0).reshape(-1, 3).mean(0)).max() < 8
        assert np.abs(peaked_tile.reshape(-1, 3).mean(0) - heat_tile(2, 0).reshape(-1, 3).mean(0)).max() < 8


def test_shared_scale_is_0_to_the_largest_weight_and_tile_scaling_remains_an_option():
    from omniclip_hf.attention_figure import colour_ranges, render_explanation

    flat, peaked = near_uniform_and_peaked()
    explanation = explanation_of([flat], [peaked])
    assert colour_ranges(explanation) == [[(0.0, pytest.approx(0.985))], [(0.0, pytest.approx(0.985))]]
    assert colour_ranges(explanation, "tile")[0] == [(pytest.approx(1 / 16), pytest.approx(1 / 16 + 1e-4))]
    shared = np.asarray(render_explanation(explanation, tile_size=48))
    per_tile = np.asarray(render_explanation(explanation, tile_size=48, colour_scale="tile"))
    assert shared.shape == per_tile.shape and not np.array_equal(shared, per_tile)
    with pytest.raises(ValueError, match="colour_scale"):
        render_explanation(explanation, colour_scale="frame")


def test_explain_prints_the_colour_scale_and_each_tiles_patch_mass(tiny_omniclip_dir, tmp_path, capsys):
    from transformers import pipeline

    from omniclip_hf.attention_maps import FLAT_MAP_FLOOR, explain_video

    out = tmp_path / "attention.png"
    status, stdout, stderr = run_cli(
        capsys, "explain", VIDEO, "--model", tiny_omniclip_dir, "--labels", ",".join(LABELS), "--out", out,
        "--tile-size", "48",
    )
    assert status == 0, stderr
    classifier = pipeline("zero-shot-video-classification", model=str(tiny_omniclip_dir), device="cpu")
    explanation = explain_video(classifier.model, classifier.video_processor, str(VIDEO))
    # The largest weight, but never below FLAT_MAP_FLOOR x the uniform weight (a flat map stays cool).
    uniform = 1 / explanation.clip_maps[0].size
    largest = max(explanation.clip_maps.max(), explanation.omniclip_maps.max(), FLAT_MAP_FLOOR * uniform)
    assert f"colour scale: 0 (blue) to {largest:.4g} (red), shared by every heat map" in stdout
    clip_mass = explanation.clip_maps.sum(axis=(1, 2))
    omniclip_mass = explanation.omniclip_maps.sum(axis=(1, 2))
    assert "CLIP      mass " + " ".join(f"{value:.3f}" for value in clip_mass) in stdout
    assert "OmniCLIP  mass " + " ".join(f"{value:.3f}" for value in omniclip_mass) in stdout
    assert (omniclip_mass < clip_mass).all()  # OmniCLIP's prompt tokens take a share: the figure must show it


# ----------------------------------------------------------------------------------------------------------------
# 2. explain checks the labels as classify does
# ----------------------------------------------------------------------------------------------------------------
def test_explain_refuses_labels_that_tokenize_alike(tiny_omniclip_dir, tmp_path, capsys):
    out = tmp_path / "dup.png"
    status, stdout, stderr = run_cli(
        capsys, "explain", VIDEO, "--model", tiny_omniclip_dir, "--labels", "t-shirt,t - shirt", "--out", out
    )
    assert status == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omniclip: error: the labels have duplicates")
    assert "'t-shirt' = 't - shirt'" in lines[0]
    assert not out.exists() and stdout == ""


def test_explain_warns_about_a_label_cut_to_clips_context(tiny_omniclip_dir, tmp_path, capsys):
    out = tmp_path / "long.png"
    long_label = " ".join(["very"] * 90) + " long"
    status, _, stderr = run_cli(
        capsys, "explain", VIDEO, "--model", tiny_omniclip_dir, "--labels", f"yoga,{long_label}", "--out", out
    )
    assert status == 0, stderr
    assert "omniclip: warning: Label 'very very" in stderr and "it is truncated to its first 77 tokens" in stderr
    assert out.is_file()


# ----------------------------------------------------------------------------------------------------------------
# 3. info: what the loaded model and its processor do
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def info_models(tiny_clip, tiny_omniclip_dir, tmp_path_factory):
    from omniclip_hf import OmniCLIPModel

    scratch = tmp_path_factory.mktemp("info-models")
    folders = {}
    model = OmniCLIPModel.from_pretrained(tiny_omniclip_dir)
    with torch.no_grad():
        model.video_specific_prompts.alpha.zero_()  # trained down to no prompts; the config still says 0.1
    folders["alpha zero"] = save_model_folder(scratch / "alpha_zero", model)
    folders["fps"] = save_model_folder(scratch / "fps", OmniCLIPModel.from_clip(tiny_clip, num_frames=4),
                                       num_frames=None, fps=2)
    for mode in ("cascade", "cascade_attention"):
        folders[mode] = save_model_folder(scratch / mode, OmniCLIPModel.from_clip(tiny_clip, num_frames=4,
                                                                                  pta_mode=mode))
    folders["other frames and size"] = save_model_folder(
        scratch / "other_frames_and_size", OmniCLIPModel.from_clip(tiny_clip, num_frames=4), num_frames=8,
        size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48})
    damaged = scratch / "damaged_processor"
    shutil.copytree(tiny_omniclip_dir, damaged)
    (damaged / "processor_config.json").write_text('{"video_processor": {"num_frames": ')
    folders["damaged processor"] = damaged
    return folders


def test_info_prints_the_loaded_prompt_alpha_not_the_configs_initial_one(info_models, capsys):
    status, stdout, stderr = run_cli(capsys, "info", info_models["alpha zero"])
    assert status == 0, stderr
    line = next(line for line in stdout.splitlines() if line.startswith("video prompts:"))
    assert "alpha 0 (mean |alpha| loaded" in line and "alpha 0.1 " not in line, line


def test_info_prints_the_frame_rate_of_a_processor_sampling_by_fps(info_models, capsys):
    status, stdout, stderr = run_cli(capsys, "info", info_models["fps"])
    assert status == 0, stderr
    line = next(line for line in stdout.splitlines() if line.startswith("processor:"))
    assert line.startswith("processor:        2 frames a second, ") and "None" not in line, line


def test_info_says_where_the_processor_feeds_other_frames_than_the_model_was_made_for(info_models, capsys):
    """A processor of 8 frames at 48x48 beside a model made for 4 frames of 32x32 runs, resampled and interpolated,
    with nothing said by classify: info says so under the processor line. A processor that fits says nothing."""
    status, stdout, stderr = run_cli(capsys, "info", info_models["other frames and size"])
    assert status == 0, stderr
    lines = stdout.splitlines()
    at = next(index for index, line in enumerate(lines) if line.startswith("processor:"))
    assert lines[at + 1:] == [
        "                  (the model was made for 4 frames: it runs on 8, its temporal embedding resampled)",
        "                  (the CLIP's frames are 32x32: it runs on 48x48, its position embeddings interpolated)"]
    for fitting in ("alpha zero", "fps"):
        status, stdout, stderr = run_cli(capsys, "info", info_models[fitting])
        assert status == 0 and "made for" not in stdout and "interpolated" not in stdout, stdout


def test_info_prints_heads_only_for_adapters_that_attend(info_models, capsys):
    status, stdout, stderr = run_cli(capsys, "info", info_models["cascade"])
    assert status == 0, stderr
    line = next(line for line in stdout.splitlines() if line.startswith("temporal adapter:"))
    assert "cascade" in line and "head" not in line and "convolution" in line, line
    status, stdout, stderr = run_cli(capsys, "info", info_models["cascade_attention"])
    line = next(line for line in stdout.splitlines() if line.startswith("temporal adapter:"))
    assert "cascade_attention" in line and "1 head" in line, line


def test_info_on_a_plain_clip_describes_the_processor_the_wrap_makes(tiny_clip_dir, capsys):
    status, stdout, stderr = run_cli(capsys, "info", tiny_clip_dir)
    assert status == 0, stderr
    assert "none saved in this folder" not in stdout and "need one" not in stdout
    assert "processor:        8 frames, segment sampling, 1 clip(s) x 1 crop(s), crop 32x32" in stdout
    assert "made from the CLIP's image processor" in stdout


def test_info_prints_why_a_saved_processor_does_not_load(info_models, capsys):
    status, stdout, stderr = run_cli(capsys, "info", info_models["damaged processor"])
    assert status == 0, stderr
    line = next(line for line in stdout.splitlines() if line.startswith("processor:"))
    assert "none saved" not in line and "could not be loaded" in line and "processor_config.json" in line, line


# ----------------------------------------------------------------------------------------------------------------
# 4. One-line errors naming the right argument, checked before the model runs
# ----------------------------------------------------------------------------------------------------------------
def test_a_file_or_unknown_hub_id_is_reported_under_its_own_argument(tmp_path, capsys):
    a_file = tmp_path / "model.bin"
    a_file.write_bytes(b"x")
    status, _, stderr = run_cli(capsys, "info", a_file)
    assert status == 1 and f"omniclip: error: {a_file} is a file" in stderr and "--model" not in stderr, stderr
    status, _, stderr = run_cli(capsys, "init", "--clip", a_file, "--out", tmp_path / "new")
    assert status == 1 and f"--clip {a_file} is a file" in stderr and "--model" not in stderr, stderr
    status, _, stderr = run_cli(capsys, "init", "--clip", "no-such-owner/no-such-clip", "--out", tmp_path / "new2")
    assert status == 1 and "omniclip: error: --clip no-such-owner/no-such-clip" in stderr, stderr
    assert "--model" not in stderr


@pytest.mark.parametrize(
    "device, phrase",
    [
        ("tpu", "--device tpu is not a device name torch knows"),
        pytest.param("cuda", "--device cuda: no CUDA GPU is available", marks=pytest.mark.skipif(
            torch.cuda.is_available(), reason="this machine has a GPU")),
        ("cuda:99", "--device cuda:99"),
    ],
)
@pytest.mark.parametrize("command", ["classify", "explain"])
def test_a_device_this_machine_lacks_is_one_line_before_loading(
    tiny_omniclip_dir, tmp_path, capsys, monkeypatch, command, device, phrase
):
    import transformers

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before --device was checked")

    monkeypatch.setattr(transformers, "pipeline", no_loading)
    out = ["--out", tmp_path / "a.png"] if command == "explain" else []
    status, _, stderr = run_cli(
        capsys, command, VIDEO, "--model", tiny_omniclip_dir, "--labels", "a,b", "--device", device, *out
    )
    lines = stderr.strip().splitlines()
    assert status == 1 and len(lines) == 1 and lines[0].startswith("omniclip: error: "), stderr
    assert phrase in lines[0] and "NVIDIA driver" not in lines[0] and "Expected one of" not in lines[0]


def test_explain_refuses_an_out_path_that_is_a_folder_before_the_model_runs(
    tiny_omniclip_dir, tmp_path, capsys, monkeypatch
):
    import omniclip_hf.cli

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(omniclip_hf.cli, "load_pipeline", no_loading)
    folder = tmp_path / "picture.png"
    folder.mkdir()
    status, _, stderr = run_cli(
        capsys, "explain", VIDEO, "--model", tiny_omniclip_dir, "--labels", "a,b", "--out", folder
    )
    assert status == 1 and f"--out {folder} is a folder" in stderr and "Errno" not in stderr, stderr


def test_the_png_is_written_atomically(tmp_path, monkeypatch):
    from omniclip_hf.attention_figure import render_explanation, save_png_atomically

    flat, peaked = near_uniform_and_peaked()
    figure = render_explanation(explanation_of([flat], [peaked]), tile_size=32)
    target = tmp_path / "attention.png"
    target.write_bytes(b"the previous picture")

    def failing_save(self, fp, format=None, **params):
        fp.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(Image.Image, "save", failing_save)
        with pytest.raises(OSError, match="No space left"):
            save_png_atomically(figure, target)
    assert target.read_bytes() == b"the previous picture"  # untouched, and no partial file left beside it
    assert sorted(path.name for path in tmp_path.iterdir()) == ["attention.png"]

    save_png_atomically(figure, target)
    assert Image.open(target).size == figure.size
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    assert sorted(path.name for path in tmp_path.iterdir()) == ["attention.png"]


# ----------------------------------------------------------------------------------------------------------------
# 5. Pixels no patch covers, and the header
# ----------------------------------------------------------------------------------------------------------------
def test_maps_are_drawn_only_over_the_pixels_the_patches_cover():
    from omniclip_hf.attention_figure import heatmap_overlay

    # A 20x20 frame and 8-pixel patches: a 2x2 grid covering the top-left 16x16; 4 pixels right and below unread.
    frame = np.full((20, 20, 3), 100, dtype=np.uint8)
    attention = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    drawn = np.asarray(heatmap_overlay(frame, attention, (20, 20), patch_size=8)).astype(int)
    base = np.asarray(Image.fromarray(frame).resize((20, 20), Image.BILINEAR)).astype(int)
    np.testing.assert_array_equal(drawn[16:, :], base[16:, :])  # the strip below: the frame alone
    np.testing.assert_array_equal(drawn[:, 16:], base[:, 16:])  # the strip on the right
    assert np.abs(drawn[:16, :16] - base[:16, :16]).mean() > 20  # the covered part has the map
    # The map's corners sit on the covered part's corners (the lowest weight top left, the highest bottom right).
    heat_only = np.asarray(heatmap_overlay(frame, attention, (20, 20), value_range=(0.0, 0.4), patch_size=8))
    assert heat_only[0, 0, 2] > heat_only[0, 0, 0] and heat_only[15, 15, 0] > heat_only[15, 15, 2]


def test_the_whole_header_fits_a_narrow_figure():
    from PIL import ImageDraw, ImageFont

    from omniclip_hf.attention_figure import HEADER_HEIGHT, ROW_LABEL_WIDTH, render_explanation

    flat, peaked = near_uniform_and_peaked()
    explanation = explanation_of([flat, peaked], [peaked, flat])
    explanation.clip_predictions = [{"label": "applying eye makeup", "score": 0.5}]
    explanation.omniclip_predictions = [{"label": "juggling balls", "score": 0.6}]
    title = "a_rather_long_video_file_name_from_a_dataset.mp4"
    figure = render_explanation(explanation, tile_size=16, title=title)
    assert figure.width == ROW_LABEL_WIDTH + 2 * 16  # the tiles set the width; the header wraps into it
    header = figure.height - 3 * 16
    assert header > HEADER_HEIGHT  # it was cut at two lines' height (and at the right edge)

    from omniclip_hf.attention_figure import header_text, wrap_header

    font = ImageFont.load_default()
    draw = ImageDraw.Draw(figure)
    text = header_text(explanation, title)
    lines = wrap_header(text, figure.width - 8, draw, font)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")  # nothing dropped
    assert all(draw.textlength(line, font=font) <= figure.width - 8 for line in lines)
    assert len(lines) > 2 and header >= 13 * len(lines)  # grown to hold every line
    # The header's text is drawn: dark pixels down to its last line, none in the tiles' rows beside the labels.
    pixels = np.asarray(figure.convert("L"))
    assert (pixels[header - 13 : header, :] < 128).any()
