"""Short offline example of the model (`make demo` until the full offline experiment lands).

What it does, in about a minute on 2 CPU cores, with nothing downloaded:
1. builds a *tiny CLIP with random weights* (a stand-in: no pretrained CLIP can be downloaded here) and saves it
   as an ordinary CLIP checkpoint folder with CLIP's real tokenizer;
2. wraps it with `OmniCLIPModel.from_clip(folder)` exactly as a user would wrap `openai/clip-vit-base-patch16`;
3. trains on a task that only frame order solves: clips that brighten over time versus the same frames reversed
   (the frame average of a pair is identical), for OmniCLIP and for frame-averaged CLIP;
4. prints the training loss and accuracy of both.

Online, the same code runs on a real checkpoint: `--clip openai/clip-vit-base-patch16`.
"""

from __future__ import annotations

import argparse
import math
import tempfile

import torch
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from omniclip_hf import OmniCLIPModel, default_tokenizer_path


def build_tiny_clip(folder: str) -> str:
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                           image_size=32, patch_size=8),
        projection_dim=32,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPTokenizer.from_pretrained(default_tokenizer_path()).save_pretrained(folder)
    return folder


def frame_order_task(num_pairs: int, frames: int, size: int, seed: int):
    """Brightening clips (label 0) and the same frames reversed (label 1): equal frame averages per pair."""
    generator = torch.Generator().manual_seed(seed)
    content = 0.5 * torch.randn(num_pairs, 1, 3, size, size, generator=generator)
    brightening = content + torch.linspace(-1, 1, frames).view(1, frames, 1, 1, 1)
    videos = torch.cat([brightening, brightening.flip(1)])
    labels = torch.cat([torch.zeros(num_pairs, dtype=torch.long), torch.ones(num_pairs, dtype=torch.long)])
    return videos, labels


def train_and_score(clip: str, text, videos, labels, steps: int, **overrides) -> tuple[int, float, float]:
    torch.manual_seed(0)
    model = OmniCLIPModel.from_clip(clip, num_frames=videos.shape[1], **overrides).train()
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=3e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        model(**text, pixel_values_videos=videos, labels=labels).loss.backward()
        optimizer.step()
    with torch.no_grad():
        output = model.eval()(**text, pixel_values_videos=videos, labels=labels)
    accuracy = (output.logits_per_video.argmax(-1) == labels).float().mean().item()
    return model.num_trainable_parameters(), output.loss.item(), accuracy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default=None, help="CLIP checkpoint (Hub id or folder); default: a tiny random one")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--pairs", type=int, default=12)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        clip = args.clip or build_tiny_clip(folder)
        tokenizer = CLIPTokenizer.from_pretrained(clip)
        size = CLIPConfig.from_pretrained(clip).vision_config.image_size
        videos, labels = frame_order_task(args.pairs, frames=4, size=size, seed=0)
        names = ["brightening", "darkening"]
        text = tokenizer([f"a video of {name} action" for name in names], padding=True, return_tensors="pt")
        print(f"CLIP: {clip if args.clip else 'tiny CLIP with random weights (offline stand-in)'}")
        print(f"task: {len(labels)} clips, {videos.shape[1]} frames; classes {names}; pairs share their frame average")
        rows = [
            ("omniclip", train_and_score(clip, text, videos, labels, args.steps, use_spg=False)),
            ("frame_average", train_and_score(clip, text, videos, labels, args.steps, use_pta=False, use_spg=False,
                                              use_temporal_embedding=False, video_head_num_layers=0)),
        ]
    print(f"\n| model | trainable params | training loss after {args.steps} steps | training accuracy |")
    print("|---|---|---|---|")
    for name, (trainable, loss, accuracy) in rows:
        print(f"| {name} | {trainable:,} | {loss:.4f} | {accuracy:.1%} |")
    print(f"\nchance loss within a reversed pair: ln 2 = {math.log(2):.4f}")


if __name__ == "__main__":
    main()
