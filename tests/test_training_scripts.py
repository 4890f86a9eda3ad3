"""The training scripts' first-hour errors and messages: one line, before the model loads, naming the option."""

from __future__ import annotations

import json
import re
import shutil
import sys
from types import SimpleNamespace

import pytest

from omniclip_hf.training import data as data_module
from omniclip_hf.training.data import load_video_dataset
from omniclip_hf.training.loop import check_inputs_exist, parse_training_options
from omniclip_hf.training.publishing import publish_model

from .conftest import REPO_ROOT
from .test_training import motion_data, run, train_command  # noqa: F401 (fixture)

TRAIN = [sys.executable, str(REPO_ROOT / "examples" / "train.py")]
EVALUATE = [sys.executable, str(REPO_ROOT / "examples" / "evaluate.py")]


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


def test_a_mistyped_local_path_is_not_looked_up_on_the_hub(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)

    def no_hub(*args, **kwargs):
        raise AssertionError("looked up on the Hub")

    monkeypatch.setattr(data_module, "load_hub_dataset", no_hub)
    with pytest.raises(FileNotFoundError, match=r"^data/nothere: no such folder or annotation file\.$"):
        load_video_dataset("data/nothere")


@pytest.mark.parametrize("launcher", ["python", "accelerate launch -q"])
def test_a_recipe_with_missing_data_fails_before_the_model_loads(tiny_clip_dir, launcher):
    recipe = REPO_ROOT / "examples" / "configs" / "hmdb51_supervised.yaml"
    command = TRAIN + ["--config", str(recipe), "--clip", str(tiny_clip_dir)]
    if launcher != "python":  # -q: the launcher adds no traceback of its own to the script's exit status
        command = [sys.executable, "-m", "accelerate.commands.launch", "-q", "--config_file",
                   str(REPO_ROOT / "examples" / "accelerate_configs" / "single.yaml")] + command[1:]
    result = run(command)
    if launcher != "python":
        assert result.returncode == 1  # accelerate's launcher turns any failure into 1
        result.returncode = 2
    line = one_error_line(result)
    assert "--train_data" in line and "no such file or folder" in line and "hmdb51_supervised.yaml" in line


def test_clip_given_an_omniclip_folder_points_to_model(tiny_omniclip_dir, motion_data, tmp_path):
    train = run(TRAIN + ["--clip", str(tiny_omniclip_dir), "--train_data", str(motion_data / "train"),
                         "--labels_file", str(motion_data / "labels.txt"), "--output_dir", str(tmp_path / "t")])
    assert f"pass it as --model {tiny_omniclip_dir}" in one_error_line(train)
    evaluate = run(EVALUATE + ["--clip", str(tiny_omniclip_dir), "--eval_data", str(motion_data / "test")])
    assert f"pass it as --model {tiny_omniclip_dir}" in one_error_line(evaluate)


def test_train_help_shows_defaults_and_no_testing_aids():
    result = run(TRAIN + ["--help"])
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for option, default in (("--epochs", 30), ("--lr", 0.002), ("--batch_size", 32), ("--seed", 42)):
        metavar = option[2:].upper()
        assert re.search(rf"{option} {metavar}(, --[\w-]+ {metavar})? \(default: {default}\)", text), option
    assert "trains and evaluates in full" in text  # --dry_run says what it does
    assert "Frames per clip; default: the --model folder's own, or 8 with --clip." in text
    assert "kill" not in text.lower() and "seen_indices" not in text and "Testing aid" not in text


def test_evaluate_says_where_it_wrote_and_keeps_the_last_output(tiny_omniclip_dir, motion_data, tmp_path):
    command = EVALUATE + ["--model", str(tiny_omniclip_dir), "--eval_data", str(motion_data / "test"),
                          "--num_clips", "1", "--num_crops", "1", "--num_workers", "0",
                          "--output_dir", str(tmp_path / "eval")]
    first = run(command)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"wrote {tmp_path / 'eval' / 'metrics.json'}" in first.stdout
    (tmp_path / "eval" / "metrics.json").write_text('{"mine": 1}')
    second = run(command)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"wrote {tmp_path / 'eval-2' / 'metrics.json'}" in second.stdout
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == {"mine": 1}
    assert json.loads((tmp_path / "eval-2" / "metrics.json").read_text())["num_videos"] == 8


def test_the_single_process_config_launches_without_accelerates_defaults_warning():
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(REPO_ROOT / "examples" / "accelerate_configs" / "single.yaml"), "-m", "json.tool", "--help"]
    result = run(launch)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "json.tool" in result.stdout and "had defaults used instead" not in result.stderr + result.stdout


def test_the_launchers_mixed_precision_is_kept_and_fp16_on_a_cpu_refused(tiny_clip_dir, motion_data, tmp_path):
    """`--mixed_precision` defaulted to "no" and was passed to Accelerate, which let it beat the launcher's: every
    shipped config (bf16) trained in float32, and `metrics.json` said no."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(REPO_ROOT / "examples" / "accelerate_configs" / "single.yaml"), "--mixed_precision", "bf16"]
    result = run(launch + train_command(tiny_clip_dir, motion_data, tmp_path / "bf16", "--max_steps", "1")[1:])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "bf16" / "metrics.json").read_text())
    assert metrics["distributed"]["mixed_precision"] == "bf16" and metrics["options"]["mixed_precision"] is None

    fp16 = run(train_command(tiny_clip_dir, motion_data, tmp_path / "fp16", "--max_steps", "1",
                             "--mixed_precision", "fp16"))
    assert "--mixed_precision fp16 needs a GPU" in one_error_line(fp16)
    assert not (tmp_path / "fp16").exists()


@pytest.mark.parametrize("hub_id", ["bad id", "a/b/c", "me/"])
def test_a_hub_id_that_can_never_work_is_refused_before_training(hub_id):
    with pytest.raises(ValueError, match=rf"^--hub_model_id '{re.escape(hub_id)}' is not a Hub repository id"):
        parse_training_options(["--clip", "x", "--train_data", "y", "--push_to_hub", "--hub_model_id", hub_id])


def test_a_license_is_checked_before_training_and_needs_an_upload():
    """train.py had no --license: its cards said `other` whatever the user meant to publish under."""
    base = ["--clip", "x", "--train_data", "y", "--hub_model_id", "me/tiny"]
    assert parse_training_options(base + ["--dry_run", "--license", "mit"]).license == "mit"
    assert parse_training_options(base + ["--dry_run"]).license is None
    with pytest.raises(ValueError, match=r"^--license 'Apache 2\.0' is not a Hub license identifier"):
        parse_training_options(base + ["--push_to_hub", "--license", "Apache 2.0"])
    with pytest.raises(ValueError, match=r"^--license mit is the license of the model card that --push_to_hub \(or "
                                         r"--dry_run\) writes, and neither is given"):
        parse_training_options(base + ["--license", "mit"])


def test_an_adapter_only_upload_over_a_local_base_clip_is_refused(tiny_clip_dir, tiny_omniclip_dir, tmp_path):
    """Its config named the base CLIP by the local folder, which loads on no other machine."""
    options = parse_training_options(["--clip", str(tiny_clip_dir), "--train_data", "owner/data", "--adapter_only",
                                      "--dry_run", "--hub_model_id", "me/tiny"])
    with pytest.raises(ValueError, match=r"^--adapter_only with --push_to_hub/--dry_run names its base CLIP"):
        check_inputs_exist(options)
    from omniclip_hf import OmniCLIPModel

    OmniCLIPModel.from_pretrained(tiny_omniclip_dir).save_adapter(tmp_path / "adapter",
                                                                  base_clip_name_or_path=str(tiny_clip_dir))
    with pytest.raises(ValueError, match=r"holds only the trained adapters over the base CLIP .* a local folder"):
        publish_model(tmp_path / "adapter", SimpleNamespace(hub_model_id="me/tiny"), {}, dry_run=True,
                      dry_run_dir=tmp_path / "upload")
    assert not (tmp_path / "upload").exists()
    # Training on from that adapter (--model) would upload it over the same local base: refused before training too.
    options = parse_training_options(["--model", str(tmp_path / "adapter"), "--train_data", "owner/data",
                                      "--adapter_only", "--dry_run", "--hub_model_id", "me/tiny"])
    with pytest.raises(ValueError, match=rf"^--adapter_only .* here --model {re.escape(str(tmp_path / 'adapter'))}'s "
                                         rf"base, the local folder {re.escape(str(tiny_clip_dir))}, that no one"):
        check_inputs_exist(options)


def test_a_dry_run_replaces_only_an_earlier_dry_runs_folder(tiny_omniclip_dir, tmp_path):
    """`--dry_run_dir` was deleted without a look: the run's model/ or the whole run folder went."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_omniclip_dir, run_dir / "model")
    (run_dir / "metrics.json").write_text("{}")
    options = SimpleNamespace(hub_model_id="me/tiny")
    for target in (run_dir / "model", run_dir):
        with pytest.raises(ValueError, match=r"would replace the model folder .* it copies"):
            publish_model(run_dir / "model", options, {}, dry_run=True, dry_run_dir=target)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"exists and is not an earlier dry run's folder"):
        publish_model(run_dir / "model", options, {}, dry_run=True, dry_run_dir=mine)
    assert (mine / "notes.txt").read_text() == "keep me" and (run_dir / "model" / "config.json").exists()
    first = publish_model(run_dir / "model", options, {}, dry_run=True)  # the default: run/hub_upload
    second = publish_model(run_dir / "model", options, {}, dry_run=True)
    assert first == second == run_dir / "hub_upload" and (second / "config.json").exists()


@pytest.mark.parametrize("text, message", [
    ("batch_size: 4\n  lr: [1\n", r"is not valid YAML at line \d"),  # PyYAML's traceback named "<unicode string>"
    ("- a\n- b\n", r"must be a mapping of option: value lines, not a list"),  # "unknown options ['a', 'b']"
])
def test_a_recipe_yaml_cannot_read_is_one_line_naming_it(tmp_path, text, message):
    (tmp_path / "recipe.yaml").write_text(text)
    with pytest.raises(ValueError, match=rf"^--config {tmp_path / 'recipe.yaml'} {message}"):
        parse_training_options(["--config", str(tmp_path / "recipe.yaml"), "--clip", "x", "--train_data", "y"])


def test_eval_crops_other_than_one_or_three_are_refused_before_training():
    """`--eval_num_crops 2` failed only after the whole training run, as "no video could be evaluated"."""
    with pytest.raises(ValueError, match=r"^--eval_num_crops=2 is invalid: use 1 \(the centre\) or 3"):
        parse_training_options(["--clip", "x", "--train_data", "y", "--eval_num_crops", "2"])


@pytest.mark.parametrize("flags, message", [
    (["--num_crops", "2"], r"--num_crops=2 is invalid: use 1 \(the centre\) or 3"),
    (["--num_clips", "0"], r"--num_clips=0 is invalid: it must be >= 1"),
    (["--num_frames", "0"], r"--num_frames=0 is invalid"),  # was taken as the model's default
])
def test_evaluate_refuses_bad_view_counts_before_loading(tiny_omniclip_dir, motion_data, flags, message):
    result = run(EVALUATE + ["--model", str(tiny_omniclip_dir), "--eval_data", str(motion_data / "test"), *flags])
    assert re.match(rf"error: {message}", one_error_line(result))


def test_evaluate_points_a_clip_folder_to_clip_and_refuses_a_file_as_output_dir(tiny_clip_dir, tiny_omniclip_dir,
                                                                               motion_data, tmp_path):
    clip = run(EVALUATE + ["--model", str(tiny_clip_dir), "--eval_data", str(motion_data / "test")])
    assert f"pass it as --clip {tiny_clip_dir}" in one_error_line(clip)
    (tmp_path / "out").write_text("")
    file = run(EVALUATE + ["--model", str(tiny_omniclip_dir), "--eval_data", str(motion_data / "test"),
                           "--output_dir", str(tmp_path / "out")])
    assert f"--output_dir {tmp_path / 'out'} is a file" in one_error_line(file)


def test_an_fsdp_config_accelerate_runs_unsharded_is_warned_about(tiny_clip_dir, motion_data, tmp_path):
    """Accelerate places FSDP on GPUs only: on a CPU the shipped fsdp.yaml ran as plain data parallelism, unsaid."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(REPO_ROOT / "examples" / "accelerate_configs" / "fsdp.yaml"), "--num_processes", "1"]
    result = run(launch + train_command(tiny_clip_dir, motion_data, tmp_path / "run", "--max_steps", "1")[1:])
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if "the launch config asks for FSDP" in line]
    assert len(warnings) == 1 and "MULTI_CPU" in warnings[0] and "not sharded" in warnings[0], result.stderr[-3000:]
