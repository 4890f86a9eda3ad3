"""examples/prepare_data.py on miniature copies of the official downloads, and the recipes' paths matching it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from .conftest import REPO_ROOT

CONFIGS = sorted((REPO_ROOT / "examples" / "configs").glob("*.yaml"))


def prepare(*arguments) -> int:
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare_data", REPO_ROOT / "examples" / "prepare_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(argument) for argument in arguments])


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def loaded(annotation: Path, dataset: str, videos: Path):
    from omniclip_hf.training.data import load_video_dataset

    data = load_video_dataset(annotation, labels_file=REPO_ROOT / "labels" / f"{dataset}.txt", data_root=videos)
    return [(Path(video).relative_to(videos).as_posix(), data.class_names[label]) for video, label in
            zip(data.dataset["video"], data.dataset["label"])]


HMDB51_CLASSES = (REPO_ROOT / "labels" / "hmdb51.txt").read_text().split()


def hmdb51_download(tmp_path, videos_of=None) -> tuple[Path, Path]:
    """Split files for every class of labels/hmdb51.txt (3 videos each unless `videos_of` says) and the videos."""
    splits, out = tmp_path / "testTrainMulti_7030_splits", tmp_path / "data" / "hmdb51"
    splits.mkdir(parents=True)
    for class_name in HMDB51_CLASSES:
        videos = (videos_of or {}).get(class_name, [f"{class_name}_{i}.avi" for i in range(3)])
        for split in (1, 2, 3):
            kinds = ("1", "2", "0") if split == 1 else ("2", "1", "1")
            lines = [f"{video} {kind} " for video, kind in zip(videos, kinds)]
            (splits / f"{class_name}_test_split{split}.txt").write_text("\n".join(lines) + "\n")
        for video in videos:
            touch(out / "videos" / class_name / video)
    return splits, out


def test_hmdb51_split_files(tmp_path):
    classes = {"brush_hair": ["a.avi", "b.avi", "c.avi"], "kick_ball": ["d.avi", "e.avi", "f.avi"]}
    splits, out = hmdb51_download(tmp_path, classes)
    assert prepare("hmdb51", "--splits", splits, "--out", out) == 0

    def rows_of(name):  # the two classes above, of the 51
        return [row for row in loaded(out / name, "hmdb51", out / "videos") if row[1] in classes]

    assert rows_of("hmdb51_train_split_1_videos.txt") == [("brush_hair/a.avi", "brush_hair"),
                                                         ("kick_ball/d.avi", "kick_ball")]
    assert rows_of("hmdb51_val_split_1_videos.txt") == [("brush_hair/b.avi", "brush_hair"),
                                                       ("kick_ball/e.avi", "kick_ball")]
    assert len(rows_of("hmdb51_train_split_2_videos.txt")) == 4
    assert len(loaded(out / "hmdb51_val_split_3_videos.txt", "hmdb51", out / "videos")) == len(HMDB51_CLASSES)
    # The label index is the line of labels/hmdb51.txt (kick_ball is not X-CLIP's index 22 but this list's).
    index = HMDB51_CLASSES.index("kick_ball")
    assert f"kick_ball/d.avi {index}\n" in (out / "hmdb51_train_split_1_videos.txt").read_text()


def error_line(capsys) -> str:
    """The run's stderr, checked to be one `error:` line (no traceback)."""
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("missing, message", [
    # Only 2 of the 51 classes extracted: the splits would silently be a 2-class benchmark.
    ([f"{name}_test_split{split}.txt" for name in HMDB51_CLASSES[2:] for split in (1, 2, 3)],
     r"147 of the 153 split files .* are missing \(catch_test_split1.txt, "),
    # One class's split-2 file missing: split 2 would have 50 classes, its numbers not comparable.
    (["cartwheel_test_split2.txt"], r"1 of the 153 split files .* are missing \(cartwheel_test_split2.txt\)"),
])
def test_hmdb51_refuses_missing_split_files(tmp_path, capsys, missing, message):
    splits, out = hmdb51_download(tmp_path)
    for name in missing:
        (splits / name).unlink()
    assert prepare("hmdb51", "--splits", splits, "--out", out) == 2
    assert re.search(message, error_line(capsys))
    assert not list(out.glob("*.txt"))  # nothing written


@pytest.mark.parametrize("text, message", [
    ("cartwheel_0.avi 1\nx.avi 3\ncartwheel_1.avi 2\n", r"cartwheel_test_split1.txt:2: 'x.avi 3' is not"),
    ("cartwheel_0.avi 1\ncartwheel_1.avi\n", r"cartwheel_test_split1.txt:2: 'cartwheel_1.avi' is not"),
    # Every line readable, but no test video: the class would silently be missing from split 1's test list.
    ("cartwheel_0.avi 1\ncartwheel_1.avi 0\n", r"cartwheel_test_split1.txt: no video marked 2 \(val\)"),
])
def test_hmdb51_refuses_lines_it_cannot_read(tmp_path, capsys, text, message):
    splits, out = hmdb51_download(tmp_path)
    (splits / "cartwheel_test_split1.txt").write_text(text)
    assert prepare("hmdb51", "--splits", splits, "--out", out) == 2
    assert re.search(message, error_line(capsys))


def test_kinetics400_csv(tmp_path, capsys):
    annotations, out = tmp_path / "k400" / "annotations", tmp_path / "data" / "kinetics400"
    annotations.mkdir(parents=True)
    header = "label,youtube_id,time_start,time_end,split,is_cc\n"
    (annotations / "train.csv").write_text(header + "air drumming,-0abc,84,94,train,0\n"
                                           '"passing American football (in game)",xyz,3,13,train,0\n'
                                           "air drumming,gone,0,10,train,0\n")
    (annotations / "validate.csv").write_text(header + "abseiling,val1,12,22,val,0\n")
    for clip in ("train/-0abc_000084_000094.mp4", "train/xyz_000003_000013.mp4", "val/val1_000012_000022.mp4"):
        touch(out / "videos" / clip)
    assert prepare("kinetics400", "--annotations", annotations, "--out", out, "--allow_missing") == 0
    assert "left out 1 of 3 videos" in capsys.readouterr().out
    assert loaded(out / "kinetics400_train_list_videos.txt", "kinetics400", out / "videos") == [
        ("train/-0abc_000084_000094.mp4", "air drumming"),
        ("train/xyz_000003_000013.mp4", "passing American football (in game)"),
    ]
    assert loaded(out / "kinetics400_val_list_videos.txt", "kinetics400", out / "videos") == [
        ("val/val1_000012_000022.mp4", "abseiling")]


def test_ssv2_json(tmp_path, capsys):
    annotations, out = tmp_path / "ssv2" / "labels", tmp_path / "data" / "ssv2"
    annotations.mkdir(parents=True)
    record = {"id": "78687", "label": "holding potato next to vicks vaporub bottle",
              "template": "Holding [something] next to [something]", "placeholders": ["potato", "bottle"]}
    (annotations / "train.json").write_text(json.dumps([record]))
    other = {**record, "id": "1", "template": "Approaching [something] with your camera"}
    (annotations / "validation.json").write_text(json.dumps([other]))
    touch(out / "videos" / "78687.webm")
    touch(out / "videos" / "1.webm")
    assert prepare("ssv2", "--annotations", annotations, "--out", out) == 0
    expected = [("78687.webm", "Holding something next to something")]
    assert loaded(out / "train.jsonl", "ssv2", out / "videos") == expected
    assert loaded(out / "validation.jsonl", "ssv2", out / "videos") == [
        ("1.webm", "Approaching something with your camera")]
    # An unknown class is one error line naming the file, not a silent index.
    (annotations / "train.json").write_text(json.dumps([{**record, "template": "Juggling [something]"}]))
    assert prepare("ssv2", "--annotations", annotations, "--out", out) == 2
    assert re.search(r"train.json id 78687: class 'Juggling \[something\]' is not in labels/", capsys.readouterr().err)


KINETICS_HEADER = "label,youtube_id,time_start,time_end,split,is_cc\n"


def kinetics400_download(tmp_path, val_rows: str) -> tuple[Path, Path]:
    annotations, out = tmp_path / "k400" / "annotations", tmp_path / "data" / "kinetics400"
    annotations.mkdir(parents=True)
    (annotations / "train.csv").write_text(KINETICS_HEADER + "abseiling,abc,1,11,train,0\n")
    (annotations / "val.csv").write_text(val_rows)
    for clip in ("train/abc_000001_000011.mp4", "val/def_000002_000012.mp4", "val/ghi_000003_000013.mp4"):
        touch(out / "videos" / clip)
    return annotations, out


def test_kinetics400_drops_a_clip_listed_twice_and_refuses_two_labels(tmp_path, capsys):
    rows = "abseiling,def,2,12,val,0\nabseiling,ghi,3,13,val,0\nabseiling,def,2.0,12,val,0\n"
    annotations, out = kinetics400_download(tmp_path, KINETICS_HEADER + rows)
    assert prepare("kinetics400", "--annotations", annotations, "--out", out) == 0
    assert "val.csv: dropped 1 duplicate rows" in capsys.readouterr().out
    assert loaded(out / "kinetics400_val_list_videos.txt", "kinetics400", out / "videos") == [
        ("val/def_000002_000012.mp4", "abseiling"), ("val/ghi_000003_000013.mp4", "abseiling")]
    # The same clip under another class cannot be resolved by dropping a row: refused, naming both lines.
    (annotations / "val.csv").write_text(KINETICS_HEADER + rows + "air drumming,def,2,12,val,0\n")
    assert prepare("kinetics400", "--annotations", annotations, "--out", out) == 2
    assert re.search(r"val.csv:5: val/def_000002_000012.mp4 is listed again with another label \(first at line 2\)",
                     error_line(capsys))


@pytest.mark.parametrize("text, message", [
    (KINETICS_HEADER + "abseiling,def,2,,val,0\n", r"val.csv:2: empty time_end"),
    (KINETICS_HEADER + "abseiling,def,2,12.x,val,0\n", r"val.csv:2: time_end '12.x' is not a number"),
    (KINETICS_HEADER + "abseiling,def,2\n", r"val.csv:2: empty time_end"),
    ("youtube_id,time_start,time_end\ndef,2,12\n", r"val.csv: no column 'label' in the header line"),
    (KINETICS_HEADER, r"val.csv: holds no rows"),
    ("\ufeff" + KINETICS_HEADER + "juggling,def,2,12,val,0\n", r"val.csv:2: class 'juggling' is not in labels/"),
])
def test_kinetics400_bad_rows_are_one_line_naming_file_and_row(tmp_path, capsys, text, message):
    annotations, out = kinetics400_download(tmp_path, text)
    assert prepare("kinetics400", "--annotations", annotations, "--out", out) == 2
    assert re.search(message, error_line(capsys))


@pytest.mark.parametrize("content, message", [
    (b'{"1": {"id": "1"}}', r"train.json: expected a list of \{'id', 'template'\} records, found a JSON dict"),
    (b'[{"id": "1", "template": "Approaching [something]"}, "x"]', r"train.json: record 2 of 2 is 'x'"),
    (b'[{"id": "1"}]', r"train.json: record 1 of 1 has no 'template'"),
    (b'[{"id": "1", "template": 5}]', r"train.json id 1: class 5 is not a class name"),
    (b'[{"id": "1"}\n', r"train.json: not valid JSON \(Expecting ',' delimiter: line 2"),
    (b"\xff\xfe[", r"train.json: not UTF-8 text"),
    (b"[]", r"train.json: the list is empty"),  # was blamed on --videos
])
def test_ssv2_bad_annotation_files_are_one_line_naming_the_file(tmp_path, capsys, content, message):
    annotations, out = tmp_path / "ssv2" / "labels", tmp_path / "data" / "ssv2"
    annotations.mkdir(parents=True)
    record = {"id": "1", "template": "Approaching [something] with your camera"}
    (annotations / "validation.json").write_text(json.dumps([record]))
    (annotations / "train.json").write_bytes(content)
    touch(out / "videos" / "1.webm")
    assert prepare("ssv2", "--annotations", annotations, "--out", out) == 2
    assert re.search(message, error_line(capsys))
    assert not (out / "validation.jsonl").exists()  # nothing written


@pytest.mark.parametrize("out", ["afile", "afile/data"])
def test_out_on_a_file_is_refused_before_reading(tmp_path, capsys, out):
    (tmp_path / "afile").write_text("mine\n")
    assert prepare("ssv2", "--annotations", tmp_path / "nothere", "--out", tmp_path / out) == 2
    assert re.search(r"--out .*afile.*: .*afile is a file; give a folder", error_line(capsys))
    assert (tmp_path / "afile").read_text() == "mine\n"


# ----------------------------------------------------------------------------------------------------------------
# One path for each thing: recipes, labels/, docs/data.md
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_recipes_use_the_shipped_label_lists_and_the_files_docs_data_md_writes(config):
    recipe = yaml.safe_load(config.read_text())
    label_files = [recipe["labels_file"], *(recipe.get("eval_labels_file") or [])]
    for label_file in label_files:
        assert (REPO_ROOT / label_file).is_file(), f"{config.name}: {label_file} is not in the repository"
    guide = (REPO_ROOT / "docs" / "data.md").read_text()
    data_files = [recipe["train_data"], *recipe["eval_data"]]
    roots = [recipe["data_root"], *([recipe["eval_data_root"]] if "eval_data_root" in recipe else [])]
    for path in data_files + roots:
        assert path in guide, f"{config.name}: docs/data.md never produces {path}"


def test_docs_name_label_lists_only_at_labels():
    # Every mention of a label list in the README, the docs and the recipes points at labels/ in this repository.
    texts = [REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md"), *CONFIGS, REPO_ROOT / "examples" / "train.py"]
    for path in texts:
        for match in re.finditer(r"[\w./-]*(?:hmdb51|ucf101|kinetics400|ssv2)\.txt", path.read_text()):
            assert match.group(0).startswith("labels/"), f"{path.name}: {match.group(0)}"
