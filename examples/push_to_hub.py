"""Publish a trained OmniCLIP folder to the Hugging Face Hub (model, processor, code, model card).

    python examples/push_to_hub.py --run_dir runs/hmdb51 --hub_model_id your-name/omniclip-b16-hmdb51
    python examples/push_to_hub.py --run_dir runs/hmdb51 --hub_model_id your-name/x --dry_run   # writes runs/hmdb51/hub_upload

`--run_dir` is a training output folder (its `model/`, `metrics.json` and `training_options.json` are used; the
two JSON files must come from the same run); a bare model folder works too with `--model_dir` (a card without
metrics or recipe). Which options named local files or folders is read from `training_options.json`, so the card is
the same from any folder. The card is written into the upload (or the `--dry_run_dir` copy, which must lie outside
the model folder), never into the model folder: a README.md there stays as it is. The card's license is
`--license` (a Hub license identifier), else `other`: the upload holds the base CLIP's weights, whose license this
script cannot know.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

from omniclip_hf.training.publishing import check_license, publish_model, read_run_record
from omniclip_hf.training.loop import run_script


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run_dir", help="an examples/train.py output folder")
    source.add_argument("--model_dir", help="a saved OmniCLIP folder")
    parser.add_argument("--hub_model_id", required=True)
    parser.add_argument("--dry_run", action="store_true", help="copy what would be uploaded to --dry_run_dir")
    parser.add_argument("--dry_run_dir", default=None,
                        help="where --dry_run writes (default: hub_upload beside the model folder); needs --dry_run")
    parser.add_argument("--private", action="store_true", help="make a new Hub repository private (not with --dry_run)")
    parser.add_argument("--license", default=None,
                        help="the card's license, a Hub license identifier (e.g. apache-2.0, mit); default: other, "
                             "since the base CLIP's weights keep their own license")
    args = parser.parse_args(argv)
    check_flags_agree(args)

    run_dir = Path(args.run_dir) if args.run_dir else None
    model_dir = run_dir / "model" if run_dir else Path(args.model_dir)
    # The card's recipe is the one metrics.json recorded, refused when training_options.json is another run's.
    metrics, options = read_run_record(run_dir) if run_dir else ({}, {})
    options["hub_model_id"] = args.hub_model_id
    if args.license is not None:
        options["license"] = args.license
    target = publish_model(model_dir, SimpleNamespace(**options), metrics, dry_run=args.dry_run,
                           dry_run_dir=args.dry_run_dir or model_dir.parent / "hub_upload", private=args.private)
    print(f"{'wrote' if args.dry_run else 'uploaded'} {model_dir} -> {target}")


def check_flags_agree(args: argparse.Namespace) -> None:
    """Refuses a flag of one mode given to the other: without --dry_run, --dry_run_dir was ignored and the model
    uploaded (public by default) by a user who asked for a local copy; with it, --private was ignored."""
    if args.dry_run_dir is not None and not args.dry_run:
        raise ValueError(f"--dry_run_dir {args.dry_run_dir} is where a dry run writes, and --dry_run is not given: add "
                         "--dry_run to write the upload there, or leave --dry_run_dir out to upload to the Hub.")
    if args.private and args.dry_run:
        raise ValueError("--private makes an uploaded repository private, and --dry_run uploads nothing: leave "
                         "--private out of the dry run, and give it to the upload.")
    if args.license is not None:
        check_license(args.license)


if __name__ == "__main__":
    run_script(main)
