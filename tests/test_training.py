"""Training and evaluation: data loading, few-shot, metrics, checkpoints and resumption, corrupt files, two
processes, publishing (dry run) and adapter-only checkpoints. Runs `examples/train.py` in subprocesses on tiny
generated mp4 clips and a tiny CLIP saved by the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from omniclip_hf import OmniCLIPModel, OmniCLIPProcessor
from omniclip_hf.training.data import few_shot_indices, few_shot_subset, load_annotation_file, load_video_dataset
from omniclip_hf.training.evaluation import classification_metrics, mean_and_std
from omniclip_hf.motion_benchmark.motion_data import CLASS_NAMES, write_motion_dataset
from omniclip_hf.training.testing_hooks import ENVIRONMENT_VARIABLE
from omniclip_hf.training.loop import (
    VideoMixer,
    build_optimizer,
    build_scheduler,
    check_inputs_exist,
    latest_checkpoint,
    parse_training_options,
)
from omniclip_hf.training.run import check_scheduler_stepping

from .conftest import REPO_ROOT

CLASSES = list(CLASS_NAMES[:4])


@pytest.fixture(scope="module")
def motion_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("motion")
    write_motion_dataset(folder, num_train_per_class=4, num_test_per_class=2, num_frames=8, size=32, seed=0,
                         classes=CLASSES)
    return folder


def train_command(clip_dir, data_dir, output_dir, *extra: str) -> list[str]:
    return [
        sys.executable, str(REPO_ROOT / "examples" / "train.py"),
        "--clip", str(clip_dir), "--train_data", str(data_dir / "train"), "--labels_file", str(data_dir / "labels.txt"),
        "--output_dir", str(output_dir), "--num_frames", "4", "--batch_size", "4", "--num_workers", "0",
        "--warmup_epochs", "0", "--lr", "1e-2", "--eval_num_clips", "1", "--eval_num_crops", "1", *extra,
    ]


def run(command: list[str], timeout: int = 600, hooks: dict | None = None) -> subprocess.CompletedProcess:
    """Runs a script; `hooks` switch on testing hooks (omniclip_hf/training/testing_hooks.py) through the environment."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    if hooks:
        environment[ENVIRONMENT_VARIABLE] = json.dumps(hooks)
    # A session of its own: on a timeout the whole group goes (torchrun's workers too, not only torchrun).
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def one_process_schedule(options, steps: int) -> list[float]:
    """The learning rate of each of `steps` optimizer steps, the schedule stepped once per step."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=options.lr)
    scheduler = build_scheduler(optimizer, options, steps_per_epoch=steps, total_steps=steps)
    rates = []
    for _ in range(steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


def assert_remote_code_gives(folder: Path, inputs: dict, expected: torch.Tensor, tmp_path: Path) -> None:
    """A fresh process without the package loads `folder` as Hub remote code and reproduces `expected` exactly."""
    torch.save({"inputs": inputs, "expected": expected}, tmp_path / "io.pt")
    # With the thread count that computed `expected` (run() gives scripts one): torch's CPU elementwise kernels
    # round their vectorised body and scalar tail differently, and where a tail falls depends on the thread count.
    script = f"""
import sys, torch
from transformers import AutoModel
torch.set_num_threads({torch.get_num_threads()})
model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
assert "omniclip_hf" not in sys.modules
io = torch.load({str(tmp_path / "io.pt")!r})
with torch.no_grad():
    assert torch.equal(model(**io["inputs"]).logits_per_video, io["expected"])
print("identical")
"""
    check = run([sys.executable, "-c", script])
    assert check.returncode == 0 and "identical" in check.stdout, check.stderr[-3000:]


def trainable_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


# ----------------------------------------------------------------------------------------------------- data units
def test_few_shot_selection_is_exact_and_reproducible(motion_data):
    data = load_video_dataset(motion_data / "train", motion_data / "labels.txt")
    subset, chosen = few_shot_subset(data, shots=2, seed=7)
    assert len(subset) == 2 * len(CLASSES)
    assert sorted(np.bincount(subset.dataset["label"]).tolist()) == [2] * len(CLASSES)
    assert few_shot_subset(data, shots=2, seed=7)[1] == chosen
    labels = list(range(10)) * 20  # 10 classes, 20 each
    draws = {tuple(few_shot_indices(labels, 3, seed, 10)) for seed in range(5)}
    assert len(draws) == 5  # the seed matters
    with pytest.raises(ValueError, match=f"^{data.source}: class '{CLASSES[0]}' has only 4 training videos, fewer "
                                         "than --shots 5: lower --shots"):
        few_shot_subset(data, shots=5, seed=0)


def test_folder_and_annotation_files_give_the_same_data(motion_data, tmp_path):
    folder = load_video_dataset(motion_data / "train", motion_data / "labels.txt")
    assert folder.class_names == [line for line in (motion_data / "labels.txt").read_text().splitlines() if line]
    rows = list(zip(folder.dataset["video"], folder.dataset["label"]))
    relative = [(str(Path(video).relative_to(motion_data)), label) for video, label in rows]
    (tmp_path / "split.csv").write_text("path,label\n" + "".join(f"{v},{folder.class_names[l]}\n" for v, l in relative))
    (tmp_path / "split.txt").write_text("".join(f"{v} {l}\n" for v, l in relative))
    (tmp_path / "split.jsonl").write_text("".join(json.dumps({"path": v, "label": l}) + "\n" for v, l in relative))
    for name in ("split.csv", "split.txt", "split.jsonl"):
        data = load_annotation_file(tmp_path / name, folder.class_names, data_root=motion_data)
        assert list(zip(data.dataset["video"], data.dataset["label"])) == rows, name
    with pytest.raises(ValueError, match="labels are class indices; pass --labels_file"):
        load_annotation_file(tmp_path / "split.txt", None, data_root=motion_data)
    (tmp_path / "bad.csv").write_text("a.mp4,not a class\n")
    with pytest.raises(ValueError, match="'not a class' is not one of the 4 class names"):
        load_annotation_file(tmp_path / "bad.csv", folder.class_names)
    with pytest.raises(FileNotFoundError, match="no such folder or annotation file"):
        load_video_dataset(tmp_path / "missing" / "split.csv")


def test_metrics_match_a_hand_computation():
    logits = torch.tensor([
        [0.9, 0.05, 0.03, 0.01, 0.01, 0.0],  # label 0: top-1 hit
        [0.1, 0.2, 0.6, 0.05, 0.03, 0.02],   # label 1: 2nd best -> top-5 hit, top-1 miss
        [0.05, 0.1, 0.2, 0.3, 0.35, 0.0],    # label 5: lowest of 6 -> top-5 miss
        [0.2, 0.1, 0.3, 0.1, 0.1, 0.2],      # label 2: top-1 hit
    ])
    labels = torch.tensor([0, 1, 5, 2])
    metrics = classification_metrics(logits, labels, [f"c{i}" for i in range(6)])
    assert metrics["top1"] == pytest.approx(2 / 4)
    assert metrics["top5"] == pytest.approx(3 / 4)
    assert metrics["per_class_accuracy"] == {"c0": 1.0, "c1": 0.0, "c2": 1.0, "c5": 0.0}
    assert metrics["mean_class_accuracy"] == pytest.approx(0.5)
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix[1, 2] == 1 and matrix[5, 4] == 1 and matrix.sum() == 4
    assert mean_and_std([0.5, 0.7, 0.6]) == pytest.approx({"mean": 0.6, "std": np.std([0.5, 0.7, 0.6])})


def test_video_mixer_is_seeded_per_step_and_gives_soft_targets():
    mixer = VideoMixer(num_classes=4, mixup_alpha=0.8, cutmix_alpha=1.0, probability=1.0, seed=3)
    videos = torch.randn(4, 3, 3, 16, 16)
    labels = torch.tensor([0, 1, 2, 3])
    first, soft = mixer(videos, labels, step=5)
    again, soft_again = mixer(videos, labels, step=5)
    assert torch.equal(first, again) and torch.equal(soft, soft_again)
    other, _ = mixer(videos, labels, step=6)
    assert not torch.equal(first, other)
    assert soft.shape == (4, 4) and torch.allclose(soft.sum(dim=1), torch.ones(4))
    assert first.shape == videos.shape


def test_video_mixer_draws_per_process_and_micro_batch():
    """Every process and every micro-batch of a step drew the same mixing weight and box; each draws its own now,
    the same again when asked again (a resume), and the first process's first micro-batch as one-process runs did."""
    videos, labels = torch.randn(4, 3, 3, 16, 16), torch.tensor([0, 1, 2, 3])

    def targets(rank, micro_batch):
        mixer = VideoMixer(num_classes=4, mixup_alpha=0.8, cutmix_alpha=1.0, probability=1.0, seed=3, rank=rank)
        return mixer(videos, labels, 5, micro_batch)[1]

    draws = [targets(rank, micro_batch) for rank in (0, 1) for micro_batch in (0, 1)]
    assert all(not torch.equal(a, b) for i, a in enumerate(draws) for b in draws[i + 1:])
    assert torch.equal(targets(1, 1), draws[3])
    one_process = VideoMixer(num_classes=4, mixup_alpha=0.8, cutmix_alpha=1.0, probability=1.0, seed=3)
    assert one_process.draw_seed(5, 0) == 3 * 1_000_003 + 5  # the seed one-process runs always drew with
    assert torch.equal(one_process(videos, labels, step=5)[1], draws[0])


@pytest.mark.parametrize("recipe", sorted((REPO_ROOT / "examples" / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_parses(recipe):
    options = parse_training_options(["--config", str(recipe), "--clip", "openai/clip-vit-base-patch16",
                                      "--epochs", "3"])
    assert options.epochs == 3  # the command line wins over the file
    assert options.lr > 0 and options.train_data and options.eval_data


def test_unknown_recipe_option_is_an_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("learning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown options \['learning_rate'\]"):
        parse_training_options(["--config", str(tmp_path / "bad.yaml"), "--clip", "x", "--train_data", "y"])


@pytest.mark.parametrize("flags, message", [
    (["--max_steps", "0"], r"--max_steps=0 is invalid: it must be >= 1 \(leave it out to train for --epochs\)"),
    (["--max_steps", "-1"], r"--max_steps=-1 is invalid"),
    (["--shots", "0"], r"--shots=0 is invalid"),
    (["--logging_steps", "0"], r"--logging_steps=0 is invalid"),
    (["--checkpoints_total_limit", "-1"], r"--checkpoints_total_limit=-1 is invalid"),
    (["--checkpoints_total_limit", "0"], r"--checkpoints_total_limit=0 is invalid.*to keep every checkpoint"),
    (["--checkpointing_steps", "-1"], r"--checkpointing_steps=-1 is invalid"),
    (["--warmup_steps", "-5"], r"--warmup_steps=-5 is invalid: it must be >= 0"),
    (["--eval_batch_size", "0"], r"--eval_batch_size=0 is invalid"),
    (["--lr", "0"], r"--lr=0.0 is invalid"),
    (["--video_processor_overrides", "flip_prob=0"], r"--video_processor_overrides 'flip_prob=0' is not valid JSON"),
    (["--model_overrides", "{use_spg: false}"], r"--model_overrides '\{use_spg: false\}' is not valid JSON"),
    (["--video_processor_overrides", "[1]"], r"--video_processor_overrides '\[1\]' is not a JSON object"),
    (["--video_processor_overrides", '{"flip_probability": 0}'],
     r"--video_processor_overrides: unknown settings \['flip_probability'\]"),
    (["--video_processor_overrides", '{"train": false}'], r"--video_processor_overrides: unknown settings \['train'\]"),
    (["--video_processor_overrides", '{"num_frames": 2}'],
     r"--video_processor_overrides sets num_frames: .*use --num_frames"),
    # Values the video processor refuses: applied per call, they skipped every video as undecodable.
    (["--video_processor_overrides", '{"flip_prob": 1.5}'],
     r"--video_processor_overrides: flip_prob=1.5 is invalid: it must be a probability"),
    (["--video_processor_overrides", '{"augment_crop_scale": [1.0, 0.08]}'],
     r"--video_processor_overrides: augment_crop_scale=\[1.0, 0.08\] is invalid"),
])
def test_a_bad_option_value_is_one_line_naming_the_flag(flags, message):
    """Each was accepted before: --max_steps 0 trained an epoch, -1 nothing; --shots 0 every video; a limit of -1
    deleted every checkpoint; an unknown or a frame-count override failed in a worker at the first batch or
    quietly trained on other clips than the model's."""
    with pytest.raises(ValueError, match=f"^{message}"):
        parse_training_options(["--clip", "x", "--train_data", "y", *flags])
    parse_training_options(["--clip", "x", "--train_data", "y", "--video_processor_overrides", '{"flip_prob": 0}'])


def test_a_recipes_single_eval_set_may_be_a_string(tmp_path):
    (tmp_path / "recipe.yaml").write_text("eval_data: data/test\neval_labels_file: data/labels.txt\n")
    options = parse_training_options(["--config", str(tmp_path / "recipe.yaml"), "--clip", "x", "--train_data", "y"])
    assert options.eval_data == ["data/test"] and options.eval_labels_file == ["data/labels.txt"]


@pytest.mark.parametrize("line, message", [
    ("batch_size: two", r"batch_size: 'two' is not a whole number"),  # argparse printed its usage, no file named
    ("epochs: 2.5", r"epochs: 2.5 is not a whole number"),  # was taken as it came
    ("streaming: maybe", r"streaming: 'maybe' is not true or false"),
    ("eval_data: [1, 2]", r"eval_data: \[1, 2\] is not a list of strings"),
])
def test_a_recipe_value_of_the_wrong_type_is_one_line_naming_the_file(tmp_path, line, message):
    (tmp_path / "recipe.yaml").write_text(line + "\n")
    with pytest.raises(ValueError, match=f"^{tmp_path / 'recipe.yaml'}: {message}"):
        parse_training_options(["--config", str(tmp_path / "recipe.yaml"), "--clip", "x", "--train_data", "y"])


def test_a_recipe_reads_yaml_as_people_write_it(tmp_path):
    """`no` is YAML's false, and `1e-3` (no dot) a string in YAML 1.1: both mean what they say."""
    (tmp_path / "recipe.yaml").write_text("mixed_precision: no\nlr: 1e-3\nwarmup_epochs: 1\n")
    options = parse_training_options(["--config", str(tmp_path / "recipe.yaml"), "--clip", "x", "--train_data", "y"])
    assert (options.mixed_precision, options.lr, options.warmup_epochs) == ("no", 0.001, 1.0)


def test_an_output_dir_that_is_a_file_is_refused_before_the_model_loads(tmp_path):
    (tmp_path / "out").write_text("")
    options = parse_training_options(["--clip", "openai/x", "--train_data", "owner/data", "--output_dir",
                                      str(tmp_path / "out")])
    with pytest.raises(ValueError, match=f"^--output_dir {tmp_path / 'out'} is a file; pass a folder"):
        check_inputs_exist(options)


@pytest.mark.parametrize("flag, module", [("prompt_lr_scale", "video_specific_prompts"),
                                          ("spg_lr_scale", "self_prompt_generator"),
                                          ("video_head_lr_scale", "video_head")])
def test_a_module_lr_scale_gives_that_module_its_own_learning_rate(tiny_clip_dir, flag, module):
    model = OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4)
    module_ids = {id(p) for p in getattr(model, module).parameters()}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}

    options = parse_training_options(["--clip", "x", "--train_data", "y", "--lr", "1e-3", f"--{flag}", "0.1"])
    groups = build_optimizer(model, options).param_groups
    in_groups = [id(p) for group in groups for p in group["params"]]
    assert sorted(in_groups) == sorted(trainable)  # every trainable parameter once, nothing frozen
    assert any(id(p) in module_ids for group in groups for p in group["params"])
    for group in groups:
        expected = 1e-4 if id(group["params"][0]) in module_ids else 1e-3
        assert {id(p) in module_ids for p in group["params"]} == {expected == 1e-4}
        assert group["lr"] == pytest.approx(expected)

    # The default keeps the two groups (decay / no decay) at one learning rate.
    default = build_optimizer(model, parse_training_options(["--clip", "x", "--train_data", "y"])).param_groups
    assert [group["weight_decay"] for group in default] == [0.003, 0.0]
    with pytest.raises(ValueError, match=f"{flag}=0.0 is invalid"):
        parse_training_options(["--clip", "x", "--train_data", "y", f"--{flag}", "0"])


def test_an_accelerator_that_steps_the_schedule_per_process_is_refused():
    with pytest.raises(ValueError, match="step_scheduler_with_optimizer=False, as examples/train.py does"):
        check_scheduler_stepping(SimpleNamespace(step_scheduler_with_optimizer=True))
    check_scheduler_stepping(SimpleNamespace(step_scheduler_with_optimizer=False))


def test_latest_checkpoint_ignores_partial_saves(tmp_path):
    (tmp_path / "checkpoints" / "step_00000004").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step_00000010").mkdir()
    (tmp_path / "checkpoints" / ".partial-step_00000012").mkdir()
    assert latest_checkpoint(tmp_path).name == "step_00000010"


# ----------------------------------------------------------------------------------------------------- end to end
def test_training_run_writes_metrics_model_checkpoints_and_a_loadable_dry_run(tiny_clip_dir, motion_data, tmp_path):
    output = tmp_path / "run"
    command = train_command(tiny_clip_dir, motion_data, output, "--eval_data", str(motion_data / "test"),
                            "--epochs", "2", "--checkpointing_steps", "2", "--dry_run", "--hub_model_id", "me/tiny",
                            "--warmup_steps", "3", "--license", "mit")
    result = run(command)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((output / "metrics.json").read_text())
    assert 0 <= metrics["top1"] <= 1 and 0 <= metrics["top5"] <= 1 and metrics["global_step"] == 8
    assert metrics["train_learning_rates"] == one_process_schedule(parse_training_options(command[2:]), steps=8)
    assert len(metrics["train_losses"]) == 8
    assert metrics["eval"]["num_videos"] == 2 * len(CLASSES)
    assert (output / "confusion_matrix_eval.png").stat().st_size > 0
    assert sorted(path.name for path in (output / "checkpoints").iterdir()) == [
        "step_00000002", "step_00000004", "step_00000006", "step_00000008"]
    # checkpoints hold the trainable weights only
    assert not any(name.startswith("clip.") for name in trainable_weights(output / "checkpoints" / "step_00000008"))

    model = OmniCLIPModel.from_pretrained(output / "model").eval()
    processor = OmniCLIPProcessor.from_pretrained(output / "model")
    assert model.config.id2label[0] == CLASSES[0] or model.config.id2label[0] in CLASSES
    final = trainable_weights(output / "checkpoints" / "step_00000008")
    state = model.state_dict()
    for name, tensor in final.items():
        assert torch.equal(state[name], tensor), name

    upload = output / "hub_upload"
    assert f"dry run: wrote what --push_to_hub would upload to {upload}; nothing was uploaded" in result.stdout
    card = (upload / "README.md").read_text()
    assert "Measured results" in card and f"{100 * metrics['top1']:.2f}" in card and str(tiny_clip_dir) not in card
    assert "\nlicense: mit\n" in card and "- **License:** `mit`, as the uploader chose it" in card  # --license
    assert {"config.json", "model.safetensors", "modeling_omniclip.py", "configuration_omniclip.py"} <= {
        path.name for path in upload.iterdir()}

    text = processor.tokenizer(["a video of moving left action", "a video of receding action"], padding=True,
                               return_tensors="pt")
    videos = processor.video_processor([str(next((motion_data / "test" / CLASSES[0]).iterdir()))],
                                       return_tensors="pt")["pixel_values_videos"]
    with torch.no_grad():
        expected = model(**text, pixel_values_videos=videos).logits_per_video
    assert_remote_code_gives(upload, {**text, "pixel_values_videos": videos}, expected, tmp_path)


@pytest.mark.runs_long
def test_training_under_torch_compile_matches_eager_and_saves_a_loadable_model(tiny_clip_dir, motion_data, tmp_path):
    """`accelerate launch --dynamo_backend` compiles the model in `accelerator.prepare` (aot_eager here: dynamo and
    AOTAutograd without a C++ compiler); the saved `model/` must hold the model's own weight names."""
    runs = {}
    for backend in ("no", "aot_eager"):
        output = tmp_path / backend
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
                  "--mixed_precision", "no", "--dynamo_backend", backend]
        command = train_command(tiny_clip_dir, motion_data, output, "--max_steps", "3", "--checkpointing_steps", "3")
        result = run(launch + command[1:])
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads((output / "metrics.json").read_text())["distributed"]["torch_compile"] == backend
        runs[backend] = output
    eager, compiled = (trainable_weights(runs[name] / "checkpoints" / "step_00000003") for name in ("no", "aot_eager"))
    assert eager.keys() == compiled.keys()
    for name in eager:
        torch.testing.assert_close(compiled[name], eager[name], rtol=1e-4, atol=1e-5, msg=name)
    model = OmniCLIPModel.from_pretrained(runs["aot_eager"] / "model")  # refuses unknown weight names
    state = model.state_dict()
    for name, tensor in compiled.items():
        assert torch.equal(state[name], tensor), name


def test_corrupt_training_video_is_skipped_and_counted(tiny_clip_dir, motion_data, tmp_path):
    data = tmp_path / "data"
    import shutil

    shutil.copytree(motion_data, data)
    broken = data / "train" / CLASSES[1] / "broken.mp4"
    broken.write_text("this is not a video")
    lenient = run(train_command(tiny_clip_dir, data, tmp_path / "lenient", "--epochs", "1"))
    assert lenient.returncode == 0, lenient.stderr[-3000:]
    assert "broken.mp4" in lenient.stderr and "1 undecodable training videos skipped" in lenient.stdout
    assert json.loads((tmp_path / "lenient" / "metrics.json").read_text())["skipped_videos"] == 1

    # --strict: tests/test_training_faults.py (one error line, with DataLoader workers too).


# Two processes (two torchrun "nodes" of one process each): tests/test_training_multinode.py.


def test_adapter_only_checkpoint_loads_on_a_local_base_clip(tiny_clip_dir, motion_data, tmp_path):
    output = tmp_path / "adapter"
    result = run(train_command(tiny_clip_dir, motion_data, output, "--max_steps", "2", "--adapter_only"))
    assert result.returncode == 0, result.stderr[-3000:]
    names = {path.name for path in (output / "model").iterdir()}
    assert "adapter_model.safetensors" in names and "model.safetensors" not in names
    model = OmniCLIPModel.from_pretrained(output / "model")
    assert all(not p.requires_grad for p in model.clip.parameters())
    reference = OmniCLIPModel.from_clip(str(tiny_clip_dir))
    for name, tensor in reference.clip.state_dict().items():
        assert torch.equal(model.clip.state_dict()[name], tensor), name
    adapter = load_file(str(output / "model" / "adapter_model.safetensors"))
    for name, tensor in adapter.items():
        assert torch.equal(model.state_dict()[name], tensor), name
    full_size = sum(t.numel() for t in model.state_dict().values())
    assert sum(t.numel() for t in adapter.values()) < full_size

    # A fresh process without the package: the Hub-style remote code loads the base CLIP, then the adapter.
    text = {"input_ids": torch.tensor([[49406, 320, 1125, 49407], [49406, 320, 2368, 49407]])}
    videos = torch.randn(1, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.eval()(**text, pixel_values_videos=videos).logits_per_video
    assert_remote_code_gives(output / "model", {**text, "pixel_values_videos": videos}, expected, tmp_path)
