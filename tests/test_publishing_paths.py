"""Publishing decides "local path or Hub id" by what the training run recorded, never by the folder publishing runs
in; a dry run leaves the model folder as it was and its copy outside it; a dry run's card is the upload's; top-5 of
a set of 5 classes or fewer (100% by construction) is not published as a result."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from omniclip_hf import OmniCLIPModel
from omniclip_hf.training import publishing
from omniclip_hf.training.publishing import DRY_RUN_MARKER, build_model_card, card_recipe, publish_model

from .test_publishing_runs import push_to_hub
from .test_training import motion_data, train_command  # noqa: F401 (fixture)

# Given as a user types them in the folder that holds them: each reads as a Hub id (`owner/name`) anywhere else.
CLIP, DATA, FULL, ADAPTER = Path("models/tiny_clip"), Path("motion"), "runs/full", "runs/adapter"


def run_in(folder: Path, command: list[str]) -> subprocess.CompletedProcess:
    """A script run in `folder` (tests/test_training.run runs in the repository root), with its environment."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, env=environment, timeout=600)


@pytest.fixture(scope="module")
def trained_here(tiny_clip_dir, motion_data, tmp_path_factory):
    """A folder holding a CLIP and data, and two runs trained in it with relative paths: a full model with its own
    dry run (train.py publishes in the folder it trained in), and an adapter-only model over the local CLIP."""
    folder = tmp_path_factory.mktemp("work")
    shutil.copytree(tiny_clip_dir, folder / CLIP)
    shutil.copytree(motion_data, folder / DATA)
    common = ("--max_steps", "1", "--eval_data", str(DATA / "test"))
    full = run_in(folder, train_command(CLIP, DATA, FULL, *common, "--dry_run", "--hub_model_id", "me/tiny"))
    assert full.returncode == 0, full.stderr[-3000:]
    adapter = run_in(folder, train_command(CLIP, DATA, ADAPTER, *common, "--adapter_only"))
    assert adapter.returncode == 0, adapter.stderr[-3000:]
    return folder


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """The current folder: one where none of the runs' relative paths exists."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def dry_run_card(run_dir: Path, target: Path) -> str:
    push_to_hub("--run_dir", str(run_dir), "--hub_model_id", "me/tiny", "--dry_run", "--dry_run_dir", str(target))
    return (target / "README.md").read_text()


def assert_names_no_local_source(card: str) -> None:
    """None of the run's local paths appears in the card, as a Hub id or otherwise."""
    for local in (str(CLIP), f"{DATA}/train", f"{DATA}/test", f"{DATA}/labels.txt", "runs/"):
        assert local not in card, local
    assert "base_model:" not in card and "datasets:" not in card and "\n# OmniCLIP\n" in card
    assert "`a local CLIP checkpoint (not published)`" in card


# ----------------------------------------------------------------------------------- F1: the folder publishing runs in
def test_a_card_published_from_another_folder_is_the_training_folders(trained_here, tmp_path, monkeypatch):
    """Published from another folder than the one `--clip models/tiny_clip --train_data motion/train` were given in,
    the card said `base_model: models/tiny_clip`, `datasets: [motion/train, motion/test]` and "OmniCLIP on
    motion/train"."""
    run_dir = trained_here / FULL
    monkeypatch.chdir(trained_here)
    here = dry_run_card(Path(FULL), tmp_path / "here")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    there = dry_run_card(run_dir, tmp_path / "there")
    assert there == here == (run_dir / "hub_upload" / "README.md").read_text()  # train.py's own dry run too
    assert_names_no_local_source(there)
    # The run recorded its local sources; the saved config names its local base CLIP by an absolute path.
    recorded = json.loads((run_dir / "training_options.json").read_text())["local_paths"]
    assert recorded[str(CLIP)] == str(trained_here / CLIP) and recorded[f"{DATA}/train"] == str(trained_here / DATA
                                                                                                / "train")
    assert json.loads((run_dir / "model" / "config.json").read_text())["base_clip_name_or_path"] == str(
        trained_here / CLIP)


def test_an_adapter_over_a_relative_local_base_is_refused_from_any_folder(trained_here, elsewhere):
    """The adapter-only guard (its base CLIP must load anywhere) let an adapter over `models/tiny_clip` through when
    published from another folder; the adapter did not load there either (`omniclip info`: no such CLIP)."""
    run_dir = trained_here / ADAPTER
    with pytest.raises(ValueError, match=r"holds only the trained adapters over the base CLIP .* a local folder") as no:
        push_to_hub("--run_dir", str(run_dir), "--hub_model_id", "me/tiny", "--dry_run", "--dry_run_dir",
                    str(elsewhere / "upload"))
    assert "\n" not in str(no.value) and not (elsewhere / "upload").exists()
    model = OmniCLIPModel.from_pretrained(run_dir / "model")  # from this folder, where models/tiny_clip is not
    assert model.config.base_clip_name_or_path == str(trained_here / CLIP)


def test_a_run_of_an_earlier_version_is_judged_in_the_folder_it_trained_in(trained_here, tmp_path, elsewhere):
    """A run folder without the `local_paths` record (and a config naming the relative base): its relative
    --output_dir tells where it trained, and the card names no local source from another folder either."""
    for name in (FULL, ADAPTER):
        earlier = trained_here / f"{name}-earlier"
        shutil.copytree(trained_here / name, earlier)
        options = json.loads((earlier / "training_options.json").read_text())
        options.pop("local_paths", None)  # an earlier version wrote none
        options["output_dir"] = f"{name}-earlier"
        metrics = json.loads((earlier / "metrics.json").read_text())
        metrics["options"]["output_dir"] = f"{name}-earlier"
        config = json.loads((earlier / "model" / "config.json").read_text())
        config["base_clip_name_or_path"] = str(CLIP)
        for path, content in ((earlier / "training_options.json", options), (earlier / "metrics.json", metrics),
                              (earlier / "model" / "config.json", config)):
            path.write_text(json.dumps(content))
    assert_names_no_local_source(dry_run_card(trained_here / f"{FULL}-earlier", tmp_path / "earlier"))
    with pytest.raises(ValueError, match=r"holds only the trained adapters over the base CLIP 'models/tiny_clip'"):
        push_to_hub("--run_dir", str(trained_here / f"{ADAPTER}-earlier"), "--hub_model_id", "me/tiny", "--dry_run",
                    "--dry_run_dir", str(tmp_path / "earlier-adapter"))


def test_recorded_local_sources_are_no_hub_ids_and_hub_ids_stay(tiny_omniclip_dir, tmp_path, elsewhere):
    """By the record alone: nothing named here exists in the current folder."""
    shutil.copytree(tiny_omniclip_dir, tmp_path / "model")
    local = {"models/clip": "/data/models/clip", "me/videos": "/data/me/videos", "me/test": "/data/me/test"}
    options = SimpleNamespace(clip="models/clip", train_data="me/videos", eval_data=["me/test"],
                              model="owner/omniclip", hub_model_id="me/omniclip", lr=0.002, local_paths=local)
    card = str(build_model_card(tmp_path / "model", options, {"top1": 0.5, "top5": 0.9}))
    assert "models/clip" not in card and "me/videos" not in card and "me/test" not in card and "/data" not in card
    assert "local_paths" not in card and "\n# OmniCLIP\n" in card and "| evaluation set (local) | 50.00 |" in card
    assert card_recipe(options) == {"model": "owner/omniclip", "lr": 0.002}
    hub = SimpleNamespace(**{**vars(options), "train_data": "owner/videos", "eval_data": ["owner/test"]})
    card = str(build_model_card(tmp_path / "model", hub, {"top1": 0.5, "top5": 0.9}))
    assert "\n# OmniCLIP on owner/videos\n" in card and "| owner/test | 50.00 | 90.00 |" in card
    assert card_recipe(hub) == {"train_data": "owner/videos", "model": "owner/omniclip", "lr": 0.002}


def test_a_damaged_local_paths_record_is_one_line_naming_the_file(tiny_omniclip_dir, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(tiny_omniclip_dir, folder / "model")
    options = {"clip": "openai/clip-vit-base-patch16", "lr": 0.002}
    (folder / "metrics.json").write_text(json.dumps({"options": options, "top1": 0.5}))
    (folder / "training_options.json").write_text(json.dumps({**options, "local_paths": ["models/clip"]}))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(folder / 'training_options.json'))}: local_paths is "
                                         r'\["models/clip"\], not the object of local paths') as refused:
        push_to_hub("--run_dir", str(folder), "--hub_model_id", "me/tiny", "--dry_run")
    assert "\n" not in str(refused.value)


# ------------------------------------------------------------------------------------- F5, F6: the model folder stays
def fake_upload(captured: Path):
    """`upload` replaced by a copy of what it would send (no network)."""
    def upload(folder, repo_id, private=False, **kwargs):
        shutil.copytree(folder, captured)
        return repo_id

    return upload


def test_a_hand_written_model_readme_survives_a_dry_run_and_an_upload(tiny_omniclip_dir, tmp_path, monkeypatch):
    """A dry run wrote its card over model/README.md: the user's own card was gone, none of its lines left."""
    model = tmp_path / "run" / "model"
    shutil.copytree(tiny_omniclip_dir, model)
    mine = "# My own notes - hand-written\n\nnot the package's\r\n".encode()
    (model / "README.md").write_bytes(mine)
    before = sorted(path.name for path in model.iterdir())
    push_to_hub("--model_dir", str(model), "--hub_model_id", "me/tiny", "--dry_run")
    assert (model / "README.md").read_bytes() == mine and sorted(path.name for path in model.iterdir()) == before
    card = (tmp_path / "run" / "hub_upload" / "README.md").read_text()
    assert card.startswith("---\n") and "hand-written" not in card

    monkeypatch.setattr(publishing, "upload", fake_upload(tmp_path / "sent"))
    push_to_hub("--model_dir", str(model), "--hub_model_id", "me/tiny")
    assert (model / "README.md").read_bytes() == mine and sorted(path.name for path in model.iterdir()) == before
    assert (tmp_path / "sent" / "README.md").read_text() == card  # the upload carries the card, as the dry run
    assert (tmp_path / "sent" / "model.safetensors").read_bytes() == (model / "model.safetensors").read_bytes()
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["hub_upload", "model"]  # staging gone


@pytest.mark.parametrize("inside", ["hub_upload", "sub/upload"])
def test_a_dry_run_dir_inside_the_model_folder_is_refused(tiny_omniclip_dir, tmp_path, inside):
    """`--dry_run_dir model/hub_upload` was accepted, and each dry run copied the earlier ones into the next
    (model/hub_upload/hub_upload/...)."""
    model = tmp_path / "nest" / "model"
    shutil.copytree(tiny_omniclip_dir, model)
    before = sorted(path.name for path in model.iterdir())
    for _ in range(2):
        with pytest.raises(ValueError, match=rf"^--dry_run_dir {re.escape(str(model / inside))} is inside the model "
                                             rf"folder {re.escape(str(model))} it copies") as refused:
            push_to_hub("--model_dir", str(model), "--hub_model_id", "me/x", "--dry_run", "--dry_run_dir",
                        str(model / inside))
        assert "\n" not in str(refused.value)
    assert sorted(path.name for path in model.iterdir()) == before


# ------------------------------------------------------------------------------ F14: a dry run's card is the upload's
def test_a_dry_runs_card_and_the_uploads_are_the_same(tiny_omniclip_dir, tmp_path, monkeypatch):
    """train.py passed its own options: the dry run's recipe said `"dry_run": true`, the upload's
    `"push_to_hub": true`, with the worker count and logging steps of the machine that trained."""
    shutil.copytree(tiny_omniclip_dir, tmp_path / "model")
    recipe = {"clip": "openai/clip-vit-base-patch16", "train_data": "owner/videos", "lr": 0.002, "max_steps": 3,
              "eval_num_clips": 2, "eval_num_crops": 3, "hub_model_id": "me/tiny"}
    metrics = {"top1": 0.5, "top5": 0.9}
    dry = SimpleNamespace(**recipe, dry_run=True, push_to_hub=False, num_workers=0, logging_steps=10)
    real = SimpleNamespace(**recipe, dry_run=False, push_to_hub=True, num_workers=8, logging_steps=1,
                           report_to="tensorboard", output_dir="runs/x", checkpointing_steps=500)
    dry_card, real_card = (str(build_model_card(tmp_path / "model", options, metrics)) for options in (dry, real))
    assert dry_card == real_card and "2 temporal clips x 3 spatial crops" in dry_card
    shown = json.loads(re.search(r"```json\n(.*?)```", dry_card, re.S).group(1))
    assert shown == {"clip": "openai/clip-vit-base-patch16", "train_data": "owner/videos", "lr": 0.002,
                     "max_steps": 3}

    monkeypatch.setattr(publishing, "upload", fake_upload(tmp_path / "sent"))
    publish_model(tmp_path / "model", real, metrics, dry_run=False)
    written = publish_model(tmp_path / "model", dry, metrics, dry_run=True, dry_run_dir=tmp_path / "dry")
    assert (tmp_path / "sent" / "README.md").read_text() == (written / "README.md").read_text() == dry_card
    assert sorted(p.name for p in written.iterdir()) == sorted([*(p.name for p in (tmp_path / "sent").iterdir()),
                                                                DRY_RUN_MARKER])


# --------------------------------------------------------------------------- F9: top-5 over 5 classes or fewer
def test_top5_of_five_classes_or_fewer_is_not_published_as_a_result(tiny_omniclip_dir, tmp_path):
    """Top-5 is capped at the class count: over 4 classes it is 100% by construction, and the card said 100.00."""
    shutil.copytree(tiny_omniclip_dir, tmp_path / "model")

    def matrix(classes: int) -> list[list[int]]:
        return [[2 if row == column else 0 for column in range(classes)] for row in range(classes)]

    options = SimpleNamespace(hub_model_id="me/tiny", eval_data=["owner/four"])
    one = {"top1": 0.25, "top5": 1.0, "eval": {"top1": 0.25, "top5": 1.0, "confusion_matrix": matrix(4)}}
    card = build_model_card(tmp_path / "model", options, one)
    assert "| owner/four | 25.00 | n/a (4 classes) |" in str(card) and "100.00" not in str(card)
    assert [result.metric_name for result in card.data.eval_results] == ["top-1 accuracy"]

    options = SimpleNamespace(hub_model_id="me/tiny", eval_data=["owner/four", "owner/ten"])
    several = {"top1": {"mean": 0.5, "std": 0.25}, "top5": {"mean": 0.9, "std": 0.1}, "eval_sets": {
        "four": {"top1": 0.25, "top5": 1.0, "confusion_matrix": matrix(4)},
        "ten": {"top1": 0.75, "top5": 0.8, "confusion_matrix": matrix(10)}}}
    card = build_model_card(tmp_path / "model", options, several)
    assert "| owner/four | 25.00 | n/a (4 classes) |" in str(card) and "| owner/ten | 75.00 | 80.00 |" in str(card)
    assert "| mean ± std over the 2 sets | 50.00 ± 25.00 | n/a (a set has 5 classes or fewer) |" in str(card)
    assert [(result.dataset_type, result.metric_name) for result in card.data.eval_results] == [
        ("owner/four", "top-1 accuracy"), ("owner/ten", "top-1 accuracy"), ("owner/ten", "top-5 accuracy")]


def test_a_path_that_exists_here_is_local_even_when_the_record_misses_it(tmp_path, monkeypatch):
    """A record rebuilt for a run of an earlier version (from its --output_dir) misses paths when the run folder was
    moved; the record alone then named the local `models/clip` as a Hub id, and the adapter-only guard let it pass."""
    from omniclip_hf.training.publishing import hub_id_or_none

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "clip").mkdir(parents=True)
    assert hub_id_or_none("models/clip", {"x": str(tmp_path / "x")}) is None
    assert hub_id_or_none("openai/clip-vit-base-patch16", {"x": str(tmp_path / "x")}) == "openai/clip-vit-base-patch16"


def test_an_uploaded_full_model_names_no_local_base_folder(tiny_omniclip_dir, tmp_path):
    """A saved model names a local base CLIP by its absolute path (`/home/<user>/...`): the upload's config.json left
    it in, though the card never shows a local path. The model folder's own config.json keeps it."""
    import shutil

    from omniclip_hf.training.publishing import without_a_local_base_path

    model = tmp_path / "model"
    shutil.copytree(tiny_omniclip_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["base_clip_name_or_path"] = str(tmp_path / "clip")
    (model / "config.json").write_text(json.dumps(config))
    staged = tmp_path / "staged"
    staged.mkdir()
    os.link(model / "config.json", staged / "config.json")  # as the upload stages it
    without_a_local_base_path(staged)
    assert json.loads((staged / "config.json").read_text())["base_clip_name_or_path"] is None
    assert json.loads((model / "config.json").read_text())["base_clip_name_or_path"] == str(tmp_path / "clip")
    config["base_clip_name_or_path"] = "openai/clip-vit-base-patch16"
    (staged / "config.json").unlink()
    (staged / "config.json").write_text(json.dumps(config))
    without_a_local_base_path(staged)
    assert json.loads((staged / "config.json").read_text())["base_clip_name_or_path"] == "openai/clip-vit-base-patch16"
