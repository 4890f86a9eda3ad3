"""Shared fixtures: tiny CLIP checkpoints built and saved at test time (nothing is downloaded)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import runpy
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Under pytest-xdist (`make test` runs the suite on every core) the workers share the cores: each one's torch
# takes its share of them, where two workers of two threads each on two cores slowed both.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

def pytest_collection_modifyitems(config, items):
    # pytest-xdist hands tests out in collection order, and the longest (training subprocesses, up to two minutes) sat
    # at the end of the alphabet, where one of them could be left running on one worker after the other had finished.
    # Tests marked `runs_long` go first (a stable sort keeps every other test's order).
    items.sort(key=lambda item: item.get_closest_marker("runs_long") is None)


REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
TOKENIZER_DIR = REPO_ROOT / "omniclip_hf" / "tokenizer"


def tiny_clip_config(image_size: int = 32, patch_size: int = 8, vision_layers: int = 3, vision_width: int = 64):
    """A CLIP config small enough for CPU tests, with the real tokenizer's vocabulary size."""
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
        ),
        vision_config=dict(
            hidden_size=vision_width,
            intermediate_size=2 * vision_width,
            num_hidden_layers=vision_layers,
            num_attention_heads=4,
            image_size=image_size,
            patch_size=patch_size,
        ),
        projection_dim=32,
    )


def build_tiny_clip(seed: int = 0, **config_kwargs):
    from transformers import CLIPModel

    torch.manual_seed(seed)
    return CLIPModel(tiny_clip_config(**config_kwargs)).eval()


@pytest.fixture(scope="session")
def tiny_clip():
    return build_tiny_clip()


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory, tiny_clip):
    """A tiny CLIP saved as an ordinary checkpoint folder, with CLIP's real tokenizer beside the weights."""
    from transformers import CLIPTokenizer

    folder = tmp_path_factory.mktemp("tiny-clip")
    tiny_clip.save_pretrained(folder)
    CLIPTokenizer.from_pretrained(TOKENIZER_DIR).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def clip_tokenizer():
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(TOKENIZER_DIR)


@pytest.fixture(scope="session")
def tiny_omniclip_dir(tmp_path_factory, tiny_clip):
    """
    A tiny OmniCLIP (4 frames, 32 px) saved with its processor (CLIP's real tokenizer and an OmniCLIPVideoProcessor),
    as `pipeline("zero-shot-video-classification", model=folder)` and the `omniclip` command load it.

    The new modules start as the identity on CLIP's features; their weights are nudged off zero here so OmniCLIP's
    outputs (and attention) differ from plain CLIP's, as after training.
    """
    from transformers import CLIPTokenizer

    from omniclip_hf import OmniCLIPModel, OmniCLIPProcessor, OmniCLIPVideoProcessor

    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.trainable_parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    folder = tmp_path_factory.mktemp("tiny-omniclip")
    model.save_pretrained(folder)
    video_processor = OmniCLIPVideoProcessor(
        num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    tokenizer = CLIPTokenizer.from_pretrained(TOKENIZER_DIR)
    OmniCLIPProcessor(video_processor, tokenizer, text_template=model.config.text_template).save_pretrained(folder)
    return folder


def frame_order_clips(num_frames: int, clips_per_class: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: clips that brighten over time; class 1: the same frames reversed (darkening). Each pair has the
    same frames, so the same frame average: only the order tells the classes apart. 32 px, CLIP-normalised scale."""
    generator = torch.Generator().manual_seed(0)
    content = 0.5 * torch.randn(clips_per_class, 1, 3, 32, 32, generator=generator)
    brightening = content + torch.linspace(-1, 1, num_frames).view(1, num_frames, 1, 1, 1)
    pixel_values = torch.cat([brightening, brightening.flip(1)])
    labels = torch.cat([torch.zeros(clips_per_class, dtype=torch.long), torch.ones(clips_per_class, dtype=torch.long)])
    return pixel_values, labels


def run_script_in_process(script: Path, arguments: list[str]) -> tuple[int, str, str]:
    """Runs `python <script> <arguments>` in this process from the repository root (exit status, stdout, stderr):
    for answers given before any work (`--help`, a refused argument), where a subprocess would spend seconds importing
    torch for each case. The script sees its own `sys.argv` and its folder first on `sys.path`, as when run; those,
    the working directory and torch's thread count (a script may set it) are restored after."""
    saved = sys.argv, list(sys.path), os.getcwd(), torch.get_num_threads()
    sys.argv, sys.path[:0] = [str(script), *arguments], [str(script.parent)]
    os.chdir(REPO_ROOT)
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            runpy.run_path(str(script), run_name="__main__")
        status = 0
    except SystemExit as stopped:
        status = stopped.code if isinstance(stopped.code, int) else 0 if stopped.code is None else 1
    finally:
        sys.argv, sys.path[:] = saved[0], saved[1]
        os.chdir(saved[2])
        torch.set_num_threads(saved[3])
    return status, stdout.getvalue(), stderr.getvalue()


def load_benchmark(name: str):
    """`benchmarks/<name>.py` as a module, loaded as running the script loads it: with `benchmarks/` on `sys.path`,
    where the scripts find their shared helpers (`_arguments`)."""
    folder = REPO_ROOT / "benchmarks"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
