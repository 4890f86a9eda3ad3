"""examples/push_to_hub.py's inputs: a flag of one mode given to the other (`--dry_run_dir` without `--dry_run`
uploaded, `--private` with it was ignored) and a `--dry_run_dir` that is a file are one `error:` line; the card's
license is `--license` (`other` without it); a run's own `local_paths` record alone decides what was local; a card
that measured nothing describes no evaluation; a local evaluation set's model-index entry names no dataset id."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import ModelCard

from omniclip_hf.training import publishing
from omniclip_hf.training.publishing import build_model_card

from .test_publishing_runs import PUSH, push_to_hub, run_folder
from .test_training import run
from .test_training_scripts import one_error_line

HUB_OPTIONS = {"clip": "openai/clip-vit-base-patch16", "train_data": "someorg/train-set",
               "eval_data": ["someorg/set-a", "someorg/set-b"], "lr": 0.002, "max_steps": 3, "seed": 42,
               "eval_num_clips": 1, "eval_num_crops": 1, "output_dir": "runs/x"}
TWO_SETS = {"top1": {"mean": 0.7, "std": 0.1}, "top5": {"mean": 0.9, "std": 0.05},
            "eval_sets": {"set-a": {"top1": 0.8, "top5": 0.95}, "set-b": {"top1": 0.6, "top5": 0.85}}}


@pytest.fixture
def hub_run(tiny_omniclip_dir, tmp_path) -> Path:
    """A run folder whose data sets are Hub ids, with the `local_paths` record train.py writes (none was local)."""
    return run_folder(tiny_omniclip_dir, tmp_path / "run", {"options": HUB_OPTIONS, **TWO_SETS},
                      {**HUB_OPTIONS, "local_paths": {}})


@pytest.fixture
def no_upload(monkeypatch) -> list:
    """Records an upload instead of making one: none may happen in these tests, with or without a network."""
    uploads = []
    monkeypatch.setattr(publishing, "upload", lambda *args, **kwargs: uploads.append(args) or "uploaded")
    return uploads


# ------------------------------------------------------------------------------------------ 1: flags of one mode
def test_a_dry_run_dir_without_dry_run_is_refused_and_uploads_nothing(hub_run, tmp_path, no_upload):
    """--dry_run_dir was ignored without --dry_run: the model was uploaded (public by default), no copy written."""
    target = tmp_path / "copy"
    with pytest.raises(ValueError, match=r"^--dry_run_dir .*copy is where a dry run writes, and --dry_run is not "
                                         r"given: add --dry_run"):
        push_to_hub("--run_dir", str(hub_run), "--hub_model_id", "me/x", "--dry_run_dir", str(target))
    assert no_upload == [] and not target.exists()


def test_a_dry_run_dir_without_dry_run_is_one_error_line(hub_run, tmp_path):
    line = one_error_line(run(PUSH + ["--run_dir", str(hub_run), "--hub_model_id", "me/x", "--dry_run_dir",
                                      str(tmp_path / "copy")]))
    assert line.startswith(f"error: --dry_run_dir {tmp_path / 'copy'} is where a dry run writes")
    assert not (tmp_path / "copy").exists()


def test_private_with_a_dry_run_is_refused(hub_run, no_upload):
    """--private was silently ignored by a dry run (it uploads nothing)."""
    with pytest.raises(ValueError, match=r"^--private makes an uploaded repository private, and --dry_run uploads "
                                         r"nothing"):
        push_to_hub("--run_dir", str(hub_run), "--hub_model_id", "me/x", "--dry_run", "--private")
    assert no_upload == [] and not (hub_run / "hub_upload").exists()


# ------------------------------------------------------------------------------------ 5: a --dry_run_dir that is a file
def test_a_dry_run_dir_that_is_a_file_names_the_flag(hub_run, tmp_path):
    """A file there failed in the copy with "[Errno 20] Not a directory", naming no flag."""
    afile = tmp_path / "afile"
    afile.write_text("the user's")
    with pytest.raises(ValueError, match=rf"^--dry_run_dir {afile} is a file, not a folder: pick a folder"):
        push_to_hub("--run_dir", str(hub_run), "--hub_model_id", "me/x", "--dry_run", "--dry_run_dir", str(afile))
    with pytest.raises(ValueError, match=rf"^--dry_run_dir {afile}/sub lies inside {afile}, a file, not a folder"):
        push_to_hub("--run_dir", str(hub_run), "--hub_model_id", "me/x", "--dry_run", "--dry_run_dir",
                    str(afile / "sub"))
    assert afile.read_text() == "the user's" and not list(tmp_path.glob(".partial-*"))


# ------------------------------------------------------------------------- 2: the run's record alone decides
def test_the_card_is_the_same_where_a_hub_id_is_also_a_folder_here(hub_run, tmp_path, monkeypatch):
    """With the run's record, a Hub id that happened to be a relative folder where publishing ran was dropped from
    the card (datasets, title, model-index): the card differed from folder to folder."""
    cards = {}
    for where in ("plain", "shadowing"):
        folder = tmp_path / where
        folder.mkdir()
        if where == "shadowing":
            (folder / "someorg" / "train-set").mkdir(parents=True)
            (folder / "someorg" / "set-a").mkdir(parents=True)
        monkeypatch.chdir(folder)
        push_to_hub("--run_dir", str(hub_run), "--hub_model_id", "me/multi", "--dry_run", "--dry_run_dir",
                    str(tmp_path / f"{where}-copy"))
        cards[where] = (tmp_path / f"{where}-copy" / "README.md").read_text()
    assert cards["shadowing"] == cards["plain"]
    card = ModelCard(cards["plain"])
    assert card.data.datasets == ["someorg/train-set", "someorg/set-a", "someorg/set-b"]
    assert [result.dataset_type for result in card.data.eval_results][::2] == ["someorg/set-a", "someorg/set-b"]
    assert "\n# OmniCLIP on someorg/train-set\n" in cards["plain"]


# ------------------------------------------------------------------------------------------------ 3: the license
def test_the_license_is_the_flags_and_other_without_it(hub_run, tmp_path):
    """Every card said apache-2.0 (no option set it), the base CLIP's weights in the upload included."""
    push_to_hub("--run_dir", str(hub_run), "--hub_model_id", "me/x", "--dry_run", "--dry_run_dir",
                str(tmp_path / "unstated"))
    unstated = ModelCard.load(tmp_path / "unstated" / "README.md")
    assert unstated.data.license == "other" and "- **License:** none chosen by the uploader (`other`)" in unstated.text
    push_to_hub("--run_dir", str(hub_run), "--hub_model_id", "me/x", "--dry_run", "--dry_run_dir",
                str(tmp_path / "mit"), "--license", "mit")
    chosen = ModelCard.load(tmp_path / "mit" / "README.md")
    assert chosen.data.license == "mit" and "- **License:** `mit`, as the uploader chose it" in chosen.text
    assert '"license"' not in chosen.text  # how it is published, not the recipe


def test_a_license_that_is_no_hub_identifier_is_refused(hub_run):
    with pytest.raises(ValueError, match=r"^--license 'Apache 2\.0' is not a Hub license identifier: use one from"):
        push_to_hub("--run_dir", str(hub_run), "--hub_model_id", "me/x", "--dry_run", "--license", "Apache 2.0")
    assert not (hub_run / "hub_upload").exists()


# ------------------------------------------------------------------------------- 4: nothing measured, nothing said
def test_a_card_without_evaluation_sets_describes_no_evaluation(tiny_omniclip_dir, tmp_path):
    """"| none measured |" was followed by "Multi-view evaluation: 1 temporal clips x 1 spatial crops"."""
    shutil.copytree(tiny_omniclip_dir, tmp_path / "model")
    options = SimpleNamespace(hub_model_id="me/x", eval_num_clips=1, eval_num_crops=1)
    card = str(build_model_card(tmp_path / "model", options, {}))
    assert "| none measured | not measured | not measured |" in card and "Multi-view evaluation" not in card
    measured = str(build_model_card(tmp_path / "model", options, {"top1": 0.5, "top5": 0.9}))
    assert "Multi-view evaluation: 1 temporal clips x 1 spatial crops, scores averaged." in measured


# ---------------------------------------------------------------------- 6: a local evaluation set in the model-index
def test_a_local_evaluation_set_names_no_dataset_id_in_the_model_index(tiny_omniclip_dir, tmp_path):
    """Its `dataset.type` was "evaluation set" (no id) or its folder's name (`hmdb_test`, read as a Hub dataset);
    several local sets stay apart (the model-index groups results by type and config)."""
    shutil.copytree(tiny_omniclip_dir, tmp_path / "model")
    one = SimpleNamespace(hub_model_id="me/x", eval_data=[str(tmp_path / "hmdb" / "test")])
    card = build_model_card(tmp_path / "model", one, {"top1": 0.5, "top5": 0.9})
    assert {(result.dataset_type, result.dataset_name, result.dataset_config) for result in card.data.eval_results} \
        == {("local", "evaluation set", None)}
    several = SimpleNamespace(hub_model_id="me/x", eval_data=[str(tmp_path / "hmdb" / "test"),
                                                                str(tmp_path / "ucf" / "test")])
    metrics = {"top1": {"mean": 0.6, "std": 0.1}, "top5": {"mean": 0.9, "std": 0.0},
               "eval_sets": {"hmdb_test": {"top1": 0.5, "top5": 0.9}, "ucf_test": {"top1": 0.7, "top5": 0.9}}}
    build_model_card(tmp_path / "model", several, metrics).save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    entries = loaded.data.to_dict()["model-index"][0]["results"]
    assert [entry["dataset"] for entry in entries] == [
        {"name": "hmdb_test", "type": "local", "config": "hmdb_test"},
        {"name": "ucf_test", "type": "local", "config": "ucf_test"}]
    assert json.dumps(entries).count('"value": 0.5') == 1 and json.dumps(entries).count('"value": 0.7') == 1


# ---------------------------------------------------------------------------------- 6: the task the card's tag names
def test_the_card_says_which_pipeline_runs_the_model(tiny_omniclip_dir, tmp_path):
    """The card's `pipeline_tag: video-classification` invites transformers' built-in video-classification pipeline,
    which does not load the model (25 lines of transformers' errors): the card names the task that runs it."""
    shutil.copytree(tiny_omniclip_dir, tmp_path / "model")
    card = str(build_model_card(tmp_path / "model", SimpleNamespace(hub_model_id="me/x"), {}))
    assert 'classifier("video.mp4", candidate_labels=' in card
    assert "transformers' built-in `video-classification` pipeline, which the card's task tag suggests" in card
