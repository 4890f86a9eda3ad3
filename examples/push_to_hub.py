"""Publish a trained OmniCLIP folder to the Hugging Face Hub (model, processor, code, model card).

    python examples/push_to_hub.py --run_dir runs/hmdb51 --hub_model_id your-name/omniclip-b16-hmdb51
    python examples/push_to_hub.py --run_dir runs/hmdb51 --hub_model_id your-name/x --dry_run   # writes runs/hmdb51/hub_upload

`--run_dir` is a training output folder (its `model/`, `metrics.json` and `training_options.json` are used; the
two JSON files must come from the same run); a bare model folder works too with `--model_dir` (a card without
metrics or recipe). Which options named local files or folders is read from `training_options.json`, so the card is
the same from any folder. The card is written into the upload (or the `--dry_run_dir` copy, which must lie outside
the model folder), never into the model folder: a README.md there stays as it is.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

from omniclip_hf.training.publishing import publish_model, read_run_record
from omniclip_hf.training.loop import run_script


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run_dir", help="an examples/train.py output folder")
    source.add_argument("--model_dir", help="a saved OmniCLIP folder")
    parser.add_argument("--hub_model_id", required=True)
    parser.add_argument("--dry_run", action="store_true", help="copy what would be uploaded to --dry_run_dir")
    parser.add_argument("--dry_run_dir", default=None)
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args(argv)

    run_dir = Path(args.run_dir) if args.run_dir else None
    model_dir = run_dir / "model" if run_dir else Path(args.model_dir)
    # The card's recipe is the one metrics.json recorded, refused when training_options.json is another run's.
    metrics, options = read_run_record(run_dir) if run_dir else ({}, {})
    options["hub_model_id"] = args.hub_model_id
    target = publish_model(model_dir, SimpleNamespace(**options), metrics, dry_run=args.dry_run,
                           dry_run_dir=args.dry_run_dir or model_dir.parent / "hub_upload", private=args.private)
    print(f"{'wrote' if args.dry_run else 'uploaded'} {model_dir} -> {target}")


if __name__ == "__main__":
    run_script(main)
