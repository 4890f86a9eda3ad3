"""Labels that must name the right class: class folders named by numbers (`0` ... `11`, sorted as text), the frame
folders extracted from them, annotation rows whose label is both a class name and another class's index; and a
video whose bytes are empty, which names its sample instead of decoding a file of its name in the working folder."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Video

from omniclip_hf import load_label_names
from omniclip_hf.training.data import VideoClassificationData, VideoClipDataset, load_annotation_file, load_folder
from omniclip_hf.training.frame_extraction import extract_frame_folders
from omniclip_hf.training.streaming import StreamingVideoClipDataset, load_streaming_dataset, stream_for_process

from .conftest import SHARED_DIR
from .test_training_streaming import write_shard

VIDEOS = SHARED_DIR / "videos"
CLIP = VIDEOS / "mmaction2_rawvideo_part_0.mp4"  # 1 s, 32 frames: cheap to extract
OTHER_CLIP = VIDEOS / "mmaction2_demo.mp4"
NUMBERS = [str(number) for number in range(12)]  # as text sorts them: 0, 1, 10, 11, 2, ...

pytestmark = pytest.mark.skipif(not CLIP.is_file(), reason=f"shared test videos not found at {VIDEOS}")


@pytest.fixture(scope="module")
def numeric_folders(tmp_path_factory) -> Path:
    """`root/<n>/clip_<n>.mp4` for n in 0..11: class folders named by numbers."""
    root = tmp_path_factory.mktemp("numbers") / "videos"
    for name in NUMBERS:
        (root / name).mkdir(parents=True)
        shutil.copy(CLIP, root / name / f"clip_{name}.mp4")
    return root


def names_by_folder(data: VideoClassificationData) -> dict[str, str]:
    """{folder of each row's video: the class name of its label}."""
    return {Path(video).parent.name: data.class_names[label]
            for video, label in zip(data.dataset["video"], data.dataset["label"])}


# ------------------------------------------------------------------------------------------ numeric class folders
def test_numeric_class_folders_get_their_own_names(numeric_folders):
    """The folders sort as text (`0`, `1`, `10`, ...) and each folder name was read as an index first: folder `10`
    had label 10, the class named `8`, and 10 of the 12 folders trained under another class's prompt, unsaid."""
    data = load_folder(numeric_folders)
    assert data.class_names == sorted(NUMBERS)  # the sorted folder names, as documented
    assert names_by_folder(data) == {name: name for name in NUMBERS}
    # A labels file in another order (here: numeric) maps each folder onto its name, wherever it is listed.
    in_numeric_order = load_folder(numeric_folders, NUMBERS)
    assert in_numeric_order.class_names == NUMBERS
    assert names_by_folder(in_numeric_order) == {name: name for name in NUMBERS}
    assert sorted(in_numeric_order.dataset["label"]) == list(range(12))


def test_a_class_folder_is_never_read_as_an_index(tmp_path):
    """Folder `1` with a class list that has no class `1`: it was the class at index 1 (`dog`), unsaid."""
    (tmp_path / "1").mkdir()
    shutil.copy(CLIP, tmp_path / "1" / "clip.mp4")
    with pytest.raises(ValueError, match=r"/1: the class folder '1' is not one of the 2 class names .* never by an "
                                         r"index") as excinfo:
        load_folder(tmp_path, ["cat", "dog"])
    assert "\n" not in str(excinfo.value)


# ------------------------------------------------------------------------------- the frame-extraction round trip
@pytest.mark.parametrize("labels_as_indices", [False, True], ids=["names", "with a labels file"])
def test_frame_folders_of_numeric_classes_keep_their_names(numeric_folders, tmp_path, labels_as_indices):
    """examples/extract_frames.py wrote the folders' wrong names into its list, and reading it back (index first
    again) shifted them once more. With `--labels_file` it writes indices, which read back as the classes named by
    those numbers (a label that is a class name is that class): those lists are written with names."""
    videos = load_folder(numeric_folders)
    out = tmp_path / "frames"
    result = extract_frame_folders(videos, numeric_folders, out, "numbers.csv", labels_as_indices=labels_as_indices,
                                   max_fps=2)
    assert (result.num_rows, result.undecodable) == (12, [])
    class_names = videos.class_names if labels_as_indices else load_label_names(result.labels_file)
    frames = load_annotation_file(result.annotation_file, class_names, data_root=out)
    assert frames.class_names == videos.class_names  # same classes, same indices as training from the videos
    assert names_by_folder(frames) == names_by_folder(videos) == {name: name for name in NUMBERS}
    assert labels_by_folder(frames) == labels_by_folder(videos)


def labels_by_folder(data: VideoClassificationData) -> dict[str, int]:
    return {Path(video).parent.name: label for video, label in zip(data.dataset["video"], data.dataset["label"])}


# ------------------------------------------------------------------- annotation labels that are names and numbers
def test_a_label_that_is_a_class_name_is_that_class_with_one_warning(tmp_path, caplog):
    """Classes named by numbers, listed in another order: `10` is both the class named `10` (index 2) and index 10's
    class. It was read as the index, silently. Decided: the name wins (what class folders and extract_frames.py's
    lists mean by it), a number that names no class is an index, and one warning names the first such row."""
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("0\n1\n10\n11\n2\n")
    annotation = tmp_path / "train.csv"
    annotation.write_text("a.mp4,10\nb.mp4,2\nc.mp4,1\n")
    with caplog.at_level(logging.WARNING, logger="omniclip_hf.training.data"):
        data = load_annotation_file(annotation, load_label_names(labels_file))
    assert [data.class_names[label] for label in data.dataset["label"]] == ["10", "2", "1"]
    assert data.dataset["label"] == [2, 4, 1]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{annotation}:2: 1 label is both a class name and the index of another class "
                                  "(e.g. '2': the class named '2', not the class at index 2, '10')")


def test_numbers_that_name_no_class_are_indices(tmp_path, caplog):
    annotation = tmp_path / "train.txt"
    annotation.write_text("a.mp4 1\nb.mp4 0\n")
    with caplog.at_level(logging.WARNING, logger="omniclip_hf.training.data"):
        data = load_annotation_file(annotation, ["cat", "dog"])
    assert data.dataset["label"] == [1, 0] and not caplog.records
    # Indices that are also the names at the same places read alike: nothing to warn about.
    annotation.write_text("a.mp4 1\nb.mp4 0\nc.mp4 2\n")
    with caplog.at_level(logging.WARNING, logger="omniclip_hf.training.data"):
        data = load_annotation_file(annotation, ["0", "1", "2"])
    assert data.dataset["label"] == [1, 0, 2] and not caplog.records


def test_classes_named_by_the_rows_are_read_by_name(tmp_path):
    """Without a labels file the classes are the rows' own labels, sorted: `1` was read as the index 1 (`x`)."""
    annotation = tmp_path / "train.csv"
    annotation.write_text("a.mp4,x\nb.mp4,1\nc.mp4,y\n")
    data = load_annotation_file(annotation)
    assert data.class_names == ["1", "x", "y"]
    assert [data.class_names[label] for label in data.dataset["label"]] == ["x", "1", "y"]


# ------------------------------------------------------------------------------------------- empty video members
class Recording:
    """A stand-in video processor that records what it is given and decodes nothing."""

    def __init__(self):
        self.given = []

    def __call__(self, video, train, generator, return_tensors, **kwargs):
        self.given.append(video)
        return {"pixel_values_videos": torch.zeros(1, 1, 3, 2, 2)}


def test_an_empty_video_cell_is_undecodable_and_named_not_a_file_of_its_name(tmp_path, monkeypatch):
    """`bytes or path` took b"" for missing: the cell's path `empty.mp4` went to the decoder, which read a file of that
    name in the working folder and trained on it under the row's label."""
    monkeypatch.chdir(tmp_path)  # built here while no such file exists, as a Hub dataset's cells are
    features = Features({"video": Video(decode=False), "label": ClassLabel(names=["a", "b"])})
    dataset = Dataset.from_dict({"video": [{"bytes": CLIP.read_bytes(), "path": "good.mp4"},
                                           {"bytes": b"", "path": "empty.mp4"}], "label": [0, 1]}, features=features)
    assert dataset[1]["video"] == {"bytes": b"", "path": "empty.mp4"}
    shutil.copy(OTHER_CLIP, tmp_path / "empty.mp4")  # a real clip of that name in the working folder
    processor = Recording()
    items = VideoClipDataset(VideoClassificationData(dataset, ["a", "b"], "someone/clips"), processor, train=False)
    good, empty = items[0], items[1]
    assert good["labels"] == 0 and "error" not in good
    assert empty == {"index": 1, "error": "empty.mp4: the video is empty (0 bytes), so it cannot be decoded; "
                                          "re-create the sample's video or remove the sample"}
    assert [type(video) for video in processor.given] == [bytes]  # the path was never handed over
    with pytest.raises(ValueError, match=r"^empty.mp4: the video is empty \(0 bytes\)"):
        VideoClipDataset(VideoClassificationData(dataset, ["a", "b"], "x"), Recording(), train=False, strict=True)[1]


def streamed_items(folder: Path, processor) -> list[dict]:
    data = stream_for_process(load_streaming_dataset(folder, ["a", "b"]), 0, 1, seed=0, shuffle_buffer=0)
    return list(StreamingVideoClipDataset(data, processor, batch_size=2))


def test_an_empty_shard_member_is_undecodable_and_names_its_sample(tmp_path, monkeypatch):
    """A zero-byte `<key>.mp4` in a shard: its member name went to the decoder as a path ("no such file")."""
    shards = tmp_path / "shards"
    shards.mkdir()
    shard = write_shard(shards / "train-00000.tar", [("good.mp4", CLIP.read_bytes()), ("good.cls", b"0"),
                                                     ("empty.mp4", b""), ("empty.cls", b"1")])
    monkeypatch.chdir(tmp_path)  # no file named like a member here: see the next test for one
    processor = Recording()
    items = streamed_items(shards, processor)
    assert [item.get("labels") for item in items] == [0, None]
    assert items[1]["error"] == (f"{shard}: empty.mp4: the video is empty (0 bytes), so it cannot be decoded; "
                                 "re-create the sample's video or remove the sample")
    assert [type(video) for video in processor.given] == [bytes]


def test_shard_members_are_never_read_from_a_file_of_their_name_in_the_working_folder(tmp_path, monkeypatch):
    shards = tmp_path / "shards"
    shards.mkdir()
    shard = write_shard(shards / "train-00000.tar", [("good.mp4", CLIP.read_bytes()), ("good.cls", b"0"),
                                                     ("empty.mp4", b""), ("empty.cls", b"1")])
    monkeypatch.chdir(tmp_path)
    for name in ("good.mp4", "empty.mp4"):
        shutil.copy(OTHER_CLIP, tmp_path / name)  # real clips named like the members, in the working folder
    processor = Recording()
    items = streamed_items(shards, processor)
    assert processor.given == [CLIP.read_bytes()]  # the member's own bytes, not the working folder's file
    assert items[1]["error"].startswith(f"{shard}: empty.mp4: the video is empty (0 bytes)")


def test_a_hub_stream_s_videos_are_never_read_from_a_file_of_their_name_in_the_working_folder(tmp_path, monkeypatch):
    """A Hub WebDataset repository streams through datasets' `Video` feature: cast to `Video(decode=False)`, a cell's
    bytes were swapped for its bare file name whenever a file of that name sat in the working folder."""
    import datasets

    shards = tmp_path / "hub"
    shards.mkdir()
    write_shard(shards / "train-00000.tar", [("s1.mp4", CLIP.read_bytes()), ("s1.cls", b"0")])
    local = datasets.load_dataset("webdataset", data_files={"train": [str(shards / "train-00000.tar")]},
                                  split="train", streaming=True)
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: local)  # what the Hub would give
    monkeypatch.chdir(tmp_path)
    shutil.copy(OTHER_CLIP, tmp_path / "s1.mp4")
    data = load_streaming_dataset("owner/videos", ["a", "b"], video_column="mp4", label_column="cls")
    row = next(iter(data.stream))
    assert row["video"]["bytes"] == CLIP.read_bytes() and row["label"] == 0
