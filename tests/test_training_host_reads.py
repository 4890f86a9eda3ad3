"""The training loop lets the host queue step k+1 while the device still runs step k: between logging steps it reads
nothing back that came from the device (each step's loss waits in `StepLosses` until a logging step, a checkpoint or
the end), and batches reach the device by `batch_to_device`, whose copies the host does not wait for, the deferred
colour rows staying on the host where `finish_views` reads them.

On a CPU every tensor is on the host, so the run below marks what would be on the device instead: the tensors
`batch_to_device` moves, and everything computed from them (the loss, the gradients, the weights they update). A read
of a marked tensor is a wait for the GPU there."""

from __future__ import annotations

import json
import sys
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from omniclip_hf.training.loader import HOST_KEYS, batch_to_device

from .conftest import REPO_ROOT
from .test_training import motion_data, run, train_command  # noqa: F401  (fixture)

# Operators whose result the host needs (on CUDA each waits for the GPU); `Tensor.tolist`, `.numpy` and `.cpu`
# read a CPU tensor without dispatching anything, so the run counts them by wrapping the methods.
aten = torch.ops.aten
READ_OPERATORS = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
                  aten.equal.default, aten._unique2.default}
READ_METHODS = ("tolist", "numpy", "cpu")


class DeviceReads(TorchDispatchMode):
    """Marks the tensors computed from marked ones (outputs and written arguments) and records each host read of
    a marked tensor while `counting`, with the innermost line of the package that made it."""

    def __init__(self):
        super().__init__()
        self.marked: dict[int, weakref.ref] = {}
        self.counting = False
        self.reads: list[str] = []

    def mark(self, tensor: torch.Tensor) -> None:
        self.marked[id(tensor)] = weakref.ref(tensor)

    def is_marked(self, tensor) -> bool:
        reference = self.marked.get(id(tensor)) if isinstance(tensor, torch.Tensor) else None
        return reference is not None and reference() is tensor

    def record(self, what: str, tensor) -> None:
        if self.counting and self.is_marked(tensor):
            import traceback

            ours = [frame for frame in traceback.extract_stack()
                    if "/omniclip_hf/" in frame.filename or "/examples/" in frame.filename]
            self.reads.append(f"{what} at {ours[-1].filename.rsplit('/', 1)[-1]}:{ours[-1].lineno}" if ours else what)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs, _ = tree_flatten((args, kwargs))
        tainted = any(self.is_marked(value) for value in inputs)
        if func in READ_OPERATORS or (func is aten.index.Tensor and any(
                index is not None and index.dtype == torch.bool for index in args[1])):
            for value in inputs:
                self.record(str(func), value)
        output = func(*args, **kwargs)
        if tainted:
            for value in tree_flatten(output)[0]:
                if isinstance(value, torch.Tensor):
                    self.mark(value)
            for argument, value in zip(func._schema.arguments, args):  # written in place (the optimizer's updates)
                if argument.alias_info is not None and argument.alias_info.is_write:
                    for tensor in tree_flatten(value)[0]:
                        if isinstance(tensor, torch.Tensor):
                            self.mark(tensor)
        return output


def report_device_reads(argv_json: str) -> None:
    """Runs examples/train.py in this process with `argv` and prints what the run's JSON report says (below)."""
    import importlib.util

    import accelerate.data_loader

    from omniclip_hf.training import run as run_module

    argv, last_step = json.loads(argv_json), None
    max_steps = int(argv[argv.index("--max_steps") + 1])
    reads = DeviceReads()
    report = {"accelerate_placements": 0, "steps_spied": []}

    def to_device(batch, device):
        moved = batch_to_device(batch, device)
        for key, value in moved.items():
            if isinstance(value, torch.Tensor) and key not in HOST_KEYS:
                reads.mark(value)
        reads.counting = True  # from the first batch on
        return moved

    real_send, real_add = accelerate.data_loader.send_to_device, run_module.StepLosses.add_micro_batch
    real_after_step = run_module.testing_hooks.after_optimizer_step

    def accelerate_places(*args, **kwargs):
        report["accelerate_placements"] += 1
        return real_send(*args, **kwargs)

    def spied_add(self, loss, weight=1.0):
        counting, reads.counting = reads.counting, False
        report["steps_spied"].append(round(loss.item(), 6))
        reads.counting = counting
        real_add(self, loss, weight)

    def after_step(step):
        nonlocal last_step
        real_after_step(step)
        last_step = step
        if step == max_steps:
            reads.counting = False  # the end of training reads the losses once

    def without_counting(function):
        def call(*args, **kwargs):
            counting, reads.counting = reads.counting, False
            try:
                return function(*args, **kwargs)
            finally:
                reads.counting = counting
        return call

    # one_hot checks the labels' range by reading them on a CPU only (on a GPU a device-side assert does).
    import torchvision.transforms.v2._augment as torchvision_augment

    torch.nn.functional.one_hot = without_counting(torch.nn.functional.one_hot)
    torchvision_augment.one_hot = without_counting(torchvision_augment.one_hot)
    for method in READ_METHODS:
        def read(self, *args, _real=getattr(torch.Tensor, method), _name=method, **kwargs):
            reads.record(f"Tensor.{_name}", self)
            return _real(self, *args, **kwargs)
        setattr(torch.Tensor, method, read)
    run_module.batch_to_device = to_device
    run_module.StepLosses.add_micro_batch = spied_add
    run_module.testing_hooks.after_optimizer_step = after_step
    accelerate.data_loader.send_to_device = accelerate_places

    spec = importlib.util.spec_from_file_location("train_script", REPO_ROOT / "examples" / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with reads:
        script.main(argv)
    report["reads_between_logging_steps"] = reads.reads
    report["last_step"] = last_step
    print("REPORT " + json.dumps(report))


def test_the_loop_reads_nothing_from_the_device_between_logging_steps(tiny_clip_dir, motion_data, tmp_path):
    # Colours finished by the loop (as on a GPU) and mixup every step: every piece of the step runs.
    command = train_command(tiny_clip_dir, motion_data, tmp_path / "run", "--max_steps", "4", "--logging_steps", "100",
                            "--num_workers", "1", "--color_augmentation_on", "device", "--mixup_alpha", "0.8",
                            "--mix_prob", "1.0")
    argv = command[2:]  # after the interpreter and the script
    result = run([sys.executable, "-c", "import sys; from tests.test_training_host_reads import report_device_reads; "
                  "report_device_reads(sys.argv[1])", json.dumps(argv)], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))[7:])
    assert report["last_step"] == 4
    assert report["reads_between_logging_steps"] == []
    assert report["accelerate_placements"] == 0  # the loader is sharded by Accelerate, not placed by it
    # Every step's loss is still recorded, each the one its step computed.
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_losses"] == report["steps_spied"] and len(report["steps_spied"]) == 4


def test_a_loss_read_each_step_would_be_seen(tiny_clip_dir, motion_data, tmp_path):
    """The same run with logging every step: the loop reads the losses at each logging step, and the count sees it
    (so an empty count above means no read, not a blind counter)."""
    command = train_command(tiny_clip_dir, motion_data, tmp_path / "run", "--max_steps", "3", "--logging_steps", "1",
                            "--num_workers", "1")
    result = run([sys.executable, "-c", "import sys; from tests.test_training_host_reads import report_device_reads; "
                  "report_device_reads(sys.argv[1])", json.dumps(command[2:])], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))[7:])
    assert [read.split(" at ")[0] for read in report["reads_between_logging_steps"]] == ["Tensor.tolist"] * 3
    assert all("run.py" in read for read in report["reads_between_logging_steps"])


def test_batch_to_device_moves_all_but_the_colour_rows():
    rows = torch.rand(2, 10)
    batch = {"pixel_values_videos": torch.zeros(2, 4, 3, 8, 8, dtype=torch.uint8), "color_augmentation": rows,
             "labels": torch.tensor([0, 1]), "indices": torch.tensor([5, 7]), "errors": ["a.mp4: no video stream"]}
    moved = batch_to_device(batch, torch.device("meta"))
    assert {key: value.device.type for key, value in moved.items() if isinstance(value, torch.Tensor)} == {
        "pixel_values_videos": "meta", "labels": "meta", "indices": "meta", "color_augmentation": "cpu"}
    assert moved["color_augmentation"] is rows and moved["errors"] == batch["errors"]
