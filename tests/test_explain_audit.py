"""`omniclip explain` and `explain_video` after the explain/info/classify audit: scores equal to the pipeline's over
every view, frames shown as the processor made them, a floor on the shared colour scale, label truncation warned,
a pixel budget for the figure, frame indices and ranked scores, short videos and the package's logged warnings
printed as the command's warnings, and a damaged processor named for what it is."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from .test_explain_and_info import LABELS, VIDEO, explanation_of, run_cli, save_model_folder


@pytest.fixture(scope="module")
def multi_view_dir(tiny_omniclip_dir, tmp_path_factory):
    """The tiny OmniCLIP saved with a processor making 2 temporal clips x 3 spatial crops of each video."""
    from omniclip_hf import OmniCLIPModel

    model = OmniCLIPModel.from_pretrained(tiny_omniclip_dir)
    return save_model_folder(tmp_path_factory.mktemp("multi-view"), model, num_temporal_clips=2, num_spatial_crops=3)


def write_video(path, num_frames: int, rate: int = 10):
    """An mp4 of `num_frames` 64x48 frames of a square moving right."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(num_frames):
            image = np.zeros((48, 64, 3), dtype=np.uint8)
            image[16:32, 4 * index : 4 * index + 16] = (220, 40, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# ----------------------------------------------------------------------------------------------------------------
# 1.1 The scores are classify's: averaged over every view the processor makes
# ----------------------------------------------------------------------------------------------------------------
def test_explain_scores_equal_the_pipelines_over_every_view(multi_view_dir):
    from transformers import pipeline

    from omniclip_hf.attention_figure import header_text
    from omniclip_hf.attention_maps import explain_video

    classifier = pipeline("zero-shot-video-classification", model=str(multi_view_dir), device="cpu")
    labels = [*LABELS, "juggling balls"]
    expected = {p["label"]: p["score"] for p in classifier(str(VIDEO), candidate_labels=labels)}
    explanation = explain_video(classifier.model, classifier.video_processor, str(VIDEO), labels, classifier.tokenizer)
    scores = {p["label"]: p["score"] for p in explanation.omniclip_predictions}
    assert scores == pytest.approx(expected, abs=1e-5)
    assert explanation.num_views == 6 and explanation.shown_view == "clip 1/2, centre crop"
    header = header_text(explanation, "clip.avi")
    assert "scores of 6 views, maps of clip 1/2, centre crop" in header


@pytest.mark.parametrize("folder", ["tiny_omniclip_dir", "multi_view_dir"])
def test_explain_prints_classifys_table(folder, request, tmp_path, capsys):
    """explain printed no scores; with a multi-view processor its scores were one view's, not classify's."""
    arguments = ("--model", request.getfixturevalue(folder), "--labels", ",".join(LABELS))
    status, classified, stderr = run_cli(capsys, "classify", VIDEO, *arguments)
    assert status == 0, stderr
    status, explained, stderr = run_cli(capsys, "explain", VIDEO, *arguments, "--out", tmp_path / "scores.png")
    assert status == 0, stderr
    # classify's rows, numbers included, appear as they are in explain's output, as one block in classify's order
    for row in classified.strip().splitlines():
        assert row in explained.splitlines(), (row, explained)
    assert classified.strip() in explained, explained
    if folder == "multi_view_dir":
        assert "the scores average the logits of 6 views" in explained


# ----------------------------------------------------------------------------------------------------------------
# 1.2 Frames shown as the processor made them: only its own steps undone
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("settings", [{"do_normalize": False}, {}, {"do_rescale": False, "do_normalize": False}])
def test_frames_are_drawn_in_their_own_colours_whatever_the_processor_undid(tiny_omniclip_dir, settings):
    from omniclip_hf import OmniCLIPModel, OmniCLIPVideoProcessor
    from omniclip_hf.attention_maps import explain_video

    model = OmniCLIPModel.from_pretrained(tiny_omniclip_dir).eval()
    processor = OmniCLIPVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                       **settings)
    colour = np.array([200, 40, 90], dtype=np.uint8)
    video = np.broadcast_to(colour, (4, 32, 32, 3)).copy()
    explanation = explain_video(model, processor, video)
    assert np.abs(explanation.frames.astype(int) - colour).max() <= 1, explanation.frames[0, 0, 0]


# ----------------------------------------------------------------------------------------------------------------
# 1.4 A flat map is not drawn as "attention everywhere"
# ----------------------------------------------------------------------------------------------------------------
def test_flat_maps_are_drawn_cool_not_saturated_red():
    from omniclip_hf import attention_maps
    from omniclip_hf.attention_figure import HEADER_HEIGHT, ROW_LABEL_WIDTH, describe_explanation, render_explanation

    flat = np.full((4, 4), 1 / 16, dtype=np.float32)
    explanation = explanation_of([flat], [flat])
    tile = 64
    pixels = np.asarray(render_explanation(explanation, tile_size=tile)).astype(int)
    heat = pixels[HEADER_HEIGHT + tile : HEADER_HEIGHT + tile + tile // 2, ROW_LABEL_WIDTH : ROW_LABEL_WIDTH + tile]
    mean = heat.reshape(-1, 3).mean(axis=0)
    assert mean[2] > mean[0] + 30, mean  # more blue than red: not "attention everywhere"
    assert explanation.shared_colour_range == (0.0, pytest.approx(attention_maps.FLAT_MAP_FLOOR / 16))
    assert "the maps are flat" in describe_explanation(explanation)[0]


# ----------------------------------------------------------------------------------------------------------------
# 9. explain_video tokenizing the labels itself warns about truncation as the pipeline does
# ----------------------------------------------------------------------------------------------------------------
def test_explain_video_warns_about_a_label_cut_to_clips_context(tiny_omniclip_dir, clip_tokenizer):
    from omniclip_hf import OmniCLIPModel, OmniCLIPVideoProcessor
    from omniclip_hf.attention_maps import explain_video

    model = OmniCLIPModel.from_pretrained(tiny_omniclip_dir).eval()
    processor = OmniCLIPVideoProcessor.from_pretrained(tiny_omniclip_dir)
    long_label = "a person " + "very " * 80 + "slowly juggling"
    with pytest.warns(UserWarning, match="truncated to its first 77 tokens"):
        explain_video(model, processor, str(VIDEO), [long_label, "yoga"], clip_tokenizer)
    with pytest.raises(ValueError, match="their prompts differ, but truncated"), pytest.warns(UserWarning):
        explain_video(model, processor, str(VIDEO), [long_label, long_label + " fast"], clip_tokenizer)


# ----------------------------------------------------------------------------------------------------------------
# 8. The figure's pixels are bounded, not only its tiles
# ----------------------------------------------------------------------------------------------------------------
def test_a_figure_over_the_pixel_budget_is_refused_naming_the_tile_size_and_frames():
    from omniclip_hf.attention_figure import MAX_FIGURE_PIXELS, explanation_figure_size, render_explanation

    maps = np.full((21, 2, 2), 0.25, dtype=np.float32)
    explanation = explanation_of(maps, maps, frame_size=(8, 8))
    width, height = explanation_figure_size(21, 8, 8, 1024)
    assert width * height > MAX_FIGURE_PIXELS
    with pytest.raises(ValueError, match=r"tile_size=1024 draws 21 frames .* use \d+ or less"):
        render_explanation(explanation, tile_size=1024)
    assert render_explanation(explanation, tile_size=16).size == explanation_figure_size(21, 8, 8, 16)


# ----------------------------------------------------------------------------------------------------------------
# 6/7. Frame index and time on each frame tile; ranked scores on stdout
# ----------------------------------------------------------------------------------------------------------------
def test_frame_tiles_carry_the_frame_index_and_time(tiny_omniclip_dir):
    from transformers import pipeline

    from omniclip_hf.attention_figure import HEADER_HEIGHT, ROW_LABEL_WIDTH, render_explanation
    from omniclip_hf.attention_maps import explain_video

    classifier = pipeline("zero-shot-video-classification", model=str(tiny_omniclip_dir), device="cpu")
    explanation = explain_video(classifier.model, classifier.video_processor, str(VIDEO))
    sampled = classifier.video_processor(str(VIDEO), return_metadata=True)["video_metadata"][0]
    assert explanation.frame_indices == sampled.frames_indices[0]
    assert explanation.frame_times == pytest.approx(sampled.timestamps[0])
    tile = 96
    pixels = np.asarray(render_explanation(explanation, tile_size=tile))
    with_caption = pixels[HEADER_HEIGHT + tile - 3, ROW_LABEL_WIDTH + 1]  # inside the white caption box
    assert tuple(with_caption) == (255, 255, 255)


# ----------------------------------------------------------------------------------------------------------------
# 1.3 A video with fewer frames than a clip samples is named
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["classify", "explain"])
def test_a_video_with_fewer_frames_than_sampled_is_warned(tiny_omniclip_dir, tmp_path, capsys, command):
    short = write_video(tmp_path / "one frame.mp4", num_frames=1)
    whole = write_video(tmp_path / "whole.mp4", num_frames=8)
    out = ("--out", tmp_path / "short.png") if command == "explain" else ()
    status, _, stderr = run_cli(capsys, command, short, "--model", tiny_omniclip_dir, "--labels", "a,b", *out)
    assert status == 0, stderr
    warning = f"omniclip: warning: {short} has 1 frame, fewer than the 4 the model samples"
    assert any(line.startswith(warning) for line in stderr.splitlines()), stderr
    status, _, stderr = run_cli(capsys, command, whole, "--model", tiny_omniclip_dir, "--labels", "a,b", *out)
    assert status == 0 and "fewer than" not in stderr, stderr


def test_only_a_video_whose_header_does_not_promise_a_clip_is_demuxed_for_the_short_video_check(tmp_path, monkeypatch):
    """The check demuxed every video once more before its decoding (an hour of video: seconds): a header counting
    enough frames that the decoder finds a clip's worth or refuses the file as truncated needs no demux."""
    from omniclip_hf import OmniCLIPVideoProcessor, cli_checks

    demuxed = []
    count_frames = cli_checks.frames_in_file
    monkeypatch.setattr(cli_checks, "frames_in_file", lambda path: demuxed.append(path.name) or count_frames(path))
    videos = [write_video(tmp_path / f"{count} frames.mp4", num_frames=count) for count in (1, 4, 5, 40)]
    with pytest.warns(UserWarning) as caught:  # 4 frames: 0.9 x 4 < 4, so demuxed; 4 are a whole clip, no warning
        cli_checks.warn_about_short_videos([str(video) for video in videos], OmniCLIPVideoProcessor(num_frames=4))
    assert [str(warning.message).split(" has ")[1] for warning in caught] == [
        "1 frame, fewer than the 4 the model samples: frames are repeated to fill the clip, so it is scored as a video "
        "that barely moves."]
    assert demuxed == ["1 frames.mp4", "4 frames.mp4"]
    demuxed.clear()
    cli_checks.warn_about_short_videos([str(videos[-1])], OmniCLIPVideoProcessor(num_frames=4, fps=2.0))  # by rate
    assert demuxed == ["40 frames.mp4"]


def test_a_header_promises_no_more_frames_than_the_decoder_holds_the_file_to():
    """What makes skipping the demux safe: a clip the header promises is there, or the decoder refuses the file as
    truncated, since the decoder's announced count (from the same header, with what the demux measured) is never
    lower than the one read from the header alone. Over the shared clips: MP4, AVI, MKV, WebM, a rotated one."""
    from omniclip_hf.video_decoding import MIN_PRESENT_SHARE, _first_video_stream, index_video_stream
    from omniclip_hf.video_sources import open_video_container
    from omniclip_hf import cli_checks

    checked = 0
    for video in sorted(VIDEO.parent.iterdir()):
        if not video.is_file() or video.suffix.lower() not in (".mp4", ".avi", ".mkv", ".webm", ".mov"):
            continue
        with open_video_container(str(video)) as container:
            index = index_video_stream(container, _first_video_stream(container, str(video)), str(video))
        promised = [count for count in (1, 8, 32, 300, 10_000) if cli_checks.header_promises_frames(video, count)]
        if promised:
            checked += 1
            assert index.num_announced is not None and MIN_PRESENT_SHARE * index.num_announced >= max(promised)
            assert index.num_frames >= max(promised), video.name
    assert checked >= 3


# ----------------------------------------------------------------------------------------------------------------
# 12. The package's logged warnings print as the command's warnings
# ----------------------------------------------------------------------------------------------------------------
def test_a_logged_package_warning_prints_with_the_commands_prefix(tiny_omniclip_dir, tmp_path, capsys):
    folder = shutil.copytree(tiny_omniclip_dir, tmp_path / "stale-code")
    (folder / "modeling_omniclip.py").write_text("# another version's code\n")
    status, stdout, stderr = run_cli(capsys, "classify", VIDEO, "--model", folder, "--labels", ",".join(LABELS))
    assert status == 0, stderr
    lines = [line for line in stderr.splitlines() if "holds another version's code" in line]
    assert len(lines) == 1 and lines[0].startswith("omniclip: warning: "), stderr


# ----------------------------------------------------------------------------------------------------------------
# Misc. A processor that does not load is named for why, as `omniclip info` does
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["classify", "explain"])
def test_a_malformed_processor_config_is_reported_for_what_it_is(tiny_omniclip_dir, tmp_path, capsys, command):
    folder = shutil.copytree(tiny_omniclip_dir, tmp_path / "bad-processor")
    (folder / "processor_config.json").write_text('{"video_processor": {')
    out = ("--out", tmp_path / "bad.png") if command == "explain" else ()
    status, stdout, stderr = run_cli(capsys, command, VIDEO, "--model", folder, "--labels", "a,b", *out)
    assert status == 1 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "not a valid JSON file" in lines[0] and "processor_config.json" in lines[0], stderr
