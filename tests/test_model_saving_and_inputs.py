"""Saving a model never leaves a folder that loads as a mix of two models; a saved folder holds every module its code
imports; class texts given two ways, or ids CLIP has no embedding for, are refused in one line; a CLIP loaded from a
relative folder is recorded by its absolute path."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from omniclip_hf import OmniCLIPModel

from .conftest import build_tiny_clip
from .test_transformers_native import IMPORT_BLOCKER


def nudged(model: OmniCLIPModel, seed: int) -> OmniCLIPModel:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.trainable_parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def trainable_state(model: OmniCLIPModel) -> dict[str, torch.Tensor]:
    return {name: tensor for name, tensor in model.state_dict().items() if not name.startswith("clip.")}


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("save", ["save_adapter", "save_pretrained"])
def test_a_save_that_fails_leaves_the_folders_earlier_model_whole(tiny_clip_dir, tmp_path, monkeypatch, save):
    import safetensors.torch
    import transformers.modeling_utils

    folder = tmp_path / "model"
    earlier = nudged(OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4, text_template="a video of {}."), 1)
    getattr(earlier, save)(folder)
    (folder / "notes.txt").write_text("kept")
    before = sorted(path.name for path in folder.iterdir())

    later = nudged(OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4, text_template="a clip of {}."), 2)
    monkeypatch.setattr(safetensors.torch, "save_file", no_space)
    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", no_space)
    with pytest.raises(OSError, match="no space left on device"):
        getattr(later, save)(folder)
    monkeypatch.undo()

    # Written into the folder straight, the later config.json stood beside the earlier weights.
    assert sorted(path.name for path in folder.iterdir()) == before
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".partial")]
    loaded = OmniCLIPModel.from_pretrained(folder)
    assert loaded.config.text_template == "a video of {}."
    for name, tensor in trainable_state(earlier).items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_a_save_over_another_sharding_keeps_only_its_own_weights_and_the_folders_other_files(tiny_clip_dir, tmp_path):
    folder = tmp_path / "model"
    model = nudged(OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4), 3)
    model.save_pretrained(folder, max_shard_size="200KB")
    assert (folder / "model.safetensors.index.json").is_file()
    (folder / "notes.txt").write_text("kept")
    model.save_pretrained(folder)
    weights = sorted(path.name for path in folder.glob("model*safetensors*"))
    assert weights == ["model.safetensors"]
    assert (folder / "notes.txt").read_text() == "kept"
    model.save_adapter(folder)
    assert not list(folder.glob("model*safetensors*")) and (folder / "adapter_model.safetensors").is_file()
    loaded = OmniCLIPModel.from_pretrained(folder)
    for name, tensor in trainable_state(model).items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def missing_relative_imports(folder: Path) -> list[str]:
    from transformers.dynamic_module_utils import get_relative_imports

    return sorted(f"{path.name} imports {name}" for path in folder.glob("*.py")
                  for name in get_relative_imports(path) if not (folder / f"{name}.py").is_file())


def test_a_model_saved_alone_holds_every_module_its_code_imports(tiny_clip_dir, tmp_path):
    folder = tmp_path / "model"
    OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4).save_pretrained(folder)
    # The pipeline named in the config is there, and so is every module it imports (video decoding, sources, ...):
    # a model saved without its processor held pipeline_omniclip.py but not video_decoding.py.
    assert "zero-shot-video-classification" in json.loads((folder / "config.json").read_text())["custom_pipelines"]
    assert (folder / "pipeline_omniclip.py").is_file()
    assert missing_relative_imports(folder) == []


RESAVE_SCRIPT = '''
import sys
from transformers import AutoModel
try:
    import omniclip_hf  # noqa: F401
    raise SystemExit("omniclip_hf was importable")
except ImportError:
    pass
AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).save_pretrained(sys.argv[2])
'''


def resave_without_the_package(source: Path, out: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """Loads `source` with trust_remote_code=True where omniclip_hf cannot be imported and saves it into `out`."""
    blocker = tmp_path / "blocker"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(IMPORT_BLOCKER)
    environment = {**os.environ, "PYTHONPATH": str(blocker), "HF_HUB_OFFLINE": "1",
                   "HF_MODULES_CACHE": str(tmp_path / "modules")}
    process = subprocess.run([sys.executable, "-c", RESAVE_SCRIPT, str(source), str(out)], cwd=tmp_path,
                             env=environment, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    return process


def test_a_remote_code_model_saved_again_keeps_the_pipeline_of_its_folder(tiny_omniclip_dir, tmp_path):
    """The remote-code copy of the model holds no pipeline code: saved again, even into its own folder, the config
    lost `custom_pipelines` and `pipeline("zero-shot-video-classification", ...)` was an unknown task. The folder it
    was loaded from holds the pipeline and its imports: they are saved with it."""
    source = tmp_path / "source"
    shutil.copytree(tiny_omniclip_dir, source)
    for out in (tmp_path / "resaved", source):  # another folder, and the folder itself
        resave_without_the_package(source, out, tmp_path)
        config = json.loads((out / "config.json").read_text())
        assert "zero-shot-video-classification" in config["custom_pipelines"], out
        assert (out / "pipeline_omniclip.py").is_file() and missing_relative_imports(out) == []
        assert OmniCLIPModel.from_pretrained(out).config.num_frames == 4


def test_a_remote_code_model_saved_again_names_no_pipeline_it_lacks(tiny_omniclip_dir, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(tiny_omniclip_dir, source)
    (source / "pipeline_omniclip.py").unlink()  # a folder saved without the pipeline's code
    config = json.loads((source / "config.json").read_text())
    del config["custom_pipelines"]
    (source / "config.json").write_text(json.dumps(config))
    out = tmp_path / "resaved"
    process = resave_without_the_package(source, out, tmp_path)
    # Neither the remote-code copy of the model nor its folder holds the pipeline: the config names none.
    config = json.loads((out / "config.json").read_text())
    assert "custom_pipelines" not in config and not (out / "pipeline_omniclip.py").exists()
    assert "Saved without the zero-shot pipeline's code" in process.stderr
    assert missing_relative_imports(out) == []
    assert OmniCLIPModel.from_pretrained(out).config.num_frames == 4


@pytest.fixture(scope="module")
def model():
    return OmniCLIPModel.from_clip(build_tiny_clip(), num_frames=4).eval()


def test_class_texts_given_both_as_ids_and_as_embeddings_are_refused(model):
    videos = torch.randn(2, 4, 3, 32, 32)
    input_ids = torch.tensor([[49406, 320, 49407], [49406, 321, 49407], [49406, 322, 49407]])
    with pytest.raises(ValueError, match="either input_ids .* or text_embeds .* not both"):
        model(pixel_values_videos=videos, input_ids=input_ids, text_embeds=torch.randn(5, 32))


@pytest.mark.parametrize("input_ids, message", [
    (torch.full((3, 5), 60000), r"outside CLIP's vocabulary \[0, 49408\)"),
    (torch.tensor([[49406, -1, 49407]]), r"outside CLIP's vocabulary"),
    (torch.zeros((0, 5), dtype=torch.long), r"shape \(0, 5\): give at least one class text"),
    (torch.zeros((3, 0), dtype=torch.long), r"shape \(3, 0\)"),
])
def test_token_ids_clip_cannot_read_are_refused_in_one_line(model, input_ids, message):
    with pytest.raises(ValueError, match=message):
        model(pixel_values_videos=torch.randn(1, 4, 3, 32, 32), input_ids=input_ids)


def test_a_clip_loaded_from_a_relative_folder_is_recorded_by_its_absolute_path(tiny_clip_dir, tmp_path, monkeypatch):
    from transformers import CLIPModel

    monkeypatch.chdir(tiny_clip_dir.parent)
    clip = CLIPModel.from_pretrained(tiny_clip_dir.name)
    folder = tmp_path / "adapter"
    OmniCLIPModel.from_clip(clip, num_frames=4).save_adapter(folder)
    assert json.loads((folder / "config.json").read_text())["base_clip_name_or_path"] == str(tiny_clip_dir)
    monkeypatch.chdir(tmp_path)  # it loads from any folder: relative, the name was looked for here
    assert OmniCLIPModel.from_pretrained(folder).config.num_frames == 4


def test_attentions_asked_for_under_sdpa_are_said_to_be_empty(model, caplog):
    import logging

    logging.Logger.warning_once.cache_clear()  # transformers' once-only warnings: another test may have seen it
    with caplog.at_level(logging.WARNING, logger="omniclip_hf"):
        output = model.get_video_features(torch.randn(1, 4, 3, 32, 32), output_attentions=True)
    assert model.clip.vision_model.config._attn_implementation == "sdpa" and not output.attentions
    assert "`sdpa` attention returns no attention weights" in caplog.text


def test_a_save_by_a_process_that_does_not_write_leaves_the_folder_alone(tiny_clip_dir, tmp_path):
    # Distributed saving (Trainer under FSDP): every process calls save_pretrained, only the main one writes; the
    # others' stale-weight removal would delete what it wrote.
    folder = tmp_path / "model"
    model = nudged(OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4), 4)
    model.save_pretrained(folder)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    model.save_pretrained(folder, is_main_process=False)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_a_folder_holding_another_versions_code_is_named_at_loading(tiny_omniclip_dir, tmp_path, caplog):
    """With the package installed its code runs a folder; with trust_remote_code=True the folder's copy does: a
    folder saved by another version gave two answers (the temporal embedding's interpolation changed once) with
    nothing said."""
    folder = tmp_path / "saved"
    shutil.copytree(tiny_omniclip_dir, folder)
    with caplog.at_level("WARNING", logger="omniclip_hf.modeling_omniclip"):
        OmniCLIPModel.from_pretrained(folder)
    assert "another version's code" not in caplog.text  # saved by this version: the same code
    with open(folder / "modeling_omniclip.py", "a") as stream:
        stream.write("\n# saved by another version\n")
    with caplog.at_level("WARNING", logger="omniclip_hf.modeling_omniclip"):
        OmniCLIPModel.from_pretrained(folder)
    assert f"{folder} holds another version's code (modeling_omniclip.py) than the omniclip-hf running it" in caplog.text
