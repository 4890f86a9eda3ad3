"""OmniCLIP follows Transformers' conventions: forward keywords, output flags from the config, output capturing,
initialisation on the meta device, config validation, loading keywords and plain-CLIP checkpoints."""

from __future__ import annotations

import inspect
import json
import logging

import pytest
import torch

from tests.conftest import SHARED_DIR, build_tiny_clip


def videos(batch: int = 2, frames: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


def class_ids(num_classes: int = 3) -> torch.Tensor:
    return torch.randint(0, 1000, (num_classes, 6), generator=torch.Generator().manual_seed(5))


@pytest.fixture(scope="module")
def model(tiny_clip):
    from omniclip_hf import OmniCLIPModel

    return OmniCLIPModel.from_clip(tiny_clip, num_frames=4).eval()


@pytest.fixture()
def fresh_model(tiny_clip):
    from omniclip_hf import OmniCLIPModel

    return OmniCLIPModel.from_clip(tiny_clip, num_frames=4).eval()


# ----------------------------------------------------------------------------------------------------------------
# forward keywords
# ----------------------------------------------------------------------------------------------------------------
def test_num_items_in_batch_normalises_the_summed_loss(model):
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        mean = model(pixel_values_videos=videos(), input_ids=class_ids(), labels=labels).loss
        per_item = model(pixel_values_videos=videos(), input_ids=class_ids(), labels=labels, num_items_in_batch=4).loss
    # Two videos here, four in the accumulated batch: the sum over these two divided by four.
    torch.testing.assert_close(per_item, mean * 2 / 4)


def test_return_loss_false_skips_the_loss_and_true_keeps_it(model):
    inputs = dict(pixel_values_videos=videos(), input_ids=class_ids(), labels=torch.tensor([0, 1]))
    with torch.no_grad():
        assert model(**inputs, return_loss=False).loss is None
        assert model(**inputs, return_loss=True).loss is not None


def test_misspelt_keyword_is_one_clear_line(model):
    with pytest.raises(ValueError, match=r"unexpected arguments \['output_hiden_states'\]") as error:
        model(pixel_values_videos=videos(), input_ids=class_ids(), output_hiden_states=True)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="get_video_features got unexpected arguments"):
        model.get_video_features(videos(), pixel_values=videos())
    with pytest.raises(ValueError, match="get_text_features got unexpected arguments"):
        model.get_text_features(class_ids(), pixel_values_videos=videos())


def test_interpolate_pos_encoding_is_clips_keyword(model):
    """CLIP's and X-CLIP's `interpolate_pos_encoding`: True (or left out) takes frames of another size, interpolating
    the position embeddings as OmniCLIP always did; False takes the checkpoint's size only, as CLIP does. It was
    refused as an unexpected argument."""
    other_size = videos(size=40)  # the tiny CLIP's frames are 32x32
    with torch.no_grad():
        for frames in (videos(), other_size):
            expected = model(pixel_values_videos=frames, input_ids=class_ids()).logits_per_video
            given = model(pixel_values_videos=frames, input_ids=class_ids(), interpolate_pos_encoding=True)
            torch.testing.assert_close(given.logits_per_video, expected, rtol=0, atol=0)
            features = model.get_video_features(frames, interpolate_pos_encoding=True).pooler_output
            torch.testing.assert_close(features, model.get_video_features(frames).pooler_output, rtol=0, atol=0)
        native = model(pixel_values_videos=videos(), input_ids=class_ids(), interpolate_pos_encoding=False)
        torch.testing.assert_close(native.logits_per_video,
                                   model(pixel_values_videos=videos(), input_ids=class_ids()).logits_per_video)
        with pytest.raises(ValueError, match=r"has 40x40 frames, not the checkpoint's 32x32, and "
                                             r"interpolate_pos_encoding=False: resize the frames to 32x32") as error:
            model(pixel_values_videos=other_size, input_ids=class_ids(), interpolate_pos_encoding=False)
        assert "\n" not in str(error.value)
        with pytest.raises(ValueError, match="interpolate_pos_encoding=False"):
            model.get_video_features(other_size, interpolate_pos_encoding=False)
        with pytest.raises(TypeError, match="interpolate_pos_encoding must be True, False or None, got 'yes'"):
            model.get_video_features(videos(), interpolate_pos_encoding="yes")


def test_main_input_name_is_forwards_first_argument(model):
    parameters = [name for name in inspect.signature(type(model).forward).parameters if name != "self"]
    assert parameters[0] == model.main_input_name == "pixel_values_videos"


# ----------------------------------------------------------------------------------------------------------------
# output flags, from the call or from the config
# ----------------------------------------------------------------------------------------------------------------
def test_config_return_dict_false_gives_the_tuple_of_the_output(fresh_model):
    inputs = dict(pixel_values_videos=videos(), input_ids=class_ids())
    with torch.no_grad():
        as_output = fresh_model(**inputs)
        fresh_model.config.return_dict = False
        as_tuple = fresh_model(**inputs)
        video_tuple = fresh_model.get_video_features(videos())
        text_tuple = fresh_model.get_text_features(class_ids())
    assert isinstance(as_tuple, tuple) and isinstance(video_tuple, tuple) and isinstance(text_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], as_output.logits_per_video)
    torch.testing.assert_close(video_tuple[1], as_output.vision_model_output.pooler_output)


def test_config_output_hidden_states_is_honoured(fresh_model):
    inputs = dict(pixel_values_videos=videos(), input_ids=class_ids())
    with torch.no_grad():
        assert fresh_model(**inputs).vision_model_output.hidden_states is None
        fresh_model.config.output_hidden_states = True
        outputs = fresh_model(**inputs)
    num_vision_layers = fresh_model.config.vision_config.num_hidden_layers
    num_text_layers = fresh_model.config.text_config.num_hidden_layers
    assert len(outputs.vision_model_output.hidden_states) == num_vision_layers + 1
    assert len(outputs.text_model_output.hidden_states) == num_text_layers + 1


def test_text_features_take_output_flags_like_clip(tiny_clip, model):
    clip = build_tiny_clip()
    clip.set_attn_implementation("eager")
    model.clip.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            ours = model.get_text_features(class_ids(), output_hidden_states=True, output_attentions=True)
            theirs = clip.get_text_features(class_ids(), output_hidden_states=True, output_attentions=True)
    finally:
        model.clip.set_attn_implementation("sdpa")
    assert len(ours.hidden_states) == len(theirs.hidden_states) == clip.config.text_config.num_hidden_layers + 1
    for mine, reference in zip(ours.attentions, theirs.attentions):
        torch.testing.assert_close(mine, reference)
    torch.testing.assert_close(ours.pooler_output, theirs.pooler_output)


def test_video_attentions_are_captured_per_layer_and_equal_clips_at_identity(tiny_clip):
    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.training.evaluation import FRAME_AVERAGE

    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4, attn_implementation="eager", **FRAME_AVERAGE).eval()
    clip = build_tiny_clip()
    clip.set_attn_implementation("eager")
    clips = videos(batch=1)
    with torch.no_grad():
        ours = model.get_video_features(clips, output_attentions=True)
        theirs = clip.vision_model(pixel_values=clips[0], output_attentions=True)
    assert len(ours.attentions) == model.config.vision_config.num_hidden_layers
    for mine, reference in zip(ours.attentions, theirs.attentions):
        torch.testing.assert_close(mine, reference, atol=1e-6, rtol=1e-5)
    # The flag can come from the config too, and a plain forward returns none.
    model.config.output_attentions = True
    with torch.no_grad():
        assert len(model(pixel_values_videos=clips, input_ids=class_ids()).vision_model_output.attentions) == 3
    model.config.output_attentions = False
    with torch.no_grad():
        assert model.get_video_features(clips).attentions is None


def test_every_call_records_each_layer_once(tiny_clip):
    """From the second forward on, the text encoder's hidden states and attentions held each layer twice, and the
    vision attentions did once CLIP's own vision model had recorded: transformers' output capturing hooked the whole
    tree from the OmniCLIP model over CLIP's models that had hooked themselves."""
    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.training.evaluation import FRAME_AVERAGE

    used_clip = build_tiny_clip()
    used_clip.set_attn_implementation("eager")
    with torch.no_grad():  # a CLIP that has recorded already, then wrapped (its hooks are copied with it)
        used_clip.text_model(input_ids=class_ids(), output_attentions=True, output_hidden_states=True)
        used_clip.vision_model(pixel_values=videos(batch=1)[0], output_attentions=True)
    reference = build_tiny_clip()
    reference.set_attn_implementation("eager")
    text_layers, vision_layers = reference.config.text_config.num_hidden_layers, reference.config.vision_config.num_hidden_layers
    for clip in (tiny_clip, used_clip):
        model = OmniCLIPModel.from_clip(clip, num_frames=4, attn_implementation="eager", **FRAME_AVERAGE).eval()
        clips = videos(batch=1)
        with torch.no_grad():
            model.clip.vision_model(pixel_values=clips[0], output_attentions=True)  # e.g. a frame's own CLIP map
            text = reference.text_model(input_ids=class_ids(), output_attentions=True, output_hidden_states=True)
            vision = reference.vision_model(pixel_values=clips[0], output_attentions=True)
            for _ in range(3):
                outputs = model(pixel_values_videos=clips, input_ids=class_ids(), output_attentions=True,
                                output_hidden_states=True)
                assert len(outputs.text_model_output.hidden_states) == text_layers + 1
                assert len(outputs.text_model_output.attentions) == text_layers
                assert len(outputs.vision_model_output.attentions) == vision_layers
                for mine, theirs in zip(outputs.text_model_output.attentions, text.attentions):
                    torch.testing.assert_close(mine, theirs)
                for mine, theirs in zip(outputs.vision_model_output.attentions, vision.attentions):
                    torch.testing.assert_close(mine, theirs, atol=1e-6, rtol=1e-5)
            assert len(model.clip.vision_model(pixel_values=clips[0], output_attentions=True).attentions) == vision_layers


# ----------------------------------------------------------------------------------------------------------------
# initialisation, config validation, loading info
# ----------------------------------------------------------------------------------------------------------------
def test_weights_missing_from_a_checkpoint_are_initialised(tmp_path, model):
    from safetensors.torch import load_file, save_file

    from omniclip_hf import OmniCLIPModel

    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    clip_weights = ("clip.logit_scale", "clip.visual_projection.weight",
                    "clip.vision_model.encoder.layers.0.self_attn.q_proj.weight",
                    "clip.vision_model.encoder.layers.0.mlp.fc1.weight")
    dropped = [name for name in weights if name in clip_weights
               or name.startswith("video_head.") or ".temporal_adapter." in name]
    for name in dropped:
        del weights[name]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded, info = OmniCLIPModel.from_pretrained(tmp_path, output_loading_info=True)
    assert set(info["missing_keys"]) == set(dropped)
    assert loaded.clip.logit_scale.item() == pytest.approx(model.config.logit_scale_init_value)
    projection_std = loaded.clip.visual_projection.weight.std().item()
    assert 0.5 * 64**-0.5 < projection_std < 2 * 64**-0.5  # CLIP's own init: vision width ** -0.5
    # CLIP's scheme for its attention and MLP weights (width 64, 3 layers), not the generic std 0.02.
    vision_layer = loaded.clip.vision_model.encoder.layers[0]
    assert vision_layer.self_attn.q_proj.weight.std().item() == pytest.approx(64**-0.5 * 6**-0.5, rel=0.1)
    assert vision_layer.mlp.fc1.weight.std().item() == pytest.approx(128**-0.5, rel=0.1)
    assert float(loaded.blocks[0].temporal_adapter.up.weight.detach().abs().max()) == 0.0  # zero-initialised Up
    assert not any(parameter.requires_grad for parameter in loaded.clip.parameters())


def test_config_checks_run_through_the_base_class_validate():
    from transformers import PretrainedConfig

    from omniclip_hf import OmniCLIPConfig

    config = OmniCLIPConfig()
    validators = [validator.__name__ for validator in type(config).__class_validators__]
    assert "validate_omniclip_fields" in validators
    assert set(validator.__name__ for validator in PretrainedConfig.__class_validators__) <= set(validators)
    with pytest.raises(ValueError, match=r"OmniCLIPConfig.pta_mode='sideways' is invalid"):
        OmniCLIPConfig(pta_mode="sideways")
    config.spg_pooling = "median"  # changed after construction: save_pretrained's validate() catches it
    with pytest.raises(Exception, match="spg_pooling"):
        config.validate()


# ----------------------------------------------------------------------------------------------------------------
# Plain CLIP checkpoints and bad folders
# ----------------------------------------------------------------------------------------------------------------
def frame_averaged_clip_logits(clip, pixel_values_videos, input_ids):
    with torch.no_grad():
        frames = pixel_values_videos.flatten(0, 1)
        image_embeds = clip.get_image_features(pixel_values=frames).pooler_output
        video_embeds = image_embeds.unflatten(0, pixel_values_videos.shape[:2]).mean(dim=1)
        text_embeds = clip.get_text_features(input_ids=input_ids).pooler_output
    video_embeds = video_embeds / video_embeds.norm(dim=-1, keepdim=True)
    text_embeds = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
    return clip.logit_scale.exp() * video_embeds @ text_embeds.T


def test_from_pretrained_on_a_clip_folder_wraps_it_at_identity(tiny_clip, tiny_clip_dir, caplog):
    from omniclip_hf import OmniCLIPModel

    with caplog.at_level(logging.WARNING):
        model = OmniCLIPModel.from_pretrained(tiny_clip_dir)
    assert "plain CLIP checkpoint" in caplog.text
    for name, parameter in tiny_clip.state_dict().items():  # the CLIP's own weights, not random ones
        torch.testing.assert_close(model.clip.state_dict()[name], parameter, atol=0, rtol=0)
    clips = videos()
    with torch.no_grad():
        logits = model(pixel_values_videos=clips, input_ids=class_ids()).logits_per_video
    torch.testing.assert_close(logits, frame_averaged_clip_logits(tiny_clip, clips, class_ids()), atol=1e-5, rtol=1e-5)


def test_folder_without_config_is_one_line_naming_the_file(tmp_path):
    from omniclip_hf import OmniCLIPModel

    with pytest.raises(FileNotFoundError, match="holds no config.json") as error:
        OmniCLIPModel.from_pretrained(tmp_path)
    assert "\n" not in str(error.value)


def test_truncated_weights_are_one_line_naming_the_file(tmp_path, model):
    from omniclip_hf import OmniCLIPModel

    model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="model.safetensors is damaged or incomplete") as error:
        OmniCLIPModel.from_pretrained(tmp_path)
    assert "\n" not in str(error.value)


def test_checkpoint_of_another_model_type_is_refused(tmp_path):
    from transformers import BertConfig

    from omniclip_hf import OmniCLIPModel

    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'bert' checkpoint, neither an OmniCLIP nor a CLIP model"):
        OmniCLIPModel.from_pretrained(tmp_path)


def test_hub_id_offline_and_uncached_is_one_line(tmp_path, monkeypatch):
    from omniclip_hf import OmniCLIPModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="not in the Hugging Face cache") as error:
        OmniCLIPModel.from_pretrained("nobody/no-such-omniclip", cache_dir=str(tmp_path))
    assert "\n" not in str(error.value)


# ----------------------------------------------------------------------------------------------------------------
# Zero-shot from any CLIP: pipeline, one-call model folder
# ----------------------------------------------------------------------------------------------------------------
def expected_frame_averaged_probabilities(clip, tokenizer, pixel_values_videos, labels, template):
    text_inputs = tokenizer([template.format(label) for label in labels], padding=True, return_tensors="pt")
    with torch.no_grad():
        text_embeds = clip.get_text_features(**text_inputs).pooler_output
        image_embeds = clip.get_image_features(pixel_values=pixel_values_videos.flatten(0, 1)).pooler_output
    video_embeds = image_embeds.unflatten(0, pixel_values_videos.shape[:2]).mean(dim=1)
    video_embeds = video_embeds / video_embeds.norm(dim=-1, keepdim=True)
    text_embeds = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
    return (clip.logit_scale.exp() * video_embeds @ text_embeds.T).softmax(dim=-1)[0]


def random_video(seed: int = 3, frames: int = 10):
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, size=(frames, 40, 48, 3), dtype=np.uint8)


def test_pipeline_on_a_clip_folder_gives_frame_averaged_clip(tiny_clip, tiny_clip_dir, clip_tokenizer, caplog):
    from transformers import pipeline

    import omniclip_hf  # noqa: F401  (registers the task)

    with caplog.at_level(logging.WARNING):
        classifier = pipeline("zero-shot-video-classification", model=str(tiny_clip_dir))
    assert "plain CLIP checkpoint" in caplog.text
    assert classifier.video_processor.crop_size.height == tiny_clip.config.vision_config.image_size
    labels = ["running", "cooking", "juggling balls"]
    video = random_video()
    result = classifier(video, candidate_labels=labels)
    pixels = classifier.video_processor(video, do_augment=False, return_tensors="pt")["pixel_values_videos"]
    expected = expected_frame_averaged_probabilities(
        tiny_clip, clip_tokenizer, pixels, labels, classifier.model.config.text_template
    )
    scores = {entry["label"]: entry["score"] for entry in result}
    torch.testing.assert_close(torch.tensor([scores[label] for label in labels]), expected, atol=1e-5, rtol=0)


def test_write_model_folder_makes_a_complete_folder_equal_to_frame_averaged_clip(tiny_clip, tiny_clip_dir, tmp_path):
    from transformers import AutoProcessor, pipeline

    from omniclip_hf import OmniCLIPModel, OmniCLIPProcessor
    from omniclip_hf.clip_conversion import write_model_folder

    folder = write_model_folder(tiny_clip_dir, tmp_path / "omniclip", num_frames=4)
    assert {"config.json", "model.safetensors", "processor_config.json"} <= {path.name for path in folder.iterdir()}
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no staging folder left
    model = OmniCLIPModel.from_pretrained(folder)
    assert model.config.num_frames == 4 and not model.config.use_spg
    assert isinstance(AutoProcessor.from_pretrained(folder), OmniCLIPProcessor)
    classifier = pipeline("zero-shot-video-classification", model=str(folder))
    labels = ["running", "cooking"]
    video = random_video(seed=4)
    result = classifier(video, candidate_labels=labels)
    pixels = classifier.video_processor(video, do_augment=False, return_tensors="pt")["pixel_values_videos"]
    expected = expected_frame_averaged_probabilities(
        tiny_clip, classifier.tokenizer, pixels, labels, model.config.text_template
    )
    scores = {entry["label"]: entry["score"] for entry in result}
    torch.testing.assert_close(torch.tensor([scores[label] for label in labels]), expected, atol=1e-5, rtol=0)
    with pytest.raises(FileExistsError, match="already exists"):
        write_model_folder(tiny_clip_dir, folder)


# ----------------------------------------------------------------------------------------------------------------
# The command line: CLIP models, Hub ids, `omniclip init`
# ----------------------------------------------------------------------------------------------------------------
SHORT_MP4 = SHARED_DIR / "videos" / "mmaction2_rawvideo_part_0.mp4"  # 32 frames at 30 fps


def test_cli_init_then_classify_and_classify_a_clip_folder_directly(tiny_clip_dir, tmp_path, capsys):
    from omniclip_hf.cli import main

    out = tmp_path / "from-clip"
    assert main(["init", "--clip", str(tiny_clip_dir), "--out", str(out), "--num-frames", "4"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    arguments = ["classify", str(SHORT_MP4), "--labels", "archery,yoga", "--json"]
    assert main([*arguments, "--model", str(out)]) == 0
    from_folder = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main([*arguments, "--model", str(tiny_clip_dir)]) == 0
    from_clip = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [entry["label"] for entry in from_clip["labels"]] == [entry["label"] for entry in from_folder["labels"]]
    assert main(["init", "--clip", str(tiny_clip_dir), "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_cli_hub_id_offline_and_uncached_is_one_line(tmp_path, monkeypatch, capsys):
    from omniclip_hf.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    status = main(["classify", str(SHORT_MP4), "--model", "nobody/no-such-model", "--revision", "v1", "--labels", "a,b"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1
    assert "nobody/no-such-model is not a local folder and is not in the Hugging Face cache" in err[0]
    assert main(["init", "--clip", "nobody/no-such-clip", "--out", str(tmp_path / "x")]) == 1
    assert "not in the Hugging Face cache" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------
# Remote code: every piece loads where the package cannot be imported
# ----------------------------------------------------------------------------------------------------------------
IMPORT_BLOCKER = '''
import sys


class BlockOmniCLIP:
    """Makes `import omniclip_hf` fail in this process, as where the package is not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "omniclip_hf" or name.startswith("omniclip_hf."):
            raise ImportError("omniclip_hf is not installed here")
        return None


sys.meta_path.insert(0, BlockOmniCLIP())
'''

REMOTE_SCRIPT = '''
import json, sys
from transformers import AutoConfig, AutoModel, AutoProcessor, AutoVideoProcessor, pipeline

folder, video = sys.argv[1], sys.argv[2]
try:
    import omniclip_hf  # noqa: F401
    raise SystemExit("omniclip_hf was importable")
except ImportError:
    pass
names = [type(loader.from_pretrained(folder, trust_remote_code=True)).__name__
         for loader in (AutoConfig, AutoModel, AutoProcessor, AutoVideoProcessor)]
classifier = pipeline("zero-shot-video-classification", model=folder, trust_remote_code=True)
result = classifier(video, candidate_labels=["archery", "playing guitar", "yoga"])
print(json.dumps({"names": names, "pipeline": type(classifier).__module__, "result": result}))
'''


def test_saved_folder_classifies_a_real_video_without_the_package(tiny_omniclip_dir, tmp_path):
    import os
    import subprocess
    import sys

    from transformers import pipeline

    import omniclip_hf  # noqa: F401

    video = SHARED_DIR / "videos" / "askanything_playing_guitar.mp4"
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(IMPORT_BLOCKER)
    environment = {**os.environ, "PYTHONPATH": str(blocker), "HF_HUB_OFFLINE": "1",
                   "HF_MODULES_CACHE": str(tmp_path / "modules")}
    process = subprocess.run(
        [sys.executable, "-c", REMOTE_SCRIPT, str(tiny_omniclip_dir), str(video)],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    remote = json.loads(process.stdout.strip().splitlines()[-1])
    assert remote["names"] == ["OmniCLIPConfig", "OmniCLIPModel", "OmniCLIPProcessor", "OmniCLIPVideoProcessor"]
    assert remote["pipeline"].startswith("transformers_modules.")
    local = pipeline("zero-shot-video-classification", model=str(tiny_omniclip_dir))(
        str(video), candidate_labels=["archery", "playing guitar", "yoga"]
    )
    assert [entry["label"] for entry in remote["result"]] == [entry["label"] for entry in local]
    for theirs, ours in zip(remote["result"], local):
        assert theirs["score"] == pytest.approx(ours["score"], abs=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# Model card as data
# ----------------------------------------------------------------------------------------------------------------
def test_model_card_is_data_with_metrics_and_names_no_local_path(tmp_path):
    from types import SimpleNamespace

    from huggingface_hub import ModelCard

    from omniclip_hf.training.publishing import build_model_card

    local_clip = tmp_path / "my-clip"
    local_data = tmp_path / "secret-data-folder"
    local_clip.mkdir()
    local_data.mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"base_clip_name_or_path": "openai/clip-vit-base-patch16",
                                                        "num_frames": 8, "text_template": "a video of {} action"}))
    options = SimpleNamespace(train_data="someone/hmdb51-videos", eval_data=[str(local_data)], clip=str(local_clip),
                              hub_model_id="me/omniclip-b16-hmdb51", license="mit", eval_num_clips=2, eval_num_crops=3)
    metrics = {"top1": 0.625, "top5": 0.875, "eval": {"top1": 0.625, "top5": 0.875}}
    build_model_card(tmp_path, options, metrics).save(tmp_path / "README.md")

    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.base_model == "openai/clip-vit-base-patch16"
    assert card.data.datasets == ["someone/hmdb51-videos"]
    assert card.data.license == "mit" and card.data.pipeline_tag == "video-classification"
    assert "omniclip" in card.data.tags
    values = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert values == {"top-1 accuracy": 0.625, "top-5 accuracy": 0.875}
    text = (tmp_path / "README.md").read_text()
    assert str(tmp_path) not in text and "secret-data-folder" not in text and "my-clip" not in text
    assert text.splitlines()[text.splitlines()[1:].index("---") + 3] == "# OmniCLIP on someone/hmdb51-videos"

    # A base CLIP from a local folder is not named either.
    (tmp_path / "config.json").write_text(json.dumps({"base_clip_name_or_path": str(local_clip), "num_frames": 8}))
    card = build_model_card(tmp_path, SimpleNamespace(train_data=str(local_data)), {"top1": 0.5})
    assert card.data.base_model is None and str(tmp_path) not in str(card)
    assert "secret-data-folder" not in str(card)


def test_unknown_keyword_to_from_clip_is_one_line(tiny_clip, tiny_clip_dir):
    from omniclip_hf import OmniCLIPModel

    with pytest.raises(ValueError, match=r"from_clip got unknown arguments \['num_frame'\]"):
        OmniCLIPModel.from_clip(tiny_clip, num_frame=4)
    with pytest.raises(ValueError, match=r"unknown arguments \['pta_rato'\]"):
        OmniCLIPModel.from_pretrained(tiny_clip_dir, pta_rato=0.5)


def test_from_clip_honours_dtype_and_its_alias_and_the_config_records_it(tiny_clip_dir):
    from omniclip_hf import OmniCLIPModel

    for keyword in ("dtype", "torch_dtype"):
        model = OmniCLIPModel.from_clip(tiny_clip_dir, **{keyword: torch.bfloat16})
        assert {parameter.dtype for parameter in model.parameters()} == {torch.bfloat16}
        assert model.config.dtype == torch.bfloat16
    model = OmniCLIPModel.from_clip(tiny_clip_dir, attn_implementation="eager")
    assert model.clip.config._attn_implementation == "eager"
    assert model.clip.vision_model.config._attn_implementation == "eager"


def test_adapter_only_checkpoint_loads_with_loading_keywords(tiny_clip_dir, tmp_path):
    from omniclip_hf import OmniCLIPModel

    model = OmniCLIPModel.from_clip(tiny_clip_dir, num_frames=4)
    model.save_adapter(tmp_path / "adapter")
    assert json.loads((tmp_path / "adapter" / "config.json").read_text())["checkpoint_format"] == "adapter"
    loaded = OmniCLIPModel.from_pretrained(tmp_path / "adapter", dtype=torch.bfloat16, local_files_only=True)
    assert {parameter.dtype for parameter in loaded.parameters()} == {torch.bfloat16}
    loaded, info = OmniCLIPModel.from_pretrained(tmp_path / "adapter", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, atol=0, rtol=0)


def test_set_attn_implementation_on_the_model_reaches_the_frozen_clip(tiny_clip_dir, tmp_path):
    from omniclip_hf import OmniCLIPModel

    model = OmniCLIPModel.from_clip(tiny_clip_dir, num_frames=4)
    model.set_attn_implementation("eager")
    assert model.config._attn_implementation == model.clip.vision_model.config._attn_implementation == "eager"
    with torch.no_grad():
        assert len(model.get_video_features(videos(batch=1), output_attentions=True).attentions) == 3
    model.save_pretrained(tmp_path)
    reloaded = OmniCLIPModel.from_pretrained(tmp_path, attn_implementation="eager")
    assert reloaded.clip.text_model.config._attn_implementation == "eager"


def test_attention_kind_per_sub_config_reaches_clips_encoders_and_the_config_tells_the_truth():
    from omniclip_hf import OmniCLIPConfig, OmniCLIPModel
    from tests.conftest import tiny_clip_config

    config = OmniCLIPConfig.from_clip_config(tiny_clip_config(), num_frames=4)
    config.text_config._attn_implementation = "eager"
    model = OmniCLIPModel(config)
    # The model's sub-configs are the ones CLIP's encoders run with.
    assert model.config.text_config is model.clip.text_model.config
    assert model.config.vision_config is model.clip.vision_model.config
    assert model.clip.text_model.config._attn_implementation == "eager"
    assert model.clip.vision_model.config._attn_implementation == "sdpa"
    # A dict names sub-configs; the others keep their kind.
    model.set_attn_implementation({"vision_config": "eager", "text_config": "sdpa"})
    assert model.clip.vision_model.config._attn_implementation == "eager"
    assert model.clip.text_model.config._attn_implementation == "sdpa"
    model.set_attn_implementation({"": "eager"})
    assert model.clip.text_model.config._attn_implementation == "sdpa"


def test_single_head_adapters_run_under_the_math_sdpa_backend(tiny_clip):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from omniclip_hf import OmniCLIPModel

    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4).eval()
    assert model.config.pta_num_heads == 1  # the case whose math-backend output is a strided view
    with torch.no_grad():
        for parameter in model.trainable_parameters():  # adapters off zero, so their attention counts
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)))
        expected = model.get_video_features(videos()).pooler_output
        with sdpa_kernel(SDPBackend.MATH):
            actual = model.get_video_features(videos()).pooler_output
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)
