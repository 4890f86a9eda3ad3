# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""What a run's distributed set-up was, for `metrics.json`: how many processes on how many nodes, of which kind."""

from __future__ import annotations

import os
import socket
from typing import Any


def node_identity() -> str:
    """The node this process runs on: torchrun's node rank (`GROUP_RANK`, also under `accelerate launch`), else the host.

    The node rank tells apart "nodes" that share a host (as in the tests); the host name covers launchers without
    torchrun (a SLURM `srun` of one process per GPU).
    """
    group_rank = os.environ.get("GROUP_RANK")
    return f"node {group_rank}" if group_rank is not None else socket.gethostname()


def describe_distributed_setup(accelerator) -> dict[str, Any]:
    """`type` (Accelerate's distributed type), `processes`, `nodes`, `processes_per_node`, `device`, `mixed_precision`.

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
    }


__all__ = ["describe_distributed_setup", "node_identity"]
