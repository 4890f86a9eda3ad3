"""Folders others load: an adapter-only checkpoint runs the model card's pipeline snippet through remote code, and
`omniclip init` writes a video processor that prepares frames as the CLIP's image processor does and a tokenizer of
the CLIP's vocabulary (or says which one it used instead)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from .conftest import REPO_ROOT, SHARED_DIR, TOKENIZER_DIR
from .test_transformers_native import IMPORT_BLOCKER

VIDEO = SHARED_DIR / "videos" / "mmaction2_rawvideo_part_0.mp4"  # 32 frames at 30 fps
LABELS = ["archery", "playing guitar", "yoga"]

# ----------------------------------------------------------------------------------------------------------------
# Adapter-only folders: the card's `pipeline(..., trust_remote_code=True)` snippet
# ----------------------------------------------------------------------------------------------------------------

# The model card's snippet, nothing of the package imported first.
CARD_SNIPPET = '''
import json, sys
from transformers import AutoModel, pipeline

folder, video, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "blocked":
    try:
        import omniclip_hf  # noqa: F401
        raise SystemExit("omniclip_hf was importable")
    except ImportError:
        pass
model = AutoModel.from_pretrained(folder, trust_remote_code=True)
classifier = pipeline("zero-shot-video-classification", model=folder, trust_remote_code=True)
result = classifier(video, candidate_labels=["archery", "playing guitar", "yoga"])
print(json.dumps({"model": type(model).__module__, "pipeline": type(classifier).__module__, "result": result}))
'''

PIPELINE_ENTRY = {
    "zero-shot-video-classification": {
        "impl": "pipeline_omniclip.ZeroShotVideoClassificationPipeline",
        "pt": ["AutoModel"],
        "tf": [],
        "type": "multimodal",
    }
}


@pytest.fixture(scope="module")
def adapter_folder(tiny_clip_dir, tmp_path_factory):
    """An adapter-only folder as `train.py --adapter_only` writes it: `save_adapter`, then the processor, over the
    tiny CLIP's folder; the new modules nudged off the identity, as after training."""
    from transformers import CLIPTokenizer

    from omniclip_hf import OmniCLIPModel, OmniCLIPProcessor, OmniCLIPVideoProcessor

    model = OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4).eval()
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for parameter in model.trainable_parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    folder = tmp_path_factory.mktemp("adapter") / "model"
    model.save_adapter(folder)
    video_processor = OmniCLIPVideoProcessor(num_frames=4, size={"shortest_edge": 32},
                                             crop_size={"height": 32, "width": 32})
    processor = OmniCLIPProcessor(video_processor, CLIPTokenizer.from_pretrained(TOKENIZER_DIR),
                                  text_template=model.config.text_template)
    processor.save_pretrained(folder)
    return folder


def test_an_adapter_folder_names_and_holds_the_pipeline_as_a_full_folder_does(adapter_folder, tiny_clip, tmp_path):
    from omniclip_hf import OmniCLIPModel

    config = json.loads((adapter_folder / "config.json").read_text())
    assert config["checkpoint_format"] == "adapter" and config["custom_pipelines"] == PIPELINE_ENTRY
    assert (adapter_folder / "pipeline_omniclip.py").is_file() and not (adapter_folder / "model.safetensors").exists()
    full = tmp_path / "full"
    OmniCLIPModel.from_clip(tiny_clip, num_frames=4).save_pretrained(full)
    assert json.loads((full / "config.json").read_text())["custom_pipelines"] == config["custom_pipelines"]
    code = {path.name for path in full.glob("*.py")}
    assert code <= {path.name for path in adapter_folder.glob("*.py")}
    assert (adapter_folder / "pipeline_omniclip.py").read_bytes() == (full / "pipeline_omniclip.py").read_bytes()


@pytest.mark.parametrize("mode", ["blocked", "installed"])
def test_the_cards_pipeline_snippet_runs_an_adapter_folder_as_remote_code(adapter_folder, mode, tmp_path):
    """`blocked`: omniclip_hf cannot be imported; `installed`: importable, but the snippet never imports it."""
    from transformers import pipeline

    import omniclip_hf  # noqa: F401  (registers the task here, for the scores to compare with)

    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"),
                   "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    if mode == "blocked":
        blocker = tmp_path / "blocker"
        blocker.mkdir()
        (blocker / "sitecustomize.py").write_text(IMPORT_BLOCKER)
        environment["PYTHONPATH"] = str(blocker)
    else:
        environment["PYTHONPATH"] = str(REPO_ROOT)
    process = subprocess.run(
        [sys.executable, "-c", CARD_SNIPPET, str(adapter_folder), str(VIDEO), mode],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    remote = json.loads(process.stdout.strip().splitlines()[-1])
    assert remote["model"].startswith("transformers_modules.")
    assert remote["pipeline"].startswith("transformers_modules.")
    local = pipeline("zero-shot-video-classification", model=str(adapter_folder))(str(VIDEO), candidate_labels=LABELS)
    assert [entry["label"] for entry in remote["result"]] == [entry["label"] for entry in local]
    for theirs, ours in zip(remote["result"], local):
        assert theirs["score"] == pytest.approx(ours["score"], abs=1e-6)


def test_automodel_s_fields_reach_an_adapter_loaded_as_remote_code(adapter_folder, tmp_path):
    """Under remote code AutoConfig's class and the modeling file's OmniCLIPConfig are copies in two dynamic modules:
    `isinstance` failed, the config AutoModel passed was re-read from disk and the caller's fields dropped."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(IMPORT_BLOCKER)
    script = ("import json, sys\nfrom transformers import AutoModel\n"
              "model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True, text_template='a clip of {}.', "
              "output_hidden_states=True)\n"
              "print(json.dumps([type(model).__module__, model.config.text_template, model.config.output_hidden_states]))")
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"),
                   "OMP_NUM_THREADS": "1", "PYTHONPATH": str(blocker)}
    process = subprocess.run([sys.executable, "-c", script, str(adapter_folder)], cwd=tmp_path, env=environment,
                             capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    module, template, hidden_states = json.loads(process.stdout.strip().splitlines()[-1])
    assert module.startswith("transformers_modules.") and template == "a clip of {}." and hidden_states is True


# ----------------------------------------------------------------------------------------------------------------
# `omniclip init`: the video processor prepares frames as the CLIP's image processor
# ----------------------------------------------------------------------------------------------------------------
HALF = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
IMAGE_SETTINGS = {
    "shortest edge, then centre crop": (dict(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32},
                                             do_center_crop=True, **HALF), (32, 32)),
    "exact height and width, no crop": (dict(size={"height": 32, "width": 32}, do_center_crop=False, **HALF),
                                        (32, 32)),
    "exact height and width, then centre crop": (dict(size={"height": 36, "width": 40},
                                                      crop_size={"height": 32, "width": 32}, **HALF), (32, 32)),
}


def clip_with_image_processor(tiny_clip_dir, folder, preprocessor_config: dict):
    shutil.copytree(tiny_clip_dir, folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor_config))
    return folder


@pytest.mark.parametrize("case", list(IMAGE_SETTINGS))
def test_init_prepares_each_frame_as_the_clips_image_processor(case, tiny_clip_dir, tmp_path):
    from transformers import AutoImageProcessor, CLIPImageProcessor

    from omniclip_hf import OmniCLIPProcessor
    from omniclip_hf.clip_conversion import write_model_folder

    settings, frame_size = IMAGE_SETTINGS[case]
    clip = tmp_path / "clip"
    shutil.copytree(tiny_clip_dir, clip)
    CLIPImageProcessor(**settings).save_pretrained(clip)
    folder = write_model_folder(clip, tmp_path / "omniclip", num_frames=4)

    video = np.random.default_rng(0).integers(0, 256, size=(4, 45, 60, 3), dtype=np.uint8)
    video_processor = OmniCLIPProcessor.from_pretrained(folder).video_processor
    ours = video_processor(video, do_augment=False, return_tensors="pt")["pixel_values_videos"][0]
    theirs = AutoImageProcessor.from_pretrained(clip)(list(video), return_tensors="pt")["pixel_values"]
    assert tuple(ours.shape) == tuple(theirs.shape) == (4, 3, *frame_size)
    for frame, (our_frame, their_frame) in enumerate(zip(ours, theirs)):
        torch.testing.assert_close(our_frame, their_frame, atol=1e-6, rtol=0, msg=f"frame {frame}")
    # Training crops (random resized crops) come out at the size evaluation gives.
    assert (video_processor.crop_size.height, video_processor.crop_size.width) == frame_size
    assert video_processor.do_center_crop == settings.get("do_center_crop", True)


def test_init_keeps_the_usual_clip_settings_and_reads_openais_integer_sizes(tiny_clip_dir, tmp_path):
    """The usual CLIP (shortest edge, then crop) gives the processor it always gave; OpenAI's own checkpoints write
    `size` and `crop_size` as integers (a shortest edge and a square), which CLIPImageProcessor reads so."""
    from transformers import AutoImageProcessor

    from omniclip_hf.clip_conversion import video_processor_for_clip

    usual = clip_with_image_processor(tiny_clip_dir, tmp_path / "usual", {
        "size": {"shortest_edge": 40}, "crop_size": {"height": 32, "width": 32}, "do_center_crop": True, **HALF})
    processor = video_processor_for_clip(usual, image_size=32, num_frames=4)
    assert processor.size == {"shortest_edge": 40} and processor.crop_size == {"height": 32, "width": 32}
    assert processor.do_center_crop and list(processor.image_mean) == [0.5, 0.5, 0.5]
    no_settings = video_processor_for_clip(tiny_clip_dir, image_size=32, num_frames=4)
    assert no_settings.size == {"shortest_edge": 32} and no_settings.crop_size == {"height": 32, "width": 32}

    openai = clip_with_image_processor(tiny_clip_dir, tmp_path / "openai", {
        "size": 40, "crop_size": 32, "do_center_crop": True, "do_resize": True, "resample": 3,
        "feature_extractor_type": "CLIPFeatureExtractor", **HALF})
    processor = video_processor_for_clip(openai, image_size=32, num_frames=4)
    assert processor.size == {"shortest_edge": 40} and processor.crop_size == {"height": 32, "width": 32}
    video = np.random.default_rng(1).integers(0, 256, size=(4, 45, 60, 3), dtype=np.uint8)
    ours = processor(video, do_augment=False, return_tensors="pt")["pixel_values_videos"][0]
    theirs = AutoImageProcessor.from_pretrained(openai)(list(video), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_init_refuses_a_resize_the_video_processor_cannot_do_in_one_line(tiny_clip_dir, tmp_path, capsys):
    from omniclip_hf.cli import main

    clip = clip_with_image_processor(tiny_clip_dir, tmp_path / "clip", {"size": {"longest_edge": 64}, **HALF})
    assert main(["init", "--clip", str(clip), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(clip) in err[0] and "size={'longest_edge': 64}" in err[0], err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------------------------
# `omniclip init`: the tokenizer
# ----------------------------------------------------------------------------------------------------------------
def test_init_from_a_clip_without_tokenizer_files_uses_the_bundled_tokenizer_and_says_so(tiny_clip, tmp_path,
                                                                                         capsys):
    from transformers import AutoTokenizer

    from omniclip_hf.cli import main

    clip = tmp_path / "clip-without-tokenizer"
    tiny_clip.save_pretrained(clip)  # config.json and weights: no vocabulary, no tokenizer files
    out = tmp_path / "omniclip"
    assert main(["init", "--clip", str(clip), "--out", str(out), "--num-frames", "4"]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out}" in captured.out
    notice = [line for line in captured.err.splitlines() if line.startswith("omniclip: warning:")]
    assert len(notice) == 1 and str(clip) in notice[0] and "BPE tokenizer shipped with omniclip_hf" in notice[0]
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(tokenizer) == tiny_clip.config.text_config.vocab_size == 49408
    ids = tokenizer(["a video of archery action", "a video of cooking action"]).input_ids
    assert ids[0] != ids[1]


def test_a_clips_own_tokenizer_is_kept_without_notice_and_one_that_cannot_fit_is_refused(tiny_clip_dir, tmp_path):
    from transformers import CLIPTokenizer

    from omniclip_hf.clip_conversion import tokenizer_for_clip

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        own = tokenizer_for_clip(tiny_clip_dir)
    assert len(own) == 49408 and own("yoga").input_ids == CLIPTokenizer.from_pretrained(TOKENIZER_DIR)("yoga").input_ids
    # No tokenizer, and a text model too small for CLIP's BPE ids: no tokenizer would do, so none is made.
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip", "text_config": {"vocab_size": 99}}))
    with pytest.raises(ValueError, match=r"does not fit its text model \(99 tokens\): save the CLIP.s own tokenizer"):
        tokenizer_for_clip(tmp_path)


def video_head_weight(model) -> torch.Tensor:
    return model.video_head.layers[0].mlp.fc2.weight


@pytest.mark.parametrize("first, then", [("full", "adapter"), ("adapter", "full")])
def test_a_folder_saved_again_in_the_other_format_loads_what_was_saved_last(tiny_clip_dir, tmp_path, first, then):
    """save_adapter over a full save (or the other way round) leaves one format's weights in the folder: the old
    full weights were loaded before, locally, where the Hub would have taken the adapter."""
    from omniclip_hf import OmniCLIPModel

    def save(model, how):
        model.save_adapter(tmp_path) if how == "adapter" else model.save_pretrained(tmp_path)

    model = OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4)
    save(model, first)
    with torch.no_grad():
        video_head_weight(model).fill_(0.5)
    save(model, then)
    assert (tmp_path / "model.safetensors").exists() == (then == "full")
    assert (tmp_path / "adapter_model.safetensors").exists() == (then == "adapter")
    loaded = OmniCLIPModel.from_pretrained(tmp_path)
    assert torch.equal(video_head_weight(loaded), video_head_weight(model))


def test_a_full_save_of_a_model_loaded_from_an_adapter_is_not_marked_adapter(adapter_folder, tmp_path):
    """The adapter mark tells a Hub load to fetch adapter_model.safetensors: on a full checkpoint's config (a model
    loaded from an adapter, trained on, saved whole) the Hub load asked for a file the repo does not have."""
    from omniclip_hf import OmniCLIPModel

    loaded = OmniCLIPModel.from_pretrained(adapter_folder)
    assert not hasattr(loaded.config, "checkpoint_format")
    loaded.save_pretrained(tmp_path / "full")
    assert "checkpoint_format" not in json.loads((tmp_path / "full" / "config.json").read_text())
