"""Publishing a training run: `--overwrite_output_dir` leaves nothing of the earlier run to publish with the new
model, `examples/push_to_hub.py` refuses a run folder whose files disagree or are damaged (one line), and the model
card names the training set only when it is one, and no local path."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from omniclip_hf.training.checkpoints import earlier_run_outputs
from omniclip_hf.training.publishing import DRY_RUN_MARKER, build_model_card, publish_model

from .conftest import REPO_ROOT
from .test_training import motion_data, run, train_command  # noqa: F401 (fixture)
from .test_training_scripts import one_error_line

PUSH = [sys.executable, str(REPO_ROOT / "examples" / "push_to_hub.py")]


def push_to_hub(*argv: str) -> None:
    """examples/push_to_hub.py's main() in this process (a subprocess takes seconds to import torch)."""
    spec = importlib.util.spec_from_file_location("push_to_hub", PUSH[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(list(argv))


# ------------------------------------------------------------------------------------- 1: --overwrite_output_dir
def test_overwriting_a_run_leaves_none_of_its_results_beside_the_new_model(tiny_clip_dir, motion_data, tmp_path):
    """The earlier run's metrics.json, confusion matrix and dry-run upload survived an --overwrite_output_dir run
    that then failed at its evaluation: push_to_hub published the new model/ with the earlier run's metrics."""
    output = tmp_path / "run"
    first = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "1", "--shots", "1",
                              "--eval_data", str(motion_data / "test"), "--dry_run", "--hub_model_id", "me/tiny"))
    assert first.returncode == 0, first.stderr[-3000:]
    earlier = ["metrics.json", "confusion_matrix_eval.png", "hub_upload", "few_shot_selection.json", "model",
               "checkpoints", "training_options.json"]
    assert all((output / name).exists() for name in earlier)
    (output / "notes.txt").write_text("the user's own")
    undecodable = tmp_path / "undecodable"
    (undecodable / "moving up").mkdir(parents=True)
    (undecodable / "moving up" / "broken.mp4").write_text("not a video")

    second = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "1", "--lr", "2e-3", "--shots", "2",
                               "--eval_data", str(undecodable), "--overwrite_output_dir"))
    errors = [line for line in second.stderr.splitlines() if line.startswith("error: ")]
    assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr[-3000:]
    assert len(errors) == 1 and "no video could be evaluated" in errors[0], second.stderr[-3000:]
    left = {path.name for path in output.iterdir()}
    # the new run's (its few-shot selection written after the earlier one was removed), and the user's
    assert left == {"notes.txt", "model", "checkpoints", "training_options.json", "few_shot_selection.json"}, left
    assert len(json.loads((output / "few_shot_selection.json").read_text())) == 2 * 4  # 2 shots of 4 classes
    assert json.loads((output / "training_options.json").read_text())["lr"] == 2e-3

    push_to_hub("--run_dir", str(output), "--hub_model_id", "me/tiny", "--dry_run")
    card = (output / "hub_upload" / "README.md").read_text()
    assert "| none measured | not measured | not measured |" in card and '"lr": 0.002' in card


def test_an_evaluation_that_overwrites_a_run_leaves_none_of_the_runs_outputs(tiny_clip_dir, motion_data, tmp_path):
    """An evaluation (no --train_data) with --overwrite_output_dir replaced model/ and metrics.json but left the earlier
    run's checkpoints and few-shot selection beside them: a resume then continued the old run under the new options."""
    output = tmp_path / "run"
    first = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "1", "--shots", "1"))
    assert first.returncode == 0, first.stderr[-3000:]
    assert (output / "checkpoints").is_dir() and (output / "few_shot_selection.json").is_file()
    evaluation = [part for part in train_command(tiny_clip_dir, motion_data, output)
                  if part not in ("--train_data", str(motion_data / "train"))]
    second = run(evaluation + ["--eval_data", str(motion_data / "test"), "--overwrite_output_dir"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert {path.name for path in output.iterdir()} == {"model", "metrics.json", "training_options.json",
                                                         "confusion_matrix_eval.png"}


def test_overwriting_a_run_logged_to_tensorboard_keeps_only_the_new_runs_curves(tiny_clip_dir, motion_data, tmp_path):
    """--report_to tensorboard: the earlier run's event files stayed in output_dir/omniclip, and TensorBoard drew both
    runs' losses as one run. They go with the rest of the earlier run, before the new run starts logging."""
    pytest.importorskip("tensorboard")  # a dev dependency (pyproject.toml)
    output = tmp_path / "run"
    command = train_command(tiny_clip_dir, motion_data, output, "--max_steps", "2", "--shots", "1", "--logging_steps",
                            "1", "--report_to", "tensorboard")
    first = run(command)
    assert first.returncode == 0, first.stderr[-3000:]
    earlier = sorted((output / "omniclip").glob("**/events.out.tfevents.*"))
    assert earlier
    second = run(command + ["--overwrite_output_dir"])
    assert second.returncode == 0, second.stderr[-3000:]
    logs = sorted((output / "omniclip").glob("**/events.out.tfevents.*"))
    assert logs and not set(logs) & set(earlier)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # What TensorBoard draws for the run: every event file of the folder (the earlier run's made it 1, 2, 1, 2).
    accumulator = EventAccumulator(str(output / "omniclip")).Reload()
    assert [event.step for event in accumulator.Scalars("train/loss")] == [1, 2]
    # Each step's logged rate is the one it trained with, as metrics.json records it (the next step's was logged).
    metrics = json.loads((output / "metrics.json").read_text())
    logged = [event.value for event in accumulator.Scalars("train/lr")]
    assert logged == pytest.approx(metrics["train_learning_rates"], rel=1e-6)


def test_a_dry_run_folder_goes_only_with_its_marker(tmp_path):
    """A `hub_upload/` without the dry-run marker is the user's; so is every file train.py does not write."""
    (tmp_path / "hub_upload").mkdir()
    (tmp_path / "hub_upload" / "mine.txt").write_text("no marker: not a dry run's")
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("the user's")
    assert earlier_run_outputs(tmp_path) == [tmp_path / "metrics.json"]
    (tmp_path / "hub_upload" / DRY_RUN_MARKER).write_text("")
    assert earlier_run_outputs(tmp_path) == [tmp_path / "metrics.json", tmp_path / "hub_upload"]


# ------------------------------------------------------------------------------------------- 2: push_to_hub.py
OPTIONS = {"clip": "openai/clip-vit-base-patch16", "train_data": "owner/train-videos", "eval_data": ["owner/test"],
           "lr": 0.002, "max_steps": 3, "seed": 42, "eval_num_clips": 4, "eval_num_crops": 3, "output_dir": "runs/x"}


def run_folder(tiny_omniclip_dir: Path, folder: Path, metrics: dict | str, options: dict | str) -> Path:
    shutil.copytree(tiny_omniclip_dir, folder / "model")
    for name, content in (("metrics.json", metrics), ("training_options.json", options)):
        (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return folder


def test_push_to_hub_builds_the_card_from_the_options_metrics_were_measured_with(tiny_omniclip_dir, tmp_path):
    """Options that do not decide the model (how it was evaluated, where it was written) may differ; the card shows
    the evaluation metrics.json measured, not the one training_options.json names."""
    metrics = {"options": {**OPTIONS, "eval_num_clips": 1, "output_dir": "runs/y"}, "top1": 0.25, "top5": 0.75}
    folder = run_folder(tiny_omniclip_dir, tmp_path / "run", metrics, OPTIONS)
    push_to_hub("--run_dir", str(folder), "--hub_model_id", "me/tiny", "--dry_run")
    card = (folder / "hub_upload" / "README.md").read_text()
    assert "1 temporal clips x 3 spatial crops" in card and "| owner/test | 25.00 | 75.00 |" in card


def test_push_to_hub_refuses_metrics_of_another_run_in_one_line(tiny_omniclip_dir, tmp_path):
    """The earlier run's metrics.json beside a later run's training_options.json (and, likely, its model/) was
    published as they were, the card naming the later recipe."""
    folder = run_folder(tiny_omniclip_dir, tmp_path / "run", {"options": {**OPTIONS, "lr": 0.01}, "top1": 0.5},
                        OPTIONS)
    line = one_error_line(run(PUSH + ["--run_dir", str(folder), "--hub_model_id", "me/tiny", "--dry_run"]))
    assert line == (f"error: {folder / 'metrics.json'} and {folder / 'training_options.json'} were written by "
                    "different runs (--lr 0.01 in metrics.json, 0.002 in training_options.json): model/ may be either "
                    "run's. Rerun examples/train.py into this folder to measure the model it holds, or publish the "
                    "model alone with --model_dir.")
    assert not (folder / "hub_upload").exists()


@pytest.mark.parametrize("metrics, options, message", [
    # cut short: json's message named no file
    (json.dumps({"options": OPTIONS, "top1": 0.5})[:60], OPTIONS, r"metrics\.json is not valid JSON \("),
    # a list: an AttributeError traceback
    ({"options": OPTIONS, "top1": 0.5}, "[1, 2]", r"training_options\.json holds an array, not the JSON object"),
    ("[0.5]", OPTIONS, r"metrics\.json holds an array"),
    # an accuracy that is no number: the card said "not measured"
    ({"options": OPTIONS, "top1": "0.5"}, OPTIONS, r'metrics\.json: top1 is "0\.5", not an accuracy'),
    ({"options": OPTIONS, "top1": None}, OPTIONS, r"metrics\.json: top1 is null, not an accuracy"),
])
def test_push_to_hub_refuses_a_damaged_run_file_naming_it(tiny_omniclip_dir, tmp_path, metrics, options, message):
    """One ValueError line naming the file (examples/push_to_hub.py prints it as its `error:` line)."""
    folder = run_folder(tiny_omniclip_dir, tmp_path / "run", metrics, options)
    with pytest.raises(ValueError, match=f"^{re.escape(str(folder))}/{message}") as refused:
        push_to_hub("--run_dir", str(folder), "--hub_model_id", "me/tiny", "--dry_run")
    assert "\n" not in str(refused.value) and not (folder / "hub_upload").exists()


def test_an_upload_that_cannot_connect_is_one_line(tiny_omniclip_dir, tmp_path, monkeypatch):
    """Without network, huggingface_hub's HTTP client raised its own ConnectError, no OSError: a traceback."""
    import huggingface_hub

    client = sys.modules.get("httpx2") or pytest.importorskip("httpx")

    def unreachable(*args, **kwargs):
        raise client.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "create_repo", unreachable)
    shutil.copytree(tiny_omniclip_dir, tmp_path / "model")
    with pytest.raises(OSError, match=r"^uploading .* to the Hub repository me/tiny failed \(ConnectError: "
                                      r"\[Errno -2\] Name or service not known\); the upload made no commit"):
        publish_model(tmp_path / "model", SimpleNamespace(hub_model_id="me/tiny"), {}, dry_run=False)


# --------------------------------------------------------------------------------------------------- 3: the card
def card_text(tiny_omniclip_dir: Path, tmp_path: Path, **options) -> str:
    shutil.copytree(tiny_omniclip_dir, tmp_path / "model")
    options = SimpleNamespace(**{"hub_model_id": "me/omniclip", **options})
    return str(build_model_card(tmp_path / "model", options, {"top1": 0.5, "top5": 0.9}))


def test_the_card_title_names_the_training_set_only(tiny_omniclip_dir, tmp_path):
    """A K400 -> HMDB51 zero-shot card, trained on a local K400 folder, was titled "OmniCLIP on <the HMDB51 id>":
    the title took the first data set of the metadata, here the evaluation set."""
    local = tmp_path / "k400"
    local.mkdir()
    card = card_text(tiny_omniclip_dir, tmp_path, train_data=str(local), eval_data=["owner/hmdb51"])
    assert "\n# OmniCLIP\n" in card and "| owner/hmdb51 | 50.00 | 90.00 |" in card
    assert "# OmniCLIP on" not in card
    hub = card_text(tiny_omniclip_dir, tmp_path / "hub", train_data="owner/k400", eval_data=["owner/hmdb51"])
    assert "\n# OmniCLIP on owner/k400\n" in hub


def test_the_card_names_no_local_path_of_any_option(tiny_omniclip_dir, tmp_path):
    """`--model` (an OmniCLIP folder continued from) and `--config` (the recipe YAML) were copied into the card's
    recipe as they were; Hub ids stay."""
    (tmp_path / "recipe.yaml").write_text("lr: 0.002\n")
    card = card_text(tiny_omniclip_dir, tmp_path, model=str(tiny_omniclip_dir), config=str(tmp_path / "recipe.yaml"),
                     train_data="owner/train-videos", eval_data=["owner/test", str(tmp_path / "test")],
                     labels_file="labels/hmdb51.txt", lr=0.002)
    assert str(tiny_omniclip_dir) not in card and str(tmp_path) not in card and "recipe.yaml" not in card
    assert '"model"' not in card and '"config"' not in card and "labels/hmdb51.txt" not in card
    assert '"train_data": "owner/train-videos"' in card and '"lr": 0.002' in card
    hub = card_text(tiny_omniclip_dir, tmp_path / "hub", model="owner/omniclip-b16")
    assert '"model": "owner/omniclip-b16"' in hub


def test_the_card_recipe_shows_a_setting_of_zero(tiny_omniclip_dir, tmp_path):
    """`0 in (None, False, [])` is true: `--mixup_alpha 0` (mixup off) was left out; the card read as the default."""
    card = card_text(tiny_omniclip_dir, tmp_path, mixup_alpha=0.0, warmup_epochs=0, lr=0.002, strict=False)
    assert '"mixup_alpha": 0.0' in card and '"warmup_epochs": 0' in card and '"strict"' not in card


def test_the_card_names_each_eval_set_by_the_name_metrics_json_gives_it(tiny_omniclip_dir, tmp_path):
    """Several eval sets of one file or repository name are kept apart in metrics.json by their folders
    (`split1_test`); the card matched them to their sources by file name alone and lost their Hub ids."""
    shutil.copytree(tiny_omniclip_dir, tmp_path / "model")
    options = SimpleNamespace(hub_model_id="me/omniclip", eval_data=["owner/split1", "other/split1"])
    metrics = {"top1": {"mean": 0.5, "std": 0.1}, "top5": {"mean": 0.9, "std": 0.0},
               "eval_sets": {"owner_split1": {"top1": 0.4, "top5": 0.9}, "other_split1": {"top1": 0.6, "top5": 0.9}}}
    card = str(build_model_card(tmp_path / "model", options, metrics))
    assert "| owner/split1 | 40.00 | 90.00 |" in card and "| other/split1 | 60.00 | 90.00 |" in card


def test_the_card_describes_the_saved_models_modules_and_the_frames_it_is_served_with(tiny_clip_dir, tmp_path):
    """An `omniclip init` model (SPG off) was described "with parallel temporal adapters and a self-prompt generator",
    and a 4-frame model trained on at 8 (its processor samples 8) read "Frames per clip: 4"."""
    from omniclip_hf.clip_conversion import write_model_folder

    folder = write_model_folder(str(tiny_clip_dir), tmp_path / "model", num_frames=4)
    processor_config = json.loads((folder / "processor_config.json").read_text())
    processor_config["video_processor"]["num_frames"] = 8
    (folder / "processor_config.json").write_text(json.dumps(processor_config))
    card = str(build_model_card(folder, SimpleNamespace(), {"top1": 0.5, "top5": 0.9}))
    assert ("this model adapts a frozen CLIP to video with parallel temporal adapters, a temporal embedding, a video "
            "head and video-specific text prompts.") in card
    assert "self-prompt" not in card
    assert "- **Frames per clip:** 8 (temporal embeddings built for 4, interpolated);" in card
