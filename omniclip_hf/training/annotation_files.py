# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""The rows of an annotation file (`path,label` CSV, `path label` split files, JSON lines or a JSON list), read for
`data.load_annotation_file`: a BOM, a header with any column names, blank lines and repeated rows handled, and every
malformed line one error naming the file and line (docs/training.md, "Data")."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from .data import VIDEO_EXTENSIONS, _normalise_name


logger = logging.getLogger(__name__)

JSON_SUFFIXES = (".jsonl", ".json")


class _Row(NamedTuple):
    """One annotation row: where it is in its file (`line` N, or `item` N of a JSON list), its video and label."""

    number: int
    video: str
    label: str
    unit: str = "line"


def where_in_file(path: Path, row: _Row) -> str:
    """`file:line` as compilers write it, or `file, item N` for an element of a JSON list (which has no line)."""
    return f"{path}:{row.number}" if row.unit == "line" else f"{path}, item {row.number}"


# What an annotation file is expected to hold, said in the messages about its format.
ANNOTATION_FORMATS = "one 'path,label' line per video (or 'path label', or JSON lines {\"path\": ..., \"label\": ...})"


def _read_annotation_text(path: Path) -> str:
    """The file as text. UTF-8 with or without a BOM (Excel's "CSV UTF-8" starts with one, which read as part of the
    first path or header); another encoding (Latin-1, UTF-16) or a binary file is refused naming the file and line."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error}); check its permissions.") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8 "
                         "(in Excel: CSV UTF-8).") from None
    if "\x00" in text:
        raise ValueError(f"{path}: binary (it holds NUL bytes), not an annotation file; give {ANNOTATION_FORMATS}.")
    return text


def read_annotation_rows(path: Path) -> list[_Row]:
    """The rows of an annotation file, without blank lines and without a header named `path,label` or
    `video,label` (any case); a header with other names is found by `without_header_row`, which knows the data."""
    text = _read_annotation_text(path)
    if path.suffix.lower() in JSON_SUFFIXES:
        return _json_rows(path, text)
    return _delimited_rows(path, text)


def _delimited_rows(path: Path, text: str) -> list[_Row]:
    lines = text.splitlines()
    comma = _is_comma_separated(path, lines)
    # Split files ("path label") may have spaces in the path but not in the label: split at the last blank.
    reader = csv.reader(lines) if comma else (line.rsplit(None, 1) for line in lines)
    rows: list[_Row] = []
    first = True
    for number, fields in enumerate(reader, start=1):
        if not fields or not "".join(fields).strip():
            continue
        if first and [field.strip().lower() for field in fields[:2]] in (["path", "label"], ["video", "label"]) \
                and len(fields) == 2:
            first = False
            continue  # header
        if comma and len(fields) > 2:
            raise ValueError(_extra_fields_message(path, number, fields, first))
        first = False
        if len(fields) < 2:
            line = lines[number - 1].strip()
            advice = "separate the fields with commas" if ";" in line else "give that line's video and its label"
            raise ValueError(f"{path}:{number}: expected 'path,label' (or 'path label'), got {line!r}; {advice}, or "
                             "delete it.")
        rows.append(_checked_row(path, _Row(number, fields[0].strip(), fields[-1].strip())))
    return rows


def _is_comma_separated(path: Path, lines: list[str]) -> bool:
    """A `.csv` is CSV. Another file (`.txt`, `.tsv`) is space-separated `path label` when no line holds a comma, or
    when each line that does is a split file's `<video>.avi label` line with the comma in the video's name (HMDB51's
    clip names hold commas); CSV when every line holds a comma. Deciding by the first line read a split file whose
    first clip has a comma as CSV, refusing its other lines; a file of both kinds is refused, as either reading
    misreads the other kind's lines (`x.mp4,air drumming` split at its blank is video `x.mp4,air`)."""
    if path.suffix.lower() == ".csv":
        return True
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    with_comma = [(number, line) for number, line in numbered if "," in line]
    if all(_is_split_line_with_comma_in_video(line) for _, line in with_comma):
        return False
    if len(with_comma) == len(numbered):
        return True
    without_comma = next(number for number, line in numbered if "," not in line)
    raise ValueError(f"{path}:{with_comma[0][0]}: this line holds a comma and line {without_comma} none, so the file "
                     "is neither CSV ('path,label' lines) nor space-separated 'path label' lines; write it all one "
                     "way (a .csv is always read as CSV).")


def _is_split_line_with_comma_in_video(line: str) -> bool:
    """`jump/a, b.avi 0`: a `path label` line whose path is a video file holding the line's commas, where CSV would
    read the video `jump/a` (no video suffix) with the label `b.avi 0`."""
    fields = line.rsplit(None, 1)
    if len(fields) != 2 or "," in fields[1] or Path(fields[0]).suffix.lower() not in VIDEO_EXTENSIONS:
        return False
    return Path(line.split(",", 1)[0].strip()).suffix.lower() not in VIDEO_EXTENSIONS


# The header of Kinetics' official CSVs (`label,youtube_id,time_start,time_end,split,is_cc`): no video paths.
KINETICS_HEADER = ["label", "youtube_id", "time_start"]


def _extra_fields_message(path: Path, number: int, fields: list[str], first: bool) -> str:
    """Why a CSV row of more than two fields is refused: read as `path,label` from its first and last fields, a
    `path,label,split` file labelled every video by its split, and `x.mp4,cooking, grilling` was class `grilling`."""
    where = f"{path}:{number}"
    names = [field.strip().lower() for field in fields]
    if first and names[:3] == KINETICS_HEADER:
        return (f"{where}: this is Kinetics' official annotation CSV ({','.join(fields)}), which names YouTube ids, "
                "not video files; run `examples/prepare_data.py kinetics400` on it first and train from the list it "
                "writes.")
    shown_fields = ",".join(fields)
    if len(shown_fields) > 80:
        shown_fields = shown_fields[:77] + "..."
    reading = "" if path.suffix.lower() == ".csv" else " (read as CSV: every line of the file holds a comma)"
    return (f"{where}: expected 2 fields 'path,label'{reading}, got {len(fields)} ({shown_fields!r}); quote a class "
            "name holding a comma (\"cooking, grilling\"), or drop the extra columns.")


def _json_rows(path: Path, text: str) -> list[_Row]:
    """JSON lines (one object a line), or one JSON list of the same objects, compact or pretty-printed (what
    `json.dump(records, file)` writes): both hold the same records, so both are read."""
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as error:
        if text.lstrip().startswith("["):  # a list with a syntax error: where the parser stopped is the place
            raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg}); fix that line, or write "
                             "one {\"path\": ..., \"label\": ...} object a line.") from None
        return _json_line_rows(path, text)
    if isinstance(whole, list):
        return [_json_record_row(path, _Row(number, "", "", "item"), record)
                for number, record in enumerate(whole, start=1)]
    if isinstance(whole, dict):  # one record: a file of one JSON line, or one object pretty-printed
        return [_json_record_row(path, _Row(1, "", ""), whole)]
    return _json_line_rows(path, text)


def _json_line_rows(path: Path, text: str) -> list[_Row]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not valid JSON ({error.msg}); write one {{\"path\": ..., \"label\": "
                             "...}} object a line (JSON lines), or one JSON list of them.") from None
        rows.append(_json_record_row(path, _Row(number, "", ""), record))
    return rows


def _json_record_row(path: Path, place: _Row, record: Any) -> _Row:
    where = where_in_file(path, place)
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object {{\"path\": ..., \"label\": ...}}, got "
                         f"{type(record).__name__} {json.dumps(record)[:60]}.")
    video = record.get("path", record.get("video"))
    if video is None or "label" not in record:
        raise ValueError(f"{where}: each JSON record needs 'path' (or 'video') and 'label'; it has "
                         f"{sorted(record)[:6]}.")
    label = record["label"]
    if not isinstance(video, str) or isinstance(label, bool) or not isinstance(label, (str, int)):
        raise ValueError(f"{where}: 'path' must be a string and 'label' a class name or index, got "
                         f"{json.dumps(video)[:60]} and {json.dumps(label)[:60]}.")
    return _checked_row(path, place._replace(video=video.strip(), label=str(label).strip()))


def _checked_row(path: Path, row: _Row) -> _Row:
    """A row with a path and a label that can be a class (an index, or a name with letters or digits in it): an empty
    one failed later as a video named "" or as a class name in a message naming no file."""
    if not row.video or not row.label:
        raise ValueError(f"{where_in_file(path, row)}: the {'path' if not row.video else 'label'} is empty; write the "
                         "video's path and its label there, or delete that row.")
    if not is_index(row.label) and _name_key(row.label) is None:
        raise ValueError(f"{where_in_file(path, row)}: label {row.label!r} is no class name once spelled as text; write "
                         "the class's name or index there.")
    return row


def is_index(label: str) -> bool:
    return label.lstrip("-").isdigit()


def _name_key(label: str) -> str | None:
    """The label's class-name spelling (`_normalise_name`), or None when it has none (`___`)."""
    try:
        return _normalise_name(label)
    except ValueError:
        return None


def without_header_row(path: Path, rows: list[_Row], base: Path, class_names: Sequence[str] | None) -> list[_Row]:
    """`rows` without a first row that is a header with column names other than `path,label` (`video_path,
    class_name`, `filename,class`), which read as one more video of one more class. See `_is_header_row`."""
    if path.suffix.lower() in JSON_SUFFIXES:  # a JSON record names its fields: it is never a header
        return rows
    if len(rows) < 2 or not _is_header_row(rows[0], rows[1:], base, class_names):
        return rows
    logger.warning("%s: line %d (%r, %r) is read as a header row, not a video", path, rows[0].number, rows[0].video,
                   rows[0].label)
    return rows[1:]


def _is_header_row(row: _Row, others: list[_Row], base: Path, class_names: Sequence[str] | None) -> bool:
    """True when the first row cannot be a video: its path has no video extension, no folder and names nothing that
    exists (a video file has an extension; a frame folder exists, and both usually sit in a class folder), AND its
    label is not a label: a name among indices, or not one of the classes (the given ones, or else the other rows'
    labels). A real first video has an existing path, an extension, a folder, or its class's label, so it is kept."""
    video = row.video
    if Path(video).suffix.lower() in VIDEO_EXTENSIONS or "/" in video or "\\" in video or (base / video).exists():
        return False
    if is_index(row.label):
        return False
    if all(is_index(other.label) for other in others):
        return True
    known = class_names if class_names is not None else [other.label for other in others]
    return _name_key(row.label) not in {_name_key(name) for name in known}


def without_duplicate_rows(path: Path, base: Path, rows: list[_Row], labels: list[int]) -> tuple[list[_Row], list[int]]:
    """One row per video. A video listed again with the same class is kept once, with one warning (twice was
    evaluated twice, or trained on twice an epoch, with nothing said); with another class it is refused, since a
    video has one class here (single-label), and which one was meant cannot be guessed."""
    first_of: dict[str, tuple[_Row, int]] = {}
    kept_rows, kept_labels, repeats = [], [], []
    for row, label in zip(rows, labels):
        key = os.path.normpath(base / row.video)
        if key not in first_of:
            first_of[key] = (row, label)
            kept_rows.append(row)
            kept_labels.append(label)
            continue
        first, first_label = first_of[key]
        if first_label != label:
            raise ValueError(f"{path}: {first.unit}s {first.number} and {row.number} list the same video {row.video!r} "
                             f"with two labels ({first.label!r} and {row.label!r}); a video has one class here: keep "
                             "the row with its right label and delete the other.")
        repeats.append((first, row))
    if repeats:
        first, again = repeats[0]
        logger.warning(f"{path}: {len(repeats)} row{'s list' if len(repeats) > 1 else ' lists'} a video already listed with "
                       f"the same label (e.g. {again.video!r}, {first.unit}s {first.number} and {again.number}); "
                       "each video is used once.")
    return kept_rows, kept_labels
