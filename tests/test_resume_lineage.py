"""A resume continues one run's lineage and nothing else: the later checkpoints of a run resumed from an earlier step
are set aside (never picked by `latest` again), another folder's checkpoint is not resumed among this run's, a
checkpoint with other trainable weights or another architecture is refused (not loaded in part, not trained under
another computation), a trainer state without the loop's records falls back like any damage, a --model whose config
does not fit its weights is one error line, and the checkpoint a resume starts from is not rewritten."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from omniclip_hf.training.checkpoints import (
    CheckpointMismatchError,
    _checkpoint_io,
    check_output_dir_for_a_new_run,
    keep_checkpoints_trainable_only,
    latest_checkpoint,
    load_trainer_state,
    restore_checkpoint,
    save_checkpoint,
)

from .test_training import motion_data, run, train_command  # noqa: F401 (fixture)
from .test_training_faults import FakeAccelerator, files_under, write_checkpoints


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def one_error(result) -> str:
    errors = error_lines(result.stderr)
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return errors[0]


# ------------------------------------------------------------------------------ 1. an explicit resume's later steps
def test_an_explicit_resume_of_an_earlier_step_sets_the_later_checkpoints_aside(tmp_path, caplog):
    write_checkpoints(tmp_path, [2, 4, 6, 8])
    folder = tmp_path / "checkpoints"
    kept = {name: files_under(folder / name) for name in ("step_00000006", "step_00000008")}
    accelerator = FakeAccelerator()
    with caplog.at_level("WARNING"):
        checkpoint, state = restore_checkpoint(accelerator, str(folder / "step_00000004"), tmp_path)
    assert checkpoint.name == "step_00000004" and state["global_step"] == 4 and accelerator.weights == {"step": 4}
    # `latest` now continues the resumed lineage, not the abandoned run's step 8.
    assert latest_checkpoint(tmp_path).name == "step_00000004"
    assert sorted(path.name for path in folder.iterdir()) == [
        ".abandoned-step_00000006", ".abandoned-step_00000008", "step_00000002", "step_00000004"]
    for name, files in kept.items():  # nothing deleted: moved whole
        assert files_under(folder / f".abandoned-{name}") == files
    warnings = [record.getMessage() for record in caplog.records if "set aside" in record.getMessage()]
    assert len(warnings) == 1 and "2 later checkpoints" in warnings[0] and ".abandoned-step_00000008" in warnings[0]
    assert "\n" not in warnings[0]

    # The resumed run writes step 6 again, and is resumed from step 4 once more: the earlier abandoned step 6 stays.
    write_checkpoints(tmp_path, [6])
    restore_checkpoint(FakeAccelerator(), str(folder / "step_00000004"), tmp_path)
    assert sorted(path.name for path in folder.iterdir()) == [
        ".abandoned-step_00000006", ".abandoned-step_00000006-2", ".abandoned-step_00000008", "step_00000002",
        "step_00000004"]


def test_latest_and_another_folders_checkpoint_set_nothing_aside(tmp_path):
    write_checkpoints(tmp_path / "run", [2, 4])
    write_checkpoints(tmp_path / "other", [1])
    restore_checkpoint(FakeAccelerator(), "latest", tmp_path / "run")
    # A checkpoint of another folder resumed into a new one: this folder's checkpoints are none of its business.
    restore_checkpoint(FakeAccelerator(), str(tmp_path / "run" / "checkpoints" / "step_00000002"), tmp_path / "other")
    assert sorted(path.name for path in (tmp_path / "run" / "checkpoints").iterdir()) == ["step_00000002",
                                                                                          "step_00000004"]
    assert [path.name for path in (tmp_path / "other" / "checkpoints").iterdir()] == ["step_00000001"]


def test_another_folders_checkpoint_into_a_folder_holding_a_run_is_refused(tmp_path, monkeypatch):
    write_checkpoints(tmp_path / "run", [2, 4])
    write_checkpoints(tmp_path / "other", [3])
    foreign = str(tmp_path / "other" / "checkpoints" / "step_00000003")
    with pytest.raises(ValueError) as info:
        check_output_dir_for_a_new_run(tmp_path / "run", foreign, overwrite=False, delete=False)
    message = str(info.value)
    assert "\n" not in message and foreign in message and "step_00000004" in message and "new --output_dir" in message
    # Its own checkpoint, however the path is spelled, and `latest` go on; so does any checkpoint into a new folder.
    monkeypatch.chdir(tmp_path)
    check_output_dir_for_a_new_run(tmp_path / "run", "run/checkpoints/step_00000002", overwrite=False, delete=False)
    check_output_dir_for_a_new_run(tmp_path / "run", "latest", overwrite=False, delete=False)
    check_output_dir_for_a_new_run(tmp_path / "new", foreign, overwrite=False, delete=False)


# ------------------------------------------------------------------------- 2. strict loading of the trainable weights
@pytest.fixture()
def checkpointed_model(tiny_clip, tmp_path):
    """A tiny OmniCLIP behind a one-process CPU Accelerator, with two checkpoints (steps 1 and 2) of it."""
    from accelerate import Accelerator

    from omniclip_hf import OmniCLIPModel

    def prepared(seed: int):
        torch.manual_seed(seed)
        model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4)
        keep_checkpoints_trainable_only(model)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        accelerator = Accelerator(cpu=True)
        return accelerator, accelerator.prepare(model, optimizer)[0]

    accelerator, model = prepared(0)
    for step in (1, 2):
        save_checkpoint(accelerator, tmp_path, step, {"global_step": step, "epoch": 0, "batches_in_epoch": step})
    return tmp_path, prepared


def drop_weights(checkpoint: Path, prefix: str) -> list[str]:
    weights = load_file(str(checkpoint / "model.safetensors"))
    dropped = sorted(name for name in weights if name.startswith(prefix))
    assert dropped
    save_file({name: value for name, value in weights.items() if name not in dropped},
              str(checkpoint / "model.safetensors"), metadata={"format": "pt"})
    return dropped


def test_a_checkpoint_missing_trainable_weights_is_refused_not_resumed_in_part(checkpointed_model):
    output, prepared = checkpointed_model
    for step in (1, 2):  # every checkpoint of that model version lacks them: no fallback to an older one
        dropped = drop_weights(output / "checkpoints" / f"step_{step:08d}", "video_head.")
    accelerator, model = prepared(123)
    initial = {name: value.clone() for name, value in model.state_dict().items() if name in dropped}
    with pytest.raises(CheckpointMismatchError) as info:
        restore_checkpoint(accelerator, "latest", output)
    message = str(info.value)
    assert "\n" not in message and "step_00000002" in message and "video_head." in message, message
    assert "another model or another version" in message and "damaged" not in message.replace("not damaged", "")
    for name, value in initial.items():
        assert torch.equal(model.state_dict()[name], value)


def test_a_checkpoint_with_extra_weights_is_refused(checkpointed_model):
    output, prepared = checkpointed_model
    checkpoint = output / "checkpoints" / "step_00000002"
    weights = load_file(str(checkpoint / "model.safetensors"))
    save_file({**weights, "video_head.extra.weight": torch.zeros(2)}, str(checkpoint / "model.safetensors"),
              metadata={"format": "pt"})
    accelerator, _ = prepared(1)
    with pytest.raises(CheckpointMismatchError, match=r"it has video_head\.extra\.weight, which this model lacks"):
        restore_checkpoint(accelerator, "latest", output)


def test_a_whole_checkpoint_still_resumes_strictly(checkpointed_model):
    """The frozen CLIP is not in checkpoints: a strict load forgives only those entries."""
    output, prepared = checkpointed_model
    saved = load_file(str(output / "checkpoints" / "step_00000002" / "model.safetensors"))
    accelerator, model = prepared(123)
    checkpoint, _ = restore_checkpoint(accelerator, "latest", output)
    assert checkpoint.name == "step_00000002"
    for name, value in saved.items():
        assert torch.equal(model.state_dict()[name], value), name


def test_a_wrapped_models_missing_trainable_weight_is_not_forgiven(tiny_clip):
    """Under DDP the loaded state dict's keys carry the wrapper's `module.` prefix: only frozen entries are forgiven."""
    from omniclip_hf import OmniCLIPModel

    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4)
    keep_checkpoints_trainable_only(model)
    wrapper = torch.nn.Module()
    wrapper.module = model  # DDP's prefix
    with _checkpoint_io():
        state = wrapper.state_dict()
        assert state and all(name.startswith("module.") for name in state)
        wrapper.load_state_dict(state, strict=True)  # the frozen CLIP's entries are left out and forgiven
        missing = next(name for name in state if name.startswith("module.video_head."))
        with pytest.raises(RuntimeError, match=rf'Missing key\(s\) in state_dict: "{missing}"'):
            wrapper.load_state_dict({name: value for name, value in state.items() if name != missing}, strict=True)


# -------------------------------------------------------------------- 3. another architecture of the same shapes
ARCHITECTURE = {"pta_head_dim": 64, "spg_pooling": "mean", "video_head_num_heads": 8}


def test_a_checkpoint_of_another_architecture_is_refused_naming_the_fields(tmp_path):
    for step in (2, 4):
        save_checkpoint(FakeAccelerator({"step": step}), tmp_path, step,
                        {"global_step": step, "epoch": 0, "batches_in_epoch": step, "architecture": ARCHITECTURE})
    accelerator = FakeAccelerator()
    with pytest.raises(CheckpointMismatchError) as info:
        restore_checkpoint(accelerator, "latest", tmp_path, architecture={**ARCHITECTURE, "pta_head_dim": 8})
    message = str(info.value)
    assert "\n" not in message and "step_00000004" in message and "pta_head_dim 8 (was 64)" in message, message
    assert "spg_pooling" not in message and "--model_overrides" in message
    assert accelerator.weights is None  # refused before anything loads
    restore_checkpoint(accelerator, "latest", tmp_path, architecture=dict(ARCHITECTURE))
    assert accelerator.weights == {"step": 4}


def test_a_checkpoint_without_a_recorded_architecture_still_resumes(tmp_path):
    write_checkpoints(tmp_path, [2])
    checkpoint, _ = restore_checkpoint(FakeAccelerator(), "latest", tmp_path, architecture=dict(ARCHITECTURE))
    assert checkpoint.name == "step_00000002"


def test_other_model_overrides_are_in_the_resume_warning(tmp_path, caplog):
    from omniclip_hf.training.loop import parse_training_options
    from omniclip_hf.training.recipe import recipe_of, warn_about_changed_recipe

    flags = ["--clip", "x", "--train_data", "y"]
    was = parse_training_options(flags + ["--model_overrides", '{"prompt_alpha": 0.1, "use_spg": true}'])
    recorded = recipe_of(was, 1)
    same = parse_training_options(flags + ["--model_overrides", '{"use_spg":true,  "prompt_alpha":0.1}'])
    other = parse_training_options(flags + ["--model_overrides", '{"prompt_alpha": 0.5, "use_spg": true}'])
    with caplog.at_level("WARNING"):
        warn_about_changed_recipe(same, tmp_path, tmp_path / "step_00000002", recorded)
        assert not caplog.records  # the same overrides, written otherwise
        warn_about_changed_recipe(other, tmp_path, tmp_path / "step_00000002", recorded)
    assert len(caplog.records) == 1 and "--model_overrides" in caplog.records[0].getMessage()
    assert "0.5" in caplog.records[0].getMessage()


# ---------------------------------------------------------------------------- 7. a trainer state without its records
@pytest.mark.parametrize("lacks", ["losses", "skipped_videos"])
def test_a_trainer_state_without_the_loops_records_is_damaged_and_latest_falls_back(tmp_path, caplog, lacks):
    records = {"losses": [1.0], "skipped_videos": 0, "learning_rates": [0.1]}
    for step in (2, 4):
        state = {"global_step": step, "epoch": 0, "batches_in_epoch": step, **records}
        if step == 4:
            del state[lacks]
        save_checkpoint(FakeAccelerator({"step": step}), tmp_path, step, state)
    latest = tmp_path / "checkpoints" / "step_00000004"
    with pytest.raises(ValueError, match=rf"{latest / 'trainer_state.json'} is damaged: .*{lacks}"):
        load_trainer_state(latest, loop_records=True)
    with caplog.at_level("WARNING"):
        checkpoint, state = restore_checkpoint(FakeAccelerator(), "latest", tmp_path, loop_records=True)
    assert checkpoint.name == "step_00000002" and state["losses"] == [1.0]
    assert any("step_00000004/trainer_state.json is damaged" in record.getMessage() and "falling back"
               in record.getMessage() for record in caplog.records)


# ----------------------------------------------------------------------------------- through examples/train.py
@pytest.fixture(scope="module")
def one_epoch_run(tiny_clip_dir, motion_data, tmp_path_factory):  # noqa: F811
    """One epoch (4 steps), a checkpoint after each: step 4 is the epoch's last."""
    output = tmp_path_factory.mktemp("lineage") / "run"
    result = run(train_command(tiny_clip_dir, motion_data, output, "--epochs", "1", "--checkpointing_steps", "1"))
    assert result.returncode == 0, result.stderr[-3000:]
    return output


def test_a_resume_from_an_epochs_last_step_leaves_that_checkpoint_as_it_was(one_epoch_run, tiny_clip_dir,
                                                                            motion_data, tmp_path):  # noqa: F811
    output = tmp_path / "run"
    shutil.copytree(one_epoch_run, output)
    last = output / "checkpoints" / "step_00000004"
    before = files_under(last)
    contents = {name: (last / name).read_bytes() for name in before}
    resumed = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "5", "--resume_from_checkpoint",
                                "latest"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and "at step 4 " in resumed.stdout, resumed.stdout[-3000:]
    assert (output / "checkpoints" / "step_00000005").is_dir()
    assert files_under(last) == before
    assert {name: (last / name).read_bytes() for name in before} == contents


def test_a_resume_with_another_architecture_of_the_same_shapes_is_one_error_line(one_epoch_run, tiny_clip_dir,
                                                                                 motion_data, tmp_path):  # noqa: F811
    output = tmp_path / "run"
    shutil.copytree(one_epoch_run, output)
    before = files_under(output)
    pta_head_dim = load_trainer_state(output / "checkpoints" / "step_00000004")["architecture"]["pta_head_dim"]
    changed = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "5", "--resume_from_checkpoint",
                                "latest", "--model_overrides", json.dumps({"pta_head_dim": pta_head_dim // 2})))
    line = one_error(changed)
    assert "step_00000004" in line and f"pta_head_dim {pta_head_dim // 2} (was {pta_head_dim})" in line, line
    assert files_under(output) == before


def test_train_with_a_model_whose_config_does_not_fit_its_weights_is_one_error_line(tiny_omniclip_dir, motion_data,
                                                                                   tmp_path):  # noqa: F811
    model = tmp_path / "model"
    shutil.copytree(tiny_omniclip_dir, model)
    config = json.loads((model / "config.json").read_text())
    assert config["num_frames"] == 4
    (model / "config.json").write_text(json.dumps({**config, "num_frames": 8}, indent=2))
    command = train_command(model, motion_data, tmp_path / "out", "--max_steps", "1")
    command[command.index("--clip")] = "--model"
    result = run(command)
    line = one_error(result)
    assert line.startswith(f"error: {model / 'config.json'} does not fit the weights"), line
    assert "LOAD REPORT" not in result.stderr and not (tmp_path / "out" / "checkpoints").exists()
