"""Two "nodes" on this machine: two torchrun launches (--nnodes 2, one process each, rendezvous on 127.0.0.1)
through examples/train.py: the processes split each epoch, and one checkpoint folder and one metrics.json are written,
which records the distributed set-up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from omniclip_hf.training.loop import parse_training_options
from omniclip_hf.training.testing_hooks import ENVIRONMENT_VARIABLE

from .conftest import REPO_ROOT
from .test_training import CLASSES, motion_data, one_process_schedule, run, train_command  # noqa: F401 (fixture)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_nodes_of_one_process_train_and_write_once(tiny_clip_dir, motion_data, tmp_path):
    output = tmp_path / "two_nodes"
    command = train_command(tiny_clip_dir, motion_data, output, "--epochs", "1", "--batch_size", "2",
                            "--eval_data", str(motion_data / "test"), "--warmup_steps", "2")
    port = free_port()
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    nodes = []
    for node_rank in (0, 1):
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(node_rank),
                    "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", str(port)]
        nodes.append(subprocess.Popen(torchrun + command[1:], cwd=REPO_ROOT, text=True,
                                      env={**environment, ENVIRONMENT_VARIABLE: json.dumps({"record_seen_indices": True})},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True))
    try:
        logs = [node.communicate(timeout=600)[0] for node in nodes]
    finally:  # a hung rendezvous or collective: take each launch down with its worker
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(log[-3000:] for log in logs)

    seen = [json.loads((output / f"seen_indices_rank{rank}.json").read_text()) for rank in (0, 1)]
    per_rank = [{index for _, batch in ranks for index in batch} for ranks in seen]
    assert per_rank[0] and per_rank[1] and not per_rank[0] & per_rank[1]  # each process its own part of the epoch
    assert per_rank[0] | per_rank[1] == set(range(4 * len(CLASSES)))  # and together all of it
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["distributed"]["type"] == "MULTI_CPU"
    assert metrics["distributed"]["processes"] == 2 and metrics["distributed"]["nodes"] == 2
    assert metrics["distributed"]["processes_per_node"] == [1]
    assert metrics["global_step"] == 4  # 16 videos, 2 per process and step: the two nodes split the epoch
    # The learning-rate schedule of one process: warmup and cosine over the 4 optimizer steps, not over 4 / 2.
    assert metrics["train_learning_rates"] == one_process_schedule(parse_training_options(command[2:]), steps=4)
    assert metrics["eval"]["num_videos"] == 2 * len(CLASSES)  # gathered across the nodes once
    assert sorted(path.name for path in (output / "checkpoints").iterdir()) == ["step_00000004"]
    assert sum("metrics:" in log for log in logs) == 1  # only the main process of node 0 reports


def one_good_one_broken_training_set(motion_data, tmp_path):
    """A training folder of two classes, one video each, the second undecodable: with two processes and batch 1,
    one process reads the good video and the other the broken one."""
    import shutil

    data = tmp_path / "data"
    (data / "train" / CLASSES[0]).mkdir(parents=True)
    (data / "train" / CLASSES[1]).mkdir(parents=True)
    shutil.copy(next((motion_data / "train" / CLASSES[0]).iterdir()), data / "train" / CLASSES[0] / "good.mp4")
    (data / "train" / CLASSES[1] / "broken.mp4").write_text("not a video")
    return data


def two_process_command(tiny_clip_dir, motion_data, data, output, *flags):
    """train.py on `data` with the motion set's class names, batch 1, two steps, and the flags given."""
    command = train_command(tiny_clip_dir, data, output, "--max_steps", "2", "--batch_size", "1",
                            "--mixup_alpha", "0", "--cutmix_alpha", "0", *flags)  # nothing to pair in a batch of one
    command[command.index("--labels_file") + 1] = str(motion_data / "labels.txt")
    return command


@pytest.mark.runs_long
def test_two_processes_go_on_past_batches_without_a_decodable_video(tiny_clip_dir, motion_data, tmp_path):
    """One video a batch: a process whose batch failed to decode still runs its forward (a blank clip, no weight),
    so the other's gradient all-reduce and evaluation gathers are not left waiting; the evaluation scores the
    decodable videos exactly as one process does and lists every process's failures."""
    import shutil

    data = one_good_one_broken_training_set(motion_data, tmp_path)  # the first batch of one process fails
    shutil.copytree(motion_data / "test", data / "test")
    broken = [data / "test" / CLASSES[2] / f"broken{index}.mp4" for index in range(3)]
    for path in broken:  # consecutive: each process gets whole batches of them
        path.write_text("not a video")
    output = tmp_path / "two"
    command = two_process_command(tiny_clip_dir, motion_data, data, output, "--eval_batch_size", "1",
                                  "--eval_data", str(data / "test"))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = run(torchrun + command[1:], timeout=240)
    assert two.returncode == 0, two.stderr[-3000:]
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["global_step"] == 2 and metrics["skipped_videos"] == 2  # the broken video, once an epoch
    # Named each time, by whichever process read it (only the main process's were shown).
    assert two.stderr.count("skipped an undecodable training video: ") == 2, two.stderr[-3000:]
    assert sorted(error.split(":")[0] for error in metrics["eval"]["failed_videos"]) == [str(path) for path in broken]

    one = run([sys.executable, str(REPO_ROOT / "examples" / "evaluate.py"), "--model", str(output / "model"),
               "--eval_data", str(data / "test"), "--labels_file", str(motion_data / "labels.txt"), "--num_clips", "1",
               "--num_crops", "1", "--batch_size", "1", "--num_workers", "0", "--output_dir", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-3000:]
    alone = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert metrics["eval"]["num_videos"] == alone["num_videos"] == 2 * len(CLASSES)
    for key in ("top1", "top5", "per_class_accuracy", "confusion_matrix"):
        assert metrics["eval"][key] == alone[key], key

    # Resumed to step 4: the checkpoint held every process's skipped videos (it held the main process's only).
    resumed = run(torchrun + command[1:] + ["--max_steps", "4", "--resume_from_checkpoint", "latest"], timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((output / "metrics.json").read_text())["skipped_videos"] == 4


def test_strict_stops_both_processes_with_one_error_line_each(tiny_clip_dir, motion_data, tmp_path):
    """--strict and an undecodable video read by one of two processes: that process names the video; the other,
    whose collective lost its peer, says so in one line instead of printing gloo's traceback."""
    data = one_good_one_broken_training_set(motion_data, tmp_path)
    command = two_process_command(tiny_clip_dir, motion_data, data, tmp_path / "strict", "--strict")
    # torchrun stops the other process 5 s after the first exits (0.1 s by default): time to see it lost its peer.
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "--monitor-interval", "5"]
    result = run(torchrun + command[1:], timeout=240)
    assert result.returncode != 0
    assert "broken.mp4" in result.stderr and "(run without --strict to skip it)" in result.stderr, result.stderr[-3000:]
    # The other process: one line, no traceback (gloo's was 30 lines). torchrun's own failure report stays.
    assert "another process of this run stopped (its error is printed above)" in result.stderr, result.stderr[-3000:]
    assert "Connection closed by peer" in result.stderr
    assert "[rank0]: Traceback" not in result.stderr and "[rank1]: Traceback" not in result.stderr, result.stderr[-3000:]
