# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""What a run's distributed set-up was, for `metrics.json`: how many processes on how many nodes, of which kind;
and the trained model's full weights, gathered from whatever Accelerate wrapped it in."""

from __future__ import annotations

import logging
import os
import re
import socket
from typing import Any


logger = logging.getLogger("omniclip.train")


def node_identity() -> str:
    """The node this process runs on: torchrun's node rank (`GROUP_RANK`, also under `accelerate launch`), else the host.

    The node rank tells apart "nodes" that share a host (as in the tests); the host name covers launchers without
    torchrun (a SLURM `srun` of one process per GPU).
    """
    group_rank = os.environ.get("GROUP_RANK")
    return f"node {group_rank}" if group_rank is not None else socket.gethostname()


def cpu_only(asked_for_cpu: bool) -> bool:
    """Accelerate's `cpu` argument: without a GPU, `cpu=True` is what makes torchrun's processes a MULTI_CPU (gloo)
    group. (Left off under the tests' `deepspeed_on_cpu` hook: a one-process DeepSpeed launch then runs DeepSpeed.)"""
    import torch

    from . import testing_hooks

    return asked_for_cpu or (not torch.cuda.is_available() and not testing_hooks.runs_deepspeed_on_cpu())


def check_launch(accelerator, gradient_accumulation_steps: int | None = None) -> None:
    """What Accelerate set up differs from what was asked, where it would otherwise train on with nothing said:
    fp16 on a CPU (refused: Accelerate trains in float32 there and `metrics.json` would say fp16), an accumulation
    count the launcher's config replaced (refused), and an FSDP or DeepSpeed config that Accelerate ran as plain data
    parallelism (it places neither on a CPU): one warning line. (First, under the tests' `deepspeed_on_cpu` hook,
    Accelerate's state gets the process group's ranks.)"""
    from . import testing_hooks

    testing_hooks.count_deepspeed_processes_on_cpu()
    if accelerator.mixed_precision == "fp16" and accelerator.device.type == "cpu":
        raise ValueError("--mixed_precision fp16 needs a GPU: on a CPU Accelerate trains in float32; use bf16 or no.")
    if gradient_accumulation_steps is not None and accelerator.gradient_accumulation_steps != gradient_accumulation_steps:
        # `accelerate launch` with a DeepSpeed config exports its gradient_accumulation_steps, which Accelerate takes
        # over the script's: the run would step 4 times as often as asked, its schedule and metrics.json saying 4.
        raise ValueError(f"--gradient_accumulation_steps {gradient_accumulation_steps}: the launch sets "
                         f"{accelerator.gradient_accumulation_steps} (ACCELERATE_GRADIENT_ACCUMULATION_STEPS, from "
                         "the accelerate config's gradient_accumulation_steps), which Accelerate would use instead: "
                         "set the same count in both.")
    # `accelerate launch` says what its config asked for in these variables; on a CPU (train.py's cpu=True) Accelerate
    # sets up MULTI_CPU whatever they say, and the run trained unsharded with only metrics.json telling.
    for asked, variable, what in (("FSDP", "ACCELERATE_USE_FSDP", "the model is not sharded"),
                                  ("DEEPSPEED", "ACCELERATE_USE_DEEPSPEED", "DeepSpeed (ZeRO) is not used")):
        asked_for = os.environ.get(variable, "false").lower() in ("1", "true", "yes")
        if asked_for and str(accelerator.distributed_type.value) != asked and accelerator.is_main_process:
            logger.warning("the launch config asks for %s, but Accelerate set up %s on %s (it places %s on GPUs "
                           "only): %s.", asked, accelerator.distributed_type.value, accelerator.device.type, asked,
                           what)


def configure_deepspeed(accelerator, options) -> None:
    """Under DeepSpeed, the settings its config leaves to the script, from the script's options: the batch sizes
    (`auto` is filled by Accelerate only from a loader given to the same `prepare` call as the model, and this loop
    prepares its loader apart, so the launch stopped with Accelerate's error about `prepare()`) and the gradient
    clipping. DeepSpeed clips by its config, not by `--max_grad_norm`: a value set in both that differs is refused,
    where `--max_grad_norm 5` trained clipped at the config's 1.0 with metrics.json saying 5."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    config = plugin.deepspeed_config
    for key, value in (("train_micro_batch_size_per_gpu", options.batch_size),
                       ("train_batch_size", options.batch_size * accelerator.num_processes
                        * options.gradient_accumulation_steps)):
        if config.get(key, "auto") == "auto":
            config[key] = value
        elif int(config[key]) != value:  # DeepSpeed would check its bookkeeping against batches it never sees
            raise ValueError(f"the DeepSpeed config's {key} is {config[key]}, but this launch trains batches of "
                             f"{value} (--batch_size {options.batch_size}, {accelerator.num_processes} processes, "
                             f"--gradient_accumulation_steps {options.gradient_accumulation_steps}): set it to auto.")
    max_grad_norm = float(options.max_grad_norm or 0.0)  # DeepSpeed's 0: no clipping
    clipping = config.get("gradient_clipping", "auto")
    if clipping == "auto":
        config["gradient_clipping"] = max_grad_norm
    elif float(clipping) != max_grad_norm:
        raise ValueError(f"--max_grad_norm {options.max_grad_norm}: the DeepSpeed config clips gradients at {clipping} "
                         "(its gradient_clipping), which DeepSpeed applies instead: set the same value in both, or "
                         "gradient_clipping: auto.")


def check_total_batch_size(options, processes: int) -> None:
    """A recipe's `total_batch_size` against this launch: batch sizes are per process, so a recipe of batch 8 for one
    GPU launched on 8 trained at 64, eight times the paper's, with nothing said."""
    if options.total_batch_size is None:
        return
    total = options.batch_size * processes * options.gradient_accumulation_steps
    if total != options.total_batch_size:
        where = f" (from --config {options.config})" if getattr(options, "config", None) else ""
        raise ValueError(
            f"--total_batch_size {options.total_batch_size}{where}: this launch trains batches of {total} "
            f"(--batch_size {options.batch_size} x {processes} processes x --gradient_accumulation_steps "
            f"{options.gradient_accumulation_steps}); set --batch_size or --gradient_accumulation_steps so that they "
            "make it, or pass --total_batch_size for another total.")


def describe_distributed_setup(accelerator) -> dict[str, Any]:
    """`type` (Accelerate's distributed type), `processes`, `nodes`, `processes_per_node`, `device`, `mixed_precision`,
    `torch_compile` (Accelerate's dynamo backend: "no", or e.g. "inductor" under `accelerate launch --dynamo_backend`).

    A collective: every process must call it.
    """
    from accelerate.utils import gather_object

    nodes = gather_object([node_identity()]) if accelerator.num_processes > 1 else [node_identity()]
    per_node = {node: nodes.count(node) for node in dict.fromkeys(nodes)}
    return {
        "type": str(accelerator.distributed_type.value),
        "processes": accelerator.num_processes,
        "nodes": len(per_node),
        "processes_per_node": sorted(set(per_node.values())),
        "device": accelerator.device.type,
        "mixed_precision": accelerator.mixed_precision,
        "torch_compile": str(accelerator.state.dynamo_plugin.backend.value).lower(),
    }


def keep_frozen_scalars_out_of_deepspeed(accelerator, model) -> None:
    """Under DeepSpeed, each frozen 0-dim parameter (CLIP's `logit_scale`) becomes a buffer of the same name and value.

    DeepSpeed's engine broadcasts every parameter from the first process as bytes (`p.data.view(torch.uint8)`),
    which torch refuses for a 0-dim tensor: `accelerator.prepare` stopped with "self.dim() cannot be 0 to view Float
    as Byte" (deepspeed 0.19.8, measured). A buffer keeps the state-dict key, shape and value, so checkpoints and the
    saved model are unchanged, and needs no broadcast: every process loads the same CLIP. Must run before
    `accelerator.prepare(model)`; a no-op for every other distributed type.
    """
    from accelerate.utils import DistributedType

    if accelerator.distributed_type != DistributedType.DEEPSPEED:
        return
    for module in model.modules():
        for name, parameter in list(module.named_parameters(recurse=False)):
            if parameter.dim() == 0 and not parameter.requires_grad:
                delattr(module, name)
                module.register_buffer(name, parameter.detach())


# The attribute torch.compile's wrapper keeps the model under: a `_orig_mod.` segment in every state-dict key of a
# compiled model (or, with regional compilation, of each compiled block).
COMPILED_WRAPPER_SEGMENT = re.compile(r"(^|\.)_orig_mod\.")


def full_state_dict(accelerator, model) -> dict[str, Any] | None:
    """The trained model's whole state dict under its own names, for `save_pretrained` (a collective under FSDP).

    `accelerator.get_state_dict` gathers FSDP shards but keeps torch.compile's wrapper (Accelerate's `unwrap_model`
    keeps it by default), so under `--dynamo_backend` its keys start with `_orig_mod.` and the saved model would not
    load; the segment is removed here. Accelerate's own checkpoints (`save_state`) are not affected.
    """
    state_dict = accelerator.get_state_dict(model)
    if state_dict is None:  # DeepSpeed ZeRO-3 gathers onto rank 0 only
        return None
    return {COMPILED_WRAPPER_SEGMENT.sub(r"\1", key): value for key, value in state_dict.items()}


__all__ = ["check_launch", "configure_deepspeed", "cpu_only", "describe_distributed_setup", "full_state_dict",
           "keep_frozen_scalars_out_of_deepspeed", "node_identity"]
