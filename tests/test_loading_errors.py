"""Models that cannot load and label files that cannot be read: one `error:` line naming the file and the cause.

A model folder whose config.json does not fit its weights (edited by hand, or another model's), a truncated weights
file, an adapter whose base CLIP is missing; a labels CSV with a bad `id` or an empty name. `examples/evaluate.py`
runs in a fresh process, as users run it; the `omniclip` command runs in-process through `main()`, as in test_cli.py.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from .conftest import REPO_ROOT
from .test_training import motion_data, run  # noqa: F401 (fixture)

EVALUATE = [sys.executable, str(REPO_ROOT / "examples" / "evaluate.py")]
SHORT_MP4 = REPO_ROOT.parent / "shared" / "videos" / "mmaction2_rawvideo_part_0.mp4"
PROCESSOR_FILES = ("tokenizer.json", "tokenizer_config.json", "processor_config.json")


def edit_config(folder, **changes) -> None:
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    assert all(name in config and config[name] != value for name, value in changes.items())
    config_file.write_text(json.dumps({**config, **changes}, indent=2))


@pytest.fixture(scope="module")
def edited_dir(tiny_omniclip_dir, tmp_path_factory):
    """The tiny OmniCLIP (weights for 4 frames) with config.json's num_frames edited to 8."""
    folder = tmp_path_factory.mktemp("edited") / "model"
    shutil.copytree(tiny_omniclip_dir, folder)
    edit_config(folder, num_frames=8)
    return folder


def error_lines(stderr: str) -> list[str]:
    """stderr's lines, less transformers' "Loading weights" progress bar (drawn before any failure is known)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("Loading weights")]


def one_script_error(result) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


def one_cli_error(capsys, arguments) -> str:
    from omniclip_hf.cli import main

    status = main([str(argument) for argument in arguments])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 1 and len(lines) == 1 and lines[0].startswith("omniclip: error: "), err
    assert "Traceback" not in err and "See the original errors" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------------------------------------------
# 1. config.json edited after saving: weights of other shapes
# ----------------------------------------------------------------------------------------------------------------
def test_evaluate_names_the_config_and_the_weights_that_do_not_fit(edited_dir, motion_data, tmp_path):  # noqa: F811
    result = run(EVALUATE + ["--model", str(edited_dir), "--eval_data", str(motion_data / "test"), "--num_workers",
                             "0", "--output_dir", str(tmp_path / "eval")])
    line = one_script_error(result)
    assert line.startswith(f"error: {edited_dir / 'config.json'} does not fit the weights"), line
    assert "temporal_embedding.weight is [4, 64] in the weights but [8, 64] for this config" in line
    assert "was edited" in line and "belongs to other weights" in line
    assert "ignore_mismatched_sizes" not in line and "Traceback" not in result.stderr
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("changes, weight", [({"num_frames": 8}, "temporal_embedding.weight is [4, 64]"),
                                             ({"pta_ratio": 0.5}, ".temporal_adapter.")])
def test_info_names_the_weights_that_do_not_fit_the_config(tiny_omniclip_dir, tmp_path, capsys, changes, weight):
    folder = tmp_path / "model"
    shutil.copytree(tiny_omniclip_dir, folder)
    edit_config(folder, **changes)
    line = one_cli_error(capsys, ["info", folder])
    assert f"{folder / 'config.json'} does not fit the weights" in line and weight in line, line
    assert "above report" not in line


# ----------------------------------------------------------------------------------------------------------------
# 2. classify with a model that cannot load: the cause, not transformers' aggregate of tracebacks
# ----------------------------------------------------------------------------------------------------------------
def truncated_weights(tiny_omniclip_dir, tmp_path):
    folder = tmp_path / "truncated"
    shutil.copytree(tiny_omniclip_dir, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    return folder, [f"{weights} is damaged or incomplete", "save or download it again"]


def adapter_without_base(tiny_omniclip_dir, tmp_path):
    from omniclip_hf import OmniCLIPModel

    folder, base = tmp_path / "adapter", tmp_path / "deleted-clip"
    OmniCLIPModel.from_pretrained(tiny_omniclip_dir).save_adapter(folder, base_clip_name_or_path=str(base))
    for name in PROCESSOR_FILES:
        shutil.copy(tiny_omniclip_dir / name, folder / name)
    return folder, [f"{base}: no such folder"]


def edited(tiny_omniclip_dir, tmp_path):
    folder = tmp_path / "edited"
    shutil.copytree(tiny_omniclip_dir, folder)
    edit_config(folder, num_frames=8)
    return folder, [f"{folder / 'config.json'} does not fit the weights", "temporal_embedding.weight is [4, 64]"]


@pytest.mark.parametrize("make_model", [truncated_weights, adapter_without_base, edited])
def test_classify_says_why_the_model_did_not_load(tiny_omniclip_dir, tmp_path, capsys, make_model):
    folder, phrases = make_model(tiny_omniclip_dir, tmp_path)
    capsys.readouterr()  # making the model may show a loading bar; only the command's own output is checked
    line = one_cli_error(capsys, ["classify", SHORT_MP4, "--model", folder, "--labels", "archery,yoga"])
    assert line.startswith(f"omniclip: error: could not load the model and its processor from {folder}: "), line
    assert all(phrase in line for phrase in phrases), line
    assert "Could not load model" not in line and "File \"" not in line, line


# ----------------------------------------------------------------------------------------------------------------
# 3. label files: the file and the line of a bad id or an empty name
# ----------------------------------------------------------------------------------------------------------------
LABEL_FILES = {
    "bad id": ("id,name\n0,archery\nx,yoga\n", "line 3: id 'x' is not a whole number"),
    "empty name": ("id,name\n0,archery\n1,\n2,yoga\n", "line 3: the class name '' is empty"),
    "no name": ("id,name\n0,archery\n1\n", "line 3: the class name '' is empty"),
}


@pytest.mark.parametrize("case", list(LABEL_FILES))
def test_classify_names_the_label_file_and_line(tiny_omniclip_dir, tmp_path, capsys, case):
    text, phrase = LABEL_FILES[case]
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    line = one_cli_error(capsys, ["classify", SHORT_MP4, "--model", tiny_omniclip_dir, "--labels-file", labels])
    assert line.startswith(f"omniclip: error: Label file {labels}, {phrase}"), line


@pytest.mark.parametrize("case", ["bad id", "empty name"])
def test_evaluate_names_the_label_file_and_line(tiny_omniclip_dir, motion_data, tmp_path, case):  # noqa: F811
    text, phrase = LABEL_FILES[case]
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    line = one_script_error(run(EVALUATE + ["--model", str(tiny_omniclip_dir), "--eval_data", str(motion_data / "test"),
                                            "--labels_file", str(labels), "--num_workers", "0",
                                            "--output_dir", str(tmp_path / "eval")]))
    assert line.startswith(f"error: Label file {labels}, {phrase}"), line


def test_a_name_empty_once_cleaned_in_a_text_file_names_its_line(tmp_path):
    from omniclip_hf import load_label_names

    labels = tmp_path / "labels.txt"
    labels.write_text("archery\n\n__\nyoga\n")
    with pytest.raises(ValueError, match=rf"^Label file {labels}, line 3: the class name '__' is empty once cleaned"):
        load_label_names(labels)
    labels.write_text("archery\n\nyoga\n")
    assert load_label_names(labels) == ["archery", "yoga"]
    (tmp_path / "ordered.csv").write_text("id,name\n1,yoga\n0,archery\n")
    assert load_label_names(tmp_path / "ordered.csv") == ["archery", "yoga"]


@pytest.mark.parametrize("name, text", [("labels.csv", "id,name\n"), ("labels.txt", "\n  \n")])
def test_a_label_file_with_no_class_names_says_so(tiny_omniclip_dir, tmp_path, capsys, name, text):
    """A header-only CSV read as "must be a CSV with a 'name' column", which it has; a blank text file gave an empty
    class list, which training took."""
    from omniclip_hf import load_label_names

    labels = tmp_path / name
    labels.write_text(text)
    with pytest.raises(ValueError, match=f"^Label file {labels} lists no class names: write one name a line"):
        load_label_names(labels)
    line = one_cli_error(capsys, ["classify", SHORT_MP4, "--model", tiny_omniclip_dir, "--labels-file", labels])
    assert line.startswith(f"omniclip: error: Label file {labels} lists no class names"), line


@pytest.mark.parametrize("missing", ["/nowhere/at/all/model", "./runs/not_trained_yet/model", "../model"])
def test_a_missing_local_folder_is_named_as_a_path_not_a_hub_id(missing):
    """A path that cannot be a Hub id ('name' or 'namespace/name') is a folder that does not exist: said so, with no
    repo-id rules from huggingface_hub and no try at the network."""
    from omniclip_hf import OmniCLIPModel

    with pytest.raises(FileNotFoundError) as raised:
        OmniCLIPModel.from_pretrained(missing)
    message = str(raised.value)
    assert message.startswith(f"{missing}: no such folder") and "Repo id must" not in message


def test_a_long_hub_message_is_shortened_at_a_sentence_not_mid_address():
    from omniclip_hf.modeling_omniclip import first_sentences

    message = ("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the cached "
               "files. Check your internet connection or see how to run the library in offline mode at "
               "'https://huggingface.co/docs/transformers/installation#offline-mode'.")
    assert first_sentences(message) == message.split(". ")[0] + "."
    assert first_sentences("One. Two.") == "One. Two."
