"""Sizes on disk of a full OmniCLIP checkpoint and an adapter-only one, ViT-B/16 shapes (random weights).

    python benchmarks/bench_checkpoint_size.py
"""

import argparse
import tempfile
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel

from omniclip_hf import OmniCLIPModel


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


def main() -> None:
    # No options: parsing still refuses any argument given (it would be ignored) and answers --help.
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    torch.manual_seed(0)
    clip = CLIPModel(CLIPConfig(
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=224, patch_size=16),
        text_config=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8),
        projection_dim=512))
    model = OmniCLIPModel.from_clip(clip, base_clip_name_or_path="openai/clip-vit-base-patch16")
    with tempfile.TemporaryDirectory() as root:
        full, adapter = Path(root) / "full", Path(root) / "adapter"
        model.save_pretrained(full)
        model.save_adapter(adapter)
        print("| checkpoint (ViT-B/16 shapes, float32) | size on disk |")
        print("|---|---|")
        print(f"| full (`save_pretrained`) | {folder_size(full) / 2**20:.1f} MiB |")
        print(f"| adapter-only (`save_adapter`, `--adapter_only`) | {folder_size(adapter) / 2**20:.1f} MiB |")


if __name__ == "__main__":
    main()
