"""Where the time of one step goes: torch.profiler's operator table for an eager OmniCLIP inference forward, an
eager OmniCLIP training step and an eager X-CLIP training step, at `bench_model.py`'s ViT-B/16 shapes. Not a test.

    python benchmarks/profile_step.py --device cuda      # bf16, batch 32 (part 5 of gpu_session.sh)
    python benchmarks/profile_step.py --batch_size 1     # on CPU: float32, slow

The goals it serves (issue 14): OmniCLIP inference at >= 0.75x bare CLIP's clips/s and an eager training step at
>= 1.2x X-CLIP's. `bench_model.py` says how far each is; this says which operators to work on: each table lists the
operators with the most self time on the device (CUDA kernels' time on a GPU, CPU time on a CPU), and one line sums
them by kind (matrix products, attention, normalisation, everything else).
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from _arguments import at_least, torch_device
from bench_model import build_models, prepare_training, synchronize, training_step, video_features

# aten operators by kind, for the one-line summary (an operator in none of these counts as "other").
KINDS = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
                        "aten::_addmm_activation", "aten::convolution"),
    "attention": ("aten::_scaled_dot_product", "aten::_flash_attention", "aten::_efficient_attention",
                  "aten::_cudnn_attention"),
    "normalisation": ("aten::native_layer_norm", "aten::layer_norm"),
}


def kind_of(operator: str) -> str:
    for kind, prefixes in KINDS.items():
        if operator.startswith(prefixes):
            return kind
    return "other"


def profile_rows(label: str, run, device: torch.device, rows: int) -> None:
    """Profiles one call of `run` (after two warm-up calls) and prints its operator table and the sum by kind."""
    run(), run()
    synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        run()
        synchronize(device)
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [event for event in profiler.key_averages() if event.key.startswith("aten::")]
    self_time = {event.key: event.self_device_time_total if device.type == "cuda" else event.self_cpu_time_total
                 for event in events}
    total = sum(self_time.values()) or 1
    by_kind = {}
    for operator, microseconds in self_time.items():
        by_kind[kind_of(operator)] = by_kind.get(kind_of(operator), 0) + microseconds
    print(f"\n== {label}: {total / 1e3:.1f} ms of aten self time on {device.type}")
    print("   by kind: " + ", ".join(f"{kind} {value / total:.1%}" for kind, value in
                                     sorted(by_kind.items(), key=lambda item: -item[1])))
    print(profiler.key_averages().table(sort_by=sort_by, row_limit=rows, max_name_column_width=48), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch_size", type=int, default=None, help="default: 32 on cuda, 1 on cpu")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--num_classes", type=int, default=400)
    parser.add_argument("--rows", type=int, default=25, help="operators listed per table")
    args = parser.parse_args()
    # --batch_size 0 would read as "the default"; --rows 0 would print empty tables.
    at_least(parser, 1, {"--batch_size": args.batch_size, "--frames": args.frames,
                         "--num_classes": args.num_classes, "--rows": args.rows})

    device = torch_device(parser, args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    batch = args.batch_size or (32 if device.type == "cuda" else 1)
    models = build_models(device, dtype)
    videos = torch.randn(batch, args.frames, 3, 224, 224, device=device, dtype=dtype)
    print(f"# device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}; dtype {dtype}; "
          f"batch {batch}; {args.frames} frames at 224x224; torch {torch.__version__}")

    omniclip = models["omniclip"]
    with torch.no_grad():
        profile_rows("omniclip inference (get_video_features)", lambda: video_features("omniclip", omniclip, videos),
                     device, args.rows)
    for name in ("omniclip", "xclip"):
        model = models[name]
        parameters, step_inputs = prepare_training(name, model, batch, device, args.num_classes)
        optimizer = torch.optim.AdamW(parameters, lr=1e-5, betas=(0.9, 0.98))
        profile_rows(f"{name} training step (forward, backward, AdamW)",
                     lambda: training_step(name, model, videos, *step_inputs, optimizer), device, args.rows)
        model.eval()


if __name__ == "__main__":
    main()
