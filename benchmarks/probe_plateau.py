"""Where a training run sits while its loss is on the ln(C) plateau. Prints a table per checkpoint; not a test.

    python benchmarks/probe_plateau.py demo_output/runs/layers_0-1/seed0
    python benchmarks/probe_plateau.py demo_output/runs/full/seed0 --data demo_output/motion_data --clips 64

A loss of ln(C) is the loss of a uniform guess: every class scores the same for every clip. For each epoch
checkpoint that `examples/train.py` saved in `<run>/checkpoints` (and the final model), on training clips seen
without augmentation, the table gives the loss, top-1, the spread of the logits over classes, how alike the class
texts are once the video-specific prompts are added (mean cosine between two classes' text embeddings, per clip),
and how much of the video embedding is the same for every clip (the squared norm of the mean unit embedding);
then what the new modules add to each side, relative to CLIP's own embedding: the video head's output minus the
frame mean (and how much of that offset every clip shares), and the video-specific prompts' addition to the class
text embeddings.
A value near 1 in the cosine and "shared" columns says that side of the similarity no longer depends on the class, or on the
video. The untrained model (from the run's base CLIP) is the first row.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from _arguments import at_least

from omniclip_hf.training.evaluation import class_text_embeddings
from omniclip_hf.modeling_omniclip import OmniCLIPModel
from omniclip_hf.motion_benchmark.runner import load_split
from omniclip_hf.processing_omniclip import OmniCLIPProcessor


def mean_pairwise_cosine(embeds: torch.Tensor) -> float:
    """Mean cosine between different rows of `(..., C, D)` embeddings."""
    unit = torch.nn.functional.normalize(embeds, dim=-1)
    similarity = unit @ unit.transpose(-1, -2)
    off_diagonal = ~torch.eye(similarity.shape[-1], dtype=torch.bool)
    return similarity[..., off_diagonal].mean().item()


def shared_fraction(embeds: torch.Tensor) -> float:
    """Squared norm of the mean unit embedding over clips: 1 when every clip has the same direction."""
    return torch.nn.functional.normalize(embeds, dim=-1).mean(dim=0).norm().pow(2).item()


def spg_prompts_moved(model: OmniCLIPModel, record: dict):
    """Hooks the self-prompt generator: records how far its prompts lie from the pooled tokens they start as
    (norm of the difference over the pooled tokens' norm); None without an SPG."""
    spg = model.self_prompt_generator
    if spg is None:
        return None

    def hook(module, inputs, prompts):
        patch_tokens, grid = inputs
        grid_tokens = patch_tokens.unflatten(1, grid).permute(0, 3, 1, 2)
        pooled = module.pool(grid_tokens, kernel_size=2, stride=2, ceil_mode=True).flatten(2).transpose(1, 2)
        record["spg_moved"] = ((prompts - pooled).norm(dim=-1).mean() / pooled.norm(dim=-1).mean()).item()

    return spg.register_forward_hook(hook)


@torch.no_grad()
def probe(model: OmniCLIPModel, text_embeds: torch.Tensor, videos: torch.Tensor, labels: torch.Tensor) -> dict:
    record = {"spg_moved": float("nan")}
    handle = spg_prompts_moved(model, record)
    output = model(pixel_values_videos=videos, text_embeds=text_embeds, labels=labels)
    if handle is not None:
        handle.remove()
    logits = output.logits_per_video
    # What each side's new modules add, against what CLIP gives: the video head's output minus the frame mean,
    # and the video-specific prompts (prompted minus plain class embedding), as norms relative to CLIP's.
    frame_mean = output.vision_model_output.frame_embeds.mean(dim=1)
    head_offset = output.video_embeds - frame_mean
    row = {
        "loss": output.loss.item(),
        "top1": (logits.argmax(dim=1) == labels).float().mean().item(),
        "logit_std": logits.std(dim=1).mean().item(),
        "class_text_cosine": mean_pairwise_cosine(output.text_embeds),
        "video_shared": shared_fraction(output.video_embeds),
        "head_offset": (head_offset.norm(dim=-1).mean() / frame_mean.norm(dim=-1).mean()).item(),
        "head_offset_shared": shared_fraction(head_offset),
        "frame_mean_shared": shared_fraction(frame_mean),
        "prompt_delta": float("nan"),
        **record,
    }
    if output.text_embeds.dim() == 3:  # video-specific prompts on
        delta = output.text_embeds - text_embeds
        row["prompt_delta"] = (delta.norm(dim=-1).mean() / text_embeds.norm(dim=-1).mean()).item()
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="an output folder of examples/train.py with checkpoints/ and model/")
    parser.add_argument("--data", type=Path, default=Path("demo_output/motion_data"), help="the run's data folder")
    parser.add_argument("--clips", type=int, default=96, help="training clips to probe, spread over the split")
    args = parser.parse_args(argv)
    at_least(parser, 1, {"--clips": args.clips})  # 0 would divide by zero when spreading the clips
    if not (args.run / "model" / "config.json").exists():
        parser.error(f"{args.run} has no trained model/ folder: give an output folder of examples/train.py")
    if not (args.data / "labels.txt").exists():
        parser.error(f"--data {args.data}: no labels.txt there; give the run's data folder (examples/demo.py's "
                     "<output_dir>/motion_data)")

    data = load_split(args.data, "train")
    rows = data.dataset.select(range(0, len(data), max(1, len(data) // args.clips))[: args.clips])
    processor = OmniCLIPProcessor.from_pretrained(args.run / "model")
    videos = processor.video_processor(list(rows["video"]), return_tensors="pt")["pixel_values_videos"]
    labels = torch.tensor(rows["label"])
    model = OmniCLIPModel.from_pretrained(args.run / "model").eval()
    torch.manual_seed(0)  # the prompt generator's random start; every other new module starts at zero
    untrained = OmniCLIPModel(model.config)
    untrained.clip.load_state_dict(model.clip.state_dict())

    print(f"{args.run}: {len(labels)} training clips, ln C = {torch.tensor(float(len(data.class_names))).log():.3f}")
    print("| checkpoint | loss | top-1 | logit std over classes | cosine between class texts | video shared by clips | "
          "head offset / frame mean (shared) | prompts / class text | frame mean shared by clips | "
          "SPG prompts moved / pooled tokens |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    checkpoints = [("untrained", None)] + [(path.name, path / "model.safetensors")
                                           for path in sorted((args.run / "checkpoints").glob("step_*"))]
    # The text encoder is frozen CLIP: the class embeddings are the same for every checkpoint.
    text_embeds = class_text_embeddings(model, processor.tokenizer, data.class_names)
    for name, weights in checkpoints:
        if weights is not None:
            _, unexpected = model.load_state_dict(load_file(str(weights)), strict=False)
            if unexpected:
                raise SystemExit(f"{weights} does not match the model: unexpected {unexpected[:3]}")
        row = probe(untrained.eval() if weights is None else model, text_embeds, videos, labels)
        print(f"| {name} | {row['loss']:.3f} | {100 * row['top1']:.1f}% | {row['logit_std']:.3f} | "
              f"{row['class_text_cosine']:.3f} | {row['video_shared']:.3f} | {row['head_offset']:.2f} "
              f"({row['head_offset_shared']:.3f}) | {row['prompt_delta']:.2f} | {row['frame_mean_shared']:.3f} | "
              f"{row['spg_moved']:.2f} |", flush=True)

if __name__ == "__main__":
    main()
