"""The data preparation audit's findings, each read right or refused in one line: CSV rows with more than two fields,
split files whose paths hold commas, videos a class folder does not use, few-shot draws that followed the row order,
prepare_data's duplicates, leaks, missing classes, empty videos, impossible times and half-written sets, and frame
extraction's missing videos and lists written one by one."""

from __future__ import annotations

import errno
import importlib.util
import json
import logging
import re

import pytest

from omniclip_hf.training.data import few_shot_subset, load_annotation_file, load_folder

from .conftest import REPO_ROOT, SHARED_DIR
from .test_prepare_data import error_line, hmdb51_download, kinetics400_download, prepare, touch
from .test_prepare_data_checks import edit_lines, refused, ucf101_download

VIDEOS = SHARED_DIR / "videos"
SHORT_CLIP = VIDEOS / "mmaction2_rawvideo_part_0.mp4"  # 32 frames: decoded in a moment


def one_line_error(path, match: str, **kwargs) -> str:
    with pytest.raises(ValueError) as error:
        load_annotation_file(path, data_root=path.parent / "root", **kwargs)
    message = str(error.value)
    assert "\n" not in message and re.search(match, message), message
    return message


# ----------------------------------------------------------------------------------------------------------------
# Annotation files (A1, B3)
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, line, fields", [
    ("path,label,split\nx/a.mp4,jump,train\nx/b.mp4,run,test\n", 1, 3),  # the split's name was the label
    ("x/a.mp4,jump,train\nx/b.mp4,run,test\n", 1, 3),
    ("x/b.mp4,running\nx/a.mp4,cooking, grilling\n", 2, 3),  # was class 'grilling'
])
def test_a_csv_row_with_more_than_two_fields_is_refused(tmp_path, text, line, fields):
    annotations = tmp_path / "train.csv"
    annotations.write_text(text)
    message = one_line_error(annotations, rf"^{re.escape(str(annotations))}:{line}: expected 2 fields 'path,label', "
                                          rf"got {fields} ")
    assert "quote a class name holding a comma" in message and "drop the extra columns" in message


def test_a_quoted_comma_in_a_class_name_is_read(tmp_path):
    annotations = tmp_path / "train.csv"
    annotations.write_text('x/a.mp4,"cooking, grilling"\nx/b.mp4,running\n')
    data = load_annotation_file(annotations, data_root=tmp_path)
    assert data.class_names == ["cooking, grilling", "running"]


@pytest.mark.parametrize("class_names", [None, ["abseiling", "air drumming"]])
def test_the_official_kinetics_csv_is_refused_with_the_step_that_converts_it(tmp_path, class_names):
    annotations = tmp_path / "train.csv"
    annotations.write_text("label,youtube_id,time_start,time_end,split,is_cc\nabseiling,AAA,10,20,train,0\n"
                           "air drumming,BBB,5,15,train,0\n")
    message = one_line_error(annotations, rf"^{re.escape(str(annotations))}:1: this is Kinetics' official annotation "
                                          "CSV", class_names=class_names)
    assert "examples/prepare_data.py kinetics400" in message


@pytest.mark.parametrize("text", [
    "jump/a, b.avi 0\njump/c.avi 0\nrun/d.avi 1\n",         # the first path holds a comma: was read as CSV, refused
    "jump/x, take 1.avi 0\nrun/y, take 2.avi 1\n",          # every path does: was video 'jump/x', label 'take 1.avi 0'
])
def test_a_split_file_whose_paths_hold_commas_stays_space_separated(tmp_path, text):
    annotations = tmp_path / "train.txt"
    annotations.write_text(text)
    data = load_annotation_file(annotations, ["jump", "run"], data_root=tmp_path)
    expected = [(str(tmp_path / video), int(label)) for video, label in (line.rsplit(" ", 1) for line in
                                                                         text.splitlines())]
    assert list(zip(data.dataset["video"], data.dataset["label"])) == expected


def test_a_comma_txt_reads_as_csv_and_its_extra_field_names_the_cause(tmp_path):
    annotations = tmp_path / "train.txt"
    annotations.write_text("x/a.mp4,air drumming\nx/b.mp4,abseiling\n")
    assert load_annotation_file(annotations, data_root=tmp_path).class_names == ["abseiling", "air drumming"]
    annotations.write_text("x/a.mp4,air drumming\nx/b.mp4,abseiling,train\n")
    one_line_error(annotations, r":2: expected 2 fields 'path,label' \(read as CSV: every line of the file holds a "
                                r"comma\), got 3")
    annotations.write_text("x/b.mp4 abseiling\nx/a.mp4,air drumming\n")  # split at its blank: video 'x/a.mp4,air'
    one_line_error(annotations, r":2: this line holds a comma and line 1 none, so the file is neither CSV")


# ----------------------------------------------------------------------------------------------------------------
# Class folders (A4) and few-shot selection (D3)
# ----------------------------------------------------------------------------------------------------------------
def test_videos_a_class_folder_does_not_use_are_counted_in_a_warning(tmp_path, caplog):
    root = tmp_path / "videos"
    for video in ("jump/a.mp4", "jump/deep/b.mp4", "run/c.mp4", "stray.mp4", "run/.hidden/d.mp4"):
        touch(root / video)
    with caplog.at_level(logging.WARNING, logger="omniclip_hf.training.data"):
        data = load_folder(root)
    assert len(data) == 2
    warnings = [record.getMessage() for record in caplog.records if "not directly in a class" in record.getMessage()]
    assert warnings == [f"{root}: 2 video files are not directly in a class sub-folder and not used (e.g. stray.mp4); "
                        f"a class folder's videos are read from it alone: move them into {root}/<class name>/ to use "
                        "them."]


def test_the_few_shot_selection_does_not_depend_on_the_row_order(tmp_path):
    rows = [f"c{label}/v{index}.mp4,c{label}" for label in range(3) for index in range(10)]
    selections = []
    for name, order in (("ordered.csv", rows), ("reversed.csv", rows[::-1]),
                        ("interleaved.csv", rows[1::2] + rows[::2])):
        (tmp_path / name).write_text("\n".join(order) + "\n")
        data, _ = few_shot_subset(load_annotation_file(tmp_path / name, data_root=tmp_path), 2, 0)
        selections.append(sorted(data.dataset["video"]))
    assert selections[0] == selections[1] == selections[2]


# ----------------------------------------------------------------------------------------------------------------
# prepare_data (A2, A3, D1, D2, B1, C1)
# ----------------------------------------------------------------------------------------------------------------
def test_hmdb51_and_ucf101_lines_listed_twice_are_written_once(tmp_path, capsys):
    splits, out = hmdb51_download(tmp_path / "hmdb")
    split_file = splits / "brush_hair_test_split1.txt"
    split_file.write_text(split_file.read_text() + "brush_hair_0.avi 1\n")
    assert prepare("hmdb51", "--splits", splits, "--out", out) == 0
    assert f"{split_file}: dropped 1 duplicate rows" in capsys.readouterr().out
    train = (out / "hmdb51_train_split_1_videos.txt").read_text().splitlines()
    assert train.count("brush_hair/brush_hair_0.avi 0") == 1

    splits, out = ucf101_download(tmp_path / "ucf")
    edit_lines(splits / "trainlist01.txt", lambda lines: lines + lines[:1])
    assert prepare("ucf101", "--splits", splits, "--out", out) == 0
    assert f"{splits / 'trainlist01.txt'}: dropped 1 duplicate rows" in capsys.readouterr().out
    train = (out / "ucf101_train_split_1_videos.txt").read_text().splitlines()
    assert len(train) == len(set(train)) == 202


def ssv2_download(tmp_path, train: list[dict], validation: list[dict]):
    annotations, out = tmp_path / "ssv2" / "labels", tmp_path / "data" / "ssv2"
    annotations.mkdir(parents=True)
    (annotations / "train.json").write_text(json.dumps(train))
    (annotations / "validation.json").write_text(json.dumps(validation))
    for record in train + validation:
        touch(out / "videos" / f"{record['id']}.webm")
    return annotations, out


HOLDING = "Holding [something] next to [something]"
PUSHING = "Pushing [something] from left to right"


def test_ssv2_drops_a_repeated_record_and_refuses_two_templates_or_a_clip_in_both_lists(tmp_path, capsys):
    train = [{"id": "1", "template": HOLDING}, {"id": "2", "template": PUSHING}, {"id": "1", "template": HOLDING}]
    annotations, out = ssv2_download(tmp_path / "dup", train, [{"id": "3", "template": HOLDING}])
    assert prepare("ssv2", "--annotations", annotations, "--out", out) == 0
    assert "train.json: dropped 1 duplicate rows" in capsys.readouterr().out
    assert [json.loads(line)["path"] for line in (out / "train.jsonl").read_text().splitlines()] == ["1.webm", "2.webm"]

    train[2] = {"id": "1", "template": PUSHING}
    annotations, out = ssv2_download(tmp_path / "two", train, [{"id": "3", "template": HOLDING}])
    line = refused(capsys, out, "ssv2", "--annotations", annotations)
    assert re.search(r"train.json: record 3 of 3: id 1 is listed again with another template \(first at record 1\)",
                     line)

    annotations, out = ssv2_download(tmp_path / "leak", train[:2], [{"id": "2", "template": PUSHING}])
    line = refused(capsys, out, "ssv2", "--annotations", annotations)
    assert re.search(r"validation.json: record 1: id 2 is also in the training list \(.*train.json: record 2\)", line)


@pytest.mark.parametrize("value", ["inf", "-5", "nan"])
def test_a_kinetics_time_that_is_not_a_time_is_one_line_naming_the_row(tmp_path, capsys, value):
    """`inf` was an OverflowError traceback; `-5` the clip `def_-00005_...`, reported as a missing video."""
    rows = f"label,youtube_id,time_start,time_end\nabseiling,def,{value},12\n"
    annotations, out = kinetics400_download(tmp_path, rows)
    assert prepare("kinetics400", "--annotations", annotations, "--out", out) == 2
    assert re.search(rf"val.csv:2: time_start '{value}' is not a time", error_line(capsys))


def test_kinetics_and_ssv2_lists_missing_whole_classes_are_counted_and_named(tmp_path, capsys):
    annotations, out = kinetics400_download(tmp_path / "k400", "label,youtube_id,time_start,time_end\n"
                                                               "abseiling,def,2,12\nair drumming,ghi,3,13\n")
    assert prepare("kinetics400", "--annotations", annotations, "--out", out) == 0
    stdout = capsys.readouterr().out
    assert ("WARNING: kinetics400_train_list_videos.txt lists no video of 399 of the 400 classes of "
            "labels/kinetics400.txt (air drumming, answering questions,") in stdout
    assert "WARNING: kinetics400_val_list_videos.txt lists no video of 398 of the 400 classes" in stdout

    annotations, out = ssv2_download(tmp_path / "ssv2", [{"id": "1", "template": HOLDING}],
                                     [{"id": "2", "template": HOLDING}])
    assert prepare("ssv2", "--annotations", annotations, "--out", out) == 0
    assert "WARNING: train.jsonl lists no video of 173 of the 174 classes of labels/ssv2.txt" in capsys.readouterr().out


def test_empty_video_files_are_counted_naming_the_first(tmp_path, capsys):
    annotations, out = ssv2_download(tmp_path, [{"id": "1", "template": HOLDING}, {"id": "2", "template": PUSHING}],
                                     [{"id": "3", "template": HOLDING}])
    (out / "videos" / "2.webm").write_bytes(b"not empty")
    assert prepare("ssv2", "--annotations", annotations, "--out", out) == 0
    stdout = capsys.readouterr().out
    assert f"WARNING: 1 of the 2 videos of train.jsonl are empty files (0 bytes; first: {out / 'videos' / '1.webm'})" \
        in stdout
    assert "WARNING: 1 of the 1 videos of validation.jsonl are empty files" in stdout


def prepare_data_module():
    spec = importlib.util.spec_from_file_location("prepare_data", REPO_ROOT / "examples" / "prepare_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failure_at_one_list_leaves_every_list_as_it_was(tmp_path, capsys):
    """A full disk at the 4th of 6 lists replaced the first three and kept the old others: a split of two runs."""
    splits, out = ucf101_download(tmp_path)
    assert prepare("ucf101", "--splits", splits, "--out", out) == 0
    before = {path.name: path.read_text() for path in out.glob("*.txt")}
    assert len(before) == 6
    for split in (1, 2, 3):  # new lists: each class's second training clip left out
        edit_lines(splits / f"trainlist0{split}.txt", lambda lines: [line for line in lines if "_g09_" not in line])
    module = prepare_data_module()
    format_rows, calls = module.format_rows, []

    def failing_at_the_fourth(file_name, rows):
        calls.append(file_name)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return format_rows(file_name, rows)

    module.format_rows = failing_at_the_fourth
    assert module.main(["ucf101", "--splits", str(splits), "--out", str(out)]) == 2
    error_line(capsys)
    assert {path.name: path.read_text() for path in out.glob("*.txt")} == before
    assert sorted(path.name for path in out.iterdir() if path.name.startswith(".")) == []
    assert sorted(path.name for path in out.parent.iterdir()) == ["ucf101"]

    # A folder where a list goes: refused before any list is replaced.
    (out / "ucf101_val_split_2_videos.txt").unlink()
    (out / "ucf101_val_split_2_videos.txt").mkdir()
    assert prepare("ucf101", "--splits", splits, "--out", out) == 2
    assert "ucf101_val_split_2_videos.txt is not a file" in error_line(capsys)
    del before["ucf101_val_split_2_videos.txt"]
    assert {path.name: path.read_text() for path in out.glob("*.txt") if path.is_file()} == before


# ----------------------------------------------------------------------------------------------------------------
# Frame extraction (B2, B4, C3)
# ----------------------------------------------------------------------------------------------------------------
def linked_videos(root, names):
    """Class folders of symbolic links to one short shared clip (a link keeps its own name; nothing is copied)."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(SHORT_CLIP)
    (root / "list.csv").write_text("".join(f"{name},{name.split('/')[0]}\n" for name in names))
    return load_annotation_file(root / "list.csv", data_root=root)


def test_a_video_deleted_since_the_first_extraction_is_listed_as_missing(tmp_path):
    from omniclip_hf.training.frame_extraction import extract_frame_folders

    data_root, out = tmp_path / "data", tmp_path / "frames"
    data = linked_videos(data_root, ["a/v1.mp4", "a/v2.mp4", "b/v1.mp4"])
    assert extract_frame_folders(data, data_root, out, "list.csv", False, short_side=32).num_rows == 3
    (data_root / "a" / "v2.mp4").unlink()  # the rerun reads the same list: was "... cannot be told", the run stopped
    result = extract_frame_folders(data, data_root, out, "list.csv", False, short_side=32)
    assert (result.num_rows, len(result.undecodable)) == (2, 1)
    assert result.undecodable[0] == f"{data_root / 'a' / 'v2.mp4'}: Video file {data_root / 'a' / 'v2.mp4'} does not " \
                                    "exist. Check the path."
    assert (out / "list.csv").read_text().splitlines() == ["path,label", "a/v1,a", "b/v1,b"]


def test_no_video_found_counts_the_missing_ones_and_writes_nothing(tmp_path):
    from omniclip_hf.training.frame_extraction import extract_frame_folders

    data_root, out = tmp_path / "data", tmp_path / "frames"
    (data_root).mkdir()
    (data_root / "list.csv").write_text("a/v1.mp4,a\nb/v1.mp4,b\n")  # a wrong --data_root: no video is there
    data = load_annotation_file(data_root / "list.csv", data_root=data_root)
    with pytest.raises(ValueError) as error:
        extract_frame_folders(data, data_root, out, "list.csv", False, short_side=32)
    message = str(error.value)
    assert message.startswith(f"none of the 2 videos could be extracted: 2 do not exist (first: "
                              f"{data_root / 'a' / 'v1.mp4'}; paths are read relative to {data_root}: is --data_root "
                              "right?)"), message
    assert not out.exists() or not list(out.rglob("*")), sorted(out.rglob("*"))


def test_the_labels_file_is_written_with_the_list_or_not_at_all(tmp_path, monkeypatch):
    """The labels file was written before the list: a failure (or kill) between left them disagreeing."""
    import csv

    from omniclip_hf.training.frame_extraction import extract_frame_folders

    data_root, out = tmp_path / "data", tmp_path / "frames"
    data = linked_videos(data_root, ["a/v1.mp4", "b/v1.mp4"])

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv, "writer", full_disk)
    with pytest.raises(OSError):
        extract_frame_folders(data, data_root, out, "list.csv", False, short_side=32)
    assert not (out / "list.labels.txt").exists() and not (out / "list.csv").exists()
    assert sorted(path.name for path in out.parent.iterdir()) == ["data", "frames"]  # no staging folder left
