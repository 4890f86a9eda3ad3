"""The `omniclip` command (classify, info, explain), its error messages, and the attention maps behind `explain`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from .conftest import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared"
VIDEOS = SHARED / "videos"
HMDB51 = REPO_ROOT / "labels" / "hmdb51.txt"  # shipped with the repository
SHORT_MP4 = VIDEOS / "mmaction2_rawvideo_part_0.mp4"  # 32 frames at 30 fps
WEBM = VIDEOS / "moviepy_big_buck_bunny_432_433.webm"  # 24 frames at 24 fps
AVI = VIDEOS / "mmaction2_tests_test.avi"


def start_cli(*arguments, stdout=subprocess.PIPE) -> subprocess.Popen:
    """Starts `python -m omniclip_launcher ...` (what the `omniclip` console script runs) in a fresh process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "omniclip_launcher", *map(str, arguments)]
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)


def start_cli_into_closed_pipe(*arguments) -> subprocess.Popen:
    """Starts the command with stdout a pipe whose reader has gone, as `omniclip ... | head -1` after one line."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return start_cli(*arguments, stdout=write_end)
    finally:
        os.close(write_end)


@pytest.fixture(scope="module")
def cli_runs(tiny_omniclip_dir, tmp_path_factory):
    """
    Every end-to-end run of the command, started together (each pays the import of torch and transformers, so they
    overlap), then waited for: name -> (exit status, stdout, stderr).
    """
    scratch = tmp_path_factory.mktemp("cli")
    broken = scratch / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 but then nothing a decoder can use" * 50)
    model = tiny_omniclip_dir
    runs = {
        "table": start_cli("classify", SHORT_MP4, AVI, "--model", model, "--labels-file", HMDB51, "--top-k", "3"),
        "json": start_cli(
            "classify", SHORT_MP4, WEBM, "--model", model, "--labels", "archery, juggling balls,yoga",
            "--json", "--segment-seconds", "0.5", "--batch-size", "2",
        ),
        "undecodable video": start_cli(
            "classify", broken, SHORT_MP4, "--model", model, "--labels", "archery,yoga", "--batch-size", "2"
        ),
        "closed pipe": start_cli_into_closed_pipe(
            "classify", SHORT_MP4, AVI, "--model", model, "--labels", "archery; juggling balls", "--json"
        ),
    }
    results = {}
    for name, process in runs.items():
        stdout, stderr = process.communicate(timeout=600)
        results[name] = (process.returncode, stdout, stderr)
    return results


@pytest.fixture(scope="module")
def classifier(tiny_omniclip_dir):
    import omniclip_hf  # noqa: F401
    from transformers import pipeline

    return pipeline("zero-shot-video-classification", model=str(tiny_omniclip_dir), device="cpu")


def hmdb51_natural_labels():
    from omniclip_hf import label_to_text, load_label_names

    return [label_to_text(name) for name in load_label_names(HMDB51)]


# ----------------------------------------------------------------------------------------------------------------
# classify, end to end
# ----------------------------------------------------------------------------------------------------------------
def test_classify_prints_a_table_of_the_pipeline_predictions(cli_runs, classifier):
    status, stdout, stderr = cli_runs["table"]
    assert status == 0, stderr
    lines = stdout.strip().splitlines()
    assert lines[0].split() == ["video", "rank", "score", "label"]
    assert len(lines) == 1 + 2 * 3
    labels = hmdb51_natural_labels()
    assert "brush hair" in labels and not any("_" in label for label in labels)
    for block, video in zip((lines[1:4], lines[4:7]), (SHORT_MP4, AVI)):
        assert block[0].startswith(str(video))
        expected = classifier(str(video), candidate_labels=labels, top_k=3)
        for rank, (line, prediction) in enumerate(zip(block, expected), start=1):
            columns = line[len(str(video)) :].split(maxsplit=2)
            assert columns == [str(rank), f"{prediction['score']:.4f}", prediction["label"]]
    assert "Traceback" not in stderr


def test_classify_json_lines_with_segments(cli_runs, classifier):
    status, stdout, stderr = cli_runs["json"]
    assert status == 0, stderr
    records = [json.loads(line) for line in stdout.strip().splitlines()]
    assert [record["video"] for record in records] == [str(SHORT_MP4), str(WEBM)]
    labels = ["archery", "juggling balls", "yoga"]
    for record in records:
        expected = classifier(record["video"], candidate_labels=labels, segment_seconds=0.5)
        assert len(record["segments"]) == len(expected)
        for segment, window in zip(record["segments"], expected):
            assert (segment["start"], segment["end"]) == pytest.approx((window["start"], window["end"]))
            assert [p["label"] for p in segment["labels"]] == [p["label"] for p in window["labels"]]  # all 3 (< 5)
            assert sum(p["score"] for p in segment["labels"]) == pytest.approx(1.0, abs=1e-5)
    assert records[0]["segments"][-1]["end"] == pytest.approx(32 / 30)


def test_undecodable_video_is_one_error_line_and_the_others_still_run(cli_runs):
    status, stdout, stderr = cli_runs["undecodable video"]
    assert status == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("omniclip: error: ") and "broken.mp4" in lines[0] and "Could not open video" in lines[0]
    assert "Traceback" not in stderr
    table = stdout.strip().splitlines()
    assert len(table) == 1 + 2 and table[1].startswith(str(SHORT_MP4))


def test_output_into_a_closed_pipe_ends_quietly(cli_runs):
    status, _, stderr = cli_runs["closed pipe"]
    assert status == 141  # 128 + SIGPIPE, as a Unix tool stopped by `| head`
    assert stderr == "", stderr  # no "error: Broken pipe", no "Exception ignored" at exit


def test_console_script_runs_the_launcher():
    import tomllib

    from omniclip_launcher import main

    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["omniclip"] == "omniclip_launcher:main" and callable(main)


def test_help_and_usage_errors_import_neither_torch_nor_transformers():
    # `omniclip --help` must answer at once: the launcher parses before the package (and torch) loads.
    program = (
        "import sys, omniclip_launcher\n"
        "for argv in (['--help'], ['classify', '--help'], ['classify', 'x.mp4']):\n"
        "    try:\n"
        "        omniclip_launcher.main(argv)\n"
        "    except SystemExit as exit:\n"
        "        print('exit', exit.code)\n"
        "heavy = ('torch', 'transformers', 'omniclip_hf.modeling_omniclip')\n"
        "print(sorted(name for name in heavy if name in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    outcomes = [line for line in result.stdout.splitlines() if line.startswith(("exit", "["))]
    assert outcomes == ["exit 0", "exit 0", "exit 2", "[]"], result.stdout + result.stderr
    assert "--labels-file" in result.stdout and "the following arguments are required: --model" in result.stderr


# ----------------------------------------------------------------------------------------------------------------
# In-process: more argument errors, info, explain
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arguments, phrases",
    [
        ([SHORT_MP4, "nope.mp4", "--labels", "a,b"], ["video file not found: nope.mp4"]),
        ([SHORT_MP4, "--labels", ""], ["--labels is empty"]),
        ([SHORT_MP4, "--labels", "a,,b"], ["labels[1] is an empty string"]),
        ([SHORT_MP4, "--labels", "run,jump,Run"], ["the labels have duplicates", "'run' = 'Run'"]),
        ([SHORT_MP4, "--labels-file", "missing.txt"], ["label file missing.txt does not exist"]),
        ([SHORT_MP4, "--labels", "a,b", "--top-k", "3"], ["--top-k 3 is out of range"]),
        ([SHORT_MP4, "--labels", "a,b", "--template", "no placeholder"], ["--template='no placeholder' must be"]),
        ([SHORT_MP4, "--labels", "a,b", "--segment-seconds", "0"], ["--segment-seconds 0.0 is invalid"]),
        ([SHORT_MP4, "--labels", "a,b", "--model", "no-model"], ["model folder no-model does not exist"]),
        # Silent certainties: one label always scores 1.0.
        ([SHORT_MP4, "--labels", "yoga"], ["--labels 'yoga' is one label", "always scores 1.0"]),
        ([SHORT_MP4, "--labels", "yoga archery"], ["--labels 'yoga archery' is one label"]),
        ([SHORT_MP4, "--labels", "labels/hmdb51.txt"], ["looks like a label file", "--labels-file labels/hmdb51.txt"]),
        ([SHORT_MP4, "--labels", str(HMDB51)], ["looks like a label file", f"--labels-file {HMDB51}"]),
        ([SHORT_MP4, "--labels-file", "{one label file}"], ["has one label ('brush_hair')", "always scores 1.0"]),
        ([SHORT_MP4, "--labels-file", "{binary file}"], ["binary.txt is not UTF-8 text"]),
        ([SHORT_MP4, "--labels", "Yoga,yoga"], ["the labels have duplicates: 'Yoga' = 'yoga'"]),
        # Alike only to the model's tokenizer: refused once, after loading it (it was one line per video).
        ([SHORT_MP4, SHORT_MP4, "--labels", "t-shirt folding,t - shirt folding"],
         ["the labels have duplicates", "'t-shirt folding' = 't - shirt folding'"]),
        (["{image}", "--labels", "a,b"], ["picture.jpg is a JPEG image, not a video"]),
        (["{empty folder}", "--labels", "a,b"], ["not a video file (an empty folder): ", "empty_class"]),
        ([SHORT_MP4, "--labels", "a,b", "--model", "{no tokenizer}"], ["holds no tokenizer files (tokenizer.json"]),
        ([SHORT_MP4, "--labels", "a,b", "--model", "{no processor}"], ["holds no processor settings"]),
    ],
)
def test_errors_print_one_line_and_exit_non_zero(tiny_omniclip_dir, bad_inputs, capsys, arguments, phrases):
    from omniclip_hf.cli import main

    arguments = [bad_inputs.get(str(argument), argument) for argument in arguments]
    # main() is what the console script runs (and exits with); arguments given later win over --model here.
    status = main(["classify", "--model", str(tiny_omniclip_dir), *map(str, arguments)])
    captured = capsys.readouterr()
    assert status == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omniclip: error: ")
    for phrase in phrases:
        assert phrase in lines[0]
    assert "Traceback" not in captured.err
    assert captured.out == ""


@pytest.fixture(scope="module")
def bad_inputs(tiny_omniclip_dir, tmp_path_factory):
    """Placeholders of the error cases -> files: a one-label file, a binary file, an image, incomplete models."""
    import shutil

    scratch = tmp_path_factory.mktemp("bad-inputs")
    (scratch / "one.txt").write_text("brush_hair\n")
    (scratch / "binary.txt").write_bytes(bytes(range(256)) * 8)
    Image.new("RGB", (64, 48), "red").save(scratch / "picture.jpg")
    (scratch / "empty_class").mkdir()
    folders = {}
    for name, removed in (("no tokenizer", ["tokenizer.json", "tokenizer_config.json"]),
                          ("no processor", ["processor_config.json"])):
        folder = scratch / name.replace(" ", "_")
        shutil.copytree(tiny_omniclip_dir, folder)
        for file_name in removed:
            (folder / file_name).unlink()
        folders[f"{{{name}}}"] = folder
    return {
        "{one label file}": scratch / "one.txt",
        "{binary file}": scratch / "binary.txt",
        "{image}": scratch / "picture.jpg",
        "{empty folder}": scratch / "empty_class",
        **folders,
    }


@pytest.mark.parametrize(
    "text, labels",
    [
        ("archery, juggling balls,yoga", ["archery", "juggling balls", "yoga"]),
        ("yoga; archery", ["yoga", "archery"]),  # not one label "yoga; archery" scored 1.0
        ("yoga;archery, swimming", ["yoga", "archery", "swimming"]),
        ("yoga\narchery\n", None),  # a trailing separator leaves an empty label: an error, not a silent drop
    ],
)
def test_labels_split_on_commas_semicolons_and_line_breaks(text, labels):
    from omniclip_hf.cli import CommandError, read_labels

    if labels is None:
        with pytest.raises(CommandError, match=r"labels\[2\] is an empty string"):
            read_labels(text, None)
    else:
        assert read_labels(text, None) == labels


def test_debug_raises_with_the_traceback(tiny_omniclip_dir):
    from omniclip_hf.cli import main

    with pytest.raises(Exception, match="model folder no-model does not exist"):
        main(["classify", str(SHORT_MP4), "--model", "no-model", "--labels", "a,b", "--debug"])


def test_info_summarises_the_model(tiny_omniclip_dir, capsys):
    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.cli import main

    assert main(["info", str(tiny_omniclip_dir)]) == 0
    out = capsys.readouterr().out
    model = OmniCLIPModel.from_pretrained(tiny_omniclip_dir)
    trainable = model.num_trainable_parameters()
    frozen = sum(p.numel() for p in model.clip.parameters())
    assert f"{trainable:,} trainable, {frozen:,} frozen" in out
    assert "3 layers, width 64, patch 8, image 32" in out
    assert "frames:           4" in out and "'a video of {} action'" in out
    assert "processor:        4 frames" in out

    assert main(["info", str(tiny_omniclip_dir / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_explain_writes_a_png_of_the_expected_size(tiny_omniclip_dir, tmp_path, capsys):
    from omniclip_hf.attention_figure import HEADER_HEIGHT, ROW_LABEL_WIDTH
    from omniclip_hf.cli import main

    out = tmp_path / "attention.png"
    arguments = ["explain", str(AVI), "--model", str(tiny_omniclip_dir), "--labels", "applying eye makeup,archery"]
    assert main([*arguments, "--out", str(out), "--tile-size", "48"]) == 0
    assert "wrote" in capsys.readouterr().out
    image = Image.open(out)
    assert image.format == "PNG"
    # 4 frames of 32x32 crops at 48 px a tile: a row-name column, a header line, then 3 rows of 4 tiles.
    assert image.size == (ROW_LABEL_WIDTH + 4 * 48, HEADER_HEIGHT + 3 * 48)
    pixels = np.asarray(image.convert("RGB")).astype(int)
    rows = [pixels[HEADER_HEIGHT + r * 48 : HEADER_HEIGHT + (r + 1) * 48, ROW_LABEL_WIDTH:] for r in range(3)]
    assert all(row.std() > 5 for row in rows)  # every row is drawn
    assert np.abs(rows[1] - rows[2]).mean() > 1  # CLIP's and OmniCLIP's heat maps differ

    assert main([*arguments, "--out", str(tmp_path / "no" / "such" / "folder.png")]) == 1
    assert "does not exist" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------
# Attention maps
# ----------------------------------------------------------------------------------------------------------------
def test_clip_attention_maps_equal_clips_own_attention_weights(tiny_clip):
    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.attention_maps import clip_attention_maps

    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=3).eval()
    videos = torch.randn(1, 3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    maps, _ = clip_attention_maps(model, videos)
    assert maps.shape == (3, 4, 4)
    model.clip.set_attn_implementation("eager")  # eager attention returns its weights
    with torch.no_grad():
        attentions = model.clip.vision_model(pixel_values=videos[0], output_attentions=True).attentions
    expected = attentions[-1][:, :, 0, 1:].mean(dim=1)  # last layer, CLS query, patch keys, mean over heads
    torch.testing.assert_close(maps.reshape(3, -1), expected, atol=1e-6, rtol=1e-5)


def test_untrained_omniclip_without_prompt_tokens_attends_like_clip(tiny_clip):
    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.attention_maps import clip_attention_maps, omniclip_attention_maps

    videos = torch.randn(1, 3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    # Untrained adapters add zero; without SPG prompt tokens OmniCLIP's last layer sees CLIP's tokens.
    plain = OmniCLIPModel.from_clip(tiny_clip, num_frames=3, use_spg=False).eval()
    clip_maps, _ = clip_attention_maps(plain, videos)
    omniclip_maps, _ = omniclip_attention_maps(plain, videos)
    torch.testing.assert_close(omniclip_maps, clip_maps, atol=1e-5, rtol=1e-4)
    # Prompt tokens are keys too: the patches then share the CLS attention with them.
    with_prompts = OmniCLIPModel.from_clip(tiny_clip, num_frames=3).eval()
    prompted_maps, _ = omniclip_attention_maps(with_prompts, videos)
    assert bool((prompted_maps.sum(dim=(1, 2)) < 0.999).all())
