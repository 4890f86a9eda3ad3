"""Shards that datasets would stream short without a word are refused at start-up, in one line naming the shard: a
damaged tar header past the first member, a shard cut short (also exactly between two members), archives appended
one after another, members datasets skips as hidden (`__<youtube id>.mp4`) or as links, and shards in no split or
hidden in a folder where other shards are named for a split. Shards of the shared clips, built in a temporary folder;
the stand-in processor decodes nothing (a sample reads as its video's byte count)."""

from __future__ import annotations

import gzip
import io
import os
import sys
import tarfile
from pathlib import Path

import pytest

from omniclip_hf.training.loop import check_inputs_exist, parse_training_options
from omniclip_hf.training.streaming import load_streaming_dataset, tar_shards

from .conftest import REPO_ROOT, SHARED_DIR
from .test_training import run
from .test_training_streaming import CLASS_NAMES, stream_of, write_shard

# The shared clips under 400 kB (four sizes, four containers' worth of extensions): shards of a few MB.
SMALL_CLIPS = sorted((path for path in (SHARED_DIR / "videos").glob("*.*")
                      if path.suffix in (".mp4", ".avi", ".webm") and path.stat().st_size < 400_000),
                     key=lambda path: path.stat().st_size)

pytestmark = pytest.mark.skipif(len(SMALL_CLIPS) < 2, reason=f"needs shared clips in {SHARED_DIR / 'videos'}")


def clip_samples(keys: list[str], first: int = 0) -> list[tuple[str, bytes]]:
    """A sample per key: `<key>.<ext>` (a shared clip) and `<key>.cls`."""
    files = []
    for number, key in enumerate(keys, start=first):
        clip = SMALL_CLIPS[number % len(SMALL_CLIPS)]
        files += [(f"{key}{clip.suffix}", clip.read_bytes()), (f"{key}.cls", str(number % 2).encode())]
    return files


def sizes(files: list[tuple[str, bytes]]) -> list[float]:
    """The streamed sizes a set of samples gives (`stream_of` reads each sample as its video's byte count)."""
    return sorted(float(len(data)) for name, data in files if not name.endswith(".cls"))


def streamed_sizes(folder: Path) -> list[float]:
    return sorted(size for _, size in stream_of(folder))


def member_offsets(shard: Path) -> list[int]:
    with tarfile.open(shard) as archive:
        return [member.offset for member in archive.getmembers()]


def refusal(folder: Path) -> str:
    """The one-line error with which loading the folder's shards stops."""
    with pytest.raises(ValueError) as error:
        load_streaming_dataset(folder, CLASS_NAMES)
    message = str(error.value)
    assert "\n" not in message, message
    return message


def two_shards(folder: Path) -> tuple[list[tuple[str, bytes]], Path]:
    """train-00000.tar (2 samples) and train-00001.tar (3 samples, keys b0 b1 b2): its members b0.<ext> b0.cls ..."""
    files = clip_samples(["a0", "a1"]) + clip_samples(["b0", "b1", "b2"], first=2)
    write_shard(folder / "train-00000.tar", files[:4])
    return files, write_shard(folder / "train-00001.tar", files[4:])


def test_a_healthy_shard_set_streams_every_sample(tmp_path):
    """Plain and gzipped shards, a Kinetics key with one leading `_` (not hidden), a folder entry and macOS metadata
    (`._<name>`, skipped by datasets, rightly) pass the check, and every sample streams."""
    files = clip_samples(["_eHfxrDhtdU_000000_000010", "-3B32lodo2M_000059_000069", "abc"])
    with tarfile.open(tmp_path / "train-00000.tar", "w") as archive:
        archive.addfile(dir_entry("clips"))
        for name, data in files[:4] + [("._abc.mp4", b"\0\5\26\7 AppleDouble")]:
            add_file(archive, name, data)
    (tmp_path / "train-00001.tar.gz").write_bytes(gzip.compress(tar_bytes(files[4:])))
    assert [Path(shard).name for shard in tar_shards(tmp_path)] == ["train-00000.tar", "train-00001.tar.gz"]
    assert streamed_sizes(tmp_path) == sizes(files)


def test_a_folder_whose_shards_name_no_split_streams_them_all(tmp_path):
    """No shard named for a split: all are `train`, in sub-folders too, `__` at the start of a file's name included
    (datasets skips folders starting with `__`, not such files)."""
    files = clip_samples([f"k{n}" for n in range(4)])
    for number, name in enumerate(["00000.tar", "__00001.tar", "_x/00004.tar", "deep/er/00005.tar"]):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_shard(tmp_path / name, files[2 * number: 2 * number + 2])
    assert len(tar_shards(tmp_path)) == 4
    assert streamed_sizes(tmp_path) == sizes(files)


@pytest.mark.parametrize("damage, problem", [("garbage", "invalid header"), ("checksum", "bad checksum")])
def test_a_damaged_header_past_the_first_member_is_refused(tmp_path, damage, problem):
    """tarfile raises only for a bad header at the start of an archive; further on it reads as the archive's end:
    datasets streamed b0 and ended the shard there, b1 and b2 gone unsaid."""
    files, shard = two_shards(tmp_path)
    offset = member_offsets(shard)[2]  # b1's video
    data = bytearray(shard.read_bytes())
    if damage == "garbage":
        data[offset:offset + 512] = b"\x17" * 512
    else:
        data[offset + 148:offset + 156] = b"0000000\0"  # the header's checksum field
    shard.write_bytes(bytes(data))
    assert refusal(tmp_path) == (
        f"{shard}: damaged tar header at byte {offset}, after member b0.cls ({problem}): tar readers take it for the "
        "archive's end, so the samples after it would be left out unsaid; rebuild the shard or remove it from the "
        "folder.")
    write_shard(shard, files[4:])  # rebuilt: every sample streams
    assert streamed_sizes(tmp_path) == sizes(files)


def end_of_members(shard: Path) -> int:
    """Where the archive's end-of-archive blocks start: after the last member's data, in whole 512-byte blocks."""
    with tarfile.open(shard) as archive:
        last = archive.getmembers()[-1]
    return last.offset_data + -(-last.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def cut_at(shard: Path, cut: str) -> tuple[int, str]:
    """Cuts the shard (b0 b1 b2) as an interrupted copy would; returns where the archive stops and the last member."""
    offsets, end = member_offsets(shard), end_of_members(shard)
    stop, keep = {"between two members": (offsets[4], offsets[4]),  # b2's header is the first thing lost
                  "inside a header": (offsets[4], offsets[4] + 100),
                  "before the end-of-archive blocks": (end, end)}[cut]
    shard.write_bytes(shard.read_bytes()[:keep])
    return stop, "b1.cls" if stop == offsets[4] else "b2.cls"


@pytest.mark.parametrize("cut", ["between two members", "inside a header", "before the end-of-archive blocks"])
def test_a_shard_cut_short_at_a_header_is_refused(tmp_path, cut):
    """Cut exactly between two members, datasets streamed the first part and ended the shard without a word (cut
    inside a member's data it raised, but only when the stream got there). Cut before the end-of-archive blocks
    nothing is lost, but it cannot be told from a cut between members: refused too."""
    files, shard = two_shards(tmp_path)
    stop, last = cut_at(shard, cut)
    assert refusal(tmp_path) == (
        f"{shard}: the archive stops at byte {stop}, after member {last}, with neither a tar header nor the "
        "end-of-archive blocks there: the shard was cut short (an interrupted write or copy?), and the samples after "
        "that point would be missing unsaid; rebuild or re-copy the shard, or remove it from the folder.")
    write_shard(shard, files[4:])
    assert streamed_sizes(tmp_path) == sizes(files)


@pytest.mark.parametrize("compressed", [False, True])
def test_a_shard_cut_inside_a_member_is_refused_at_start_up(tmp_path, compressed):
    """It stopped the run only when the stream reached it (a cut `.tar.gz` as "no <key>.cls file", the wrong
    cause); now before the model loads, through the same check `examples/train.py` runs on its inputs."""
    files, shard = two_shards(tmp_path)
    whole = shard.read_bytes()
    cut = member_offsets(shard)[2] + 512 + 1000  # inside b1's video
    if compressed:
        shard.unlink()
        shard = shard.with_name("train-00001.tar.gz")
        packed = gzip.compress(whole)
        shard.write_bytes(packed[:len(packed) * cut // len(whole)])
    else:
        shard.write_bytes(whole[:cut])
    message = refusal(tmp_path)  # the line the stream gave when it got there, naming shard and member
    assert message.startswith(f"{tmp_path}: a shard could not be read to its end ({shard.name}, past member b") \
        and message.endswith("): a truncated or damaged tar archive; rebuild it or remove it from the folder."), message
    options = parse_training_options(["--clip", "openai/x", "--streaming", "--train_data", str(tmp_path),
                                      "--max_steps", "1", "--warmup_steps", "0"])
    with pytest.raises(ValueError) as error:
        check_inputs_exist(options)
    assert str(error.value) == message


def test_archives_appended_one_after_another_are_refused(tmp_path):
    """`cat a.tar b.tar > shard.tar`: every tar reader stops at the first end-of-archive blocks; b's samples were
    left out unsaid."""
    files = clip_samples(["a0", "a1", "b0"])
    shard = write_shard(tmp_path / "train-00000.tar", files[:4])
    first, end = shard.read_bytes(), end_of_members(shard)
    shard.write_bytes(first + tar_bytes(files[4:]))
    assert refusal(tmp_path) == (
        f"{shard}: more data at byte {len(first)}, past the archive's end (its end-of-archive blocks at byte {end}, "
        "after member a1.cls): archives appended one after another? tar readers stop at the first end, so the samples "
        "after it would be left out unsaid; rebuild the shard as one archive.")
    shard.write_bytes(tar_bytes(files))
    assert streamed_sizes(tmp_path) == sizes(files)


@pytest.mark.parametrize("key", ["__NrybzYzUg_000001_000011", ".hidden"])
def test_a_member_datasets_would_skip_as_hidden_is_refused(tmp_path, key):
    """datasets skips every member whose name starts with '.' or '__': a Kinetics key is the YouTube id, which can
    start with `__`, and the sample vanished without a word."""
    write_shard(tmp_path / "train-00000.tar", clip_samples(["a0", "a1"]))
    shard = write_shard(tmp_path / "train-00001.tar", clip_samples(["b0", key, "b2"], first=2))
    video = f"{key}{SMALL_CLIPS[3 % len(SMALL_CLIPS)].suffix}"
    assert refusal(tmp_path) == (
        f"{shard}: member {video} (one of 2 such files in this shard): datasets skips files whose name starts with "
        "'.' or '__' as hidden, so this sample would be left out unsaid; rename its key so that it starts with "
        f"neither (e.g. k{video.lstrip('.')}) and rebuild the shard.")  # a key without dots
    files = clip_samples(["a0", "a1"]) + clip_samples(["b0", f"k{key.lstrip('.')}", "b2"], first=2)
    write_shard(shard, files[4:])
    assert streamed_sizes(tmp_path) == sizes(files)


@pytest.mark.parametrize("link", [tarfile.LNKTYPE, tarfile.SYMTYPE])
def test_a_member_stored_as_a_link_is_refused(tmp_path, link):
    """GNU tar stores a file added twice (one clip hard-linked under two keys) as a link; datasets reads regular
    files only, so the sample had no video (and with its `.cls` a link too, it vanished)."""
    files = clip_samples(["a0", "a1"])
    shard = tmp_path / "train-00000.tar"
    with tarfile.open(shard, "w") as archive:
        for name, data in files:
            add_file(archive, name, data)
        linked = tarfile.TarInfo(f"a2{Path(files[0][0]).suffix}")
        linked.type, linked.linkname = link, files[0][0]
        archive.addfile(linked)
        add_file(archive, "a2.cls", b"1")
    kind = "hard" if link == tarfile.LNKTYPE else "symbolic"
    assert refusal(tmp_path) == (
        f"{shard}: member {linked.name} is a {kind} link (to {files[0][0]}): datasets reads regular files only and "
        "would skip it unsaid; rebuild the shard with the files themselves (GNU tar: --dereference "
        "--hard-dereference).")


@pytest.mark.parametrize("layout, refused, message, renamed", [
    (["train-00000.tar", "train-00001.tar", "extra-00000.tar", "kinetics-part2-00000.tar"], "extra-00000.tar",
     "this shard's name and folders name no split, while other shards' do ('train', e.g. train-00000.tar: datasets' "
     "split naming), so it would be left out of every split unsaid (and 1 more: kinetics-part2-00000.tar); name it "
     "for its split (e.g. train-00002.tar) or move it out of {folder}.",
     {"extra-00000.tar": "train-00002.tar", "kinetics-part2-00000.tar": "train-00003.tar"}),
    (["train/a-00000.tar", "train/a-00001.tar", "more/b-00000.tar"], "more/b-00000.tar",
     "this shard's name and folders name no split, while other shards' do ('train', e.g. train/a-00000.tar: "
     "datasets' split naming), so it would be left out of every split unsaid; name it for its split (e.g. "
     "train-00002.tar) or move it out of {folder}.",
     {"more/b-00000.tar": "train/b-00000.tar"}),
    (["shard-00000.tar", "shard-00001.tar", "shard_test_00002.tar"], "shard-00000.tar",  # `_test_` names a split
     "this shard's name and folders name no split, while other shards' do ('test', e.g. shard_test_00002.tar: "
     "datasets' split naming), so it would be left out of every split unsaid (and 1 more: shard-00001.tar); name it "
     "for its split (e.g. train-00002.tar) or move it out of {folder}.",
     {"shard-00000.tar": "train-00000.tar", "shard-00001.tar": "train-00001.tar",
      "shard_test_00002.tar": "train-00002.tar"}),
])
def test_shards_in_no_split_beside_shards_named_for_one_are_refused(tmp_path, layout, refused, message, renamed):
    """As soon as one shard's name matches a split, datasets leaves every shard named for none out of every split:
    they were dropped without a word, although shards named for no split were said to be `train`. Refused, not
    added to `train`: only their owner knows whether they are training data. Renamed as advised, all stream."""
    files = build_layout(tmp_path, layout)
    assert refusal(tmp_path) == f"{tmp_path / refused}: " + message.format(folder=tmp_path)
    rename(tmp_path, renamed)
    assert streamed_sizes(tmp_path) == sizes([file for shard_files in files for file in shard_files])


@pytest.mark.parametrize("layout, refused, more, renamed", [
    (["00000.tar", "__00001.tar", ".00002.tar", "__batch2/00003.tar"], ".00002.tar",
     " (and 1 more: __batch2/00003.tar)", {".00002.tar": "00002.tar", "__batch2/00003.tar": "batch2/00003.tar"}),
    (["train-00000.tar", "train-00001.tar", "__batch2/train-00002.tar"], "__batch2/train-00002.tar", "",
     {"__batch2/train-00002.tar": "batch2/train-00002.tar"}),
    ([".cache/train-00000.tar"], ".cache/train-00000.tar", "",  # datasets saw no shard at all
     {".cache/train-00000.tar": "cache/train-00000.tar"}),
])
def test_hidden_shards_are_refused(tmp_path, layout, refused, more, renamed):
    """datasets' file listing skips names and folders starting with '.' and folders starting with '__'."""
    files = build_layout(tmp_path, layout)
    assert refusal(tmp_path) == (
        f"{tmp_path / refused}: datasets skips shards whose name or folder starts with '.', or whose folder starts "
        f"with '__', as hidden files, so this shard would be left out unsaid{more}; rename it (or its folder) or move "
        f"it out of {tmp_path}.")
    rename(tmp_path, renamed)
    assert streamed_sizes(tmp_path) == sizes([file for shard_files in files for file in shard_files])


def rename(folder: Path, renamed: dict[str, str]) -> None:
    for old, new in renamed.items():
        (folder / new).parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder / old, folder / new)


def test_a_run_over_a_damaged_shard_stops_in_one_line_before_the_model_loads(tiny_clip_dir, tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    _, shard = two_shards(shards)
    offset = member_offsets(shard)[2]
    data = bytearray(shard.read_bytes())
    data[offset:offset + 512] = b"\x17" * 512
    shard.write_bytes(bytes(data))
    (tmp_path / "labels.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    result = run([sys.executable, str(REPO_ROOT / "examples" / "train.py"), "--clip", str(tiny_clip_dir),
                  "--streaming", "--train_data", str(shards), "--labels_file", str(tmp_path / "labels.txt"),
                  "--output_dir", str(tmp_path / "run"), "--num_frames", "2", "--batch_size", "2",
                  "--num_workers", "0", "--max_steps", "1", "--warmup_steps", "0"], timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {shard}: damaged tar header at byte {offset}, after member b0.cls (invalid header): tar readers take "
        "it for the archive's end, so the samples after it would be left out unsaid; rebuild the shard or remove it "
        "from the folder.")
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts bytes read with Linux's /proc/self/io")
def test_the_check_reads_the_headers_not_the_videos(tmp_path):
    """Cheap at any size: an uncompressed shard's data is skipped, a seek per member."""
    files = clip_samples([f"k{n:03d}" for n in range(40)])
    shard = write_shard(tmp_path / "train-00000.tar", files)
    before = bytes_read()
    tar_shards(tmp_path)
    read = bytes_read() - before
    assert read < shard.stat().st_size / 10, (read, shard.stat().st_size)


def bytes_read() -> int:
    with open("/proc/self/io") as counters:
        return next(int(line.split()[1]) for line in counters if line.startswith("rchar:"))


def build_layout(folder: Path, layout: list[str]) -> list[list[tuple[str, bytes]]]:
    """A shard of one sample at each path of `layout`; the files of each."""
    files = []
    for number, name in enumerate(layout):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        files.append(clip_samples([f"k{number}"], first=number))
        write_shard(folder / name, files[-1])
    return files


def tar_bytes(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files:
            add_file(archive, name, data)
    return buffer.getvalue()


def add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def dir_entry(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def test_the_shards_are_read_whole_once_by_the_first_process_only(tmp_path, monkeypatch):
    """Every rank of every node walked every shard twice (check_inputs_exist, then loading): a .tar.gz set is
    decompressed whole each time. The first process checks before the model loads; loading lists them only."""
    import omniclip_hf.training.streaming as streaming

    (tmp_path / "shards").mkdir()
    two_shards(tmp_path / "shards")
    checked = []
    monkeypatch.setattr(streaming, "check_shard", lambda shard, source: checked.append(shard))
    (tmp_path / "labels.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    options = parse_training_options(["--clip", "x", "--train_data", str(tmp_path / "shards"), "--streaming",
                                      "--max_steps", "1", "--warmup_steps", "0",
                                      "--labels_file", str(tmp_path / "labels.txt")])
    monkeypatch.setattr(options, "clip", None)
    for rank, expected in (("1", 0), ("0", 2)):
        monkeypatch.setenv("RANK", rank)
        checked.clear()
        check_inputs_exist(options)
        assert len(checked) == expected, rank
    checked.clear()
    load_streaming_dataset(tmp_path / "shards", list(CLASS_NAMES), check_shards=False)
    assert checked == []
