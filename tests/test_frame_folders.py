"""Frame folders: a video decoded once into JPEGs (examples/extract_frames.py), read back like the video file."""

from __future__ import annotations

import errno
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.io
from torchvision.transforms.v2 import functional as tvF

from omniclip_hf import OmniCLIPVideoProcessor
from omniclip_hf.motion_benchmark.motion_data import write_video
from omniclip_hf.processing_omniclip import load_label_names
from omniclip_hf.training.data import VideoClipDataset, collate_video_batch, load_annotation_file
from omniclip_hf.training.frame_extraction import extract_frame_folders
from omniclip_hf.training.loop import build_video_processor
from omniclip_hf.video_decoding import read_video_pyav
from omniclip_hf.video_frame_folders import MANIFEST_NAME, FrameFolderOutputError, read_frame_folder, write_frame_folder

from .conftest import REPO_ROOT, SHARED_DIR

VIDEOS = SHARED_DIR / "videos"
ROTATED = VIDEOS / "askanything_yoga_rotated90.mp4"  # stored 568x320, shown 320x568
AVI = VIDEOS / "mmaction2_tests_test.avi"  # decode-order timestamps: frames are counted in output order
# JPEG at quality 90 moves a 0-255 pixel by about 1.5 on average; other frames of these clips are much further.
JPEG_MEAN_ERROR = 3.0


@pytest.fixture(scope="module")
def frame_folders(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("frames")
    folders = {}
    for video in (ROTATED, AVI):
        write_frame_folder(video, out / video.stem)
        folders[video.name] = out / video.stem
    return folders


def resized_like_extraction(frames: torch.Tensor) -> torch.Tensor:
    if min(frames.shape[-2:]) <= 256:  # never up
        return frames
    return tvF.resize(frames, [256], interpolation=tvF.InterpolationMode.BICUBIC, antialias=True)


@pytest.mark.parametrize("video", [ROTATED, AVI], ids=lambda path: path.name)
def test_frame_i_is_the_videos_frame_i_upright_at_the_short_side(frame_folders, video):
    folder = frame_folders[video.name]
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    picks = [0, 37, 90, 150]
    decoded, _, _, info = read_video_pyav(video, lambda total: picks + [total - 1], threading=False)
    stored, times, _, stored_info = read_frame_folder(folder, lambda total: picks + [total - 1])
    assert manifest["num_frames"] == info["total_num_frames"] == stored_info["total_num_frames"]
    assert stored_info["fps"] == pytest.approx(info["fps"])
    assert times[1] == pytest.approx(37 / info["fps"])
    got = assert_stored_frames_are(stored, decoded)
    assert min(got.shape[-2:]) == min(256, *decoded.shape[1:3])
    if video == ROTATED:
        assert got.shape[-2] > got.shape[-1]  # portrait, as shown


def assert_stored_frames_are(stored: np.ndarray, decoded: np.ndarray) -> torch.Tensor:
    """Each stored frame is its decoded frame, resized, within JPEG's error, and nearer it than any other."""
    expected = resized_like_extraction(torch.from_numpy(decoded).permute(0, 3, 1, 2))
    got = torch.from_numpy(np.ascontiguousarray(stored)).permute(0, 3, 1, 2)
    assert got.shape == expected.shape
    errors = (got[:, None].float() - expected[None].float()).abs().mean(dim=(2, 3, 4))  # (stored, decoded)
    assert errors.diagonal().max() < JPEG_MEAN_ERROR
    assert torch.equal(errors.argmin(dim=1), torch.arange(len(errors))), errors
    return got


def test_max_fps_keeps_every_step_th_frame_and_a_folder_keeps_its_settings(tmp_path):
    manifest = write_frame_folder(ROTATED, tmp_path / "clip", max_fps=10)  # 30 fps: every third frame
    assert (manifest["frame_step"], manifest["num_frames"], manifest["fps"]) == (3, 100, 10.0)
    assert len(list((tmp_path / "clip").glob("*.jpg"))) == 100
    picks = [0, 12, 30, 50, 99]
    stored, times, _, _ = read_frame_folder(tmp_path / "clip", lambda total: picks)
    decoded, video_times, _, _ = read_video_pyav(ROTATED, lambda total: [3 * pick for pick in picks], threading=False)
    assert_stored_frames_are(stored, decoded)
    assert times == pytest.approx(video_times)
    # Run again with other settings: these frames are not taken for what was asked.
    with pytest.raises(ValueError, match="was extracted with short_side=256, jpeg_quality=90, max_fps=10"):
        write_frame_folder(ROTATED, tmp_path / "clip")


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_the_processor_reads_a_frame_folder_as_it_decodes_the_video(frame_folders, train):
    processor = build_video_processor(224, 8)
    outputs = {}
    for source in (ROTATED, frame_folders[ROTATED.name]):
        outputs[source] = processor(
            str(source), train=train, generator=torch.Generator().manual_seed(5), return_tensors="pt",
            return_metadata=True,
        )
    from_video, from_folder = outputs.values()
    video_metadata, folder_metadata = from_video["video_metadata"][0], from_folder["video_metadata"][0]
    assert folder_metadata.video_backend == "frames"
    assert folder_metadata.frames_indices == video_metadata.frames_indices
    assert folder_metadata.total_num_frames == video_metadata.total_num_frames
    assert from_folder["pixel_values_videos"].shape == from_video["pixel_values_videos"].shape
    # Same generator: the same frames, crop, flip and jitter; only JPEG (and, in evaluation, resizing from 256 px
    # rather than 320 px) tell them apart. A different draw is far off.
    difference = (from_folder["pixel_values_videos"] - from_video["pixel_values_videos"]).abs().mean()
    assert difference < 0.06
    if train:
        other_draw = processor(str(ROTATED), train=True, generator=torch.Generator().manual_seed(6), return_tensors="pt")
        assert (other_draw["pixel_values_videos"] - from_video["pixel_values_videos"]).abs().mean() > 5 * difference


def damaged_copy(folder: Path, tmp_path: Path, damage) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    damage(copy)
    return copy


@pytest.mark.parametrize(
    "damage, error, message",
    [
        (lambda folder: (folder / MANIFEST_NAME).unlink(), ValueError, "not a complete frame folder (no frames.json)"),
        (lambda folder: (folder / "000007.jpg").unlink(), FileNotFoundError, "frame file 000007.jpg is missing"),
        (lambda folder: (folder / "000007.jpg").write_bytes(b"\xff\xd8 cut"), ValueError,
         "000007.jpg is not a readable"),
        (lambda folder: (folder / MANIFEST_NAME).write_text('{"format": "omniclip-hf frame folder", "version": 99}'),
         ValueError, "format version 99"),
        (lambda folder: (folder / MANIFEST_NAME).write_text(
            (folder / MANIFEST_NAME).read_text().replace('"fps": 25.0', '"fps": "25"')), ValueError, "fps='25'"),
    ],
    ids=["unfinished", "missing-frame", "corrupt-frame", "newer-version", "fps-not-a-number"],
)
def test_a_damaged_frame_folder_is_reported_in_one_line_naming_it(frame_folders, tmp_path, damage, error, message):
    folder = damaged_copy(frame_folders[AVI.name], tmp_path, damage)
    processor = OmniCLIPVideoProcessor(
        num_frames=164, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    with pytest.raises(error, match=re.escape(message)) as raised:
        processor(str(folder), return_tensors="pt")
    assert str(folder) in str(raised.value) and "\n" not in str(raised.value)


def test_training_skips_and_counts_a_damaged_frame_folder(frame_folders, tmp_path):
    damaged = damaged_copy(frame_folders[AVI.name], tmp_path, lambda folder: (folder / "000000.jpg").unlink())
    annotation = tmp_path / "train.csv"
    annotation.write_text(f"path,label\n{frame_folders[AVI.name]},a\n{damaged},b\n")
    dataset = VideoClipDataset(load_annotation_file(annotation), build_video_processor(32, 164), train=True)
    batch = collate_video_batch([dataset[0], dataset[1]])
    assert batch["pixel_values_videos"].shape[0] == 1
    assert len(batch["errors"]) == 1 and "000000.jpg is missing" in batch["errors"][0]


def test_an_interrupted_extraction_leaves_nothing_and_a_second_run_completes(tmp_path, monkeypatch):
    folder = tmp_path / "clip"
    encode = torchvision.io.encode_jpeg
    calls = []

    def stopped_after_five_frames(*args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return encode(*args, **kwargs)

    monkeypatch.setattr(torchvision.io, "encode_jpeg", stopped_after_five_frames)
    with pytest.raises(KeyboardInterrupt):
        write_frame_folder(AVI, folder)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(torchvision.io, "encode_jpeg", encode)
    # A run killed outright leaves its `.partial` folder: the next run starts that video again.
    (tmp_path / "clip.partial").mkdir()
    (tmp_path / "clip.partial" / "000000.jpg").write_bytes(b"junk")
    manifest = write_frame_folder(AVI, folder)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip"]
    assert len(list(folder.glob("*.jpg"))) == manifest["num_frames"] == 164
    # Complete: left as it is. Another video's frames there are not taken for this one's.
    before = (folder / "000000.jpg").stat().st_mtime_ns
    assert write_frame_folder(AVI, folder) == manifest
    assert (folder / "000000.jpg").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="already holds the frames of another video"):
        write_frame_folder(VIDEOS / "mmaction2_tests_test.mp4", folder)


def run_extract_frames(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "extract_frames.py"), *map(str, arguments)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "TQDM_DISABLE": "1"},
    )


def test_extract_frames_writes_an_annotation_that_trains_with_the_same_labels(tmp_path):
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("yoga\ncleaning pool\n")
    truncated = tmp_path / "truncated.avi"  # its first 40%: decoding stops early, which only the count shows
    truncated.write_bytes(AVI.read_bytes()[: AVI.stat().st_size * 4 // 10])
    annotation = tmp_path / "train.txt"  # a split file with class indices, as HMDB51/UCF101/Kinetics ship them
    annotation.write_text(
        f"askanything_yoga.mp4 0\nmmaction2_tests_test.avi 1\nmissing.mp4 1\n{truncated} 0\nmmaction2_demo.mp4 1\n"
    )
    out = tmp_path / "frames"
    arguments = ["--data", annotation, "--labels_file", labels_file, "--data_root", VIDEOS, "--out", out]
    result = run_extract_frames(*arguments, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "WARNING: 2 of 5 videos could not be decoded" in result.stdout
    undecodable = (out / "train.undecodable.txt").read_text().splitlines()
    assert [line.split(": ")[0] for line in undecodable] == [str(VIDEOS / "missing.mp4"), str(truncated)]
    assert "is truncated" in undecodable[1]
    assert sorted(path.name for path in out.iterdir()) == [
        "askanything_yoga", "mmaction2_demo", "mmaction2_tests_test", "train.csv", "train.undecodable.txt"
    ]  # nothing of the truncated one
    assert f"--train_data {out / 'train.csv'} --data_root {out} --labels_file {labels_file}" in result.stdout

    data = load_annotation_file(out / "train.csv", ["yoga", "cleaning pool"], data_root=out)
    assert data.dataset["video"] == [str(out / name) for name in ("askanything_yoga", "mmaction2_tests_test",
                                                                  "mmaction2_demo")]
    assert data.dataset["label"] == [0, 1, 1]
    dataset = VideoClipDataset(data, build_video_processor(32, 8), train=True, strict=True)
    assert collate_video_batch([dataset[index] for index in range(3)])["pixel_values_videos"].shape == (3, 8, 3, 32, 32)

    # A second run (the missing video now left out; in this process) skips the complete folders and drops the
    # stale list.
    annotation.write_text("askanything_yoga.mp4 0\nmmaction2_tests_test.avi 1\nmmaction2_demo.mp4 1\n")
    first_frame = out / "mmaction2_demo" / "000000.jpg"
    before = first_frame.stat().st_mtime_ns
    data = load_annotation_file(annotation, ["yoga", "cleaning pool"], data_root=VIDEOS)
    result = extract_frame_folders(data, VIDEOS, out, "train.csv", labels_as_indices=True)
    assert (result.num_rows, result.undecodable) == (3, [])
    assert first_frame.stat().st_mtime_ns == before
    assert not (out / "train.undecodable.txt").exists()
    # Other settings than the folders were made with: the run stops, rather than list the videos as undecodable.
    (out / "train.csv").unlink()
    with pytest.raises(FrameFolderOutputError, match="was extracted with short_side=256"):
        extract_frame_folders(data, VIDEOS, out, "train.csv", labels_as_indices=True, short_side=128)
    assert not (out / "train.csv").exists() and not (out / "train.undecodable.txt").exists()


def test_extract_frames_refuses_two_videos_that_would_share_a_folder(tmp_path):
    annotation = tmp_path / "train.csv"
    annotation.write_text("path,label\nmmaction2_tests_test.mp4,a\nmmaction2_tests_test.avi,b\n")
    result = run_extract_frames("--data", annotation, "--data_root", VIDEOS, "--out", tmp_path / "frames")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {VIDEOS / 'mmaction2_tests_test.mp4'} and {VIDEOS / 'mmaction2_tests_test.avi'} would both be "
        f"extracted to {tmp_path / 'frames' / 'mmaction2_tests_test'}: rename one of them first."
    ]
    assert not (tmp_path / "frames").exists()


def test_a_full_disk_stops_the_extraction_rather_than_skip_every_video(tmp_path, monkeypatch):
    annotation = tmp_path / "train.csv"
    annotation.write_text("path,label\nmmaction2_tests_test.avi,a\nmmaction2_demo.mp4,b\n")
    data = load_annotation_file(annotation, data_root=VIDEOS)
    write_bytes = Path.write_bytes
    calls = []

    def disk_fills_after_three_frames(path, content):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(path, content)

    monkeypatch.setattr(Path, "write_bytes", disk_fills_after_three_frames)
    out = tmp_path / "frames"
    with pytest.raises(FrameFolderOutputError, match="cannot write .*000003.jpg: No space left on device"):
        extract_frame_folders(data, VIDEOS, out, "train.csv", labels_as_indices=False)
    assert list(out.iterdir()) == []  # no folder, no .partial, no annotation file


def tiny_class_folders(root: Path, videos_per_class: dict[str, int]) -> Path:
    """`root/<class>/<n>.mp4`: 8-frame 32x32 clips, extracted in milliseconds."""
    rng = np.random.default_rng(0)
    for name, count in videos_per_class.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            write_video(root / name / f"{index:05d}.mp4", rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8))
    return root


def extract_frames_here(capsys, monkeypatch, *arguments: str) -> tuple[int, str, str]:
    """`examples/extract_frames.py ARGUMENTS` (exit status, stdout, stderr), run in this process: seconds faster."""
    monkeypatch.setattr(sys, "argv", ["extract_frames.py", *map(str, arguments)])
    monkeypatch.setenv("TQDM_DISABLE", "1")
    try:
        runpy.run_path(str(REPO_ROOT / "examples" / "extract_frames.py"), run_name="__main__")
        status = 0
    except SystemExit as exit:
        status = exit.code
    stdout, stderr = capsys.readouterr()
    return status, stdout, stderr


def files_under(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_extract_frames_never_writes_over_the_annotation_file_it_reads(tmp_path, capsys, monkeypatch):
    # A copy of a training folder whose train.csv lists its videos, extracted into that folder: OUT/train.csv is the
    # file being read. Replacing it would lose its rows (and a rerun then reads frame folders as videos).
    data = tiny_class_folders(tmp_path / "data", {"a": 2, "b": 1})
    annotation = data / "train.csv"
    annotation.write_text("".join(f"{video.relative_to(data).as_posix()},{video.parent.name}\n"
                                  for video in sorted(data.glob("*/*.mp4"))))
    before = files_under(data)
    status, stdout, stderr = extract_frames_here(capsys, monkeypatch, "--data", annotation, "--out", data,
                                                 "--workers", 1)
    assert status == 2, stdout
    assert stderr.strip().splitlines() == [
        f"error: --out {data} would write its list of frame folders over {annotation}, the annotation file being "
        "extracted (--data): pick another --out."
    ]
    assert files_under(data) == before and sorted(path.name for path in data.iterdir()) == ["a", "b", "train.csv"]
    # Nor over a file of the user's that is not an earlier extraction's list (a split file beside its own CSV).
    split = data / "train.txt"
    split.write_text("a/00000.mp4 0\nb/00000.mp4 1\n")
    with pytest.raises(ValueError, match=re.escape(
        f"{annotation} already exists and is not an earlier extraction's list of frame folders (line 1 is not a "
        "'path,label' header): pick another --out, or move that file away."
    )):
        extract_frame_folders(load_annotation_file(split, ["a", "b"]), data, data, "train.csv", labels_as_indices=True)
    assert files_under(data) == {**before, split: split.read_bytes()}


def test_extract_frames_keeps_a_class_whose_videos_all_fail_to_decode(tmp_path, capsys, monkeypatch):
    # Without --labels_file the classes are the sub-folder names; a class left with no frame folder must not vanish
    # from the list (class indices, id2label and evaluation against the videos' classes would shift).
    data = tiny_class_folders(tmp_path / "bad", {"a": 2, "b": 2})
    (data / "c").mkdir()
    (data / "c" / "00000.mp4").write_bytes((data / "a" / "00000.mp4").read_bytes()[:100])
    out = tmp_path / "frames"
    status, stdout, stderr = extract_frames_here(capsys, monkeypatch, "--data", data, "--out", out, "--workers", 1)
    assert status == 0, stderr
    labels_file = out / "bad.labels.txt"
    assert labels_file.read_text() == "a\nb\nc\n"
    assert "WARNING: class c has no frame folder: none of its videos could be decoded" in stdout
    assert f"--train_data {out / 'bad.csv'} --data_root {out} --labels_file {labels_file}" in stdout
    extracted = load_annotation_file(out / "bad.csv", load_label_names(labels_file), data_root=out)
    assert extracted.class_names == ["a", "b", "c"] and extracted.dataset["label"] == [0, 0, 1, 1]
    # A second run replaces the list and class names it wrote itself.
    assert extract_frames_here(capsys, monkeypatch, "--data", data, "--out", out, "--workers", 1)[0] == 0
    assert labels_file.read_text() == "a\nb\nc\n"


def test_extract_frames_refuses_an_out_inside_the_data_folder(tmp_path, capsys, monkeypatch):
    # There its folder would be read as a class folder of --data: by the next (resumed) run, and by training from the
    # videos. Refused before anything is written.
    data = tiny_class_folders(tmp_path / "data", {"a": 1, "b": 1})
    before = files_under(data)
    status, stdout, stderr = extract_frames_here(capsys, monkeypatch, "--data", data, "--out", data / "frames",
                                                 "--workers", 1)
    assert status == 2, stdout
    assert stderr.strip().splitlines() == [
        f"error: --out {data / 'frames'} is inside --data {data}, whose sub-folders are read as classes (by the next "
        f"run, and by training from {data}): pick an --out outside {data}."
    ]
    assert files_under(data) == before and sorted(path.name for path in data.iterdir()) == ["a", "b"]
