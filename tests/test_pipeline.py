"""Zero-shot video classification pipeline: scores, caching, batching, views, windows and bad input."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch

from .conftest import REPO_ROOT

VIDEOS = REPO_ROOT.parent / "shared" / "videos"
SHORT_MP4 = VIDEOS / "mmaction2_rawvideo_part_0.mp4"  # 32 frames at 30 fps
WEBM = VIDEOS / "moviepy_big_buck_bunny_432_433.webm"  # 24 frames at 24 fps
AVI = VIDEOS / "mmaction2_tests_test.avi"
LABELS = ["cleaning a pool", "playing guitar", "doing yoga", "hitting a baseball"]
TASK = "zero-shot-video-classification"


@pytest.fixture(scope="module")
def classifier(tiny_omniclip_dir):
    import omniclip_hf  # noqa: F401  (registers the task)
    from transformers import pipeline

    return pipeline(TASK, model=str(tiny_omniclip_dir), device="cpu")


def model_probabilities(classifier, video, labels, template=None, video_processor=None):
    """The model's own softmax(logits) for a video and labels, without the pipeline or its cache."""
    template = template or classifier.model.config.text_template
    video_processor = video_processor or classifier.video_processor
    text = classifier.tokenizer([template.format(label) for label in labels], padding=True, return_tensors="pt")
    pixels = video_processor(str(video), return_tensors="pt")["pixel_values_videos"]
    with torch.no_grad():
        logits = classifier.model(**text, pixel_values_videos=pixels).logits_per_video
    return dict(zip(labels, logits.softmax(dim=-1)[0].tolist()))


def as_dict(predictions):
    return {prediction["label"]: prediction["score"] for prediction in predictions}


def count_text_encoder_calls(monkeypatch, model):
    calls = []
    original = model.get_text_features

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "get_text_features", counting)
    return calls


# ----------------------------------------------------------------------------------------------------------------
# Loading and scores
# ----------------------------------------------------------------------------------------------------------------
def test_task_is_registered_and_loads_model_with_its_processor(classifier):
    from transformers.pipelines import PIPELINE_REGISTRY

    from omniclip_hf import OmniCLIPModel, OmniCLIPVideoProcessor, ZeroShotVideoClassificationPipeline
    from omniclip_hf.pipeline_omniclip import register_zero_shot_video_classification_pipeline

    assert TASK in PIPELINE_REGISTRY.get_supported_tasks()
    register_zero_shot_video_classification_pipeline()  # idempotent
    assert isinstance(classifier, ZeroShotVideoClassificationPipeline)
    assert isinstance(classifier.model, OmniCLIPModel)
    assert isinstance(classifier.video_processor, OmniCLIPVideoProcessor)
    assert classifier.video_processor.num_frames == 4  # the saved processor, not a default one
    assert classifier.tokenizer("a video")["input_ids"][0] == 49406  # CLIP's <|startoftext|>


def test_scores_equal_softmax_of_model_logits(classifier):
    predictions = classifier(str(SHORT_MP4), candidate_labels=LABELS)
    assert [p["label"] for p in predictions] == sorted(LABELS, key=lambda label: -as_dict(predictions)[label])
    assert math.isclose(sum(p["score"] for p in predictions), 1.0, abs_tol=1e-5)
    expected = model_probabilities(classifier, SHORT_MP4, LABELS)
    for label, score in as_dict(predictions).items():
        assert score == pytest.approx(expected[label], abs=1e-5)


def test_custom_template_and_top_k(classifier):
    template = "a clip of someone {}"
    predictions = classifier(str(WEBM), candidate_labels=LABELS, hypothesis_template=template, top_k=2)
    expected = model_probabilities(classifier, WEBM, LABELS, template=template)
    best_two = sorted(expected, key=expected.get, reverse=True)[:2]
    assert [p["label"] for p in predictions] == best_two
    assert [p["score"] for p in predictions] == pytest.approx([expected[label] for label in best_two], abs=1e-5)
    default = as_dict(classifier(str(WEBM), candidate_labels=LABELS))
    assert default != pytest.approx(as_dict(classifier(str(WEBM), candidate_labels=LABELS, hypothesis_template=template)))


def test_permuting_labels_only_permutes_the_order(classifier):
    forward = as_dict(classifier(str(SHORT_MP4), candidate_labels=LABELS))
    backward = as_dict(classifier(str(SHORT_MP4), candidate_labels=LABELS[::-1]))
    shuffled = as_dict(classifier(str(SHORT_MP4), candidate_labels=[LABELS[i] for i in (2, 0, 3, 1)]))
    for other in (backward, shuffled):
        assert other.keys() == forward.keys()
        for label in LABELS:
            assert other[label] == pytest.approx(forward[label], abs=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# Text-embedding cache
# ----------------------------------------------------------------------------------------------------------------
def test_text_embeddings_are_computed_once_per_label_set_and_template(classifier, monkeypatch):
    assert classifier.model.video_specific_prompts is not None  # prompts on: per video only the prompt step runs
    classifier._text_embedding_cache.clear()
    calls = count_text_encoder_calls(monkeypatch, classifier.model)
    first = classifier([str(SHORT_MP4), str(WEBM)], candidate_labels=LABELS)
    again = classifier(str(SHORT_MP4), candidate_labels=list(LABELS))
    assert len(calls) == 1
    assert as_dict(again) == pytest.approx(as_dict(first[0]), abs=1e-6)

    classifier(str(SHORT_MP4), candidate_labels=LABELS, hypothesis_template="{}")
    assert len(calls) == 2  # another template is another text
    classifier(str(SHORT_MP4), candidate_labels=LABELS[:3])
    assert len(calls) == 3  # another label set
    classifier(str(WEBM), candidate_labels=LABELS)
    assert len(calls) == 3  # the first set is still cached


# ----------------------------------------------------------------------------------------------------------------
# Batches, views, windows, dtype
# ----------------------------------------------------------------------------------------------------------------
def test_batch_of_videos_equals_one_at_a_time(classifier):
    videos = [str(SHORT_MP4), str(WEBM), str(AVI)]
    batched = classifier(videos, candidate_labels=LABELS, batch_size=2)
    assert isinstance(batched, list) and len(batched) == 3
    for video, result in zip(videos, batched):
        single = as_dict(classifier(video, candidate_labels=LABELS))
        assert result[0]["label"] == max(single, key=single.get)
        for label, score in as_dict(result).items():
            assert score == pytest.approx(single[label], abs=1e-5)


def test_in_memory_frames_are_one_video(classifier):
    frames = torch.randint(0, 256, (6, 3, 40, 48), dtype=torch.uint8)
    as_frame_list = classifier([frame for frame in frames], candidate_labels=LABELS)
    as_tensor = classifier(frames, candidate_labels=LABELS)
    assert isinstance(as_frame_list[0], dict)
    assert as_dict(as_frame_list) == pytest.approx(as_dict(as_tensor), abs=1e-6)


def test_multi_view_processor_averages_logits_over_views(tiny_omniclip_dir, classifier):
    from transformers import pipeline

    from omniclip_hf import OmniCLIPVideoProcessor

    views = OmniCLIPVideoProcessor.from_pretrained(tiny_omniclip_dir, num_temporal_clips=2, num_spatial_crops=3)
    multi_view = pipeline(TASK, model=classifier.model, tokenizer=classifier.tokenizer, video_processor=views)
    predictions = as_dict(multi_view(str(AVI), candidate_labels=LABELS))
    # The model's forward on (batch, views, frames, 3, H, W) averages the six views' logits.
    expected = model_probabilities(classifier, AVI, LABELS, video_processor=views)
    assert predictions == pytest.approx(expected, abs=1e-5)
    assert predictions != pytest.approx(as_dict(classifier(str(AVI), candidate_labels=LABELS)), abs=1e-4)

    # Windows of a long video get the same six views, taken inside each window.
    from omniclip_hf.video_processing_omniclip import read_video_pyav

    frames, _, _, _ = read_video_pyav(str(SHORT_MP4), lambda total: list(range(total)))
    windows = multi_view(str(SHORT_MP4), candidate_labels=LABELS, segment_seconds=0.5, batch_size=2)
    for window, (first, end) in zip(windows, [(0, 15), (15, 30), (30, 32)]):
        alone = as_dict(multi_view(frames[first:end], candidate_labels=LABELS))
        assert as_dict(window["labels"]) == pytest.approx(alone, abs=1e-5)


def test_segments_classify_consecutive_windows(classifier):
    from omniclip_hf.video_processing_omniclip import read_video_pyav

    windows = classifier(str(SHORT_MP4), candidate_labels=LABELS, segment_seconds=0.5)
    # 32 frames at 30 fps: frames 0-14, 15-29 and 30-31.
    bounds = [time for window in windows for time in (window["start"], window["end"])]
    assert bounds == pytest.approx([0.0, 0.5, 0.5, 1.0, 1.0, 32 / 30])
    frames, _, _, _ = read_video_pyav(str(SHORT_MP4), lambda total: list(range(total)))
    for window, (first, end) in zip(windows, [(0, 15), (15, 30), (30, 32)]):
        assert math.isclose(sum(p["score"] for p in window["labels"]), 1.0, abs_tol=1e-5)
        alone = as_dict(classifier(frames[first:end], candidate_labels=LABELS))
        assert as_dict(window["labels"]) == pytest.approx(alone, abs=1e-5)

    both = classifier([str(SHORT_MP4), str(WEBM)], candidate_labels=LABELS, segment_seconds=0.5, batch_size=2, top_k=1)
    assert len(both) == 2 and len(both[0]) == 3 and len(both[1]) == 2  # the webm lasts 1.0 s
    assert [w["labels"][0]["label"] for w in both[0]] == [w["labels"][0]["label"] for w in windows]
    assert both[1][-1]["end"] == pytest.approx(1.0)

    in_memory = classifier(frames, candidate_labels=LABELS, segment_seconds=0.5, video_fps=30)
    assert [as_dict(w["labels"]) for w in in_memory] == [pytest.approx(as_dict(w["labels"]), abs=1e-5) for w in windows]
    with pytest.raises(ValueError, match="video_fps"):
        classifier(frames, candidate_labels=LABELS, segment_seconds=0.5)


def test_plan_windows_cover_every_frame_once():
    from omniclip_hf.pipeline_omniclip import plan_windows

    assert plan_windows(32, 30.0, 0.5) == [(0, 15), (15, 30), (30, 32)]
    assert plan_windows(10, 25.0, 100.0) == [(0, 10)]
    windows = plan_windows(241, 25.0, 1.3)
    assert windows[0][0] == 0 and windows[-1][1] == 241
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))


def test_bfloat16_pipeline_is_close_to_float32(tiny_omniclip_dir, classifier):
    from transformers import pipeline

    half = pipeline(TASK, model=str(tiny_omniclip_dir), device="cpu", dtype=torch.bfloat16)
    assert half.model.dtype == torch.bfloat16
    predictions = as_dict(half(str(SHORT_MP4), candidate_labels=LABELS))
    assert math.isclose(sum(predictions.values()), 1.0, abs_tol=1e-4)
    assert predictions == pytest.approx(as_dict(classifier(str(SHORT_MP4), candidate_labels=LABELS)), abs=0.03)


# ----------------------------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"candidate_labels": []}, "candidate_labels is empty"),
        # A softmax over one label is always 1.0: never a silent certainty.
        ({"candidate_labels": ["yoga; archery"]}, r"has one label \('yoga; archery'\).*always scores 1.0"),
        # Labels CLIP's tokenizer reads as the same ids (it lower-cases, collapses spaces, splits punctuation).
        ({"candidate_labels": ["t-shirt folding", "t - shirt folding"]},
         "duplicates: 't-shirt folding' = 't - shirt folding'"),
        ({"candidate_labels": ["Été", "été", "run"]}, "duplicates: 'Été' = 'été'"),
        ({"candidate_labels": LABELS, "top_k": np.bool_(True)}, "top_k=.*True.* is out of range"),
        ({"candidate_labels": LABELS, "top_k": np.int64(0)}, "top_k=.*0.* is out of range"),
        ({"candidate_labels": LABELS, "segment_seconds": np.float32("nan")}, "segment_seconds=.* is invalid"),
        ({"candidate_labels": ["run", ""]}, r"candidate_labels\[1\] is an empty string"),
        ({"candidate_labels": ["run", "  "]}, r"candidate_labels\[1\] is an empty string"),
        ({"candidate_labels": ["run", "jump", "run", "Jump "]}, r"duplicates: 'run' \(2 times\); 'jump' = 'Jump '"),
        ({"candidate_labels": "run,jump"}, "must be a list of strings"),
        ({"candidate_labels": ["run", 3]}, r"candidate_labels\[1\] is of type int"),
        ({}, "candidate_labels is missing"),
        ({"candidate_labels": LABELS, "top_k": 0}, "top_k=0 is out of range"),
        ({"candidate_labels": LABELS, "top_k": 5}, "only 4 candidate labels"),
        ({"candidate_labels": LABELS, "hypothesis_template": "a video of action"}, "must be a string containing '{}'"),
        ({"candidate_labels": LABELS, "hypothesis_template": "{} and {}"}, "cannot be filled with one label"),
        ({"candidate_labels": LABELS, "segment_seconds": 0}, "segment_seconds=0 is invalid"),
    ],
)
def test_bad_arguments_raise_clear_errors(classifier, kwargs, message):
    with pytest.raises(ValueError, match=message):
        classifier(str(SHORT_MP4), **kwargs)


def test_numpy_scalars_work_as_top_k_and_segment_seconds(classifier):
    # Values computed with numpy (np.argmax, np.float32 durations) are integers and seconds like Python's.
    assert classifier(str(SHORT_MP4), candidate_labels=LABELS, top_k=np.int64(2)) == classifier(
        str(SHORT_MP4), candidate_labels=LABELS, top_k=2
    )
    windows = classifier(str(SHORT_MP4), candidate_labels=LABELS, segment_seconds=np.float32(0.5), top_k=np.int32(1))
    expected = classifier(str(SHORT_MP4), candidate_labels=LABELS, segment_seconds=0.5, top_k=1)
    assert [(w["start"], w["end"], w["labels"]) for w in windows] == [
        (pytest.approx(w["start"]), pytest.approx(w["end"]), w["labels"]) for w in expected
    ]


def test_bad_videos_raise_clear_errors(classifier, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        classifier(str(tmp_path / "missing.mp4"), candidate_labels=LABELS)
    with pytest.raises(ValueError, match="broken.mp4"):
        classifier([str(SHORT_MP4), str(broken)], candidate_labels=LABELS, batch_size=2)
    with pytest.raises(ValueError, match="empty list"):
        classifier([], candidate_labels=LABELS)


def test_label_longer_than_77_tokens_is_truncated_with_a_warning(classifier):
    long_label = "someone " + " ".join(f"juggling ball number {i}" for i in range(30))
    labels = ["cooking", long_label]
    with pytest.warns(UserWarning, match=re.escape(repr(long_label)[:40])) as record:
        predictions = classifier(str(SHORT_MP4), candidate_labels=labels)
    assert any("truncated" in str(warning.message) and "77" in str(warning.message) for warning in record)
    assert {p["label"] for p in predictions} == set(labels)
    # Same scores as a label cut to the part that fits in 77 tokens.
    tokenizer = classifier.tokenizer
    prompt = classifier.model.config.text_template.format(long_label)
    fitting = tokenizer.decode(tokenizer(prompt, truncation=True, max_length=77)["input_ids"][1:-1])
    assert fitting.startswith("a video of someone juggling ball")
    cooking = classifier.model.config.text_template.format("cooking")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for labels that fit
        cut = classifier(str(SHORT_MP4), candidate_labels=[cooking, fitting], hypothesis_template="{}")
    assert as_dict(cut)[cooking] == pytest.approx(as_dict(predictions)["cooking"], abs=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# The documented example
# ----------------------------------------------------------------------------------------------------------------
def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def run_example(blocks, substitutions, capsys) -> str:
    namespace: dict = {"__name__": "__example__"}
    for block in blocks:
        for placeholder, value in substitutions.items():
            block = block.replace(placeholder, value)
        exec(compile(block, "<example>", "exec"), namespace)
    return capsys.readouterr().out


def example_substitutions(model_folder, clip_folder):
    """The examples' placeholders, pointed at test files (the examples say they are placeholders)."""
    return {
        '"openai/clip-vit-base-patch16"': repr(str(clip_folder)),
        '"path/to/omniclip-model"': repr(str(model_folder)),
        '"path/to/video.mp4"': repr(str(SHORT_MP4)),
        '"path/to/other_video.avi"': repr(str(AVI)),
    }


def test_docs_example_runs(tiny_clip_dir, tmp_path, monkeypatch, capsys):
    blocks = python_blocks((REPO_ROOT / "docs" / "zero_shot.md").read_text())
    assert len(blocks) == 4
    monkeypatch.chdir(tmp_path)
    out = run_example(blocks, example_substitutions(tmp_path / "omniclip-model", tiny_clip_dir), capsys)
    labels = ["cleaning a pool", "playing guitar", "doing yoga", "hitting a baseball"]
    lines = out.strip().splitlines()
    assert lines[0].rsplit(" ", 1)[0] in labels  # best label and its score
    assert len(lines) == 1 + 2 + 1 + 3  # one video, two videos, one template call, three windows
    assert lines[-1].startswith("1.00-1.07 s: ")
    assert (tmp_path / "attention.png").is_file()


def test_readme_zero_shot_example_runs(tiny_omniclip_dir, tiny_clip_dir, tmp_path, monkeypatch, capsys):
    import shutil

    readme = (REPO_ROOT / "README.md").read_text()
    blocks = [block for block in python_blocks(readme) if "zero-shot-video-classification" in block]
    if not blocks:
        pytest.skip("README.md has no zero-shot-video-classification example yet")
    model_folder = tmp_path / "omniclip-model"
    shutil.copytree(tiny_omniclip_dir, model_folder)  # the README may save into it; keep the shared fixture intact
    monkeypatch.chdir(tmp_path)
    out = run_example(blocks, example_substitutions(model_folder, tiny_clip_dir), capsys)
    assert out.strip()


@pytest.mark.parametrize("missing", ["tokenizer", "processor"])
def test_model_folder_without_tokenizer_or_processor_names_what_is_missing(tiny_omniclip_dir, tmp_path, missing):
    """transformers.pipeline on a folder lacking the tokenizer (or the processor settings) says which files are
    missing in which folder, instead of transformers' advice to install sentencepiece."""
    import shutil

    from transformers import pipeline

    tokenizer_files = {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json"}
    processor_files = {"processor_config.json", "video_preprocessor_config.json", "preprocessor_config.json"}
    dropped = tokenizer_files if missing == "tokenizer" else processor_files
    folder = tmp_path / "model"
    folder.mkdir()
    for path in tiny_omniclip_dir.iterdir():
        if path.is_file() and path.name not in dropped:
            shutil.copy(path, folder / path.name)
    expected = "holds no tokenizer files" if missing == "tokenizer" else "holds no processor settings"
    with pytest.raises(FileNotFoundError, match=re.escape(str(folder)) + ".*" + expected):
        pipeline("zero-shot-video-classification", model=str(folder))
