"""FSDP2 with the shipped config's wrapping, on two CPU processes (gloo), against DDP; checkpoint and resume under it.

Accelerate does not place FSDP on a CPU (it turns `cpu=True` into a plain multi-CPU group), so this drives the
pieces `accelerator.prepare` runs under FSDP directly: our `keep_frozen_clip_out_of_fsdp`, then accelerate's own
`fsdp2_prepare_model` (fully_shard on each `OmniCLIPSpatialTemporalBlock`, on the input embedding and on the root,
the frozen CLIP as ignored params), with the plugin built from `examples/accelerate_configs/fsdp.yaml`. Checkpoints
go through the training loop's own `save_checkpoint`/`restore_checkpoint` and accelerate's own
`Accelerator.save_state`/`load_state` (their FSDP branches: `save_fsdp_model`, `save_fsdp_optimizer`, ...).
"""

from __future__ import annotations

import os
import socket
import warnings
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from accelerate import Accelerator

from .conftest import REPO_ROOT

WORLD_SIZE = 2
STEPS = 3
PER_RANK_BATCH = 2
NUM_CLASSES = 3


def fsdp_plugin_from_shipped_config(state_dict_type: str | None = None):
    """The plugin `accelerate launch --config_file examples/accelerate_configs/fsdp.yaml` builds (CPU, fp32 here);
    `state_dict_type` replaces the config's (FULL_STATE_DICT)."""
    from accelerate.utils import FullyShardedDataParallelPlugin

    config = yaml.safe_load((REPO_ROOT / "examples" / "accelerate_configs" / "fsdp.yaml").read_text())["fsdp_config"]
    return FullyShardedDataParallelPlugin(
        fsdp_version=config["fsdp_version"],
        auto_wrap_policy=config["fsdp_auto_wrap_policy"],
        transformer_cls_names_to_wrap=[config["fsdp_transformer_layer_cls_to_wrap"]],
        state_dict_type=state_dict_type or config["fsdp_state_dict_type"],
        reshard_after_forward=config["fsdp_reshard_after_forward"],
        cpu_offload=config["fsdp_offload_params"],
        cpu_ram_efficient_loading=config["fsdp_cpu_ram_efficient_loading"],
    )


def fsdp_accelerator(rank: int, state_dict_type: str | None = None):
    """What accelerate's FSDP helpers read from an `Accelerator`, for a CPU process group."""
    from accelerate.utils import DistributedType

    return SimpleNamespace(
        state=SimpleNamespace(fsdp_plugin=fsdp_plugin_from_shipped_config(state_dict_type), process_index=rank),
        distributed_type=DistributedType.FSDP, device=torch.device("cpu"), mixed_precision="no",
        torch_device_mesh=None, parallelism_config=None, is_main_process=rank == 0, process_index=rank,
        num_processes=WORLD_SIZE, is_fsdp2=True, wait_for_everyone=dist.barrier,
    )


class CheckpointingFSDPAccelerator:
    """An FSDP `Accelerator` on a CPU group for checkpoints: accelerate's own `save_state`, `load_state`, `reduce`
    and state hooks, over the attributes they read (those of `fsdp_accelerator`, and the prepared objects)."""

    save_state = Accelerator.save_state
    load_state = Accelerator.load_state
    reduce = Accelerator.reduce
    register_save_state_pre_hook = Accelerator.register_save_state_pre_hook
    register_load_state_pre_hook = Accelerator.register_load_state_pre_hook

    def __init__(self, prepared: SimpleNamespace, model, optimizer, scheduler):
        from accelerate.utils import ProjectConfiguration

        self.__dict__.update(vars(prepared))
        self._models, self._optimizers, self._schedulers = [model], [optimizer], [scheduler]
        self._dataloaders, self._custom_objects = [], []
        self._save_model_state_pre_hook, self._load_model_state_pre_hook = OrderedDict(), OrderedDict()
        self.project_configuration, self.project_dir = ProjectConfiguration(), None
        self.step, self.scaler, self.multi_device = 0, None, False


def build_model(clip_dir: str):
    from omniclip_hf import OmniCLIPModel

    torch.manual_seed(0)  # every rank builds the same weights (FSDP2, unlike DDP, broadcasts nothing)
    return OmniCLIPModel.from_clip(clip_dir, num_frames=4).train()


def build_optimizer_and_scheduler(model):
    """AdamW and the warm-up + cosine schedule of examples/train.py (a learning rate that changes every step)."""
    from omniclip_hf.training.loop import build_optimizer, build_scheduler, parse_training_options

    options = parse_training_options(["--clip", "x", "--train_data", "y", "--lr", "1e-2", "--warmup_steps", "1"])
    optimizer = build_optimizer(model, options)
    return optimizer, build_scheduler(optimizer, options, steps_per_epoch=STEPS, total_steps=STEPS + 1)


def step_batch(step: int, rank: int, projection_dim: int):
    """The global batch of `step` (the same on every rank), this rank's half of it, and fixed class texts."""
    generator = torch.Generator().manual_seed(1000 + step)
    videos = torch.randn(WORLD_SIZE * PER_RANK_BATCH, 4, 3, 32, 32, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (WORLD_SIZE * PER_RANK_BATCH,), generator=generator)
    texts = torch.randn(NUM_CLASSES, projection_dim, generator=torch.Generator().manual_seed(7))
    mine = slice(rank * PER_RANK_BATCH, (rank + 1) * PER_RANK_BATCH)
    return videos[mine], labels[mine], texts


def train_steps(model, optimizer, scheduler, steps: range, rank: int, projection_dim: int) -> None:
    """The loop of examples/train.py: forward, backward, clip the global gradient norm, step."""
    for step in steps:
        videos, labels, texts = step_batch(step, rank, projection_dim)
        loss = model(text_embeds=texts, pixel_values_videos=videos, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)


def trainable_full_weights(model) -> dict[str, torch.Tensor]:
    """The trainable weights, gathered whole on every rank (DTensors under FSDP)."""
    weights = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            tensor = parameter.full_tensor() if hasattr(parameter, "full_tensor") else parameter
            weights[name.removeprefix("module.")] = tensor.detach().clone()
    return weights


def shard(model, rank: int, state_dict_type: str | None = None):
    from accelerate.utils.fsdp_utils import fsdp2_prepare_model

    from omniclip_hf.training.loop import keep_frozen_clip_out_of_fsdp

    accelerator = fsdp_accelerator(rank, state_dict_type)
    keep_frozen_clip_out_of_fsdp(accelerator, model)
    return fsdp2_prepare_model(accelerator, model), accelerator


def checkpointing_fsdp_run(clip_dir: str, rank: int, seed: int, state_dict_type: str | None = None):
    """A sharded model with its optimizer and schedule, behind an accelerator whose save_state is accelerate's."""
    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.training.checkpoints import keep_checkpoints_trainable_only

    torch.manual_seed(seed)
    model = OmniCLIPModel.from_clip(clip_dir, num_frames=4).train()
    keep_checkpoints_trainable_only(model)  # before sharding, as omniclip_hf/training/run.py does
    model, prepared = shard(model, rank, state_dict_type)
    optimizer, scheduler = build_optimizer_and_scheduler(model)
    accelerator = CheckpointingFSDPAccelerator(prepared, model, optimizer, scheduler)
    return model, optimizer, scheduler, accelerator


def run_rank(rank: int, port: int, clip_dir: str, output: str) -> None:
    from accelerate import PartialState

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD_SIZE))
    torch.set_num_threads(1)
    PartialState(cpu=True)  # the gloo group, and the state accelerate's FSDP helpers log through
    try:
        from torch.distributed.fsdp import FSDPModule
        from torch.nn.parallel import DistributedDataParallel

        from omniclip_hf.training.checkpoints import restore_checkpoint, save_checkpoint

        results = {"initial": trainable_full_weights(build_model(clip_dir))}
        ddp = DistributedDataParallel(build_model(clip_dir))
        projection_dim = ddp.module.config.projection_dim
        train_steps(ddp, *build_optimizer_and_scheduler(ddp.module), range(STEPS), rank, projection_dim)
        results["ddp"] = trainable_full_weights(ddp)

        model, accelerator = shard(build_model(clip_dir), rank)
        units = {name: type(module).__mro__[2].__name__ for name, module in model.named_modules()
                 if isinstance(module, FSDPModule)}  # FSDP2 subclasses each unit: (FSDP<Class>, FSDPModule, <Class>)
        results["fsdp_units"] = units
        results["clip_sharded"] = any(hasattr(p, "full_tensor") for p in model.clip.parameters())
        results["block_sharded"] = all(hasattr(p, "full_tensor") for name, p in model.named_parameters()
                                       if p.requires_grad)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train_steps(model, *build_optimizer_and_scheduler(model), range(STEPS), rank, projection_dim)
        results["fsdp_warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
        results["fsdp"] = trainable_full_weights(model)
        # Outside a checkpoint the model's state dict stays whole (the final model/ is saved from it).
        results["state_dict_keys"] = set(model.state_dict())

        # Checkpoint after one step through the loop's save_checkpoint (accelerate's save_state under FSDP), then
        # resume in a freshly initialised model through restore_checkpoint, and train on to step 3.
        model, optimizer, scheduler, accelerator = checkpointing_fsdp_run(clip_dir, rank, seed=0)
        results["trainable_names"] = {name for name, p in model.named_parameters() if p.requires_grad}
        results["frozen_names"] = {name for name, p in model.named_parameters() if not p.requires_grad}
        results["trainable_bytes"] = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
        results["frozen_bytes"] = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
        del model, optimizer, scheduler, accelerator
        for state_dict_type in ("FULL_STATE_DICT", "SHARDED_STATE_DICT"):  # fsdp.yaml's, and per-rank DCP shards
            folder = Path(output) / state_dict_type
            model, optimizer, scheduler, accelerator = checkpointing_fsdp_run(clip_dir, rank, 0, state_dict_type)
            train_steps(model, optimizer, scheduler, range(1), rank, projection_dim)
            checkpoint = save_checkpoint(accelerator, folder, 1, {"global_step": 1, "epoch": 0, "batches_in_epoch": 1})
            results[f"checkpoint {state_dict_type}"] = str(checkpoint)
            del model, optimizer, scheduler, accelerator

            # Another start: everything trainable must come from the checkpoint.
            model, optimizer, scheduler, accelerator = checkpointing_fsdp_run(clip_dir, rank, 123, state_dict_type)
            checkpoint, state = restore_checkpoint(accelerator, "latest", folder)
            results[f"restored {state_dict_type}"] = (str(checkpoint), state)
            train_steps(model, optimizer, scheduler, range(1, STEPS), rank, projection_dim)
            results[f"fsdp_resumed {state_dict_type}"] = trainable_full_weights(model)
            del model, optimizer, scheduler, accelerator
        torch.save(results, Path(output) / f"results_rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def fsdp_results(tiny_clip_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("fsdp")
    mp.spawn(run_rank, args=(free_port(), str(tiny_clip_dir), str(output)), nprocs=WORLD_SIZE, join=True)
    return [torch.load(output / f"results_rank{rank}.pt") for rank in range(WORLD_SIZE)]


def test_fsdp_wraps_as_the_shipped_config_asks_and_leaves_the_frozen_clip_whole(fsdp_results):
    units = fsdp_results[0]["fsdp_units"]
    assert units == {
        "": "OmniCLIPModel",  # the root
        "clip.text_model.embeddings.token_embedding": "Embedding",  # the input embedding, as accelerate carves it
        # one unit per OmniCLIPSpatialTemporalBlock of the tiny 3-layer vision tower
        **{f"blocks.{index}": "OmniCLIPSpatialTemporalBlock" for index in range(3)},
    }
    assert not fsdp_results[0]["clip_sharded"] and fsdp_results[0]["block_sharded"]


def test_three_fsdp_steps_match_ddp_on_the_same_data(fsdp_results):
    for rank in range(WORLD_SIZE):
        ddp, fsdp = fsdp_results[rank]["ddp"], fsdp_results[rank]["fsdp"]
        assert ddp.keys() == fsdp.keys() and len(ddp) > 10
        # AdamW divides each gradient by its running size, so an element whose gradient is a near-cancelling sum
        # (FSDP's reduce-scatter and DDP's all-reduce add in another order) can move by a rounding-sized fraction of
        # a step: up to 3e-6 measured, at lr 1e-2. A sharding or reduction bug moves weights by a whole step (1e-2).
        for name in ddp:
            torch.testing.assert_close(fsdp[name], ddp[name], rtol=1e-5, atol=1e-4, msg=lambda m: f"{name}: {m}")
        # Training moved the weights: the match is not between two untouched copies.
        initial = fsdp_results[rank]["initial"]
        moved = [name for name in ddp if not torch.equal(ddp[name], initial[name])]
        assert len(moved) > len(ddp) // 2, moved


@pytest.mark.parametrize("state_dict_type", ["FULL_STATE_DICT", "SHARDED_STATE_DICT"])
def test_fsdp_checkpoint_resume_gives_the_weights_of_an_uninterrupted_run(fsdp_results, state_dict_type):
    for rank in range(WORLD_SIZE):
        straight, resumed = fsdp_results[rank]["fsdp"], fsdp_results[rank][f"fsdp_resumed {state_dict_type}"]
        assert straight.keys() == resumed.keys()
        for name in straight:
            torch.testing.assert_close(resumed[name], straight[name], rtol=1e-6, atol=1e-7, msg=lambda m: f"{name}: {m}")
        checkpoint, state = fsdp_results[rank][f"restored {state_dict_type}"]
        assert Path(checkpoint).name == "step_00000001" and state["global_step"] == 1


def test_fsdp_forward_and_backward_raise_no_warning(fsdp_results):
    # FSDP2 warned "FSDP2-wrapped module (FSDPOmniCLIPModel) returned a view tensor" for the root's outputs.
    for rank in range(WORLD_SIZE):
        assert fsdp_results[rank]["fsdp_warnings"] == []


def test_fsdp_checkpoint_holds_only_the_trainable_weights(fsdp_results):
    results = fsdp_results[0]
    checkpoint = Path(results["checkpoint FULL_STATE_DICT"])
    assert checkpoint.name == "step_00000001" and checkpoint.is_dir()
    assert not list(checkpoint.parent.glob(".partial-*"))  # written under a temporary name, renamed when complete
    from accelerate.utils.constants import FSDP_MODEL_NAME

    weights_file = checkpoint / f"{FSDP_MODEL_NAME}.bin"  # FULL_STATE_DICT, as fsdp.yaml asks: rank 0 writes it
    weights = torch.load(weights_file, weights_only=True)
    assert set(weights) == results["trainable_names"] and not any(name.startswith("clip.") for name in weights)
    assert results["frozen_bytes"] > results["trainable_bytes"] // 2  # the size check below can tell them apart
    assert weights_file.stat().st_size < results["trainable_bytes"] + 200_000  # tensors plus pickle's bookkeeping
    # The optimizer and schedule are there too, and no file holds a frozen weight.
    assert (checkpoint / "optimizer.bin").is_file() and (checkpoint / "scheduler.bin").is_file()
    total = sum(path.stat().st_size for path in checkpoint.rglob("*") if path.is_file())
    assert total < 3 * results["trainable_bytes"] + 400_000  # weights, AdamW's two moments, small state files
    # Outside a checkpoint the model's state dict is whole: the final model/ is gathered from it.
    assert results["frozen_names"] <= fsdp_results[0]["state_dict_keys"]


def test_sharded_fsdp_checkpoint_holds_only_the_trainable_weights(fsdp_results):
    from torch.distributed.checkpoint import FileSystemReader

    results = fsdp_results[0]
    shards = Path(results["checkpoint SHARDED_STATE_DICT"]) / "pytorch_model_fsdp_0"  # torch.distributed.checkpoint
    names = {key.removeprefix("model.") for key in FileSystemReader(str(shards)).read_metadata().state_dict_metadata}
    assert names == results["trainable_names"]


def grad_tracked_tensors(output, name="output"):
    """(name, tensor) of every grad-requiring tensor in a nested model output, as FSDP2 collects them."""
    if isinstance(output, torch.Tensor):
        return [(name, output)] if output.requires_grad else []
    if isinstance(output, dict):
        return [item for key, value in output.items() for item in grad_tracked_tensors(value, f"{name}.{key}")]
    if isinstance(output, (tuple, list)):
        return [item for index, value in enumerate(output) for item in grad_tracked_tensors(value, f"{name}[{index}]")]
    return []


@pytest.mark.parametrize("views", [None, 2])
def test_outputs_fsdp_hooks_are_no_views_and_their_copies_are_not_kept_for_backward(tiny_clip, views):
    from omniclip_hf import OmniCLIPModel

    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4).train()
    shape = (2, 4, 3, 32, 32) if views is None else (2, views, 4, 3, 32, 32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda tensor: saved.append(tensor) or tensor, lambda tensor: tensor):
        output = model(text_embeds=torch.randn(NUM_CLASSES, model.config.projection_dim),
                       pixel_values_videos=torch.randn(shape), labels=torch.tensor([0, 2]))
    tracked = grad_tracked_tensors(output)
    assert len(tracked) >= 8
    assert [name for name, tensor in tracked if tensor._base is not None] == []
    # The copies live only in the output: the saved activations (what backward keeps) hold none of them.
    copies = {output.vision_model_output.last_hidden_state.untyped_storage().data_ptr(),
              output.logits_per_text.untyped_storage().data_ptr()}
    assert not [t.shape for t in saved if t.untyped_storage().data_ptr() in copies]
