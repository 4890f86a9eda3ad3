"""The optimizer steps an epoch makes, and the schedule built for them: with gradient accumulation and with several
processes every epoch runs to its end and the schedule to its last step; an epoch's short last accumulation group
gives the mean gradient of its batches; a resume goes on with the run's options, not the checkpoint's; eval sets
without a labels file are scored over the trained classes; a launcher that replaces the accumulation count, and a
warm-up as long as training, are said."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from omniclip_hf.training.distributed import check_launch, check_total_batch_size
from omniclip_hf.training.loop import build_scheduler, parse_training_options
from omniclip_hf.training.run import group_scale, optimizer_steps_per_epoch
from omniclip_hf.training.testing_hooks import ENVIRONMENT_VARIABLE

from .conftest import REPO_ROOT
from .test_training import CLASSES, motion_data, one_process_schedule, run, train_command  # noqa: F401 (fixture)
from .test_training_multinode import free_port

NUM_TRAIN = 4 * len(CLASSES)  # the motion fixture's training videos


def seen_per_epoch(output, ranks=(0,)) -> dict[int, set[int]]:
    seen: dict[int, set[int]] = {}
    for rank in ranks:
        for epoch, batch in json.loads((output / f"seen_indices_rank{rank}.json").read_text()):
            seen.setdefault(epoch, set()).update(batch)
    return seen


def test_optimizer_steps_count_a_short_last_accumulation_group():
    assert optimizer_steps_per_epoch(8, 3) == 3  # 3 + 3 + 2: Accelerate steps at the loader's end too
    assert optimizer_steps_per_epoch(9, 3) == 3
    assert optimizer_steps_per_epoch(2, 4) == 1
    assert [group_scale(batch, 8, 3) for batch in range(1, 9)] == [1, 1, 1, 1, 1, 1, 1.5, 1.5]
    assert group_scale(7, None, 3) == 1 and group_scale(7, 8, 1) == 1


def test_accumulation_runs_every_epoch_and_its_short_group_is_a_mean(tiny_clip_dir, motion_data, tmp_path):
    """Batch 2, 3 batches a step: 8 batches an epoch make 3 optimizer steps (3 + 3 + 2 batches). The schedule counts
    them (a floor made 2, and training stopped in the second epoch), and the short group's gradient is the mean of its
    batches: the run equals batch 6 without accumulation (6 + 6 + 4 videos a step), where it was 2/3 of it."""
    common = ("--epochs", "2", "--warmup_steps", "1", "--mixup_alpha", "0", "--cutmix_alpha", "0",
              "--checkpointing_steps", "100")
    accumulated = train_command(tiny_clip_dir, motion_data, tmp_path / "accumulated", *common, "--batch_size", "2",
                                "--gradient_accumulation_steps", "3")
    result = run(accumulated, hooks={"record_seen_indices": True})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "accumulated" / "metrics.json").read_text())
    assert metrics["global_step"] == 6
    assert metrics["train_learning_rates"] == one_process_schedule(parse_training_options(accumulated[2:]), steps=6)
    assert seen_per_epoch(tmp_path / "accumulated") == {0: set(range(NUM_TRAIN)), 1: set(range(NUM_TRAIN))}

    whole = train_command(tiny_clip_dir, motion_data, tmp_path / "whole", *common, "--batch_size", "6")
    result = run(whole)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "whole" / "metrics.json").read_text())["global_step"] == 6
    mine, theirs = (load_file(tmp_path / name / "checkpoints" / "step_00000006" / "model.safetensors")
                    for name in ("accumulated", "whole"))
    assert mine.keys() == theirs.keys()
    for key in mine:
        torch.testing.assert_close(mine[key], theirs[key], rtol=1e-4, atol=1e-5, msg=key)


def test_a_batch_that_failed_to_decode_keeps_its_place_in_the_accumulation_group(tiny_clip_dir, motion_data,
                                                                                   tmp_path):
    """One process, batch 1, 2 batches a step, 3 videos an epoch of which one is undecodable: 2 optimizer steps an
    epoch as the schedule planned (the failed batch's forward counts, with no weight). It was skipped: Accelerate's
    group then took the next batch, the epoch made 1 step, and training ended at step 2 of the 4 planned."""
    data = tmp_path / "data"
    good = sorted((motion_data / "train" / CLASSES[0]).iterdir())[:2]
    (data / "train" / CLASSES[0]).mkdir(parents=True)
    (data / "train" / CLASSES[1]).mkdir(parents=True)
    for path in good:
        shutil.copy(path, data / "train" / CLASSES[0] / path.name)
    (data / "train" / CLASSES[1] / "broken.mp4").write_text("not a video")
    shutil.copy(motion_data / "labels.txt", data / "labels.txt")
    command = train_command(tiny_clip_dir, data, tmp_path / "out", "--epochs", "2", "--batch_size", "1",
                            "--mixup_alpha", "0", "--cutmix_alpha", "0",  # nothing to pair in a batch of one
                            "--gradient_accumulation_steps", "2", "--warmup_steps", "1", "--checkpointing_steps", "100")
    result = run(command)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["skipped_videos"] == 2 and metrics["global_step"] == 4
    assert metrics["train_learning_rates"] == one_process_schedule(parse_training_options(command[2:]), steps=4)


def test_a_step_s_loss_is_the_mean_over_its_decoded_batches():
    """A failed batch's weightless forward (loss 0) pulled its step's recorded loss down: 1.0 for a step of 2.0 and a
    failed batch."""
    from omniclip_hf.training.run import StepLosses

    accelerator = SimpleNamespace(reduce=lambda tensor, reduction: tensor)
    losses = StepLosses(accelerator, [])
    losses.add_micro_batch(torch.tensor(2.0))
    losses.add_micro_batch(torch.tensor(0.0), weight=0.0)
    losses.end_step()
    losses.add_micro_batch(torch.tensor(0.0), weight=0.0)  # a step of failed batches only: nothing to average
    losses.end_step()
    assert losses.read() == [2.0, 0.0]


def test_two_processes_run_the_schedule_they_planned_over_every_video(tiny_clip_dir, motion_data, tmp_path):
    """16 videos in batches of 3 over two processes: 6 batches, 3 each (Accelerate fills the last round from the
    epoch's first videos). Dropping the short batch left 2 each, 12 videos an epoch, and training ended at step 4 of a
    schedule built for 6, its rate never decayed."""
    output = tmp_path / "two"
    command = train_command(tiny_clip_dir, motion_data, output, "--epochs", "2", "--batch_size", "3",
                            "--warmup_steps", "1")
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                   ENVIRONMENT_VARIABLE: json.dumps({"record_seen_indices": True})}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(free_port())]
    result = subprocess.run(torchrun + command[1:], cwd=REPO_ROOT, env=environment, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["global_step"] == 6
    assert metrics["train_learning_rates"] == one_process_schedule(parse_training_options(command[2:]), steps=6)
    assert seen_per_epoch(output, ranks=(0, 1)) == {0: set(range(NUM_TRAIN)), 1: set(range(NUM_TRAIN))}


def test_a_resume_goes_on_with_this_runs_optimizer_settings(tiny_clip_dir, motion_data, tmp_path):
    """Accelerate's load_state restores the optimizer's rates, weight decay and betas with its state: a resume with
    other values went on with the old ones while training_options.json and metrics.json recorded the new."""
    output = tmp_path / "run"
    first = train_command(tiny_clip_dir, motion_data, output, "--max_steps", "2", "--checkpointing_steps", "1")
    assert run(first).returncode == 0
    changed = ["--lr", "2e-2", "--weight_decay", "0.5", "--adam_beta2", "0.9"]
    resumed = train_command(tiny_clip_dir, motion_data, output, "--max_steps", "4", "--checkpointing_steps", "1",
                            "--resume_from_checkpoint", "latest", *changed)
    result = run(resumed)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--weight_decay 0.5 (was 0.003)" in result.stderr and "--adam_beta2 0.9 (was 0.98)" in result.stderr
    assert "training goes on with the new values" in result.stderr
    optimizer = torch.load(output / "checkpoints" / "step_00000004" / "optimizer.bin", weights_only=True)
    assert {group["weight_decay"] for group in optimizer["param_groups"]} == {0.5, 0.0}
    assert {group["betas"] for group in optimizer["param_groups"]} == {(0.9, 0.9)}
    assert {group["initial_lr"] for group in optimizer["param_groups"]} == {2e-2}
    # Steps 3 and 4 trained at this run's schedule, at the position the checkpoint reached.
    rates = json.loads((output / "metrics.json").read_text())["train_learning_rates"]
    assert rates[2:] == pytest.approx(one_process_schedule(parse_training_options(resumed[2:]), steps=4)[2:])


@pytest.mark.runs_long
def test_an_eval_set_without_labels_file_is_scored_over_the_trained_classes(tiny_clip_dir, motion_data, tmp_path):
    """An eval set holding two of the four trained classes and no labels file: scored over the two alone, it was a
    choice between two (train.py's top-1 above evaluate.py's on the same model and videos); now over all four, as
    evaluate.py scores it. A class the model was not trained on is refused before training."""
    two_classes = tmp_path / "eval"
    for name in CLASSES[2:]:
        shutil.copytree(motion_data / "test" / name, two_classes / name)
    command = train_command(tiny_clip_dir, motion_data, tmp_path / "run", "--max_steps", "2", "--eval_data",
                            str(two_classes))
    command.remove("--labels_file")
    command.remove(str(motion_data / "labels.txt"))
    result = run(command)
    assert result.returncode == 0, result.stderr[-3000:]
    trained = json.loads((tmp_path / "run" / "metrics.json").read_text())["eval"]
    assert len(trained["confusion_matrix"]) == len(CLASSES)
    evaluated = run([sys.executable, str(REPO_ROOT / "examples" / "evaluate.py"), "--model",
                     str(tmp_path / "run" / "model"), "--eval_data", str(two_classes), "--num_clips", "1",
                     "--num_crops", "1", "--num_workers", "0", "--output_dir", str(tmp_path / "evaluated")])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    alone = json.loads((tmp_path / "evaluated" / "metrics.json").read_text())
    for key in ("top1", "confusion_matrix", "per_class_accuracy"):
        assert trained[key] == alone[key], key

    shutil.copytree(motion_data / "test" / CLASSES[0], two_classes / "somersaulting")
    refused = run([str(tmp_path / "refused") if part == str(tmp_path / "run") else part for part in command])
    assert refused.returncode != 0
    assert "not among the 4 the model is trained on (e.g. ['somersaulting'])" in refused.stderr, refused.stderr[-2000:]
    assert "--eval_labels_file" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "refused" / "checkpoints").exists()


def test_an_accumulation_count_replaced_by_the_launcher_is_refused():
    """`accelerate launch` with a DeepSpeed config exports its gradient_accumulation_steps, which Accelerate takes
    over the script's: the run stepped 4 times as often as --gradient_accumulation_steps 4 said."""
    accelerator = SimpleNamespace(mixed_precision="no", device=torch.device("cpu"), gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="--gradient_accumulation_steps 4: the launch sets 1"):
        check_launch(accelerator, 4)
    check_launch(accelerator, 1)


@pytest.mark.parametrize("variable, asked", [("ACCELERATE_USE_FSDP", "FSDP"),
                                             ("ACCELERATE_USE_DEEPSPEED", "DEEPSPEED")])
def test_a_sharding_config_run_as_plain_data_parallelism_is_warned_about(monkeypatch, caplog, variable, asked):
    """On a CPU Accelerate sets up MULTI_CPU whatever the launch config asked: with deepspeed installed, the shipped
    deepspeed_zero2.yaml trained two processes as plain DDP here with nothing said (measured)."""
    accelerator = SimpleNamespace(mixed_precision="no", device=torch.device("cpu"), gradient_accumulation_steps=1,
                                  is_main_process=True, distributed_type=SimpleNamespace(value="MULTI_CPU"))
    with caplog.at_level(logging.WARNING, logger="omniclip.train"):
        check_launch(accelerator, 1)
    assert not caplog.records  # nothing asked, nothing said
    monkeypatch.setenv(variable, "true")
    with caplog.at_level(logging.WARNING, logger="omniclip.train"):
        check_launch(accelerator, 1)
    assert [record.getMessage() for record in caplog.records] == [
        f"the launch config asks for {asked}, but Accelerate set up MULTI_CPU on cpu (it places {asked} on GPUs only): "
        + ("the model is not sharded." if asked == "FSDP" else "DeepSpeed (ZeRO) is not used.")]
    caplog.clear()
    accelerator.distributed_type.value = asked  # what was asked is what runs: nothing to say
    with caplog.at_level(logging.WARNING, logger="omniclip.train"):
        check_launch(accelerator, 1)
    assert not caplog.records


def test_a_warmup_as_long_as_training_is_said(caplog):
    options = parse_training_options(["--clip", "x", "--train_data", "y", "--warmup_steps", "10"])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=options.lr)
    with caplog.at_level(logging.WARNING, logger="omniclip.train"):
        build_scheduler(optimizer, options, steps_per_epoch=4, total_steps=4)
    assert "the warm-up (10 steps) is as long as training (4 optimizer steps): it is cut to 3" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="omniclip.train"):
        build_scheduler(optimizer, options, steps_per_epoch=40, total_steps=40)
    assert "warm-up" not in caplog.text


def test_a_recipe_s_total_batch_is_checked_against_the_launch(tiny_clip_dir, motion_data, tmp_path):
    """Batch sizes are per process: a recipe of batch 8 for one GPU launched on 8 trained at 64 with nothing said."""
    options = parse_training_options(["--clip", "x", "--train_data", "y", "--batch_size", "8", "--total_batch_size", "8"])
    check_total_batch_size(options, processes=1)
    with pytest.raises(ValueError, match=r"--total_batch_size 8: this launch trains batches of 64 \(--batch_size 8 x 8 "):
        check_total_batch_size(options, processes=8)
    options.gradient_accumulation_steps, options.batch_size = 4, 2
    check_total_batch_size(options, processes=1)  # 2 x 1 x 4
    result = run(train_command(tiny_clip_dir, motion_data, tmp_path / "run", "--total_batch_size", "3"))
    assert result.returncode != 0 and "--total_batch_size 3: this launch trains batches of 4" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run" / "checkpoints").exists()


def test_a_resume_that_changes_the_optimizer_s_groups_is_refused_not_called_damaged(tiny_clip_dir, motion_data,
                                                                                      tmp_path):
    """A rate scale turned from 1 to 0.1 gives the prompts a group of their own: load_state failed on every
    checkpoint, each was called damaged, and the advice was --overwrite_output_dir, which deletes them."""
    output = tmp_path / "run"
    first = train_command(tiny_clip_dir, motion_data, output, "--max_steps", "2", "--checkpointing_steps", "1",
                          "--prompt_lr_scale", "1")
    assert run(first).returncode == 0
    resumed = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "4", "--prompt_lr_scale", "0.1",
                                "--resume_from_checkpoint", "latest"))
    assert resumed.returncode != 0
    assert "parameter groups and this run builds" in resumed.stderr and "(--prompt_lr_scale 1.0" in resumed.stderr
    assert "damaged" not in resumed.stderr and "Traceback" not in resumed.stderr
    assert sorted(path.name for path in (output / "checkpoints").iterdir()) == ["step_00000001", "step_00000002"]


def deepspeed_accelerator(**plugin_settings):
    """An Accelerator stand-in holding the DeepSpeed plugin `accelerate launch` builds from a config (DeepSpeed itself
    is not needed to build it)."""
    from accelerate.utils import DeepSpeedPlugin

    plugin = DeepSpeedPlugin(zero_stage=2, **plugin_settings)
    return SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=plugin), num_processes=8)


def test_deepspeed_takes_the_batch_sizes_and_clipping_of_the_script():
    """The shipped ZeRO-2 config left the batch sizes to Accelerate, which fills them only from a loader prepared with
    the model (this loop prepares its loader apart): the launch stopped with Accelerate's error about prepare(). And
    DeepSpeed clipped at the config's 1.0 whatever --max_grad_norm said."""
    from omniclip_hf.training.distributed import configure_deepspeed

    options = SimpleNamespace(batch_size=4, gradient_accumulation_steps=2, max_grad_norm=5.0)
    accelerator = deepspeed_accelerator(gradient_clipping="auto")
    configure_deepspeed(accelerator, options)
    config = accelerator.state.deepspeed_plugin.deepspeed_config
    assert (config["train_micro_batch_size_per_gpu"], config["train_batch_size"], config["gradient_clipping"]) == \
        (4, 64, 5.0)
    with pytest.raises(ValueError, match=r"^--max_grad_norm 5.0: the DeepSpeed config clips gradients at 1.0"):
        configure_deepspeed(deepspeed_accelerator(gradient_clipping=1.0), options)
    configure_deepspeed(deepspeed_accelerator(gradient_clipping=1.0), SimpleNamespace(**{**vars(options),
                                                                                         "max_grad_norm": 1.0}))
    shipped = (REPO_ROOT / "examples" / "accelerate_configs" / "deepspeed_zero2.yaml").read_text()
    assert "gradient_clipping: auto" in shipped
