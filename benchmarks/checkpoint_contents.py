"""What training checkpoints hold: files, sizes, and whether any frozen CLIP weight slipped in. Not a test.

    python benchmarks/checkpoint_contents.py CLIP_FOLDER runs/x/checkpoints/step_*

One line per checkpoint. Accelerate writes the weights as `model.safetensors` (one process, DDP),
`pytorch_model_fsdp.bin` (FSDP, FULL_STATE_DICT), a `pytorch_model_fsdp_0/` folder of torch.distributed.checkpoint
shards (FSDP, SHARDED_STATE_DICT) or DeepSpeed's `pytorch_model/mp_rank_00_model_states.pt` (its `module` and
`frozen_param_fragments` entries);
each must hold only the trainable OmniCLIP weights (no `clip.` key). Exits 1 when
a checkpoint holds a CLIP weight, 2 on a bad argument (a folder with no weights in it included).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MIB = 2**20


DEEPSPEED_MODEL_FILE = "mp_rank_00_model_states.pt"  # DeepSpeed's save_checkpoint, in accelerate's pytorch_model/
WEIGHT_FILES = ("model.safetensors", "pytorch_model_fsdp.bin", DEEPSPEED_MODEL_FILE)
SHARDED_WEIGHTS_PREFIX = "pytorch_model_fsdp_"  # accelerate's folder for FSDP's SHARDED_STATE_DICT


def sharded_weight_names_and_bytes(folder: Path) -> tuple[list[str], int]:
    """Names and sizes from a torch.distributed.checkpoint folder's metadata alone (no shard is read).

    Accelerate saves the sharded model as {"model": state_dict}, so each name starts with "model.".
    """
    import torch
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    entries = FileSystemReader(str(folder)).read_metadata().state_dict_metadata
    names = [name.removeprefix("model.") for name in entries]
    size = sum(entry.size.numel() * torch.empty((), dtype=entry.properties.dtype).element_size()
               for entry in entries.values() if isinstance(entry, TensorStorageMetadata))
    return names, size


def weight_names_and_bytes(path: Path) -> tuple[list[str], int]:
    import torch
    from safetensors.torch import load_file

    if path.is_dir():
        return sharded_weight_names_and_bytes(path)
    if path.suffix == ".safetensors":
        state = load_file(path)
    elif path.name == DEEPSPEED_MODEL_FILE:
        # DeepSpeed pickles its config and bookkeeping beside the weights: not loadable with weights_only, and this
        # reads a checkpoint the user's own run wrote. Under ZeRO-2 the frozen weights travel apart from `module`,
        # in `frozen_param_fragments`, unless the checkpoint was saved without them.
        saved = torch.load(path, map_location="cpu", weights_only=False)
        state = {**saved["module"], **(saved.get("frozen_param_fragments") or {})}
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    return list(state), sum(t.numel() * t.element_size() for t in state.values() if isinstance(t, torch.Tensor))


def clip_megabytes(clip_folder: Path) -> float:
    return sum(path.stat().st_size for path in clip_folder.glob("*.safetensors")) / MIB


def describe(checkpoint: Path, clip_mib: float) -> tuple[str, bool]:
    files = [path for path in checkpoint.rglob("*") if path.is_file()]
    total = sum(path.stat().st_size for path in files) / MIB
    weights = [path for path in files if path.name in WEIGHT_FILES]
    weights += [path for path in checkpoint.iterdir() if path.is_dir() and path.name.startswith(SHARDED_WEIGHTS_PREFIX)]
    if not weights:  # reading as "ok" (no CLIP weight in it) would pass a checkpoint that holds nothing
        raise ValueError(f"{checkpoint}: holds no weights ({', '.join(WEIGHT_FILES)} or {SHARDED_WEIGHTS_PREFIX}0/); "
                         "give the checkpoint folders examples/train.py wrote")
    parts = [f"{checkpoint.name}: {len(files)} files, {total:.1f} MiB (the CLIP alone: {clip_mib:.1f} MiB)"]
    clean = True
    for path in weights:
        try:
            names, size = weight_names_and_bytes(path)
        except Exception as error:  # safetensors' or torch.load's error for a truncated or foreign file
            raise ValueError(f"{path}: not a readable weights file ({type(error).__name__}); give the checkpoint "
                             "folders examples/train.py wrote") from error
        clip_names = [name for name in names if name.startswith("clip.")]
        clean = clean and not clip_names
        parts.append(f"{path.name}: {len(names)} tensors, {size / MIB:.1f} MiB, {len(clip_names)} clip.* keys")
    return "; ".join(parts), clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", type=Path, help="the CLIP folder the run wrapped (for its size)")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="checkpoint folders (checkpoints/step_*)")
    args = parser.parse_args()
    missing = [str(path) for path in [args.clip, *args.checkpoints] if not path.is_dir()]
    if missing:
        print(f"error: no such folder: {', '.join(missing)}", file=sys.stderr)
        sys.exit(2)
    clip_mib = clip_megabytes(args.clip)
    if not clip_mib:  # not the CLIP the run wrapped: its size would read 0.0 MiB
        parser.error(f"{args.clip}: holds no *.safetensors weights; give the CLIP folder the run wrapped (train.py's --clip)")
    all_clean = True
    for checkpoint in args.checkpoints:
        try:
            line, clean = describe(checkpoint, clip_mib)
        except ValueError as error:
            parser.error(str(error))
        all_clean = all_clean and clean
        print(("ok   " if clean else "FAIL ") + line)
    sys.exit(0 if all_clean else 1)


if __name__ == "__main__":
    main()
