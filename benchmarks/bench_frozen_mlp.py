"""One frozen ViT-B/16 MLP, the widest part of a frozen CLIP layer: CLIP's own (QuickGELU in three elementwise passes)
against `OmniCLIPQuickGELUMLP` with the 1.702 riding in the GEMMs (`addmm`'s alpha) and with it scaling the weights,
forward alone and forward + backward to the layer's input (training: the weights are frozen, the input carries the
adapters' gradient). Medians of single calls, the variants taking turns. Not a test.

    python benchmarks/bench_frozen_mlp.py                          # CPU, float32, one clip
    python benchmarks/bench_frozen_mlp.py --dtype bf16             # CPU, bf16 weights and inputs
    python benchmarks/bench_frozen_mlp.py --device cuda --dtype bf16 --batch_size 32

The model picks the alpha without a backward, and with one in float32; it scales the weights when a backward
follows in bf16 or fp16 (`OmniCLIPQuickGELUMLP._scale_weights`): addmm's backward scales its input gradient by
alpha in a pass of its own. This prints what each choice costs wherever it runs.
"""

from __future__ import annotations

import argparse
import copy

import torch
from transformers import CLIPVisionConfig
from transformers.models.clip.modeling_clip import CLIPMLP

from _arguments import at_least, torch_device
from bench_model import interleaved_median_seconds
from omniclip_hf.modeling_omniclip import OmniCLIPQuickGELUMLP

TOKENS = 1 + 14 * 14 + 7 * 7  # CLS, the 14x14 patches of a 224 px frame at B/16, the K/4 SPG prompts
CLIP_OWN = "clip's own"


def mlp_variants(dtype: torch.dtype, device: torch.device) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    clip_mlp = CLIPMLP(CLIPVisionConfig(hidden_size=768, intermediate_size=3072))
    clip_mlp = clip_mlp.to(device=device, dtype=dtype).requires_grad_(False)
    variants = {CLIP_OWN: clip_mlp}
    for name, scale_weights in (("fused, alpha in the GEMMs", False), ("fused, scaled weights", True)):
        fused = copy.deepcopy(clip_mlp)
        fused.__class__ = OmniCLIPQuickGELUMLP
        fused._scale_weights = lambda hidden_states, choice=scale_weights: choice  # this instance only
        variants[name] = fused
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--batch_size", type=int, default=1, help="clips of 8 frames")
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    # --batch_size 0 would time empty tensors; --repeats 0 leaves no call to take the median of.
    at_least(parser, 1, {"--batch_size": args.batch_size, "--repeats": args.repeats})
    device = torch_device(parser, args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    variants = mlp_variants(dtype, device)
    inputs = torch.randn(args.batch_size * 8, TOKENS, 768, device=device, dtype=dtype)
    grad_output = torch.randn_like(inputs)
    leaf = inputs.clone().requires_grad_()

    def inference(mlp):
        def run():
            with torch.no_grad():
                mlp(inputs)
        return run

    def training(mlp):
        def run():
            leaf.grad = None
            mlp(leaf).backward(grad_output)
        return run

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"# {name}; {dtype}; {args.batch_size} clips x 8 frames x {TOKENS} tokens; medians of {args.repeats} "
          f"interleaved calls; torch {torch.__version__}")
    print("| frozen MLP | forward ms | forward + backward ms |")
    print("|---|---|---|")
    for run in (inference, training):  # warm-up
        for mlp in variants.values():
            run(mlp)()
    forward = interleaved_median_seconds({label: inference(mlp) for label, mlp in variants.items()}, device,
                                         args.repeats)
    both = interleaved_median_seconds({label: training(mlp) for label, mlp in variants.items()}, device, args.repeats)
    for label in variants:
        print(f"| {label} | {forward[label] * 1e3:.2f} | {both[label] * 1e3:.2f} |")
    alpha, scaled = "fused, alpha in the GEMMs", "fused, scaled weights"
    picked = scaled if dtype == torch.bfloat16 else alpha
    print(f"  forward + backward, alpha / scaled weights: {both[alpha] / both[scaled]:.3f}")
    print(f"  forward + backward, clip's own / fused as the model picks: {both[CLIP_OWN] / both[picked]:.3f}")


if __name__ == "__main__":
    main()
