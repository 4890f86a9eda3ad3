"""Cost of OmniCLIP against bare CLIP and X-CLIP with the real ViT-B/16 shapes (random weights). Not a test.

    python benchmarks/bench_model.py                      # FLOPs, parameters, CPU inference at batch 1
    python benchmarks/bench_model.py --device cuda        # + GPU throughput and peak memory (bf16, batch 32)
    python benchmarks/bench_model.py --saved_activations  # + what a training forward keeps for backward (bf16)
    python benchmarks/bench_model.py --pta_tables_only    # only the two PTA tables (bench_pta_tables.py; short)

Rows:
- `clip`: the frozen CLIP B/16 vision tower + projection on the same frames, features averaged over frames.
- `clip+spg-tokens`: OmniCLIP with only the SPG prompts (what the extra K/4 tokens cost).
- `omniclip`: the full model (temporal embedding, SPG, PTA in all 12 layers, video head).
- `omniclip+clip-mlp`: with transformers' own `CLIPMLP` modules back in the frozen CLIP instead of
  `OmniCLIPQuickGELUMLP` (the same function with one elementwise pass instead of three, keeping half as much for
  backward): what that changes; then the same comparison with the two taking turns (steadier on a shared CPU).
- `omniclip+grad-ckpt` (training rows): with gradient checkpointing.
- `omniclip-naive-pta`: the same model with the textbook adapter (permute to (B*N, T, d'), `.contiguous()`,
  `nn.MultiheadAttention`, permute back): the layout and, with it, the value and output projections the package's
  adapter leaves out (docs/design.md), so it measures both at once; `bench_pta_tables.py` times the layout alone.
- `xclip`: transformers' `XCLIPModel.get_video_features` at B/16, 8 frames (full fine-tuning in training rows).
- with --compile: `clip`, `omniclip` and, at the very end, `xclip` under `torch.compile`.

Then (on cuda, or with --saved_activations) what one bf16 training forward keeps for backward (saved tensors,
weights not counted: the bulk of a training step's peak memory, nearly the same count on any device), per clip and
per batch, for OmniCLIP, OmniCLIP with CLIP's own MLP modules (see `OmniCLIPQuickGELUMLP`) and X-CLIP.

Then (on cuda, or with --pta_tables) where the adapter's time goes: `bench_pta_tables.py`.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPConfig, CLIPModel, XCLIPConfig, XCLIPModel
from transformers.models.clip.modeling_clip import CLIPMLP

from omniclip_hf import OmniCLIPModel
from omniclip_hf.modeling_omniclip import (OmniCLIPQuickGELUMLP, OmniCLIPTemporalAdapter,
                                          disable_activation_checkpointing, enable_activation_checkpointing)

from _arguments import at_least, torch_device

B16_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  image_size=224, patch_size=16)
B16_TEXT = dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8)
CLIP_OWN_MLP = "omniclip+clip-mlp"


class NaiveTemporalAttention(nn.Module):
    """The textbook PTA layout, for comparison only: a transposed copy in and out of nn.MultiheadAttention."""

    def __init__(self, adapter: OmniCLIPTemporalAdapter):
        super().__init__()
        width = adapter.down.out_features
        num_heads = adapter.attention.num_heads
        adapter.attention = None  # replaced by nn.MultiheadAttention below
        self.adapter = adapter
        self.attention = nn.MultiheadAttention(width, num_heads, batch_first=True)
        self.attention.to(adapter.down.weight.dtype)

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        frames, tokens, _ = hidden_states.shape
        batch = frames // num_frames
        reduced = self.adapter.down(self.adapter.layer_norm(hidden_states))
        per_token = reduced.view(batch, num_frames, tokens, -1).permute(0, 2, 1, 3).reshape(batch * tokens, num_frames, -1)
        attended, _ = self.attention(per_token, per_token, per_token, need_weights=False)
        attended = attended.view(batch, tokens, num_frames, -1).permute(0, 2, 1, 3).reshape(frames, tokens, -1)
        return self.adapter.alpha * self.adapter.up(attended)


def build_models(device: torch.device, dtype: torch.dtype) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    clip = CLIPModel(CLIPConfig(vision_config=B16_VISION, text_config=B16_TEXT, projection_dim=512)).eval()
    omniclip = OmniCLIPModel.from_clip(clip, num_frames=8)
    spg_only = OmniCLIPModel.from_clip(clip, num_frames=8, use_pta=False, use_temporal_embedding=False,
                                       video_head_num_layers=0, use_video_specific_prompts=False)
    naive = OmniCLIPModel.from_clip(clip, num_frames=8)
    for block in naive.blocks:
        block.temporal_adapter = NaiveTemporalAttention(block.temporal_adapter)
    xclip = XCLIPModel(XCLIPConfig(vision_config={**B16_VISION, "num_frames": 8}, text_config=B16_TEXT,
                                   projection_dim=512))
    models = {"clip": clip, "clip+spg-tokens": spg_only, "omniclip": omniclip, "omniclip-naive-pta": naive,
              "xclip": xclip}
    # Inference is timed in eval mode for every model (dropout and drop-path are 0 here, but a row must not rely on it).
    return {name: model.to(device=device, dtype=dtype).eval() for name, model in models.items()}


def resident_bytes_elsewhere(models: dict, model: nn.Module) -> int:
    """Bytes of the weights and buffers the other models keep on the device (storages `model` does not share): a
    training row's peak would count them too (about 1.2 GiB at ViT-B/16 in bf16, five models resident), pulling the
    peak-memory ratios towards 1."""
    def storages(module: nn.Module) -> dict[int, int]:
        return {tensor.untyped_storage().data_ptr(): tensor.untyped_storage().nbytes()
                for tensor in (*module.parameters(), *module.buffers())}

    own = storages(model)
    others: dict[int, int] = {}
    for other in models.values():
        if other is not model:
            others.update(storages(other))
    return sum(size for pointer, size in others.items() if pointer not in own)


def video_features(name: str, model: nn.Module, videos: torch.Tensor) -> torch.Tensor:
    if name == "clip":
        batch, frames = videos.shape[:2]
        return model.get_image_features(pixel_values=videos.flatten(0, 1)).pooler_output.view(batch, frames, -1).mean(1)
    if name == "xclip":
        return model.get_video_features(pixel_values=videos).pooler_output
    return model.get_video_features(videos).pooler_output


def count_gflops(name: str, model: nn.Module, videos: torch.Tensor) -> float:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        video_features(name, model, videos)
    return counter.get_total_flops() / 1e9 / videos.shape[0]


def training_gflops(name: str, model: nn.Module, frames: int, num_classes: int, batch: int) -> float:
    """GFLOPs of one training forward and backward of a `batch` of clips (the optimizer's elementwise step not
    counted): what a step costs at equal kernel efficiency. Counted at batches 1 and 2 and extended linearly, since
    part of it comes once per batch (X-CLIP's class texts through its trained text encoder). Frozen weights get no
    weight gradient, so OmniCLIP's backward is about one forward where X-CLIP's full fine-tuning is about two."""
    counts = []
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    for size in (1, 2):
        _, step_inputs = prepare_training(name, model, size, device, num_classes)
        counter = FlopCounterMode(display=False)
        with counter:
            training_loss(name, model, torch.randn(size, frames, 3, 224, 224, device=device, dtype=dtype),
                          *step_inputs).backward()
        model.zero_grad(set_to_none=True)
        counts.append(counter.get_total_flops() / 1e9)
    model.eval()
    per_clip = counts[1] - counts[0]
    return counts[0] - per_clip + batch * per_clip


def training_flops_per_clip(models: dict, frames: int, num_classes: int, batch: int) -> dict[str, float]:
    return {name: training_gflops(name, models[name], frames, num_classes, batch) / batch
            for name in ("omniclip", "xclip")}


def print_training_flops(per_clip: dict[str, float], batch: int) -> None:
    print(f"  training GFLOPs per clip at batch {batch}: omniclip {per_clip['omniclip']:.1f}, xclip "
          f"{per_clip['xclip']:.1f}; xclip / omniclip {per_clip['xclip'] / per_clip['omniclip']:.3f} (the training "
          f"ratio at equal kernel efficiency)")


def failure_line(what: str, error: Exception) -> str:
    """One line for a benchmark row or table that could not run; the rows after it still do."""
    return f"  {what} failed: {type(error).__name__}: {str(error).splitlines()[0]}"


def trainable_parameters(name: str, model: nn.Module) -> int:
    if name == "clip":  # the frozen baseline: frame averaging trains nothing
        return 0
    if name == "xclip":  # full fine-tuning
        return sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(function, device: torch.device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        function()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def inference_clips_per_second(name, model, videos, device, repeats) -> float:
    def step():
        with torch.no_grad():
            video_features(name, model, videos)

    return videos.shape[0] / time_it(step, device, repeats)


def training_loss(name, model, videos, labels, class_inputs, class_embeds) -> torch.Tensor:
    if name == "xclip":
        return F.cross_entropy(model(**class_inputs, pixel_values=videos).logits_per_video.float(), labels)
    return model(text_embeds=class_embeds, pixel_values_videos=videos, labels=labels).loss


def training_step(name, model, videos, labels, class_inputs, class_embeds, optimizer):
    optimizer.zero_grad(set_to_none=True)
    training_loss(name, model, videos, labels, class_inputs, class_embeds).backward()
    optimizer.step()


def prepare_training(name, model, batch, device, num_classes) -> tuple[list, tuple]:
    """Train mode, the trainable parameters (all of X-CLIP's: full fine-tuning), and the step's labels and class
    texts (OmniCLIP's frozen text encoder runs once, outside the step)."""
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad or name == "xclip"]
    for parameter in parameters:
        parameter.requires_grad_(True)
    labels = torch.randint(0, num_classes, (batch,), device=device)
    class_inputs = {"input_ids": torch.randint(0, 49407, (num_classes, 16), device=device)}
    class_embeds = None
    if name != "xclip":
        with torch.no_grad():
            class_embeds = model.get_text_features(**class_inputs).pooler_output
    return parameters, (labels, class_inputs, class_embeds)


def training_clips_per_second_and_peak(name, model, videos, device, repeats, num_classes, checkpointing=False,
                                       others_bytes: int = 0):
    """Training clips/s, and the step's peak memory in GiB less `others_bytes` (what the other models resident on the
    device hold: `resident_bytes_elsewhere`)."""
    parameters, step_inputs = prepare_training(name, model, videos.shape[0], device, num_classes)
    if checkpointing:
        enable_activation_checkpointing(model)
    optimizer = torch.optim.AdamW(parameters, lr=1e-5, betas=(0.9, 0.98))
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    seconds = time_it(lambda: training_step(name, model, videos, *step_inputs, optimizer), device, repeats)
    peak = (torch.cuda.max_memory_allocated() - others_bytes) / 2**30 if device.type == "cuda" else float("nan")
    del optimizer
    if checkpointing:
        disable_activation_checkpointing(model)
    model.eval()
    return videos.shape[0] / seconds, peak


def kept_for_backward_bytes(model: nn.Module, run) -> tuple[int, object]:
    """Bytes that autograd keeps for backward while `run()` builds the graph, and what `run()` returned: distinct
    storages, the model's weights not counted (they are in memory anyway)."""
    weights = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}
    kept = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = run()
    return sum(kept.values()), output


def saved_activation_mib(name, model, videos, num_classes) -> float:
    """MiB that autograd keeps for backward in one training forward: what a training step's peak memory is mostly
    made of, counted the same on any device."""
    _, step_inputs = prepare_training(name, model, videos.shape[0], videos.device, num_classes)
    kept, loss = kept_for_backward_bytes(model, lambda: training_loss(name, model, videos, *step_inputs))
    del loss
    model.eval()
    return kept / 2**20


@contextmanager
def clip_own_mlps(omniclip: OmniCLIPModel):
    """OmniCLIP with transformers' own `CLIPMLP` (QuickGELU in three passes) in its frozen CLIP, as before
    `OmniCLIPQuickGELUMLP`."""
    mlps = [module for module in omniclip.clip.modules() if type(module) is OmniCLIPQuickGELUMLP]
    for mlp in mlps:
        mlp.__class__ = CLIPMLP
    try:
        yield omniclip
    finally:
        for mlp in mlps:
            mlp.__class__ = OmniCLIPQuickGELUMLP


def omniclip_variant_rows(model, omniclip_row, videos, device, repeats, num_classes, training: bool,
                          clip_parameters: int, others_bytes: int = 0) -> list[dict]:
    """OmniCLIP with CLIP's own MLP modules (what `OmniCLIPQuickGELUMLP` changes) and, training only, with gradient
    checkpointing; then the MLP comparison again with the two taking turns."""
    shared = {key: omniclip_row[key] for key in ("gflops_per_view", "trainable")}
    with clip_own_mlps(model):
        own = {"model": CLIP_OWN_MLP, **shared,
               "inference_clips_s": inference_clips_per_second("omniclip", model, videos, device, repeats)}
        if training:
            own["train_clips_s"], own["train_peak_gib"] = training_clips_per_second_and_peak(
                "omniclip", model, videos, device, repeats, num_classes, others_bytes=others_bytes)
    print(f"  measured {format_row(own, clip_parameters)}", flush=True)
    rows = [own]
    if training:
        checkpointed = {"model": "omniclip+grad-ckpt", **shared, "inference_clips_s": omniclip_row["inference_clips_s"]}
        checkpointed["train_clips_s"], checkpointed["train_peak_gib"] = training_clips_per_second_and_peak(
            "omniclip", model, videos, device, repeats, num_classes, checkpointing=True, others_bytes=others_bytes)
        print(f"  measured {format_row(checkpointed, clip_parameters)}", flush=True)
        rows.append(checkpointed)
    fused_mlp_interleaved(model, videos, device, repeats, num_classes, training)
    return rows


def fused_mlp_interleaved(omniclip, videos, device, repeats, num_classes, training: bool) -> None:
    """OmniCLIP's inference and training step with `OmniCLIPQuickGELUMLP` and with CLIP's own MLP modules, the two
    taking turns (medians of single calls): a shared CPU's speed drifts over the minutes that the rows take one after
    the other, so the ratio of two rows is noise at a few percent there; this one is not."""
    def step(own: bool, train: bool):
        def run():
            with clip_own_mlps(omniclip) if own else nullcontext():
                if train:
                    training_step("omniclip", omniclip, videos, *step_inputs, optimizer)
                else:
                    with torch.no_grad():
                        video_features("omniclip", omniclip, videos)
        return run

    rounds = max(repeats, 5)
    for train in (False, True) if training else (False,):
        if train:
            parameters, step_inputs = prepare_training("omniclip", omniclip, videos.shape[0], device, num_classes)
            optimizer = torch.optim.AdamW(parameters, lr=1e-5, betas=(0.9, 0.98))
        steps = {"fused": step(own=False, train=train), "own": step(own=True, train=train)}
        for run in steps.values():
            run()
        seconds = interleaved_median_seconds(steps, device, rounds)
        omniclip.eval()
        print(f"  {'training step' if train else 'inference'}, interleaved medians of {rounds}: "
              f"{seconds['fused']:.4f} s with OmniCLIPQuickGELUMLP, {seconds['own']:.4f} s with CLIP's own MLP; "
              f"clips/s fused / own {seconds['own'] / seconds['fused']:.3f}", flush=True)


def saved_activation_rows(models, frames, device, dtype, num_classes, batch: int) -> None:
    """Kept-for-backward MiB per clip (the slope between batches 1 and 2) and per batch (X-CLIP's 400 class texts
    through its trained text encoder), for OmniCLIP, OmniCLIP with CLIP's own QuickGELU modules, and X-CLIP."""
    print(f"\nKept for backward by one training forward (saved tensors, weights not counted), {dtype}, {frames} frames")
    print(f"| model | MiB per clip | MiB per batch | MiB at batch {batch} |")
    print("|---|---|---|---|")
    for name in ("omniclip", "xclip"):
        models[name].to(dtype)
    at_batch = {}
    for label, name in (("omniclip", "omniclip"), (CLIP_OWN_MLP, "omniclip"), ("xclip", "xclip")):
        with clip_own_mlps(models["omniclip"]) if label == CLIP_OWN_MLP else nullcontext():
            mib = [saved_activation_mib(name, models[name], torch.randn(size, frames, 3, 224, 224, device=device,
                                                                         dtype=dtype), num_classes) for size in (1, 2)]
        per_clip, per_batch = mib[1] - mib[0], 2 * mib[0] - mib[1]
        at_batch[label] = per_batch + batch * per_clip
        print(f"| {label} | {per_clip:.1f} | {per_batch:.1f} | {at_batch[label]:.0f} |", flush=True)
    for label in ("omniclip", CLIP_OWN_MLP):
        print(f"  kept at batch {batch}, {label} / xclip: {at_batch[label] / at_batch['xclip']:.3f}")


def interleaved_median_seconds(steps: dict, device: torch.device, repeats: int) -> dict:
    """Median seconds of single calls, the steps taking turns in every round: a shared CPU's slow spells then hit
    every row alike instead of one."""
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: sorted(values)[len(values) // 2] for name, values in times.items()}


TABLE_HEADER = (f"| {'model':26} | GFLOPs/view | trainable params | share of CLIP | infer clips/s | train clips/s "
                "| train peak GiB |")


def rate(value: float) -> str:
    """Clips/s with 2 decimals, or 4 where the value is below 1 (CPU rows at batch 1)."""
    return f"{value:13.4f}" if value < 1 else f"{value:13.2f}"


def format_row(row: dict, clip_parameters: int) -> str:
    return (f"| {row['model']:26} | {row['gflops_per_view']:11.1f} | {row['trainable']:16,d} | "
            f"{row['trainable'] / clip_parameters:13.2%} | {rate(row['inference_clips_s'])} | "
            f"{rate(row.get('train_clips_s', float('nan')))} | {row.get('train_peak_gib', float('nan')):14.2f} |")


def print_table(rows: list[dict], clip_parameters: int) -> None:
    print(TABLE_HEADER)
    print("|" + "|".join("-" * (len(cell)) for cell in TABLE_HEADER.split("|")[1:-1]) + "|")
    for row in rows:
        print(format_row(row, clip_parameters))


def by_model(rows: list[dict]) -> dict[str, dict]:
    return {row["model"]: row for row in rows}


def compiled_rows(models, eager_rows, videos, device, repeats, num_classes, training: bool,
                  clip_parameters: int, names=("clip", "omniclip")) -> list[dict]:
    """`torch.compile` rows for the models in `names`; a failure to compile is printed and the row skipped.

    Inference compiles the feature function (`torch.compile` on a module compiles only its `forward`); training
    compiles the module, whose `forward` the training step calls (not for bare CLIP, which trains nothing).
    """
    rows = []
    for name in names:
        model, eager = models[name], eager_rows[name]
        videos = videos.to(next(model.parameters()).dtype)  # --saved_activations left the models in bf16
        row = {"model": f"{name} (torch.compile)", "gflops_per_view": eager["gflops_per_view"],
               "trainable": eager["trainable"]}
        try:
            compiled_features = torch.compile(lambda v, name=name, model=model: video_features(name, model, v))
            row["inference_clips_s"] = videos.shape[0] / time_it(
                lambda: torch.no_grad()(compiled_features)(videos), device, repeats, warmup=3)
            if training and name != "clip":
                model.compile()
                row["train_clips_s"], row["train_peak_gib"] = training_clips_per_second_and_peak(
                    name, model, videos, device, repeats, num_classes,
                    others_bytes=resident_bytes_elsewhere(models, model))
        except Exception as error:  # a benchmark row, not a product path: report and go on
            print(failure_line(f"torch.compile for {name}", error))
        if "inference_clips_s" in row:
            rows.append(row)
            print(f"  measured {format_row(row, clip_parameters)}", flush=True)
    return rows


def main() -> None:
    import bench_pta_tables  # here, not at the top: it imports this module's helpers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch_size", type=int, default=None, help="default: 32 on cuda, 1 on cpu")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--num_classes", type=int, default=400)
    parser.add_argument("--skip_training", action="store_true")
    parser.add_argument("--cpu_training", action="store_true", help="time training steps on CPU too (slow)")
    parser.add_argument("--compile", action="store_true", help="also time clip, omniclip and xclip under torch.compile")
    parser.add_argument("--pta_tables", action="store_true", help="the PTA attention and block tables on CPU too")
    parser.add_argument("--saved_activations", action="store_true",
                        help="what a training forward keeps for backward, on CPU too (bf16; about 12 GB of memory)")
    parser.add_argument("--pta_tables_only", action="store_true", help="only those (no model rows)")
    parser.add_argument("--training_flops", action="store_true",
                        help="only the training FLOPs per clip, OmniCLIP and X-CLIP, at --batch_size (default 32)")
    args = parser.parse_args()
    # 0 would read as "the default" below (`args.batch_size or ...`), not as the 0 asked for.
    at_least(parser, 1, {"--batch_size": args.batch_size, "--frames": args.frames, "--repeats": args.repeats,
                         "--num_classes": args.num_classes})

    device = torch_device(parser, args.device)
    on_gpu = device.type == "cuda"
    dtype = torch.bfloat16 if on_gpu else torch.float32
    batch = args.batch_size or (32 if on_gpu else 1)
    repeats = args.repeats or (10 if on_gpu else 2)
    run_training = not args.skip_training and (on_gpu or args.cpu_training)
    if args.pta_tables_only:
        torch.manual_seed(0)
        clip = CLIPModel(CLIPConfig(vision_config=B16_VISION, text_config=B16_TEXT, projection_dim=512))
        omniclip = OmniCLIPModel.from_clip(clip, num_frames=args.frames).to(device=device, dtype=dtype).eval()
        print(f"# device: {device}; dtype {dtype}; batch {batch}; torch {torch.__version__}")
        bench_pta_tables.pta_attention_backend_rows(omniclip, batch, args.frames, device, dtype, repeats)
        bench_pta_tables.block_cost_rows(omniclip, batch, args.frames, device, dtype, repeats)
        bench_pta_tables.block_training_rows(omniclip, batch, args.frames, device, dtype, repeats)
        return
    models = build_models(device, dtype)
    if args.training_flops:
        print_training_flops(training_flops_per_clip(models, args.frames, args.num_classes, args.batch_size or 32),
                             args.batch_size or 32)
        return

    flop_videos = torch.randn(1, args.frames, 3, 224, 224, device=device, dtype=dtype)
    videos = torch.randn(batch, args.frames, 3, 224, 224, device=device, dtype=dtype)
    clip_parameters = sum(p.numel() for p in models["clip"].parameters())
    device_name = torch.cuda.get_device_name(device) if on_gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"# device: {device_name}; dtype {dtype}; batch {batch}; {args.frames} frames at 224x224; "
          f"torch {torch.__version__}")

    rows = []
    for name, model in models.items():
        row = {"model": name, "gflops_per_view": count_gflops(name, model, flop_videos)}
        row["trainable"] = trainable_parameters(name, model)
        row["inference_clips_s"] = inference_clips_per_second(name, model, videos, device, repeats)
        if run_training and name not in ("clip", "clip+spg-tokens"):
            row["train_clips_s"], row["train_peak_gib"] = training_clips_per_second_and_peak(
                name, model, videos, device, repeats, args.num_classes,
                others_bytes=resident_bytes_elsewhere(models, model))
        rows.append(row)
        print(f"  measured {format_row(row, clip_parameters)}", flush=True)
        if name == "omniclip":
            rows += omniclip_variant_rows(model, row, videos, device, repeats, args.num_classes, run_training,
                                          clip_parameters, others_bytes=resident_bytes_elsewhere(models, model))
    if run_training:  # before the compiled rows, which compile the modules in place
        try:
            print_training_flops(training_flops_per_clip(models, args.frames, args.num_classes, batch), batch)
        except Exception as error:  # a benchmark line, not a product path: report and go on
            print(failure_line("counting training FLOPs", error))
    if args.compile:
        rows += compiled_rows(models, by_model(rows), videos, device, repeats, args.num_classes,
                              training=run_training, clip_parameters=clip_parameters)

    print_table(rows, clip_parameters)
    if on_gpu or args.pta_tables:
        omniclip_clips_s = by_model(rows)["omniclip"]["inference_clips_s"]
        bench_pta_tables.pta_attention_backend_rows(models["omniclip"], batch, args.frames, device, dtype,
                                                    max(repeats, 5), omniclip_clips_s)
        bench_pta_tables.block_cost_rows(models["omniclip"], batch, args.frames, device, dtype, max(repeats, 5),
                                         omniclip_clips_s)
        if run_training:
            try:
                bench_pta_tables.block_training_rows(models["omniclip"], batch, args.frames, device, dtype,
                                                     max(repeats, 5), by_model(rows)["omniclip"]["train_clips_s"])
            except Exception as error:  # a benchmark table, not a product path: report, and keep the rows below
                print(failure_line("the training block table", error))

    by_name = by_model(rows)
    clip_row, omni_row, xclip_row = by_name["clip"], by_name["omniclip"], by_name["xclip"]
    print("\nratios (targets from issues 2, 14 and 15 in brackets):")
    print(f"  FLOPs omniclip / clip            {omni_row['gflops_per_view'] / clip_row['gflops_per_view']:.3f}  [<= 1.32]")
    print(f"  FLOPs clip+spg-tokens / clip     {by_name['clip+spg-tokens']['gflops_per_view'] / clip_row['gflops_per_view']:.3f}")
    print(f"  inference omniclip / clip        {omni_row['inference_clips_s'] / clip_row['inference_clips_s']:.3f}  [>= 0.75 on GPU]")
    print(f"  inference omniclip / xclip       {omni_row['inference_clips_s'] / xclip_row['inference_clips_s']:.3f}  [> 1 on GPU]")
    print(f"  inference naive-pta / omniclip   {by_name['omniclip-naive-pta']['inference_clips_s'] / omni_row['inference_clips_s']:.3f}  (layout and v/o projections together)")
    print(f"  inference omniclip / spg-tokens  {omni_row['inference_clips_s'] / by_name['clip+spg-tokens']['inference_clips_s']:.3f}  (what PTA + head cost)")
    own = by_name[CLIP_OWN_MLP]
    print(f"  inference omniclip / clip-mlp    {omni_row['inference_clips_s'] / own['inference_clips_s']:.3f}  (what the fused MLP changes)")
    if "train_clips_s" in omni_row:
        print(f"  training omniclip / xclip        {omni_row['train_clips_s'] / xclip_row['train_clips_s']:.3f}  [>= 1.2 on GPU]")
        print(f"  training omniclip / clip-mlp     {omni_row['train_clips_s'] / own['train_clips_s']:.3f}  (what the fused MLP changes)")
        if on_gpu:
            print(f"  peak memory omniclip / xclip     {omni_row['train_peak_gib'] / xclip_row['train_peak_gib']:.3f}  [<= 0.85]")
            print(f"  peak memory clip-mlp / xclip     {own['train_peak_gib'] / xclip_row['train_peak_gib']:.3f}")
            ckpt = by_name["omniclip+grad-ckpt"]
            print(f"  peak memory grad-ckpt / xclip    {ckpt['train_peak_gib'] / xclip_row['train_peak_gib']:.3f}")
            print(f"  training grad-ckpt / xclip       {ckpt['train_clips_s'] / xclip_row['train_clips_s']:.3f}")
    for name in ("clip", "omniclip"):
        if f"{name} (torch.compile)" in by_name:
            compiled = by_name[f"{name} (torch.compile)"]
            print(f"  inference {name} compiled / eager  {compiled['inference_clips_s'] / by_name[name]['inference_clips_s']:.3f}")
    if "omniclip (torch.compile)" in by_name and "clip (torch.compile)" in by_name:
        print(f"  inference omniclip / clip, both compiled  "
              f"{by_name['omniclip (torch.compile)']['inference_clips_s'] / by_name['clip (torch.compile)']['inference_clips_s']:.3f}")
    if "train_clips_s" in by_name.get("omniclip (torch.compile)", {}):
        print(f"  training omniclip compiled / xclip  {by_name['omniclip (torch.compile)']['train_clips_s'] / xclip_row['train_clips_s']:.3f}")
    if on_gpu or args.saved_activations:  # the models go to bf16, the GPU rows' dtype, on the CPU too
        # Eager, as the table says: after --compile the modules are compiled in place, which gave other (compiled)
        # figures and recompiled them for each batch size, eating into the compiled X-CLIP rows' time.
        with torch.compiler.set_stance("force_eager"):
            saved_activation_rows(models, args.frames, device, torch.bfloat16, args.num_classes, batch=32)
    if args.compile:  # last, so that a long X-CLIP compile cannot cost the rows above: compiled against compiled
        compiled_xclip_rows(models, by_name, videos, device, repeats, args.num_classes, run_training, clip_parameters)


def compiled_xclip_rows(models, by_name, videos, device, repeats, num_classes, training, clip_parameters) -> None:
    """X-CLIP under `torch.compile`, and OmniCLIP's compiled rows against it (the other ratios compare eager
    X-CLIP, as the goals are stated)."""
    (row,) = compiled_rows(models, by_name, videos, device, repeats, num_classes, training, clip_parameters,
                           names=("xclip",)) or (None,)
    omni_compiled = by_name.get("omniclip (torch.compile)")
    if row is None or omni_compiled is None:
        return
    print(f"  inference omniclip / xclip, both compiled  "
          f"{omni_compiled['inference_clips_s'] / row['inference_clips_s']:.3f}")
    if "train_clips_s" in row and "train_clips_s" in omni_compiled:
        print(f"  training omniclip / xclip, both compiled  "
              f"{omni_compiled['train_clips_s'] / row['train_clips_s']:.3f}")
        if device.type == "cuda":
            print(f"  peak memory omniclip / xclip, both compiled  "
                  f"{omni_compiled['train_peak_gib'] / row['train_peak_gib']:.3f}")


if __name__ == "__main__":
    main()
