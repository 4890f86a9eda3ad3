# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Time and peak memory of `OmniCLIPModel.from_clip` on a ViT-B/16-shaped CLIP (random weights saved to a folder).

Each measurement runs in a fresh process, so its peak resident memory (`VmHWM`, Linux) is that of one load:

    PYTHONPATH=$PWD python benchmarks/bench_from_clip.py [--repeats 3] [--dtype float32]

Prints a markdown table: seconds of `from_clip` and the rise of the process's peak resident memory during it,
against `CLIPModel.from_pretrained` of the same folder alone (the floor: loading the CLIP once). The rise is
the peak minus the resident memory just before the call (imports done); safetensors maps the weights, so a load
that touches each weight once stays near the weights' size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _arguments import at_least


MEASURE = r"""
import json, sys, time
import torch
from transformers import CLIPModel
import omniclip_hf
from omniclip_hf import OmniCLIPModel

def memory_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

folder, what, dtype = sys.argv[1], sys.argv[2], getattr(torch, sys.argv[3])
torch.set_num_threads(1)
before = memory_kib("VmRSS")
start = time.perf_counter()
if what == "from_clip":
    model = OmniCLIPModel.from_clip(folder, clip_loading_kwargs={"dtype": dtype})
else:
    model = CLIPModel.from_pretrained(folder, dtype=dtype)
seconds = time.perf_counter() - start
peak = memory_kib("VmHWM")  # the process's peak resident memory
weights = sum(p.numel() * p.element_size() for p in model.parameters())
print(json.dumps({"seconds": seconds, "peak_rise_mib": (peak - before) / 1024, "weights_mib": weights / 2**20}))
"""


def save_b16_clip(folder: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8},
        vision_config={"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                       "num_attention_heads": 12, "patch_size": 16, "image_size": 224},
        projection_dim=512,
    )
    CLIPModel(config).save_pretrained(folder)


def measure(folder: Path, what: str, dtype: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(folder), what, dtype], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    args = parser.parse_args()
    at_least(parser, 1, {"--repeats": args.repeats})  # before the CLIP is saved: 0 leaves no run to take the best of
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "clip-b16"
        save_b16_clip(folder)
        print(f"| load ({args.dtype}) | seconds (best of {args.repeats}) | peak RSS rise (MiB, min) | weights (MiB) |")
        print("|---|---:|---:|---:|")
        for what in ("CLIPModel.from_pretrained", "from_clip"):
            runs = [measure(folder, "from_clip" if what == "from_clip" else "clip", args.dtype) for _ in range(args.repeats)]
            print(
                f"| {what} | {min(run['seconds'] for run in runs):.2f} | "
                f"{min(run['peak_rise_mib'] for run in runs):.0f} | {runs[0]['weights_mib']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
