"""The `omniclip` command's inputs: label files in a format the loader does not read (JSON, YAML, TSV) refused in one
line instead of scoring their syntax as labels, a folder as --labels-file named as one, --tile-size bounded, http(s)
and file:// URLs passed to the decoder, and the table's header printed only with a row."""

from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest

from .conftest import REPO_ROOT

VIDEOS = REPO_ROOT.parent / "shared" / "videos"
SHORT_MP4 = VIDEOS / "mmaction2_rawvideo_part_0.mp4"  # 32 frames at 30 fps
ACCEPTED_FORMATS = "a text file (.txt or no suffix) with one class name a line, or a CSV (.csv) with a 'name' column"
# The files the audit found scored as labels: each line of their syntax became a class.
STRUCTURED_LABEL_FILES = {
    "labels.json": '[\n  "yoga",\n  "playing guitar"\n]\n',
    "labels.jsonl": '"yoga"\n"playing guitar"\n',
    "labels.yaml": "classes:\n  - yoga\n  - playing guitar\n",
    "labels.yml": "- yoga\n- playing guitar\n",
    "labels.tsv": "id\tname\n0\tyoga\n1\tplaying guitar\n",
    "labels.JSON": '["yoga", "playing guitar"]\n',
}


def run_cli(capsys, *arguments):
    """`omniclip ARGUMENTS` in this process: (exit status, stdout, stderr)."""
    from omniclip_hf.cli import main

    status = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omniclip: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# ----------------------------------------------------------------------------------------------------------------
# 1. Label files the loader cannot parse
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(STRUCTURED_LABEL_FILES))
def test_label_files_of_unread_formats_are_refused_by_the_loader(tmp_path, name):
    from omniclip_hf import load_label_names

    path = tmp_path / name
    path.write_text(STRUCTURED_LABEL_FILES[name])
    with pytest.raises(ValueError) as raised:
        load_label_names(path)
    message = str(raised.value)
    assert message == (
        f"Label file {path}: {path.suffix} files are not read as class lists; give {ACCEPTED_FORMATS}."
    )


@pytest.mark.parametrize("name", ["labels.txt", "labels.TXT", "classInd", "labels.csv"])
def test_text_csv_and_suffixless_label_files_are_still_read(tmp_path, name):
    from omniclip_hf import load_label_names

    path = tmp_path / name
    path.write_text("name\nyoga\nplaying guitar\n" if name.endswith(".csv") else "yoga\nplaying guitar\n")
    assert load_label_names(path) == ["yoga", "playing guitar"]


def test_classify_refuses_a_json_label_file_instead_of_scoring_its_syntax(tiny_omniclip_dir, tmp_path, capsys):
    labels = tmp_path / "labels.json"
    labels.write_text(STRUCTURED_LABEL_FILES["labels.json"])
    status, stdout, stderr = run_cli(
        capsys, "classify", SHORT_MP4, "--model", tiny_omniclip_dir, "--labels-file", labels
    )
    assert status == 1 and stdout == ""
    assert one_error_line(stderr) == (
        f"omniclip: error: Label file {labels}: .json files are not read as class lists; give {ACCEPTED_FORMATS}."
    )


def test_evaluate_and_train_label_files_get_the_same_one_line_error(tmp_path):
    """examples/evaluate.py and train.py load --labels_file through load_video_dataset: refused before any data."""
    from omniclip_hf.training.data import load_video_dataset

    labels = tmp_path / "labels.yaml"
    labels.write_text(STRUCTURED_LABEL_FILES["labels.yaml"])
    with pytest.raises(ValueError) as raised:
        load_video_dataset(tmp_path / "no-data-needed", labels)
    assert str(raised.value) == (
        f"Label file {labels}: .yaml files are not read as class lists; give {ACCEPTED_FORMATS}."
    )


def test_labels_given_a_json_file_does_not_recommend_labels_file_for_it(tiny_omniclip_dir, capsys):
    # A readable suffix is still pointed to --labels-file; a .json one is told what to write instead.
    status, stdout, stderr = run_cli(
        capsys, "classify", SHORT_MP4, "--model", tiny_omniclip_dir, "--labels", "labels/hmdb51.json"
    )
    line = one_error_line(stderr)
    assert status == 1 and stdout == ""
    assert "--labels-file labels/hmdb51.json" not in line
    assert line == (
        "omniclip: error: --labels labels/hmdb51.json looks like a label file, and .json files are not read as class "
        f"lists: write {ACCEPTED_FORMATS}, and pass that as --labels-file (or the labels themselves as --labels "
        '"yoga,archery").'
    )
    status, _, stderr = run_cli(
        capsys, "classify", SHORT_MP4, "--model", tiny_omniclip_dir, "--labels", "labels/hmdb51.txt"
    )
    assert status == 1 and "pass it as --labels-file labels/hmdb51.txt" in one_error_line(stderr)


# ----------------------------------------------------------------------------------------------------------------
# 4. A folder as --labels-file
# ----------------------------------------------------------------------------------------------------------------
def test_a_folder_as_labels_file_is_named_a_folder(tiny_omniclip_dir, tmp_path, capsys):
    from omniclip_hf import load_label_names

    status, stdout, stderr = run_cli(
        capsys, "classify", SHORT_MP4, "--model", tiny_omniclip_dir, "--labels-file", tmp_path
    )
    assert status == 1 and stdout == ""
    assert one_error_line(stderr) == (
        f"omniclip: error: --labels-file {tmp_path} is a folder; pass the label file itself: {ACCEPTED_FORMATS}."
    )
    with pytest.raises(ValueError, match=rf"^Label file {tmp_path} is a folder; pass the label file itself: "):
        load_label_names(tmp_path)


# ----------------------------------------------------------------------------------------------------------------
# 2. --tile-size bounded
# ----------------------------------------------------------------------------------------------------------------
def test_explain_refuses_a_tile_size_too_large_to_draw(tiny_omniclip_dir, tmp_path, capsys):
    out = tmp_path / "attention.png"
    # 1025 first: without the bound it draws (quickly) and the test fails there, before 100000 would exhaust memory.
    for tile_size in (1025, 100000):
        status, stdout, stderr = run_cli(
            capsys, "explain", SHORT_MP4, "--model", tiny_omniclip_dir, "--labels", "yoga,archery", "--out", out,
            "--tile-size", tile_size,
        )
        assert status == 1 and stdout == ""
        assert one_error_line(stderr) == (
            f"omniclip: error: --tile-size {tile_size} is too large: use at most 1024 pixels."
        )
        assert not out.exists() and list(tmp_path.iterdir()) == []


def test_render_explanation_refuses_a_tile_size_out_of_range():
    from omniclip_hf.attention_figure import render_explanation
    from omniclip_hf.attention_maps import AttentionExplanation

    maps = np.full((1, 2, 2), 0.25, dtype=np.float32)
    explanation = AttentionExplanation(
        frames=np.zeros((1, 8, 8, 3), dtype=np.uint8), clip_maps=maps, omniclip_maps=maps
    )
    assert render_explanation(explanation, tile_size=1024).size == (96 + 1024, 28 + 3 * 1024)
    for tile_size in (1025, 100000, 0):  # 1025 first, as above
        with pytest.raises(ValueError, match=rf"^tile_size={tile_size} is out of range: use 1 to 1024 pixels\.$"):
            render_explanation(explanation, tile_size=tile_size)


# ----------------------------------------------------------------------------------------------------------------
# 3. URLs as videos
# ----------------------------------------------------------------------------------------------------------------
class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *arguments):  # no request lines on stderr, which the tests read
        pass


@pytest.fixture
def video_server():
    """http://127.0.0.1:PORT serving the shared videos, from a thread of this process."""
    handler = functools.partial(QuietHandler, directory=str(VIDEOS))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_and_file_urls_reach_the_decoder(tiny_omniclip_dir, video_server, capsys):
    http_url = f"{video_server}/{SHORT_MP4.name}"
    file_url = SHORT_MP4.as_uri()
    status, stdout, stderr = run_cli(
        capsys, "classify", http_url, file_url, "--model", tiny_omniclip_dir, "--labels", "yoga,archery", "--json"
    )
    assert status == 0, stderr
    assert [line.split('"video": ')[1].split('"')[1] for line in stdout.splitlines()] == [http_url, file_url]


def test_a_url_the_decoder_cannot_read_is_its_error_not_a_missing_file(tiny_omniclip_dir, video_server, capsys):
    from omniclip_hf.cli_checks import CommandError, check_videos

    missing_http = f"{video_server}/missing.mp4"
    check_videos([missing_http])  # only the download can tell: no "not found" before the model loads
    missing_file = (VIDEOS / "missing.mp4").as_uri()
    with pytest.raises(CommandError, match=rf"^video file not found: {missing_file}\.$"):
        check_videos([missing_file])  # a file:// URL names a local file, checked as the path would be
    status, stdout, stderr = run_cli(
        capsys, "classify", missing_http, "--model", tiny_omniclip_dir, "--labels", "yoga,archery"
    )
    assert status == 1 and stdout == ""
    assert one_error_line(stderr) == (
        f"omniclip: error: {missing_http}: Could not download video {missing_http}: the server answered 404 File not "
        "found."
    )


# ----------------------------------------------------------------------------------------------------------------
# 5. The table header only with a row
# ----------------------------------------------------------------------------------------------------------------
def test_no_table_header_when_no_video_gives_a_row(tiny_omniclip_dir, capsys):
    status, stdout, stderr = run_cli(
        capsys, "classify", SHORT_MP4, "--model", tiny_omniclip_dir, "--labels", "yoga,archery",
        "--segment-seconds", "0.001",
    )
    assert status == 1 and stdout == ""
    assert "segment_seconds=0.001 is shorter than one frame" in one_error_line(stderr)
    status, stdout, _ = run_cli(capsys, "classify", SHORT_MP4, "--model", tiny_omniclip_dir, "--labels", "yoga,archery")
    lines = stdout.splitlines()
    assert status == 0 and lines[0].split() == ["video", "rank", "score", "label"] and len(lines) == 3


# ----------------------------------------------------------------------------------------------------------------
# classify --json: a video that fails has its record too
# ----------------------------------------------------------------------------------------------------------------
def test_classify_json_gives_a_failed_video_an_error_record_in_its_place(tiny_omniclip_dir, tmp_path, capsys):
    """A script reading the JSON lines sees every video it asked for: the undecodable one as {"video", "error"}, in
    its place between the others, and the exit status 1 as before."""
    import json

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    status, stdout, stderr = run_cli(capsys, "classify", SHORT_MP4, broken, SHORT_MP4, "--model", tiny_omniclip_dir,
                                     "--labels", "archery,yoga", "--json", "--batch-size", "3")
    assert status == 1
    records = [json.loads(line) for line in stdout.strip().splitlines()]
    assert [record["video"] for record in records] == [str(SHORT_MP4), str(broken), str(SHORT_MP4)]
    assert [sorted(record) for record in records] == [["labels", "video"], ["error", "video"], ["labels", "video"]]
    error = one_error_line(stderr)
    assert error == f"omniclip: error: {broken}: {records[1]['error']}"
