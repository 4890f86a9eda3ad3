# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Videos as datasets and the web hand them over: `Video` cells, a videofolder that trains, URLs."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import socket
import threading
from pathlib import Path

import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Video

from omniclip_hf.training.data import load_folder
from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor

from .test_training import run, train_command


VIDEOS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
SMALL_CLIP = VIDEOS_DIR / "mmaction2_rawvideo_part_0.mp4"
AVI_CLIP = VIDEOS_DIR / "mmaction2_tests_test.avi"
WEBM_CLIP = VIDEOS_DIR / "moviepy_big_buck_bunny_432_433.webm"

pytestmark = pytest.mark.skipif(not VIDEOS_DIR.is_dir(), reason=f"shared test videos not found at {VIDEOS_DIR}")


# ------------------------------------------------------------------------------------------------ Video cells
def test_datasets_video_cells_with_bytes_or_path(tmp_path):
    processor = OmniCLIPVideoProcessor(num_frames=4)
    expected = processor(str(SMALL_CLIP), return_tensors="pt")["pixel_values_videos"]
    dataset = Dataset.from_dict(
        {"video": [str(SMALL_CLIP), str(SMALL_CLIP)]}, features=Features({"video": Video(decode=False)})
    )
    path_cell = dataset[0]["video"]
    assert path_cell["path"] == str(SMALL_CLIP) and path_cell["bytes"] is None
    bytes_cell = {"bytes": SMALL_CLIP.read_bytes(), "path": "elsewhere/clip.mp4"}  # bytes win: path may be stale
    output = processor([path_cell, bytes_cell], return_tensors="pt", return_metadata=True)
    torch.testing.assert_close(output["pixel_values_videos"][0], expected[0], rtol=0, atol=0)
    torch.testing.assert_close(output["pixel_values_videos"][1], expected[0], rtol=0, atol=0)
    assert output["video_metadata"][0].source == str(SMALL_CLIP)


def test_video_cell_with_neither_bytes_nor_path_gives_one_line():
    with pytest.raises(ValueError, match=r"has neither 'bytes' nor 'path'") as excinfo:
        OmniCLIPVideoProcessor(num_frames=4)({"bytes": None, "path": None})
    assert "\n" not in str(excinfo.value)


def test_pipeline_accepts_video_cells(tiny_omniclip_dir):
    from transformers import pipeline

    import omniclip_hf  # noqa: F401  (registers the pipeline)

    classifier = pipeline("zero-shot-video-classification", model=str(tiny_omniclip_dir))
    labels = ["cleaning a pool", "archery"]
    from_path = classifier(str(SMALL_CLIP), candidate_labels=labels)
    from_cell = classifier({"bytes": None, "path": str(SMALL_CLIP)}, candidate_labels=labels)
    from_bytes_cell = classifier({"bytes": SMALL_CLIP.read_bytes(), "path": None}, candidate_labels=labels)
    assert from_cell == from_path and from_bytes_cell == from_path
    windows = classifier({"bytes": None, "path": str(SMALL_CLIP)}, candidate_labels=labels, segment_seconds=0.5)
    assert len(windows) == 3  # 32 frames at 30 fps: 0.5 s, 0.5 s and the rest
    with pytest.raises(ValueError, match="neither 'bytes' nor 'path'"):
        classifier({"bytes": None, "path": None}, candidate_labels=labels)


# ------------------------------------------------------------------------------------------------ videofolder
@pytest.fixture(scope="module")
def shared_clip_folder(tmp_path_factory):
    """A class-folder dataset built from shared clips: two classes, two clips each (one a WebM)."""
    root = tmp_path_factory.mktemp("videofolder")
    layout = {"pool": [SMALL_CLIP, VIDEOS_DIR / "mmaction2_tests_test.mp4"], "makeup": [AVI_CLIP, WEBM_CLIP]}
    for class_name, clips in layout.items():
        (root / class_name).mkdir()
        for clip in clips:
            shutil.copy(clip, root / class_name / clip.name)
    (root / "labels.txt").write_text("pool\nmakeup\n")
    return root


def test_an_empty_class_folder_is_an_error_naming_it(shared_clip_folder, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(shared_clip_folder, root)
    (root / "yoga").mkdir()
    with pytest.raises(ValueError, match=re.escape(str(root / "yoga")) + ": this class folder holds no video files"):
        load_folder(root)


def test_folder_loads_through_videofolder_with_class_labels(shared_clip_folder):
    data = load_folder(shared_clip_folder)
    assert data.class_names == ["makeup", "pool"]
    assert isinstance(data.dataset.features["label"], ClassLabel)
    assert data.dataset.features["label"].names == ["makeup", "pool"]
    rows = {Path(video).name: data.class_names[label] for video, label in zip(data.dataset["video"],
                                                                              data.dataset["label"])}
    # The WebM, which datasets' videofolder skips, is kept with its folder's label.
    assert rows == {SMALL_CLIP.name: "pool", "mmaction2_tests_test.mp4": "pool", AVI_CLIP.name: "makeup",
                    WEBM_CLIP.name: "makeup"}
    # A labels file fixes the class order; folder names map onto it.
    ordered = load_folder(shared_clip_folder, ["pool", "makeup"])
    assert [ordered.class_names[label] for label in ordered.dataset["label"]] == [
        rows[Path(video).name] for video in ordered.dataset["video"]]


def test_videofolder_of_shared_clips_trains_two_steps(tiny_clip_dir, shared_clip_folder, tmp_path):
    output = tmp_path / "run"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copytree(shared_clip_folder, data_dir / "train", ignore=shutil.ignore_patterns("labels.txt"))
    shutil.copy(shared_clip_folder / "labels.txt", data_dir / "labels.txt")
    command = train_command(tiny_clip_dir, data_dir, output, "--epochs", "1", "--max_steps", "2")
    command[command.index("--batch_size") + 1] = "2"
    result = run(command)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["global_step"] == 2


# ------------------------------------------------------------------------------------------------ URLs
@pytest.fixture(scope="module")
def local_server():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(VIDEOS_DIR))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_decodes_like_the_file(local_server):
    processor = OmniCLIPVideoProcessor(num_frames=4)
    expected = processor(str(SMALL_CLIP), return_tensors="pt")["pixel_values_videos"]
    url = f"{local_server}/{SMALL_CLIP.name}"
    output = processor(url, return_tensors="pt", return_metadata=True)
    torch.testing.assert_close(output["pixel_values_videos"], expected, rtol=0, atol=0)
    assert output["video_metadata"][0].source == url


def test_url_that_fails_gives_one_line(local_server):
    processor = OmniCLIPVideoProcessor(num_frames=4)
    with pytest.raises(ValueError, match=r"Could not download video .*/missing.mp4: the server answered 404"):
        processor(f"{local_server}/missing.mp4")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ValueError, match=rf"Could not download video http://127.0.0.1:{port}/clip.mp4: .*refused"):
        processor(f"http://127.0.0.1:{port}/clip.mp4")
