"""examples/prepare_data.py's checks of the official lists: every class listed, no clip both trained on and tested,
no class left out whole by --allow_missing, UCF101's class indices, SSv2 ids and file names, lines cut short.

Each refusal is one `error:` line naming the file (and line or record), and nothing is written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import REPO_ROOT
from .test_prepare_data import (
    HMDB51_CLASSES,
    KINETICS_HEADER,
    error_line,
    hmdb51_download,
    kinetics400_download,
    loaded,
    prepare,
    touch,
)

UCF101_CLASSES = (REPO_ROOT / "labels" / "ucf101.txt").read_text().split()


def ucf101_clip(class_name: str, group: int) -> str:
    # The official lists spell one class HandstandPushups in the folder and HandStandPushups in the file name.
    spelled = "HandStandPushups" if class_name == "HandstandPushups" else class_name
    return f"{class_name}/v_{spelled}_g{group:02d}_c01.avi"


def ucf101_download(tmp_path) -> tuple[Path, Path]:
    """The official layout for every class of labels/ucf101.txt: `trainlist0k.txt` lines `<Class>/<clip>.avi <1-based
    index>` (groups 8 and 9), `testlist0k.txt` lines `<Class>/<clip>.avi` (group 1), CRLF; the videos empty files."""
    splits, out = tmp_path / "ucfTrainTestlist", tmp_path / "data" / "ucf101"
    splits.mkdir(parents=True)
    train = [f"{ucf101_clip(name, group)} {index}" for index, name in enumerate(UCF101_CLASSES, start=1)
             for group in (8, 9)]
    test = [ucf101_clip(name, 1) for name in UCF101_CLASSES]
    (splits / "classInd.txt").write_text("".join(f"{i} {name}\r\n" for i, name in enumerate(UCF101_CLASSES, 1)))
    for split in (1, 2, 3):
        (splits / f"trainlist0{split}.txt").write_text("\r\n".join(train) + "\r\n")
        (splits / f"testlist0{split}.txt").write_text("\r\n".join(test) + "\r\n")
    for line in train + test:
        touch(out / "videos" / line.split()[0])
    return splits, out


def edit_lines(path: Path, edit) -> None:
    """Rewrites `path` (CRLF lines) with `edit(lines) -> lines`."""
    path.write_text("\r\n".join(edit(path.read_text().splitlines())) + "\r\n")


def refused(capsys, out: Path, *arguments) -> str:
    """Runs prepare_data, checks it refused in one error line and wrote nothing; returns the line."""
    assert prepare(*arguments, "--out", out) == 2
    line = error_line(capsys)
    assert not [path for path in out.glob("*") if path.is_file()], "a refused run wrote files"
    return line


# ----------------------------------------------------------------------------------------------------------------
# Well-formed layouts still pass
# ----------------------------------------------------------------------------------------------------------------
def test_ucf101_full_layout_passes(tmp_path, capsys):
    splits, out = ucf101_download(tmp_path)
    assert prepare("ucf101", "--splits", splits, "--out", out) == 0
    assert len(list(out.glob("ucf101_*_split_*_videos.txt"))) == 6
    rows = loaded(out / "ucf101_val_split_2_videos.txt", "ucf101", out / "videos")
    assert [name for _, name in rows] == UCF101_CLASSES
    assert all(path.split("/")[0] == name for path, name in rows)
    train = loaded(out / "ucf101_train_split_1_videos.txt", "ucf101", out / "videos")
    assert ("HandstandPushups/v_HandStandPushups_g08_c01.avi", "HandstandPushups") in train
    assert len(train) == 2 * len(UCF101_CLASSES)
    # The same clip in the training list of one split and the test list of another is how the official splits are.
    edit_lines(splits / "trainlist02.txt", lambda lines: lines + ["YoYo/v_YoYo_g01_c01.avi 101"])
    edit_lines(splits / "testlist02.txt", lambda lines: [line for line in lines if not line.startswith("YoYo/")]
               + ["YoYo/v_YoYo_g02_c01.avi"])
    touch(out / "videos" / "YoYo/v_YoYo_g02_c01.avi")
    assert prepare("ucf101", "--splits", splits, "--out", out) == 0


def test_hmdb51_full_layout_passes(tmp_path):
    splits, out = hmdb51_download(tmp_path)
    assert prepare("hmdb51", "--splits", splits, "--out", out) == 0
    for split in (1, 2, 3):
        for subset in ("train", "val"):
            rows = loaded(out / f"hmdb51_{subset}_split_{split}_videos.txt", "hmdb51", out / "videos")
            assert sorted({name for _, name in rows}) == sorted(HMDB51_CLASSES)


def test_ucf101_lists_and_missing_videos_full_layout(tmp_path, capsys):
    """tests/test_prepare_data.py's UCF101 test on a layout with every class: a missing video is an error naming it;
    --allow_missing leaves out one of a class's videos and says so."""
    splits, out = ucf101_download(tmp_path)
    assert prepare("ucf101", "--splits", splits, "--out", out) == 0
    written = (out / "ucf101_train_split_1_videos.txt").read_text()
    (out / "videos" / ucf101_clip("HandstandPushups", 9)).unlink()
    assert prepare("ucf101", "--splits", splits, "--out", out) == 2
    assert "v_HandStandPushups_g09_c01.avi" in error_line(capsys)
    assert (out / "ucf101_train_split_1_videos.txt").read_text() == written  # nothing rewritten on error
    assert prepare("ucf101", "--splits", splits, "--out", out, "--allow_missing") == 0
    assert f"left out 1 of {2 * len(UCF101_CLASSES)} videos" in capsys.readouterr().out
    rows = loaded(out / "ucf101_train_split_1_videos.txt", "ucf101", out / "videos")
    assert len(rows) == 2 * len(UCF101_CLASSES) - 1
    assert ("HandstandPushups/v_HandStandPushups_g08_c01.avi", "HandstandPushups") in rows


# ----------------------------------------------------------------------------------------------------------------
# M1: a UCF101 list lacking a class
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("list_name, dropped, message", [
    ("testlist03.txt", ["YoYo"], r"testlist03.txt: lists no video of 1 of the 101 classes of labels/ucf101.txt "
                                 r"\(YoYo\); extract UCF101TrainTestSplits-RecognitionTask.zip again"),
    ("trainlist02.txt", ["Archery", "ApplyEyeMakeup"],
     r"trainlist02.txt: lists no video of 2 of the 101 classes of labels/ucf101.txt \(ApplyEyeMakeup, Archery\)"),
])
def test_ucf101_refuses_a_list_missing_a_class(tmp_path, capsys, list_name, dropped, message):
    splits, out = ucf101_download(tmp_path)
    edit_lines(splits / list_name, lambda lines: [line for line in lines if line.split("/")[0] not in dropped])
    assert re.search(message, refused(capsys, out, "ucf101", "--splits", splits))


# ----------------------------------------------------------------------------------------------------------------
# M2: a clip in both the training and the test list of a split
# ----------------------------------------------------------------------------------------------------------------
def test_ucf101_refuses_a_test_clip_in_the_training_list(tmp_path, capsys):
    splits, out = ucf101_download(tmp_path)
    train = splits / "trainlist01.txt"
    train.write_text(train.read_text() + "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1\r\n")
    line = refused(capsys, out, "ucf101", "--splits", splits)
    added = 2 * len(UCF101_CLASSES) + 1
    assert re.search(rf"testlist01.txt:1: ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi is also in the training list "
                     rf"of this split \(.*trainlist01.txt:{added}\)", line)


@pytest.mark.parametrize("first, second", [("1", "2"), ("2", "1")])
def test_hmdb51_refuses_a_clip_marked_train_and_test(tmp_path, capsys, first, second):
    splits, out = hmdb51_download(tmp_path)
    (splits / "brush_hair_test_split2.txt").write_text(
        f"brush_hair_0.avi {first} \nbrush_hair_1.avi 1 \nbrush_hair_2.avi 2 \nbrush_hair_0.avi {second} \n")
    subsets = {"1": "train", "2": "val"}
    line = refused(capsys, out, "hmdb51", "--splits", splits)
    assert re.search(rf"brush_hair_test_split2.txt:4: brush_hair_0.avi is marked {second} \({subsets[second]}\) here "
                     rf"and {first} \({subsets[first]}\) at .*brush_hair_test_split2.txt:1; ", line)


# ----------------------------------------------------------------------------------------------------------------
# L1: --allow_missing leaving a class without videos
# ----------------------------------------------------------------------------------------------------------------
def test_hmdb51_allow_missing_refuses_a_class_not_extracted(tmp_path, capsys):
    splits, out = hmdb51_download(tmp_path)
    for video in (out / "videos" / "wave").iterdir():
        video.unlink()
    line = refused(capsys, out, "hmdb51", "--splits", splits, "--allow_missing")
    assert re.search(r"hmdb51_train_split_1_videos.txt: .*videos holds no listed video of 1 of its classes "
                     r"\(wave; first missing: wave/wave_0.avi\): --allow_missing leaves out videos, not a whole class",
                     line)
    assert "left out" not in capsys.readouterr().out


def test_ucf101_allow_missing_refuses_a_class_left_without_videos(tmp_path, capsys):
    splits, out = ucf101_download(tmp_path)
    for group in (8, 9):
        (out / "videos" / ucf101_clip("Archery", group)).unlink()
    line = refused(capsys, out, "ucf101", "--splits", splits, "--allow_missing")
    assert re.search(r"ucf101_train_split_1_videos.txt: .* no listed video of 1 of its classes \(Archery; ", line)


def test_kinetics400_allow_missing_refuses_a_class_left_without_clips(tmp_path, capsys):
    annotations, out = kinetics400_download(
        tmp_path, KINETICS_HEADER + "abseiling,def,2,12,val,0\nair drumming,gone,0,10,val,0\n")
    line = refused(capsys, out, "kinetics400", "--annotations", annotations, "--allow_missing")
    assert re.search(r"kinetics400_val_list_videos.txt: .* no listed video of 1 of its classes \(air drumming; first "
                     r"missing: val/gone_000000_000010.mp4\)", line)


# ----------------------------------------------------------------------------------------------------------------
# L2: a UCF101 training line whose class index is not its folder's
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", ["1", "x", "0", "102"])
def test_ucf101_refuses_an_index_that_is_not_the_folders(tmp_path, capsys, index):
    splits, out = ucf101_download(tmp_path)
    edit_lines(splits / "trainlist01.txt", lambda lines: [
        f"Archery/v_Archery_g08_c01.avi {index}" if line == "Archery/v_Archery_g08_c01.avi 3" else line
        for line in lines])
    assert re.search(rf"trainlist01.txt:5: Archery/v_Archery_g08_c01.avi is in folder Archery, class 3 of the "
                     rf"official classInd.txt .* but the line gives class '{index}'; was this list made against "
                     rf"another classInd.txt\?", refused(capsys, out, "ucf101", "--splits", splits))


# ----------------------------------------------------------------------------------------------------------------
# L3 and L4: SSv2 ids and file names
# ----------------------------------------------------------------------------------------------------------------
SSV2_RECORD = {"id": "1", "template": "Approaching [something] with your camera", "placeholders": ["a cup"]}


@pytest.mark.parametrize("video_id", [None, "", " 1", "1a", "1.webm", 1, "١"], ids=repr)
def test_ssv2_refuses_an_id_that_is_not_digits(tmp_path, capsys, video_id):
    annotations, out = tmp_path / "ssv2" / "labels", tmp_path / "data" / "ssv2"
    annotations.mkdir(parents=True)
    (annotations / "validation.json").write_text(json.dumps([SSV2_RECORD]))
    (annotations / "train.json").write_text(json.dumps([SSV2_RECORD, {**SSV2_RECORD, "id": video_id}]))
    touch(out / "videos" / "1.webm")
    line = refused(capsys, out, "ssv2", "--annotations", annotations)
    assert re.search(rf"train.json: record 2 of 2 has id {re.escape(repr(video_id))}, not a string of digits", line)


@pytest.mark.parametrize("names", [
    ("something-something-v2-train.json", "something-something-v2-validation.json"),
    ("train.json", "something-something-v2-validation.json"),
])
def test_ssv2_reads_the_20bn_file_names(tmp_path, names):
    annotations, out = tmp_path / "ssv2" / "labels", tmp_path / "data" / "ssv2"
    annotations.mkdir(parents=True)
    (annotations / "something-something-v2-labels.json").write_text(json.dumps({"Approaching something with "
                                                                                "your camera": "0"}))
    (annotations / names[0]).write_text(json.dumps([SSV2_RECORD]))
    (annotations / names[1]).write_text(json.dumps([{**SSV2_RECORD, "id": "2"}]))
    touch(out / "videos" / "1.webm")
    touch(out / "videos" / "2.webm")
    assert prepare("ssv2", "--annotations", annotations, "--out", out) == 0
    assert loaded(out / "train.jsonl", "ssv2", out / "videos") == [("1.webm", "Approaching something with your camera")]
    assert loaded(out / "validation.jsonl", "ssv2", out / "videos") == [
        ("2.webm", "Approaching something with your camera")]


def test_ssv2_without_annotation_files_names_both_names(tmp_path, capsys):
    annotations, out = tmp_path / "ssv2" / "labels", tmp_path / "data" / "ssv2"
    annotations.mkdir(parents=True)
    (annotations / "train.json").write_text(json.dumps([SSV2_RECORD]))
    touch(out / "videos" / "1.webm")
    assert re.search(r"labels: no validation.json or something-something-v2-validation.json \(extract the SSv2 labels",
                     refused(capsys, out, "ssv2", "--annotations", annotations))


# ----------------------------------------------------------------------------------------------------------------
# L5: a line cut short is a malformed line, not a missing video
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("list_name, line, message", [
    ("testlist03.txt", "YoYo/v_Y", r"testlist03.txt:102: 'YoYo/v_Y' is not '<Class>/<clip>.avi' \(a line cut short"),
    ("testlist03.txt", "YoYo/", r"testlist03.txt:102: 'YoYo/' is not '<Class>/<clip>.avi'"),
    ("testlist03.txt", "v_YoYo_g02_c01.avi", r"testlist03.txt:102: 'v_YoYo_g02_c01.avi' is not '<Class>/<clip>.avi'"),
    ("trainlist02.txt", "YoYo/v_YoYo_g", r"trainlist02.txt:203: 'YoYo/v_YoYo_g' is not '<Class>/<clip>.avi <1-based"),
    ("trainlist02.txt", "YoYo/v_YoYo_g02_c01.avi", r"trainlist02.txt:203: 'YoYo/v_YoYo_g02_c01.avi' is not '<Class>/"),
])
def test_ucf101_refuses_a_line_cut_short(tmp_path, capsys, list_name, line, message):
    splits, out = ucf101_download(tmp_path)
    edit_lines(splits / list_name, lambda lines: lines + [line])
    assert re.search(message, refused(capsys, out, "ucf101", "--splits", splits))


def test_hmdb51_refuses_a_line_cut_short(tmp_path, capsys):
    splits, out = hmdb51_download(tmp_path)
    (splits / "wave_test_split3.txt").write_text("wave_0.avi 2 \nwave_1.avi 1 \nwave_2.av 1 \n")
    assert re.search(r"wave_test_split3.txt:3: 'wave_2.av 1' is not '<video>.avi 0\|1\|2'",
                     refused(capsys, out, "hmdb51", "--splits", splits))


def test_a_ucf101_test_list_with_class_indices_is_read_and_its_indices_checked(tmp_path, capsys):
    """Common copies of the official lists add the class index to testlist lines too: refused as a line cut short."""
    splits, out = ucf101_download(tmp_path)
    edit_lines(splits / "testlist01.txt",
               lambda lines: [f"{line} {UCF101_CLASSES.index(line.split('/')[0]) + 1}" for line in lines])
    assert prepare("ucf101", "--splits", splits, "--out", out) == 0
    capsys.readouterr()
    edit_lines(splits / "testlist01.txt", lambda lines: [lines[0].split()[0] + " 7", *lines[1:]])
    assert "but the line gives class '7'" in refused(capsys, tmp_path / "again", "ucf101", "--splits", splits)
