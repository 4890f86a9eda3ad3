"""What the data and model scripts leave on disk: frame folders named after the tree as the user sees it, files and
folders as readable as an ordinary open()/mkdir() makes them, and a tiny CLIP folder that never overwrites another
model or is left half written."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from omniclip_hf.training.frame_extraction import extract_frame_folders, frame_folder_paths

from .conftest import REPO_ROOT, SHARED_DIR

SMALL_CLIP = SHARED_DIR / "videos" / "mmaction2_rawvideo_part_0.mp4"


@pytest.fixture
def umask():
    """Sets the process's umask for one test (the modes asked of the writers follow it) and puts it back after."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_to(mask: int) -> int:
        os.umask(mask)
        return mask

    yield set_to
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def linked_class_tree(tmp_path: Path, targets: dict[str, str]) -> Path:
    """`data/<class>/<name>` symlinks, each to its own copy of a small clip under `storage/` (outside the root)."""
    root = tmp_path / "data"
    for link, target in targets.items():
        stored = tmp_path / "storage" / target
        stored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SMALL_CLIP, stored)
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(stored)
    return root


# ----------------------------------------------------------------------------------------------------------------
# 1. extract_frames: a video file that is a symlink keeps its place in the tree
# ----------------------------------------------------------------------------------------------------------------
def test_symlinked_videos_of_the_same_name_in_two_classes_keep_their_class_folders(tmp_path):
    # Links to two different files both named a.mp4: following them left the root, and both went to OUT/a (refused).
    root = linked_class_tree(tmp_path, {"baseball/a.mp4": "one/a.mp4", "yoga/a.mp4": "two/a.mp4"})
    videos = [str(root / "baseball" / "a.mp4"), str(root / "yoga" / "a.mp4")]
    out = tmp_path / "frames"
    assert frame_folder_paths(videos, root, out) == {videos[0]: out / "baseball" / "a", videos[1]: out / "yoga" / "a"}


def test_a_symlinked_video_goes_by_its_own_name_not_its_targets(tmp_path):
    # Followed, the link named the folder after the stored file, flattened out of its class folder without a word.
    root = linked_class_tree(tmp_path, {"baseball/clip.mp4": "store/0001.mp4"})
    video = str(root / "baseball" / "clip.mp4")
    assert frame_folder_paths([video], root, tmp_path / "frames") == {video: tmp_path / "frames" / "baseball" / "clip"}


def test_a_root_given_through_a_symlink_still_holds_rows_written_with_the_real_path(tmp_path):
    # The reason the root is resolved at all: kept, with the file's own link no longer followed.
    real = tmp_path / "real"
    (real / "baseball").mkdir(parents=True)
    shutil.copyfile(SMALL_CLIP, real / "baseball" / "a.mp4")
    (tmp_path / "link").symlink_to(real)
    video = str(real / "baseball" / "a.mp4")
    outside = str(SMALL_CLIP)
    folders = frame_folder_paths([video, outside], tmp_path / "link", tmp_path / "frames")
    assert folders == {video: tmp_path / "frames" / "baseball" / "a", outside: tmp_path / "frames" / SMALL_CLIP.stem}


@pytest.fixture
def symlinked_extraction(tmp_path, umask):
    """extract_frames' work on a class tree of symlinked videos, under umask 027 (group may read, others nothing)."""
    from omniclip_hf.training.data import load_folder

    root = linked_class_tree(tmp_path, {"baseball/a.mp4": "one/a.mp4", "yoga/a.mp4": "two/a.mp4"})
    umask(0o027)
    result = extract_frame_folders(load_folder(root), root, tmp_path / "frames", "data.csv", labels_as_indices=False,
                                   short_side=32, max_fps=2)
    return tmp_path / "frames", result


def test_extraction_of_a_symlinked_tree_lists_each_class_folder(symlinked_extraction):
    out, result = symlinked_extraction
    assert result.undecodable == []
    assert (out / "data.csv").read_text().splitlines() == ["path,label", "baseball/a,baseball", "yoga/a,yoga"]


# ----------------------------------------------------------------------------------------------------------------
# 2. Files written atomically get the mode an ordinary open()/mkdir() gives them under the umask
# ----------------------------------------------------------------------------------------------------------------
def test_extraction_lists_are_as_readable_as_the_frame_folders(symlinked_extraction):
    out, result = symlinked_extraction
    assert mode(result.annotation_file) == 0o640, oct(mode(result.annotation_file))  # mkstemp's 0600 before
    assert mode(result.labels_file) == 0o640, oct(mode(result.labels_file))
    assert mode(out / "baseball" / "a") == 0o750


def prepare(*arguments) -> int:
    """examples/prepare_data.py's main, as tests/test_prepare_data.py runs it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare_data", REPO_ROOT / "examples" / "prepare_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(argument) for argument in arguments])


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o027], ids=lambda mask: f"umask{mask:03o}")
def test_prepare_data_lists_follow_the_umask(tmp_path, umask, mask):
    from .test_prepare_data_checks import ucf101_download

    splits, out = ucf101_download(tmp_path)  # every class, as the lists must have
    umask(mask)
    assert prepare("ucf101", "--splits", splits, "--out", out) == 0
    written = sorted(out.glob("ucf101_*.txt"))
    assert len(written) == 6
    assert {path.name: oct(mode(path)) for path in written} == {path.name: oct(0o666 & ~mask) for path in written}
    assert os.umask(mask) == mask  # reading the umask left it as it was


@pytest.mark.parametrize("mask", [0o022, 0o027], ids=lambda mask: f"umask{mask:03o}")
def test_omniclip_init_folder_follows_the_umask(tiny_clip_dir, tmp_path, umask, mask):
    from omniclip_hf.clip_conversion import write_model_folder

    umask(mask)
    folder = write_model_folder(tiny_clip_dir, tmp_path / "model", num_frames=4)
    assert oct(mode(folder)) == oct(0o777 & ~mask)  # mkdtemp's 0700 before
    # model.safetensors included: safetensors >= 0.8 writes it 0600 (a temporary file renamed).
    assert {path.name: oct(mode(path)) for path in folder.iterdir()} == {
        path.name: oct(0o666 & ~mask) for path in folder.iterdir()
    }


# ----------------------------------------------------------------------------------------------------------------
# 3. pretrain_tiny_clip: the output folder is checked before training, and written whole or not at all
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture
def no_training(monkeypatch):
    """Pretraining that fails the test if it starts: a refusal must come before minutes of training."""
    from omniclip_hf.motion_benchmark import tiny_clip as tc

    def training_started(*args, **kwargs):
        raise AssertionError("training started before the output folder was checked")

    monkeypatch.setattr(tc, "_pretrain", training_started)
    return tc


def omniclip_model_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "omniclip"}))
    (folder / "model.safetensors").write_bytes(b"trained omniclip weights")
    (folder / "modeling_omniclip.py").write_text("# remote code\n")
    return folder


def test_pretrain_refuses_a_file_before_training(tmp_path, no_training):
    (tmp_path / "afile").write_text("mine\n")
    for output_dir in (tmp_path / "afile", tmp_path / "afile" / "tiny_clip"):
        with pytest.raises(ValueError, match=f"{tmp_path / 'afile'} is a file; give a folder"):
            no_training.pretrain_tiny_clip(output_dir, steps=1, batch_size=2, eval_images=1, verbose=False)
    assert (tmp_path / "afile").read_text() == "mine\n"


def test_pretrain_refuses_another_models_folder_before_training(tmp_path, tiny_clip_dir, no_training):
    omniclip = omniclip_model_folder(tmp_path / "model")
    with pytest.raises(ValueError, match="is not empty and holds files a tiny CLIP does not .*modeling_omniclip.py"):
        no_training.pretrain_tiny_clip(omniclip, steps=1, batch_size=2, eval_images=1, verbose=False)
    # A real CLIP's folder holds only names a tiny CLIP has too, but no pretrain_metrics.json: not this script's.
    with pytest.raises(ValueError, match="has no pretrain_metrics.json"):
        no_training.pretrain_tiny_clip(tiny_clip_dir, steps=1, batch_size=2, eval_images=1, verbose=False)
    assert (omniclip / "model.safetensors").read_bytes() == b"trained omniclip weights"


def test_pretrain_script_refuses_a_file_in_one_line(tmp_path):
    (tmp_path / "afile").write_text("mine\n")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "pretrain_tiny_clip.py"), "--output_dir", str(tmp_path / "afile"),
         "--steps", "1", "--batch_size", "2", "--eval_images", "1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --output_dir {tmp_path / 'afile'}: {tmp_path / 'afile'} is a file; give a folder."
    ]
    assert "pretraining" not in result.stdout  # refused before training started


@pytest.fixture(scope="module")
def small_clip_and_tokenizer():
    """A CLIP too small to train, with the real tokenizer: enough for `save_tiny_clip`."""
    import torch
    from transformers import CLIPModel, CLIPTokenizer

    from omniclip_hf.motion_benchmark import tiny_clip as tc

    tokenizer = CLIPTokenizer.from_pretrained(str(tc.default_tokenizer_path()))
    torch.manual_seed(0)
    config = tc.make_tiny_clip_config(image_size=32, width=16, layers=1, heads=2, projection_dim=8,
                                      vocab_size=len(tokenizer))
    return CLIPModel(config).eval(), tokenizer


def earlier_tiny_clip(folder: Path, model, tokenizer) -> Path:
    """A tiny CLIP folder an earlier run saved the old way (in place), with a file only an older version wrote."""
    from omniclip_hf.motion_benchmark import tiny_clip as tc

    folder.mkdir(parents=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / tc.METRICS_FILE).write_text(json.dumps({"seed": "earlier"}))
    (folder / "pytorch_model.bin").write_bytes(b"older weights")
    return folder


def siblings(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.parent.iterdir())


def test_pretrain_accepts_an_empty_folder_and_an_earlier_tiny_clip(tmp_path, monkeypatch, small_clip_and_tokenizer):
    # The demo and bench_ablation pretrain into work_dir/tiny_clip again on a rerun: that must keep working.
    from omniclip_hf.motion_benchmark import tiny_clip as tc

    monkeypatch.setattr(tc, "_pretrain", lambda output_dir, *args: {"trained_into": str(output_dir)})
    (tmp_path / "empty").mkdir()
    earlier = earlier_tiny_clip(tmp_path / "tiny_clip", *small_clip_and_tokenizer)
    for folder in (tmp_path / "empty", earlier, tmp_path / "new" / "tiny_clip"):
        assert tc.pretrain_tiny_clip(folder, steps=1, batch_size=2, eval_images=1, verbose=False) == {
            "trained_into": str(folder)
        }


def test_saving_replaces_an_earlier_tiny_clip_whole(tmp_path, small_clip_and_tokenizer):
    from omniclip_hf.motion_benchmark import tiny_clip as tc

    folder = earlier_tiny_clip(tmp_path / "tiny_clip", *small_clip_and_tokenizer)
    tc.save_tiny_clip(*small_clip_and_tokenizer, folder, 32, {"seed": "new"})
    assert not (folder / "pytorch_model.bin").exists()  # saved into in place, the older weights stayed beside
    assert json.loads((folder / tc.METRICS_FILE).read_text()) == {"seed": "new"}
    assert siblings(folder) == ["tiny_clip"]  # no temporary folder left


def test_an_interrupted_save_leaves_the_earlier_tiny_clip(tmp_path, monkeypatch, small_clip_and_tokenizer):
    from transformers import CLIPImageProcessor

    from omniclip_hf.motion_benchmark import tiny_clip as tc

    folder = earlier_tiny_clip(tmp_path / "tiny_clip", *small_clip_and_tokenizer)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(CLIPImageProcessor, "save_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tc.save_tiny_clip(*small_clip_and_tokenizer, folder, 32, {"seed": "new"})
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before  # not half of the new model
    assert siblings(folder) == ["tiny_clip"]
    with pytest.raises(KeyboardInterrupt):  # into a new folder: nothing, rather than a model without its processor
        tc.save_tiny_clip(*small_clip_and_tokenizer, tmp_path / "new", 32)
    assert siblings(folder) == ["tiny_clip"]


def test_saving_never_writes_into_another_models_folder(tmp_path, small_clip_and_tokenizer):
    from omniclip_hf.motion_benchmark import tiny_clip as tc

    omniclip = omniclip_model_folder(tmp_path / "model")
    with pytest.raises(ValueError, match="is not empty and holds files a tiny CLIP does not"):
        tc.save_tiny_clip(*small_clip_and_tokenizer, omniclip, 32)
    assert json.loads((omniclip / "config.json").read_text()) == {"model_type": "omniclip"}
    assert (omniclip / "model.safetensors").read_bytes() == b"trained omniclip weights"


def test_saved_tiny_clip_follows_the_umask(tmp_path, umask, small_clip_and_tokenizer):
    from omniclip_hf.motion_benchmark import tiny_clip as tc

    umask(0o022)
    folder = tmp_path / "tiny_clip"
    tc.save_tiny_clip(*small_clip_and_tokenizer, folder, 32, {"seed": 0})
    assert oct(mode(folder)) == oct(0o755)
    assert {path.name: oct(mode(path)) for path in folder.iterdir()} == {
        path.name: oct(0o644) for path in folder.iterdir()
    }


def test_a_saved_model_folder_follows_the_umask(tmp_path, umask):
    """examples/train.py's model/ (written under a temporary name and renamed): safetensors writes model.safetensors
    0600, which the rename kept, so the trained model was unreadable to the rest of a group."""
    import torch
    from safetensors.torch import save_file

    from omniclip_hf.training.checkpoints import write_folder_atomically

    def write(partial: Path) -> None:
        partial.mkdir()
        save_file({"w": torch.zeros(2)}, str(partial / "model.safetensors"))

    umask(0o027)
    folder = write_folder_atomically(tmp_path / "model", write)
    assert mode(folder) == 0o750 and mode(folder / "model.safetensors") == 0o640
