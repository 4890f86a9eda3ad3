"""What a training run carries into the model it saves and the records it keeps: the frame count of a --model
folder, the processor settings the model is evaluated and served with, the class names a resume is compared on,
each eval set's own name, and a step's loss under gradient accumulation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from omniclip_hf import OmniCLIPModel
from omniclip_hf.training.loop import build_processor, parse_training_options
from omniclip_hf.training.evaluation import eval_set_names
from omniclip_hf.training.recipe import recipe_of, warn_about_changed_recipe
from omniclip_hf.training.run import StepLosses, load_model_and_processor


@pytest.fixture(scope="module")
def four_frame_model_dir(tmp_path_factory, tiny_clip_dir):
    """An OmniCLIP folder trained (here: built) at 4 frames, its processor saved beside it."""
    folder = tmp_path_factory.mktemp("four-frames")
    OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4).save_pretrained(folder)
    build_processor(str(tiny_clip_dir), 4).save_pretrained(folder)
    return folder


def test_a_model_folder_keeps_its_frame_count_unless_one_is_given(four_frame_model_dir):
    """The default 8 replaced the folder's own count: a 32-frame model went on training at 8."""
    options = parse_training_options(["--model", str(four_frame_model_dir), "--train_data", "x"])
    _, processor = load_model_and_processor(options)
    assert options.num_frames == 4 and processor.video_processor.num_frames == 4
    options = parse_training_options(["--model", str(four_frame_model_dir), "--train_data", "x", "--num_frames", "6"])
    _, processor = load_model_and_processor(options)
    assert options.num_frames == 6 and processor.video_processor.num_frames == 6


def test_the_saved_processor_carries_the_runs_template_and_non_augmentation_settings(tiny_clip_dir):
    """The processor saved beside the model kept the default template and the default sampling and normalisation,
    so the model was evaluated and served other than it was trained; augmentation settings stay training's own."""
    options = parse_training_options([
        "--clip", str(tiny_clip_dir), "--train_data", "x", "--text_template", "a person {} in a clip",
        "--video_processor_overrides", '{"sampling": "uniform", "image_mean": [0.5, 0.5, 0.5], "flip_prob": 0}'])
    model, processor = load_model_and_processor(options)
    assert options.num_frames == 8  # --clip without --num_frames: the config default
    assert processor.text_template == model.config.text_template == "a person {} in a clip"
    assert processor.video_processor.sampling == "uniform"
    assert list(processor.video_processor.image_mean) == [0.5, 0.5, 0.5]
    assert processor.video_processor.flip_prob == 0.5  # training's own: passed to the training clips' calls only


def test_a_resume_with_the_class_names_in_another_order_is_warned_about(tmp_path, caplog):
    """The same --labels_file path may hold another list: an index-labelled set then trains its second half on
    other classes."""
    options = parse_training_options(["--clip", "x", "--train_data", "y", "--labels_file", "l.txt"])
    recorded = recipe_of(options, 1, ["archery", "bowling"])
    with caplog.at_level("WARNING"):
        warn_about_changed_recipe(options, tmp_path, tmp_path / "step_7", recorded, 1, ["archery", "bowling"])
        assert not caplog.records
        warn_about_changed_recipe(options, tmp_path, tmp_path / "step_7", recorded, 1, ["bowling", "archery"])
        warn_about_changed_recipe(options, tmp_path, tmp_path / "step_7", recorded, 1, ["archery", "curling"])
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "the class names (the same classes in another order: ['bowling', 'archery']" in messages[0]
    assert "the class names (other classes: ['archery', 'curling']" in messages[1]


def test_eval_sets_of_the_same_file_name_keep_their_own_results():
    """`split1/test.csv` and `split2/test.csv` were both "test": the last one's results replaced the others', and a
    zero-shot mean over three splits was one split's number."""
    sources = ["data/hmdb/split1/test.csv", "data/hmdb/split2/test.csv", "data/ucf/test.csv"]
    assert eval_set_names(sources) == ["split1_test", "split2_test", "ucf_test"]
    assert eval_set_names(sources[1:2]) == ["eval"]
    assert eval_set_names(["a/test.csv", "a/test.csv"]) == ["test_1", "test_2"]
    assert eval_set_names(["hmdb", "ucf"]) == ["hmdb", "ucf"]


def test_a_steps_loss_is_the_mean_of_its_micro_batches():
    """With --gradient_accumulation_steps the last micro-batch's loss alone was recorded as the step's."""
    accelerator = SimpleNamespace(reduce=lambda tensor, reduction: tensor)  # one process
    recorded: list[float] = []
    losses = StepLosses(accelerator, recorded)
    for value in (1.0, 2.0, 6.0):
        losses.add_micro_batch(torch.tensor(value))
    losses.end_step()
    losses.add_micro_batch(torch.tensor(0.5))
    losses.end_step()
    assert losses.read() == [3.0, 0.5] and recorded == [3.0, 0.5]


def test_a_resume_over_another_number_of_listed_videos_is_warned_about(tmp_path, caplog):
    """The same annotation file re-exported with more videos: the sampler's permutation and the resumed position
    refer to another set."""
    from omniclip_hf.training.data import VideoClassificationData
    from omniclip_hf.training.recipe import training_data_of

    options = parse_training_options(["--clip", "x", "--train_data", "y"])
    data = VideoClassificationData(dataset=list(range(10)), class_names=["a", "b"], source="y")
    recorded = recipe_of(options, 1, ["a", "b"], training_data_of(data))
    with caplog.at_level("WARNING"):
        warn_about_changed_recipe(options, tmp_path, tmp_path / "step_7", recorded, 1, ["a", "b"], {"videos": 10})
        assert not caplog.records
        warn_about_changed_recipe(options, tmp_path, tmp_path / "step_7", recorded, 1, ["a", "b"], {"videos": 12})
    assert "the training data (12 videos, was 10 videos)" in caplog.records[0].getMessage()


def test_training_a_model_without_spg_says_so(tiny_clip_dir, tmp_path, caplog):
    """An `omniclip init` folder is CLIP at the identity with SPG off: trained as --model, it stayed without the
    self-prompt generator with nothing said."""
    from omniclip_hf.clip_conversion import write_model_folder

    folder = write_model_folder(str(tiny_clip_dir), tmp_path / "init", num_frames=4)
    with caplog.at_level("WARNING"):
        load_model_and_processor(parse_training_options(["--model", str(folder), "--train_data", "x"]))
    assert "has no self-prompt generator (use_spg false" in caplog.text and "pass the CLIP as --clip" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # a model with SPG: nothing to say
        load_model_and_processor(parse_training_options(["--clip", str(tiny_clip_dir), "--train_data", "x"]))
    assert "self-prompt" not in caplog.text
