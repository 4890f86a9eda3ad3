"""The benchmark scripts answer a bad argument with one `error:` line naming it and exit status 2, before any heavy
work: no traceback from torch or PyAV, and no table measured from nothing or with a flag silently ignored."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from .conftest import REPO_ROOT, run_script_in_process

# id: (script, arguments, what the last line of stderr names). {empty}, {junk} and {missing} are folders made
# (or not) for the test. Sizes are small, so a script that wrongly starts its work ends soon or times out.
CASES = {
    "pipeline-missing-videos": ("bench_input_pipeline.py", "--videos {missing} --clips 1 --workers 1", "--videos"),
    "pipeline-undecodable-video": ("bench_input_pipeline.py", "--videos {junk} --clips 1 --workers 1 --num_frames 1 "
                                   "--image_size 8", "broken.mp4"),
    "pipeline-zero-clips": ("bench_input_pipeline.py", "--videos {empty} --clips 0 --workers 1", "--clips"),
    "model-zero-batch": ("bench_model.py", "--pta_tables_only --batch_size 0 --repeats 1 --frames 1", "--batch_size"),
    "profile-zero-rows": ("profile_step.py", "--batch_size 1 --frames 1 --rows 0", "--rows"),
    "frozen-mlp-zero-batch": ("bench_frozen_mlp.py", "--batch_size 0 --repeats 1", "--batch_size"),
    "colour-zero-repeats": ("bench_color_augmentation.py", "--device cpu --repeats 0", "--repeats"),
    "decode-empty-videos": ("bench_decode.py", "--videos {empty} --repeats 1", "--videos"),
    "from-clip-zero-repeats": ("bench_from_clip.py", "--repeats 0", "--repeats"),
    "checkpoint-size-ignored-flag": ("bench_checkpoint_size.py", "--repeats 1", "--repeats"),
    "pta-tables-alone": ("bench_pta_tables.py", "", "bench_model.py"),
    "checkpoint-contents-clip-without-weights": ("checkpoint_contents.py", "{empty} {empty}", "{empty}"),
    "checkpoint-contents-unreadable-weights": ("checkpoint_contents.py", "{junk} {junk}", "model.safetensors"),
    "checkpoint-contents-no-weights": ("checkpoint_contents.py", "{junk} {empty}", "{empty}"),
    "probe-zero-clips": ("probe_plateau.py", "{missing} --clips 0", "--clips"),
    "ablation-zero-epochs": ("bench_ablation.py", "--rows full --seeds 0 --epochs 0 --train_per_class 1 "
                             "--test_per_class 1 --work_dir {missing}", "--epochs"),
}
if not torch.cuda.is_available():  # the one-line answer to a GPU flag on a machine without one
    CASES["model-cuda-without-gpu"] = ("bench_model.py", "--device cuda --pta_tables_only --batch_size 1 "
                                       "--repeats 1", "--device cuda")


def bad_argument_folders(root):
    """{empty}, {junk} (a broken video, and unreadable weights for a CLIP folder and a checkpoint) and {missing}."""
    folders = {name: root / name for name in ("empty", "junk", "missing")}
    for name in ("empty", "junk"):
        folders[name].mkdir()
    (folders["junk"] / "broken.mp4").write_bytes(b"not a video" * 100)
    (folders["junk"] / "model.safetensors").write_bytes(b"not weights")
    return folders


# In the test's process (a subprocess a case spent seconds importing torch, 77 s of the suite over 17 cases); the
# timeout stands for a script that starts its work instead of refusing the argument.
@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_argument_gets_one_error_line_and_status_2(case, tmp_path):
    folders = bad_argument_folders(tmp_path)
    script, arguments, named = CASES[case]
    status, _, stderr = run_script_in_process(REPO_ROOT / "benchmarks" / script, arguments.format(**folders).split())
    assert status == 2, (status, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-2000:]
    last_line = stderr.strip().splitlines()[-1]
    assert "error:" in last_line and named.format(**folders) in last_line, last_line


@pytest.mark.filterwarnings("ignore:torch.distributed is disabled")  # dcp.save in one process, as intended here
def test_checkpoint_contents_reads_each_weights_format_and_fails_on_a_clip_weight(tmp_path):
    """model.safetensors (DDP), pytorch_model_fsdp.bin (FSDP FULL_STATE_DICT), pytorch_model_fsdp_0/ (FSDP
    SHARDED_STATE_DICT, read from its metadata) and DeepSpeed's pytorch_model/mp_rank_00_model_states.pt (its
    `module` and the frozen weights ZeRO-2 writes apart, beside DeepSpeed's bookkeeping): "ok" when only trainable
    weights are in it, "FAIL" and status 1 for the ones holding a `clip.` key."""
    import torch.distributed.checkpoint as dcp
    from safetensors.torch import save_file

    (tmp_path / "clip").mkdir()
    save_file({"weight": torch.zeros(4)}, tmp_path / "clip" / "model.safetensors")
    trainable = {"video_head.weight": torch.ones(2, 3), "pta.0.down.weight": torch.ones(3)}
    checkpoints = {name: tmp_path / name for name in ("ddp", "fsdp_full", "fsdp_sharded", "sharded_with_clip",
                                                      "deepspeed", "deepspeed_with_clip", "deepspeed_with_fragments")}
    for folder in checkpoints.values():
        folder.mkdir()
    frozen = {"clip.logit_scale": torch.ones(1)}  # in `module`, or apart, as ZeRO-2 writes frozen weights
    for name, module, fragments in (("deepspeed", trainable, None), ("deepspeed_with_clip", {**trainable, **frozen},
                                    None), ("deepspeed_with_fragments", trainable, frozen)):
        (checkpoints[name] / "pytorch_model").mkdir()
        bookkeeping = {"ds_version": "0.19.8", "param_shapes": [{"video_head.weight": torch.Size([2, 3])}],
                       "ds_config": {"zero_optimization": {"stage": 2}}, "frozen_param_fragments": fragments}
        torch.save({"module": module, **bookkeeping},
                   checkpoints[name] / "pytorch_model" / "mp_rank_00_model_states.pt")
    save_file(trainable, checkpoints["ddp"] / "model.safetensors")
    torch.save(trainable, checkpoints["fsdp_full"] / "pytorch_model_fsdp.bin")
    dcp.save({"model": trainable}, checkpoint_id=str(checkpoints["fsdp_sharded"] / "pytorch_model_fsdp_0"))
    dcp.save({"model": {**trainable, "clip.logit_scale": torch.ones(1)}},
             checkpoint_id=str(checkpoints["sharded_with_clip"] / "pytorch_model_fsdp_0"))
    process = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "checkpoint_contents.py"),
                              str(tmp_path / "clip"), *map(str, checkpoints.values())],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    lines = {line.split()[1].rstrip(":"): line for line in process.stdout.splitlines()}
    assert process.returncode == 1, process.stderr[-2000:]
    for name in ("ddp", "fsdp_full", "fsdp_sharded", "deepspeed"):
        assert lines[name].startswith("ok ") and "2 tensors" in lines[name] and "0 clip.* keys" in lines[name]
    for name in ("sharded_with_clip", "deepspeed_with_clip", "deepspeed_with_fragments"):
        assert lines[name].startswith("FAIL ") and "1 clip.* keys" in lines[name]
