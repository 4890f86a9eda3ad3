"""Annotation files as users hand them over: headers with other column names, Excel's BOM, JSON lists, other
encodings, blank lines, duplicate rows; and UCF101's classInd.txt as a labels file. Each is read right or refused in
one line naming the file (and line); none becomes a made-up class, a doubled video or a library traceback."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from omniclip_hf import labels_to_prompts, load_label_names
from omniclip_hf.training.data import load_annotation_file

from .conftest import REPO_ROOT, SHARED_DIR

VIDEOS = SHARED_DIR / "videos"
EVALUATE = [sys.executable, str(REPO_ROOT / "examples" / "evaluate.py")]
ROWS = [("baseball/a.mp4", "baseball"), ("guitar/a.mp4", "guitar"), ("yoga/a.mp4", "yoga")]
CLASSES = ["baseball", "guitar", "pool", "yoga"]


def rows_of(data) -> list[tuple[str, str]]:
    """(path relative to the data root, class name) of each loaded row."""
    return [(video.split("/root/", 1)[1], data.class_names[label])
            for video, label in zip(data.dataset["video"], data.dataset["label"])]


def csv_text(header: str = "", rows=ROWS) -> str:
    return header + "".join(f"{video},{label}\n" for video, label in rows)


def one_line_error(path, match: str, **kwargs) -> str:
    with pytest.raises(ValueError) as error:
        load_annotation_file(path, data_root=path.parent / "root", **kwargs)
    message = str(error.value)
    assert "\n" not in message and message.startswith(match), message
    return message


@pytest.mark.parametrize("header", ["video_path,class_name\n", "filename,class\n", "\ufeffpath,label\n",
                                    "\ufeffvideo_path,class_name\n", "\ufeff"])
@pytest.mark.parametrize("class_names", [None, CLASSES])
def test_a_header_or_bom_is_never_a_video_row(tmp_path, header, class_names):
    """A header with other names than path,label, or Excel's BOM before one, read as a video of a made-up class
    ('class_name', 'label'); a BOM with no header began the first path, whose video then failed."""
    annotations = tmp_path / "test.csv"
    annotations.write_bytes(csv_text(header).encode())
    data = load_annotation_file(annotations, class_names, data_root=tmp_path / "root")
    assert data.class_names == (class_names or ["baseball", "guitar", "yoga"])
    assert rows_of(data) == ROWS


def test_a_header_before_index_labels_is_dropped(tmp_path):
    annotations = tmp_path / "test.txt"
    annotations.write_text("clip class_index\nbaseball/a.mp4 0\nyoga/a.mp4 3\n")
    data = load_annotation_file(annotations, CLASSES, data_root=tmp_path / "root")
    assert rows_of(data) == [("baseball/a.mp4", "baseball"), ("yoga/a.mp4", "yoga")]


@pytest.mark.parametrize("first", [
    "pool,pool",                # a class name as its label, with no class list: no other row has it...
    "baseball/b,pool",          # ...but a folder part: a path
    "b.mp4,pool",               # a video extension
    "clip7,3",                  # a class index
    "clip7,baseball",           # another row's label
])
def test_a_real_first_video_is_never_taken_for_a_header(tmp_path, first):
    """The header rule must not drop a real first video: one with a video extension, a folder part, an existing
    path, or a label that is a class index or one of the classes stays a row."""
    annotations = tmp_path / "test.csv"
    annotations.write_text(first + "\n" + csv_text())
    class_names = CLASSES if first == "clip7,3" else None
    if first == "pool,pool":  # an existing frame folder (no extension, no folder part) with its class's only video
        (tmp_path / "root" / "pool").mkdir(parents=True)
    data = load_annotation_file(annotations, class_names, data_root=tmp_path / "root")
    assert len(data) == 4 and rows_of(data)[1:] == ROWS


def test_a_header_only_file_has_no_rows(tmp_path):
    annotations = tmp_path / "test.csv"
    annotations.write_text("path,label\n")
    one_line_error(annotations, f"{annotations}: no annotation rows found; write one 'path,label' line per video")


@pytest.mark.parametrize("text", [
    json.dumps([{"path": video, "label": label} for video, label in ROWS]),
    json.dumps([{"path": video, "label": label} for video, label in ROWS], indent=2),
    "".join(json.dumps({"path": video, "label": label}) + "\n" for video, label in ROWS),
])
def test_a_json_list_reads_as_json_lines(tmp_path, text):
    """A .json holding one JSON list of the records (compact: AttributeError traceback; pretty-printed: "Expecting
    value: line 1 column 2" naming no file) holds the same records as JSON lines, so it is read as them."""
    annotations = tmp_path / "test.json"
    annotations.write_text(text)
    assert rows_of(load_annotation_file(annotations, data_root=tmp_path / "root")) == ROWS


@pytest.mark.parametrize("name, text, match", [
    ("broken.json", '[\n {"path": "a.mp4", "label": "yoga"},\n {"path": "b.mp4" "label": "yoga"}\n]\n',
     "{path}:3: not valid JSON (Expecting ',' delimiter); fix that line"),
    ("broken.jsonl", '{"path": "a.mp4", "label": "yoga"}\n{"path": "b.mp4", "label": yoga}\n',
     "{path}:2: not valid JSON (Expecting value); write one"),
    ("strings.json", '["a.mp4", "b.mp4"]', "{path}, item 1: expected a JSON object"),
    ("nolabel.jsonl", '{"path": "a.mp4"}\n', "{path}:1: each JSON record needs 'path' (or 'video') and 'label'"),
    ("empty.txt", "", "{path}: no annotation rows found; write one 'path,label' line per video"),
    ("blank.txt", "\n \n", "{path}: no annotation rows found; write"),
    ("latin1.csv", "baseball/a.mp4,baseball\nyoga/a.mp4,yoga\u00e9\n", "{path}:2: not UTF-8 text (byte 0xe9); save"),
    ("utf16.csv", "path,label\n", "{path}:1: not UTF-8 text (byte 0xff); save the file as UTF-8"),
    ("nolabel.csv", "baseball/a.mp4,baseball\nyoga/a.mp4\n", "{path}:2: expected 'path,label' (or 'path label'), "
                                                              "got 'yoga/a.mp4'; give that line's video"),
    ("emptylabel.csv", "baseball/a.mp4,baseball\nyoga/a.mp4,\n", "{path}:2: the label is empty; write"),
    ("semicolons.csv", "baseball/a.mp4;baseball\n", "{path}:1: expected 'path,label' (or 'path label'), got "
                                                    "'baseball/a.mp4;baseball'; separate the fields with commas"),
])
def test_an_unreadable_annotation_file_is_one_line_naming_it(tmp_path, name, text, match):
    """Each was a traceback (IndexError, UnicodeDecodeError, JSONDecodeError) or a message naming no file."""
    annotations = tmp_path / name
    encoding = {"latin1.csv": "latin-1", "utf16.csv": "utf-16"}.get(name, "utf-8")
    annotations.write_bytes(text.encode(encoding))
    one_line_error(annotations, match.format(path=annotations))


def test_a_blank_first_line_does_not_decide_the_format(tmp_path):
    """A comma .txt whose first line is blank was split at blanks, then refused as "expected 'path,label'"."""
    annotations = tmp_path / "test.txt"
    annotations.write_text("\n" + csv_text())
    assert rows_of(load_annotation_file(annotations, data_root=tmp_path / "root")) == ROWS


def test_labels_name_their_true_line_after_a_header_and_blank_lines(tmp_path):
    annotations = tmp_path / "test.csv"
    annotations.write_text("path,label\n\nbaseball/a.mp4,baseball\nyoga/a.mp4,not a class\n")
    one_line_error(annotations, f"{annotations}:4: label 'not a class' is not one of the 4 class names",
                   class_names=CLASSES)


def test_a_video_listed_twice_with_its_label_is_kept_once_with_one_warning(tmp_path, caplog):
    """It was evaluated (or trained on) twice with nothing said: num_videos 5 for 3 clips."""
    annotations = tmp_path / "test.txt"
    annotations.write_text("baseball/a.mp4 0\nguitar/a.mp4 1\nyoga/a.mp4 3\nyoga/a.mp4 3\n./yoga/a.mp4 yoga\n")
    with caplog.at_level(logging.WARNING, logger="omniclip_hf.training.data"):
        data = load_annotation_file(annotations, CLASSES, data_root=tmp_path / "root")
    assert rows_of(data) == ROWS
    warnings = [record.getMessage() for record in caplog.records]
    assert warnings == [f"{annotations}: 2 rows list a video already listed with the same label (e.g. 'yoga/a.mp4', "
                        "lines 3 and 4); each video is used once."]


def test_a_video_listed_with_two_labels_is_refused_naming_both_lines(tmp_path):
    annotations = tmp_path / "test.csv"
    annotations.write_text("path,label\nbaseball/a.mp4,baseball\nyoga/a.mp4,yoga\nbaseball/a.mp4,guitar\n")
    one_line_error(annotations, f"{annotations}: lines 2 and 4 list the same video 'baseball/a.mp4' with two labels "
                                "('baseball' and 'guitar'); a video has one class here")


def test_ucf101_class_ind_is_an_index_file(tmp_path):
    """UCF101's classInd.txt was read as names "1 ApplyEyeMakeup": the numbers went into the prompts."""
    labels = tmp_path / "classInd.txt"
    labels.write_text("1 ApplyEyeMakeup\r\n3 Archery\r\n2 ApplyLipstick\r\n\r\n")
    assert load_label_names(labels) == ["ApplyEyeMakeup", "ApplyLipstick", "Archery"]
    assert labels_to_prompts(load_label_names(labels))[0] == "a video of apply eye makeup action"
    # Not every line an index: names that begin with a number stay whole.
    labels.write_text("1 on 1 basketball\nyoga\n")
    assert load_label_names(labels) == ["1 on 1 basketball", "yoga"]
    labels.write_text("1 archery\n2 yoga\n1 bowling\n")
    with pytest.raises(ValueError, match=rf"^Label file {labels}, lines 1 and 3 both give index 1; "):
        load_label_names(labels)


def test_evaluate_reads_a_headed_csv_with_duplicates_as_its_three_clips(tiny_clip_dir, tmp_path):
    """End to end: a `video_path,class_name` CSV with a clip listed twice, evaluated without --labels_file, scored
    the header as a failed video of a class 'class_name', and the repeated clip twice."""
    from .test_training import run

    annotations = tmp_path / "test.csv"
    annotations.write_text("video_path,class_name\naskanything_hitting_baseball.mp4,baseball\n"
                           "askanything_playing_guitar.mp4,guitar\naskanything_yoga.mp4,yoga\n"
                           "askanything_yoga.mp4,yoga\n")
    result = run(EVALUATE + ["--clip", str(tiny_clip_dir), "--eval_data", str(annotations), "--data_root",
                             str(VIDEOS), "--num_frames", "2", "--num_clips", "1", "--num_crops", "1",
                             "--num_workers", "0", "--output_dir", str(tmp_path / "eval")])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert list(metrics["per_class_accuracy"]) == ["baseball", "guitar", "yoga"]
    assert metrics["num_videos"] == 3 and metrics["failed_videos"] == []
    assert f"WARNING omniclip_hf.training.annotation_files: {annotations}: 1 row lists a video already listed" in result.stderr


def test_a_json_lines_first_record_is_never_a_header(tmp_path):
    """A record names its fields: one whose path has no extension or folder (a frame folder not extracted yet) and
    whose label no other record has was dropped as a "header"."""
    annotations = tmp_path / "clips.jsonl"
    annotations.write_text('{"path": "lonely", "label": "archery"}\n{"path": "b/c.mp4", "label": "yoga"}\n'
                           '{"path": "b/d.mp4", "label": "yoga"}\n')
    data = load_annotation_file(annotations)
    assert data.class_names == ["archery", "yoga"] and len(data) == 3
