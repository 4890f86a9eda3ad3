"""FSDP2 with the shipped config's wrapping, on two CPU processes (gloo), against DDP; checkpoint and resume under it.

Accelerate does not place FSDP on a CPU (it turns `cpu=True` into a plain multi-CPU group), so this drives the
pieces `accelerator.prepare` and `accelerator.save_state`/`load_state` run under FSDP directly: our
`keep_frozen_clip_out_of_fsdp`, then accelerate's own `fsdp2_prepare_model` (fully_shard on each
`OmniCLIPSpatialTemporalBlock`, on the input embedding and on the root, the frozen CLIP as ignored params), and
accelerate's `save_fsdp_model`/`save_fsdp_optimizer`/`load_fsdp_*` for the checkpoint, with the plugin built from
`examples/accelerate_configs/fsdp.yaml`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from .conftest import REPO_ROOT

WORLD_SIZE = 2
STEPS = 3
PER_RANK_BATCH = 2
NUM_CLASSES = 3


def fsdp_plugin_from_shipped_config():
    """The plugin `accelerate launch --config_file examples/accelerate_configs/fsdp.yaml` builds (CPU, fp32 here)."""
    from accelerate.utils import FullyShardedDataParallelPlugin

    config = yaml.safe_load((REPO_ROOT / "examples" / "accelerate_configs" / "fsdp.yaml").read_text())["fsdp_config"]
    return FullyShardedDataParallelPlugin(
        fsdp_version=config["fsdp_version"],
        auto_wrap_policy=config["fsdp_auto_wrap_policy"],
        transformer_cls_names_to_wrap=[config["fsdp_transformer_layer_cls_to_wrap"]],
        state_dict_type=config["fsdp_state_dict_type"],
        reshard_after_forward=config["fsdp_reshard_after_forward"],
        cpu_offload=config["fsdp_offload_params"],
        cpu_ram_efficient_loading=config["fsdp_cpu_ram_efficient_loading"],
    )


def fsdp_accelerator(rank: int):
    """What accelerate's FSDP helpers read from an `Accelerator`, for a CPU process group."""
    from accelerate.utils import DistributedType

    return SimpleNamespace(
        state=SimpleNamespace(fsdp_plugin=fsdp_plugin_from_shipped_config()), distributed_type=DistributedType.FSDP,
        device=torch.device("cpu"), mixed_precision="no", torch_device_mesh=None, parallelism_config=None,
        is_main_process=rank == 0, process_index=rank, num_processes=WORLD_SIZE, is_fsdp2=True,
        wait_for_everyone=dist.barrier,
    )


def build_model(clip_dir: str):
    from omniclip_hf import OmniCLIPModel

    torch.manual_seed(0)  # every rank builds the same weights (FSDP2, unlike DDP, broadcasts nothing)
    return OmniCLIPModel.from_clip(clip_dir, num_frames=4).train()


def build_optimizer(model):
    from omniclip_hf.training.loop import build_optimizer as build, parse_training_options

    return build(model, parse_training_options(["--clip", "x", "--train_data", "y", "--lr", "1e-2"]))


def step_batch(step: int, rank: int, projection_dim: int):
    """The global batch of `step` (the same on every rank), this rank's half of it, and fixed class texts."""
    generator = torch.Generator().manual_seed(1000 + step)
    videos = torch.randn(WORLD_SIZE * PER_RANK_BATCH, 4, 3, 32, 32, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (WORLD_SIZE * PER_RANK_BATCH,), generator=generator)
    texts = torch.randn(NUM_CLASSES, projection_dim, generator=torch.Generator().manual_seed(7))
    mine = slice(rank * PER_RANK_BATCH, (rank + 1) * PER_RANK_BATCH)
    return videos[mine], labels[mine], texts


def train_steps(model, optimizer, steps: range, rank: int, projection_dim: int) -> None:
    """The loop of examples/train.py: forward, backward, clip the global gradient norm, step."""
    for step in steps:
        videos, labels, texts = step_batch(step, rank, projection_dim)
        loss = model(text_embeds=texts, pixel_values_videos=videos, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def trainable_full_weights(model) -> dict[str, torch.Tensor]:
    """The trainable weights, gathered whole on every rank (DTensors under FSDP)."""
    weights = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            tensor = parameter.full_tensor() if hasattr(parameter, "full_tensor") else parameter
            weights[name.removeprefix("module.")] = tensor.detach().clone()
    return weights


def shard(model, rank: int):
    from accelerate.utils.fsdp_utils import fsdp2_prepare_model

    from omniclip_hf.training.loop import keep_frozen_clip_out_of_fsdp

    accelerator = fsdp_accelerator(rank)
    keep_frozen_clip_out_of_fsdp(accelerator, model)
    return fsdp2_prepare_model(accelerator, model), accelerator


def run_rank(rank: int, port: int, clip_dir: str, output: str) -> None:
    from accelerate import PartialState

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD_SIZE))
    torch.set_num_threads(1)
    PartialState(cpu=True)  # the gloo group, and the state accelerate's FSDP helpers log through
    try:
        from accelerate.utils.fsdp_utils import load_fsdp_model, load_fsdp_optimizer, save_fsdp_model, save_fsdp_optimizer
        from torch.distributed.fsdp import FSDPModule
        from torch.nn.parallel import DistributedDataParallel

        results = {"initial": trainable_full_weights(build_model(clip_dir))}
        ddp = DistributedDataParallel(build_model(clip_dir))
        projection_dim = ddp.module.config.projection_dim
        optimizer = build_optimizer(ddp.module)
        train_steps(ddp, optimizer, range(STEPS), rank, projection_dim)
        results["ddp"] = trainable_full_weights(ddp)

        model, accelerator = shard(build_model(clip_dir), rank)
        units = {name: type(module).__mro__[2].__name__ for name, module in model.named_modules()
                 if isinstance(module, FSDPModule)}  # FSDP2 subclasses each unit: (FSDP<Class>, FSDPModule, <Class>)
        results["fsdp_units"] = units
        results["clip_sharded"] = any(hasattr(p, "full_tensor") for p in model.clip.parameters())
        results["block_sharded"] = all(hasattr(p, "full_tensor") for name, p in model.named_parameters()
                                       if p.requires_grad)
        optimizer = build_optimizer(model)
        train_steps(model, optimizer, range(STEPS), rank, projection_dim)
        results["fsdp"] = trainable_full_weights(model)

        # Checkpoint after one step the way accelerator.save_state does under FSDP, resume in a fresh model.
        plugin = accelerator.state.fsdp_plugin
        model, accelerator = shard(build_model(clip_dir), rank)
        optimizer = build_optimizer(model)
        train_steps(model, optimizer, range(1), rank, projection_dim)
        save_fsdp_model(plugin, accelerator, model, output)
        save_fsdp_optimizer(plugin, accelerator, optimizer, model, output)
        dist.barrier()
        del model, optimizer
        torch.manual_seed(123)  # a different start: everything trainable must come from the checkpoint
        from omniclip_hf import OmniCLIPModel

        fresh = OmniCLIPModel.from_clip(clip_dir, num_frames=4).train()
        model, accelerator = shard(fresh, rank)
        optimizer = build_optimizer(model)
        load_fsdp_model(accelerator.state.fsdp_plugin, accelerator, model, output)
        load_fsdp_optimizer(accelerator.state.fsdp_plugin, accelerator, optimizer, model, output)
        train_steps(model, optimizer, range(1, STEPS), rank, projection_dim)
        results["fsdp_resumed"] = trainable_full_weights(model)
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
        for name in ddp:
            torch.testing.assert_close(fsdp[name], ddp[name], rtol=1e-5, atol=1e-6, msg=lambda m: f"{name}: {m}")
        # Training moved the weights: the match is not between two untouched copies.
        initial = fsdp_results[rank]["initial"]
        moved = [name for name in ddp if not torch.equal(ddp[name], initial[name])]
        assert len(moved) > len(ddp) // 2, moved


def test_fsdp_checkpoint_resume_gives_the_weights_of_an_uninterrupted_run(fsdp_results):
    for rank in range(WORLD_SIZE):
        straight, resumed = fsdp_results[rank]["fsdp"], fsdp_results[rank]["fsdp_resumed"]
        assert straight.keys() == resumed.keys()
        for name in straight:
            torch.testing.assert_close(resumed[name], straight[name], rtol=1e-6, atol=1e-7, msg=lambda m: f"{name}: {m}")
