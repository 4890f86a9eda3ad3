"""Turn HMDB51, UCF101, Kinetics-400 and Something-Something v2 as downloaded into the recipes' annotation files.

    python examples/prepare_data.py hmdb51 --splits downloads/testTrainMulti_7030_splits --out data/hmdb51
    python examples/prepare_data.py ucf101 --splits downloads/ucfTrainTestlist --out data/ucf101
    python examples/prepare_data.py kinetics400 --annotations downloads/k400/annotations --out data/kinetics400 \\
        --allow_missing
    python examples/prepare_data.py ssv2 --annotations downloads/ssv2/labels --out data/ssv2

The videos are expected in `OUT/videos` (`--videos` says otherwise); written files hold paths relative to it, the
recipes' `data_root`, and class indices in the order of `labels/<dataset>.txt`. `docs/data.md` has the downloads
and the extraction commands. A listed video that is not on disk is an error (a broken extraction), unless
`--allow_missing`, which leaves it out and says how many (Kinetics clips disappear from YouTube). An incomplete or
malformed download (a missing HMDB51 split file, a UCF101 list lacking a class, a line or record that cannot be read,
a clip in both the training and the test list of a split) is an error naming the file and line: a split that silently
lacks classes would change the benchmark. So is a class whose videos `--allow_missing` would all leave out. A clip
listed twice with its label is written once. The files of a run are written as one set: all of them, or none.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import math
import re
import sys
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


def class_names_of(dataset: str) -> list[str]:
    return [line.strip() for line in (LABELS_DIR / f"{dataset}.txt").read_text().splitlines() if line.strip()]


def class_indices(dataset: str) -> dict[str, int]:
    return {class_key(name): index for index, name in enumerate(class_names_of(dataset))}


def shown(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def index_of(name: str, indices: dict[str, int], where: str) -> int:
    if not isinstance(name, str):
        raise PrepareError(f"{where}: class {name!r} is not a class name (a string).")
    key = class_key(name)
    if key not in indices:
        raise PrepareError(f"{where}: class {name!r} is not in labels/ (is this the right dataset?).")
    return indices[key]


# ----------------------------------------------------------------------------------------------------------------
# Reading the downloads: every problem names the file (and line or record)
# ----------------------------------------------------------------------------------------------------------------
def read_text(path: Path) -> str:
    # utf-8-sig: a CSV saved by a spreadsheet starts with a BOM, which would otherwise hide its first column's name.
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PrepareError(f"{path}: not UTF-8 text (byte {error.start}); is this the right file?") from None


def read_json_records(path: Path, keys: tuple[str, ...]) -> list[dict]:
    """The JSON list of objects in `path`, each holding `keys`."""
    try:
        records = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise PrepareError(f"{path}: not valid JSON ({error}); extract the file again.") from None
    expected = f"expected a list of {{{', '.join(repr(key) for key in keys)}}} records"
    if not isinstance(records, list):
        raise PrepareError(f"{path}: {expected}, found a JSON {type(records).__name__}.")
    if not records:
        raise PrepareError(f"{path}: the list is empty; extract the file again.")
    for number, record in enumerate(records, start=1):
        where = f"{path}: record {number} of {len(records)}"
        if not isinstance(record, dict):
            raise PrepareError(f"{where} is {record!r:.60}: {expected}.")
        missing = [key for key in keys if key not in record]
        if missing:
            raise PrepareError(f"{where} has no {', '.join(map(repr, missing))}: {expected}.")
    return records


# The suffixes omniclip_hf.training.data reads as videos (copied: this script does not import the package).
VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg")


def is_video_name(name: str) -> bool:
    """A file name with a video suffix and something before it: a line cut short (`v_Y`) is not one."""
    stem, dot, suffix = name.rpartition(".")
    return bool(stem) and f"{dot}{suffix}".lower() in VIDEO_SUFFIXES


# ----------------------------------------------------------------------------------------------------------------
# The four datasets: each returns {output file name: [(video path relative to the videos folder, class index)]}
# ----------------------------------------------------------------------------------------------------------------
HMDB51_SPLIT_MARKS = {"0": None, "1": "train", "2": "val"}


def hmdb51_split_files(splits: Path, class_names: list[str]) -> list[Path]:
    """The 3 split files of every class; refuses a folder missing any (a split without a class is another benchmark)."""
    expected = [splits / f"{name}_test_split{split}.txt" for name in class_names for split in (1, 2, 3)]
    for unknown in sorted(set(splits.glob("*_test_split[123].txt")) - set(expected)):
        index_of(unknown.stem.rsplit("_test_split", 1)[0], {}, str(unknown))  # another dataset's file: refused
    missing = [path.name for path in expected if not path.is_file()]
    if len(missing) == len(expected):
        raise PrepareError(f"{splits}: no <class>_test_split<1|2|3>.txt files (extract test_train_splits.rar).")
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise PrepareError(f"{splits}: {len(missing)} of the {len(expected)} split files of labels/hmdb51.txt's "
                           f"classes are missing ({shown}); extract test_train_splits.rar again.")
    return expected


def hmdb51_rows(args) -> dict[str, list[tuple[str, int]]]:
    """`<class>_test_split<k>.txt` files: `<video>.avi 1` trains, `2` tests, `0` is unused in that split."""
    indices = class_indices("hmdb51")
    class_names = class_names_of("hmdb51")
    splits = Path(args.splits)
    outputs: dict[str, list[tuple[str, int]]] = {}
    for split_file in sorted(hmdb51_split_files(splits, class_names)):
        class_name, split = split_file.stem.rsplit("_test_split", 1)
        label = index_of(class_name, indices, str(split_file))
        subsets_seen = set()
        marked: dict[str, tuple[int, str]] = {}  # clip -> (first line marking it 1 or 2, that mark)
        duplicates = 0
        for number, line in enumerate(read_text(split_file).splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in HMDB51_SPLIT_MARKS or "/" in fields[0] \
                    or not is_video_name(fields[0]):
                raise PrepareError(f"{split_file}:{number}: {line.strip()!r} is not '<video>.avi 0|1|2'; extract "
                                   "test_train_splits.rar again.")
            subset = HMDB51_SPLIT_MARKS[fields[1]]
            if subset:
                earlier_line, earlier_mark = marked.setdefault(fields[0], (number, fields[1]))
                if earlier_mark != fields[1]:
                    # Tested on what it was trained on: the split's accuracy would not be a test accuracy.
                    raise PrepareError(
                        f"{split_file}:{number}: {fields[0]} is marked {fields[1]} ({subset}) here and "
                        f"{earlier_mark} ({HMDB51_SPLIT_MARKS[earlier_mark]}) at {split_file}:{earlier_line}; a clip "
                        "is in the training or the test list of a split, not both: extract the official file again.")
                subsets_seen.add(subset)
                rows = outputs.setdefault(f"hmdb51_{subset}_split_{split}_videos.txt", [])
                if earlier_line != number:
                    duplicates += 1  # written twice, the clip was trained on (or tested) twice
                    continue
                rows.append((f"{class_name}/{fields[0]}", label))
        # A file without a 1 or a 2 would drop its class from that split's training or test list.
        unmarked = [f"{mark} ({subset})" for mark, subset in HMDB51_SPLIT_MARKS.items()
                    if subset and subset not in subsets_seen]
        if unmarked:
            raise PrepareError(f"{split_file}: no video marked {' or '.join(unmarked)}; extract the file again.")
        report_duplicates(split_file, duplicates)
    return outputs


UCF101_ZIP = "UCF101TrainTestSplits-RecognitionTask.zip"


def ucf101_list(list_file: Path, with_index: bool, class_names: list[str], indices: dict[str, int],
                trained: dict[str, str] | None = None) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """One official list's rows, and where each clip is (`file:line`). `trainlist0k.txt` lines are
    `<Class>/<clip>.avi <1-based class index>`, `testlist0k.txt` lines `<Class>/<clip>.avi`; `trained` (the split's
    training list, read first) refuses a test clip that is also trained on."""
    expected = "'<Class>/<clip>.avi <1-based class index>'" if with_index else "'<Class>/<clip>.avi'"
    rows, where_of = [], {}
    duplicates = 0
    for number, line in enumerate(read_text(list_file).splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{list_file}:{number}"
        parts = fields[0].split("/")
        # A test list may carry the index too (common copies add it): then it is checked as a training line's.
        if len(fields) not in ((2,) if with_index else (1, 2)) or len(parts) != 2 or not parts[0] \
                or not is_video_name(parts[1]):
            raise PrepareError(f"{where}: {line.strip()!r} is not {expected} (a line cut short, or an extra field?); "
                               f"extract {UCF101_ZIP} again.")
        video = fields[0]
        label = index_of(parts[0], indices, where)
        if len(fields) == 2 and not (re.fullmatch(r"[0-9]+", fields[1]) and int(fields[1]) == label + 1):
            # The class is the folder; an index naming another class means a list made against another classInd.txt.
            raise PrepareError(f"{where}: {video} is in folder {parts[0]}, class {label + 1} of the official "
                               f"classInd.txt (labels/ucf101.txt's order), but the line gives class {fields[1]!r}; "
                               f"was this list made against another classInd.txt? Use the lists of {UCF101_ZIP}.")
        if trained is not None and video in trained:
            raise PrepareError(f"{where}: {video} is also in the training list of this split ({trained[video]}); a "
                               f"clip is trained on or tested, not both: extract {UCF101_ZIP} again.")
        if video in where_of:
            duplicates += 1  # its class is its folder: the same line again, which would weigh the clip double
            continue
        where_of[video] = where
        rows.append((video, label))
    if not rows:
        raise PrepareError(f"{list_file}: lists no videos; extract the file again.")
    report_duplicates(list_file, duplicates)
    listed = {label for _, label in rows}
    missing = [name for index, name in enumerate(class_names) if index not in listed]
    if missing:
        # A list without a class would silently make another benchmark (its accuracy over fewer classes).
        raise PrepareError(f"{list_file}: lists no video of {len(missing)} of the {len(class_names)} classes of "
                           f"labels/ucf101.txt ({shown(missing)}); extract {UCF101_ZIP} again.")
    return rows, where_of


def ucf101_rows(args) -> dict[str, list[tuple[str, int]]]:
    """`trainlist0k.txt` (`Class/v_....avi 1-based index`) and `testlist0k.txt` (`Class/v_....avi`)."""
    class_names = class_names_of("ucf101")
    indices = class_indices("ucf101")
    outputs: dict[str, list[tuple[str, int]]] = {}
    for split in (1, 2, 3):
        trained = None
        for subset, list_name in (("train", f"trainlist0{split}.txt"), ("val", f"testlist0{split}.txt")):
            list_file = Path(args.splits) / list_name
            if not list_file.is_file():
                raise PrepareError(f"{list_file} does not exist (extract {UCF101_ZIP}).")
            rows, where_of = ucf101_list(list_file, subset == "train", class_names, indices, trained)
            trained = where_of
            outputs[f"ucf101_{subset}_split_{split}_videos.txt"] = rows
    return outputs


KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def seconds_of(record: dict, key: str, where: str) -> int:
    """A time of the clip as whole seconds: `inf` was an OverflowError traceback, and a negative time the clip name
    `<id>_-00005_...`, reported as a missing video rather than as the row's mistake."""
    try:
        seconds = float(record[key])
    except ValueError:
        raise PrepareError(f"{where}: {key} {record[key]!r} is not a number of seconds.") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise PrepareError(f"{where}: {key} {record[key]!r} is not a time (a number of seconds from 0); extract the "
                           "file again.")
    return int(seconds)


def kinetics400_clip(record: dict, where: str) -> str:
    """`<youtube_id>_<start>_<end>`, the times as whole seconds zero-padded to 6 digits (the CVDF file names)."""
    empty = [key for key in KINETICS_COLUMNS if not (record.get(key) or "").strip()]
    if empty:
        raise PrepareError(f"{where}: empty {', '.join(empty)}; every row needs {','.join(KINETICS_COLUMNS)}.")
    start, end = (seconds_of(record, key, where) for key in ("time_start", "time_end"))
    return f"{record['youtube_id'].strip()}_{start:06d}_{end:06d}"


def report_duplicates(path: Path, duplicates: int) -> None:
    if duplicates:
        print(f"{path}: dropped {duplicates} duplicate rows (a clip listed again with the same label)")


def refuse_clips_in_both(trained: dict[str, str], tested: dict[str, str], clip_of: Callable[[str], str]) -> None:
    """Refuses a clip (`clip_of(video)`) of the training list that is also in the validation list, naming both
    records: the validation accuracy would be measured on what was trained on."""
    training_clips = {clip_of(video): where for video, where in trained.items()}
    for video, where in tested.items():
        clip = clip_of(video)
        if clip in training_clips:
            raise PrepareError(f"{where}: {clip} is also in the training list ({training_clips[clip]}); a clip is "
                               "trained on or tested, not both: extract the official files again.")


def warn_of_missing_classes(dataset: str, outputs: dict[str, list[tuple[str, int]]]) -> None:
    """Says which classes of labels/<dataset>.txt a file lists no video of (a CSV or JSON cut short): its accuracy
    would be over fewer classes, another benchmark. A warning here, where UCF101 and HMDB51 refuse: the miniature
    Kinetics and SSv2 lists the tests and quick trials use hold a few classes."""
    class_names = class_names_of(dataset)
    for file_name, rows in outputs.items():
        listed = {label for _, label in rows}
        missing = [name for index, name in enumerate(class_names) if index not in listed]
        if missing:
            print(f"WARNING: {file_name} lists no video of {len(missing)} of the {len(class_names)} classes of "
                  f"labels/{dataset}.txt ({shown(missing)}): its accuracy is not the benchmark's; extract the "
                  "annotation files again if they were cut short.")


def kinetics400_csv_rows(path: Path, subset: str, indices: dict[str, int]) -> list[tuple[str, int]]:
    """One subset's rows. A clip listed twice with one label is kept once (and counted); with two labels, refused."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    missing = [key for key in KINETICS_COLUMNS if key not in (reader.fieldnames or [])]
    if missing:
        raise PrepareError(f"{path}: no column {', '.join(map(repr, missing))} in the header line (expected "
                           f"{','.join(KINETICS_COLUMNS)},...); is this the Kinetics-400 annotation file?")
    rows, first_line = [], {}
    duplicates = 0
    for record in reader:
        where = f"{path}:{reader.line_num}"
        video = f"{subset}/{kinetics400_clip(record, where)}.mp4"
        label = index_of(record["label"], indices, where)
        if video in first_line:
            earlier_line, earlier_label = first_line[video]
            if earlier_label != label:
                raise PrepareError(f"{where}: {video} is listed again with another label (first at line "
                                   f"{earlier_line}); a clip has one class: remove one of the two rows.")
            duplicates += 1  # evaluating a clip twice would weigh it double
            continue
        first_line[video] = (reader.line_num, label)
        rows.append((video, label))
    if not rows:
        raise PrepareError(f"{path}: holds no rows under its header; extract the file again.")
    report_duplicates(path, duplicates)
    return rows


def kinetics400_rows(args) -> dict[str, list[tuple[str, int]]]:
    """`train.csv` / `val.csv` (`validate.csv` in older copies): `label,youtube_id,time_start,time_end,split,...`."""
    indices = class_indices("kinetics400")
    outputs = {}
    for subset, candidates in (("train", ["train.csv"]), ("val", ["val.csv", "validate.csv"])):
        found = [Path(args.annotations) / name for name in candidates if (Path(args.annotations) / name).is_file()]
        if not found:
            raise PrepareError(f"{args.annotations}: no {' or '.join(candidates)} (the Kinetics-400 annotations).")
        outputs[f"kinetics400_{subset}_list_videos.txt"] = kinetics400_csv_rows(found[0], subset, indices)
    warn_of_missing_classes("kinetics400", outputs)
    return outputs


SSV2_ID = re.compile(r"[0-9]+")


def ssv2_rows(args) -> dict[str, list[tuple[str, int]]]:
    """`train.json` / `validation.json` (`something-something-v2-train.json` / `-validation.json` in the 20BN-era
    copies mmaction2's tools read): a list of `{"id", "label", "template", "placeholders"}`; videos `<id>.webm`."""
    indices = class_indices("ssv2")
    outputs, where_of = {}, {}
    for subset in ("train", "validation"):
        candidates = [f"{subset}.json", f"something-something-v2-{subset}.json"]
        found = [Path(args.annotations) / name for name in candidates if (Path(args.annotations) / name).is_file()]
        if not found:
            raise PrepareError(f"{args.annotations}: no {' or '.join(candidates)} (extract the SSv2 labels archive).")
        path = found[0]
        records = read_json_records(path, ("id", "template"))
        rows, first_of = [], {}
        duplicates = 0
        for number, record in enumerate(records, start=1):
            video_id = record["id"]
            where = f"{path}: record {number} of {len(records)}"
            if not (isinstance(video_id, str) and SSV2_ID.fullmatch(video_id)):
                # Else reported as a missing video "None.webm", naming neither the file nor the record.
                raise PrepareError(f"{where} has id {video_id!r}, not a string of digits (the video <id>.webm); "
                                   "extract the file again.")
            row = (f"{video_id}.webm", index_of(record["template"], indices, f"{path} id {video_id}"))
            if video_id in first_of:
                earlier, earlier_label = first_of[video_id]
                if earlier_label != row[1]:
                    raise PrepareError(f"{where}: id {video_id} is listed again with another template (first at "
                                       f"record {earlier}); a clip has one class: extract the file again.")
                duplicates += 1  # evaluating a clip twice would weigh it double
                continue
            first_of[video_id] = (number, row[1])
            rows.append(row)
        report_duplicates(path, duplicates)
        outputs[f"{subset}.jsonl"] = rows
        where_of[subset] = {f"{video_id}.webm": f"{path}: record {number}"
                            for video_id, (number, _) in first_of.items()}
    refuse_clips_in_both(where_of["train"], where_of["validation"], lambda video: f"id {Path(video).stem}")
    warn_of_missing_classes("ssv2", outputs)
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


def atomic_writes():
    """`omniclip_hf/atomic_writes.py`, loaded from its file: it needs only the standard library, where importing the
    package would import torch, which this script does without."""
    path = REPO / "omniclip_hf" / "atomic_writes.py"
    spec = importlib.util.spec_from_file_location("omniclip_hf_atomic_writes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_outputs(out: Path, outputs: dict[str, list[tuple[str, int]]]) -> None:
    """Writes every list into a staging folder beside `out`, then moves them all into `out`: one list failing (a full
    disk, a folder in the way) leaves every list as it was. Written one by one, a failure at the fourth of six
    replaced the first three and kept the old others, a split mixing two runs. The files get the modes `open`
    gives under the umask (mkstemp's 0600 made the lists unreadable to the rest of a group)."""
    blocked = [name for name in outputs if (out / name).exists() and not (out / name).is_file()]
    if blocked:
        raise PrepareError(f"--out {out}: {out / blocked[0]} is not a file (a folder?); move it away and rerun. "
                           "Nothing was written.")

    def write(folder: Path) -> None:
        for file_name, rows in outputs.items():
            (folder / file_name).write_text(format_rows(file_name, rows))

    atomic_writes().write_files_into_folder(out, write, last=())


def keep_present(outputs: dict[str, list[tuple[str, int]]], videos: Path, allow_missing: bool,
                 class_names: list[str]) -> dict:
    """Drops rows whose video is not on disk when allowed (and says how many); otherwise refuses. A class left
    without videos is refused either way: it would silently leave the benchmark."""
    if videos.exists() and not videos.is_dir():
        raise PrepareError(f"videos folder {videos} is a file: pass the folder of the extracted videos as --videos.")
    if not videos.is_dir():
        raise PrepareError(f"videos folder {videos} does not exist: extract the videos there, or pass --videos.")
    kept, left_out = {}, []
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
            remaining = {label for _, label in present}
            gone = sorted({label for _, label in rows} - remaining)
            if gone:
                names = [class_names[label] for label in gone]
                first = next(path for path, label in rows if label == gone[0])
                raise PrepareError(
                    f"{file_name}: {videos} holds no listed video of {len(gone)} of its classes ({shown(names)}; first "
                    f"missing: {first}): --allow_missing leaves out videos, not a whole class (the split would be "
                    "another benchmark); extract those classes' videos."
                )
            left_out.append(f"{file_name}: left out {missing} of {len(rows)} videos not found in {videos}")
        kept[file_name] = present
    for line in left_out:  # once every file passed: a refusal prints only its error line
        print(line)
    for file_name, rows in kept.items():
        warn_of_empty_videos(file_name, rows, videos)
    return kept


def warn_of_empty_videos(file_name: str, rows: list[tuple[str, int]], videos: Path) -> None:
    """Counts the listed videos that are empty files (0 bytes: a download or extraction that failed), naming the
    first: they passed as present with nothing said, and training stopped at the first one it read. A warning, not a
    refusal: an empty file can be a stand-in on purpose (a listing made before the videos are)."""
    empty = [path for path, _ in rows if (videos / path).stat().st_size == 0]
    if empty:
        print(f"WARNING: {len(empty)} of the {len(rows)} videos of {file_name} are empty files (0 bytes; first: "
              f"{videos / empty[0]}): they cannot be decoded; download or extract them again before training.")


def check_out(out: Path) -> None:
    # Before reading anything: a file there (or above it) would otherwise fail only at the end, as a bare "[Errno 17]
    # File exists" or "[Errno 20] Not a directory".
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise PrepareError(f"--out {out}: {folder} is a file; give a folder for the annotation files.")
            return


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
        check_out(out)
        outputs = keep_present(READERS[args.dataset](args), videos, args.allow_missing,
                               class_names_of(args.dataset))
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise PrepareError(f"--out {out}: cannot create the folder ({error.strerror}).") from None
        write_outputs(out, outputs)
        for file_name, rows in outputs.items():
            print(f"wrote {out / file_name} ({len(rows)} videos)")
    except (PrepareError, OSError, ValueError, KeyError) as error:
        message = f"missing column or key {error}" if isinstance(error, KeyError) else str(error)
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
