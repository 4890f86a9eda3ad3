"""Turn HMDB51, UCF101, Kinetics-400 and Something-Something v2 as downloaded into the recipes' annotation files.

    python examples/prepare_data.py hmdb51 --splits downloads/testTrainMulti_7030_splits --out data/hmdb51
    python examples/prepare_data.py ucf101 --splits downloads/ucfTrainTestlist --out data/ucf101
    python examples/prepare_data.py kinetics400 --annotations downloads/k400/annotations --out data/kinetics400 \\
        --allow_missing
    python examples/prepare_data.py ssv2 --annotations downloads/ssv2/labels --out data/ssv2

The videos are expected in `OUT/videos` (`--videos` says otherwise); written files hold paths relative to it, the
recipes' `data_root`, and class indices in the order of `labels/<dataset>.txt`. `docs/data.md` has the downloads
and the extraction commands. A listed video that is not on disk is an error (a broken extraction), unless
`--allow_missing`, which leaves it out and says how many (Kinetics clips disappear from YouTube).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable

REPO = Path(__file__).resolve().parents[1]
LABELS_DIR = REPO / "labels"
DATASETS = ("hmdb51", "ucf101", "kinetics400", "ssv2")


class PrepareError(Exception):
    """A problem with the downloaded files, reported as one line."""


# ----------------------------------------------------------------------------------------------------------------
# Class names
# ----------------------------------------------------------------------------------------------------------------
def class_key(name: str) -> str:
    # SSv2 annotations write templates as "Putting [something] onto [something]"; its label list without brackets.
    return " ".join(name.replace("[", "").replace("]", "").split()).casefold()


def class_indices(dataset: str) -> dict[str, int]:
    names = [line.strip() for line in (LABELS_DIR / f"{dataset}.txt").read_text().splitlines() if line.strip()]
    return {class_key(name): index for index, name in enumerate(names)}


def index_of(name: str, indices: dict[str, int], where: str) -> int:
    key = class_key(name)
    if key not in indices:
        raise PrepareError(f"{where}: class {name!r} is not in labels/ (is this the right dataset?).")
    return indices[key]


# ----------------------------------------------------------------------------------------------------------------
# The four datasets: each returns {output file name: [(video path relative to the videos folder, class index)]}
# ----------------------------------------------------------------------------------------------------------------
def hmdb51_rows(args) -> dict[str, list[tuple[str, int]]]:
    """`<class>_test_split<k>.txt` files: `<video>.avi 1` trains, `2` tests, `0` is unused in that split."""
    indices = class_indices("hmdb51")
    outputs: dict[str, list[tuple[str, int]]] = {}
    files = sorted(Path(args.splits).glob("*_test_split[123].txt"))
    if not files:
        raise PrepareError(f"{args.splits}: no <class>_test_split<1|2|3>.txt files (extract test_train_splits.rar).")
    for split_file in files:
        class_name, split = split_file.stem.rsplit("_test_split", 1)
        label = index_of(class_name, indices, str(split_file))
        for line in split_file.read_text().splitlines():
            fields = line.split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                continue
            subset = {"1": "train", "2": "val"}.get(fields[1])
            if subset:
                rows = outputs.setdefault(f"hmdb51_{subset}_split_{split}_videos.txt", [])
                rows.append((f"{class_name}/{fields[0]}", label))
    return outputs


def ucf101_rows(args) -> dict[str, list[tuple[str, int]]]:
    """`trainlist0k.txt` (`Class/v_....avi 1-based index`) and `testlist0k.txt` (`Class/v_....avi`)."""
    indices = class_indices("ucf101")
    outputs: dict[str, list[tuple[str, int]]] = {}
    for split in (1, 2, 3):
        for subset, list_name in (("train", f"trainlist0{split}.txt"), ("val", f"testlist0{split}.txt")):
            list_file = Path(args.splits) / list_name
            if not list_file.is_file():
                raise PrepareError(f"{list_file} does not exist (extract UCF101TrainTestSplits-RecognitionTask.zip).")
            rows = []
            for line in list_file.read_text().splitlines():
                if line.strip():
                    video = line.split()[0]
                    rows.append((video, index_of(video.split("/")[0], indices, str(list_file))))
            outputs[f"ucf101_{subset}_split_{split}_videos.txt"] = rows
    return outputs


def kinetics400_rows(args) -> dict[str, list[tuple[str, int]]]:
    """`train.csv` / `val.csv` (`validate.csv` in older copies): `label,youtube_id,time_start,time_end,split,...`."""
    indices = class_indices("kinetics400")
    outputs = {}
    for subset, candidates in (("train", ["train.csv"]), ("val", ["val.csv", "validate.csv"])):
        found = [Path(args.annotations) / name for name in candidates if (Path(args.annotations) / name).is_file()]
        if not found:
            raise PrepareError(f"{args.annotations}: no {' or '.join(candidates)} (the Kinetics-400 annotations).")
        with found[0].open(newline="") as handle:
            rows = []
            for number, record in enumerate(csv.DictReader(handle), start=2):
                start, end = (int(float(record[key])) for key in ("time_start", "time_end"))
                clip = f"{record['youtube_id']}_{start:06d}_{end:06d}"
                rows.append((f"{subset}/{clip}.mp4", index_of(record["label"], indices, f"{found[0]}:{number}")))
        outputs[f"kinetics400_{subset}_list_videos.txt"] = rows
    return outputs


def ssv2_rows(args) -> dict[str, list[tuple[str, int]]]:
    """`train.json` / `validation.json`: a list of `{"id", "label", "template", "placeholders"}`; videos `<id>.webm`."""
    indices = class_indices("ssv2")
    outputs = {}
    for subset in ("train", "validation"):
        path = Path(args.annotations) / f"{subset}.json"
        if not path.is_file():
            raise PrepareError(f"{path} does not exist (extract the SSv2 labels archive).")
        records = json.loads(path.read_text())
        outputs[f"{subset}.jsonl"] = [
            (f"{record['id']}.webm", index_of(record["template"], indices, f"{path} id {record['id']}"))
            for record in records
        ]
    return outputs


READERS: dict[str, Callable] = {
    "hmdb51": hmdb51_rows,
    "ucf101": ucf101_rows,
    "kinetics400": kinetics400_rows,
    "ssv2": ssv2_rows,
}


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------
def format_rows(file_name: str, rows: Iterable[tuple[str, int]]) -> str:
    if file_name.endswith(".jsonl"):
        return "".join(json.dumps({"path": path, "label": label}) + "\n" for path, label in rows)
    return "".join(f"{path} {label}\n" for path, label in rows)


def write_atomically(path: Path, text: str) -> None:
    """Writes a temporary file beside `path` and renames it: an interrupted run leaves no half-written list."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def keep_present(outputs: dict[str, list[tuple[str, int]]], videos: Path, allow_missing: bool) -> dict:
    """Drops rows whose video is not on disk when allowed (and says how many); otherwise refuses."""
    if not videos.is_dir():
        raise PrepareError(f"videos folder {videos} does not exist: extract the videos there, or pass --videos.")
    kept = {}
    for file_name, rows in outputs.items():
        present = [(path, label) for path, label in rows if (videos / path).is_file()]
        missing = len(rows) - len(present)
        if missing and not allow_missing:
            first = next(path for path, _ in rows if not (videos / path).is_file())
            raise PrepareError(
                f"{missing} of the {len(rows)} videos of {file_name} are not in {videos} (first: {first}); check the "
                "extraction, or pass --allow_missing to leave them out."
            )
        if not present:
            raise PrepareError(f"none of the {len(rows)} videos of {file_name} is in {videos}: is --videos right?")
        if missing:
            print(f"{file_name}: left out {missing} of {len(rows)} videos not found in {videos}")
        kept[file_name] = present
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--out", required=True, help="where the annotation files go, e.g. data/hmdb51")
    parser.add_argument("--videos", help="folder of the extracted videos (default: OUT/videos)")
    parser.add_argument("--splits", help="HMDB51/UCF101: the folder of the official split files")
    parser.add_argument("--annotations", help="Kinetics-400/SSv2: the folder of the official annotation files")
    parser.add_argument("--allow_missing", action="store_true", help="leave out listed videos that are not on disk")
    args = parser.parse_args(argv)
    needed = "splits" if args.dataset in ("hmdb51", "ucf101") else "annotations"
    if getattr(args, needed) is None:
        parser.error(f"{args.dataset} needs --{needed}")
    try:
        out = Path(args.out)
        videos = Path(args.videos) if args.videos else out / "videos"
        outputs = keep_present(READERS[args.dataset](args), videos, args.allow_missing)
        out.mkdir(parents=True, exist_ok=True)
        for file_name, rows in outputs.items():
            write_atomically(out / file_name, format_rows(file_name, rows))
            print(f"wrote {out / file_name} ({len(rows)} videos)")
    except (PrepareError, OSError, ValueError, KeyError) as error:
        message = f"missing column or key {error}" if isinstance(error, KeyError) else str(error)
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
