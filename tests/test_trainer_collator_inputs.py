"""ClassTextCollator's inputs on the transformers.Trainer path: class names without a label order, labels that are
booleans, class names, None or of the wrong kind, items that are no video dicts, wrong tokenizers, and the accuracy
under Trainer's evaluation settings. Each was taken silently (a wrong result) or failed deep inside torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

CLASS_NAMES = ["brush_hair", "ApplyEyeMakeup", "yoga", "archery"]


def video() -> torch.Tensor:
    return torch.zeros(4, 3, 32, 32)


@pytest.fixture()
def collator(clip_tokenizer):
    from omniclip_hf.training.trainer_collator import ClassTextCollator

    return ClassTextCollator(clip_tokenizer, CLASS_NAMES)


@pytest.mark.parametrize("class_names", ["yoga", {"yoga", "archery"}, frozenset({"yoga", "archery"}),
                                         {"archery": 1, "yoga": 0}, {0: "yoga", 1: "archery"}],
                         ids=["str", "set", "frozenset", "label2id", "id2label"])
def test_class_names_without_a_label_order_are_refused(clip_tokenizer, class_names):
    """"yoga" became 4 classes (its letters); a set's order changes with PYTHONHASHSEED; label2id's key order scored
    label 0 against "archery"."""
    from omniclip_hf.training.trainer_collator import ClassTextCollator

    with pytest.raises(TypeError, match=r"^ClassTextCollator: class_names is a .*pass a list in class-index order"):
        ClassTextCollator(clip_tokenizer, class_names)


@pytest.mark.parametrize("class_names", [["yoga", "yoga", "archery"], ["Yoga", "yoga"]])
def test_duplicate_class_names_are_refused_as_load_video_dataset_refuses_them(clip_tokenizer, class_names):
    from omniclip_hf.training.trainer_collator import ClassTextCollator

    with pytest.raises(ValueError, match=r"^ClassTextCollator: class_names: class names .* are the same class"):
        ClassTextCollator(clip_tokenizer, class_names)


@pytest.mark.parametrize("label", [True, np.bool_(False), torch.tensor(True)], ids=["bool", "numpy", "tensor"])
def test_boolean_labels_are_refused(collator, label):
    """True/False trained as the classes 1 and 0."""
    with pytest.raises(ValueError, match=r"batch item index=7 has a boolean labels"):
        collator([{"pixel_values_videos": video(), "labels": label, "index": 7}])


def test_an_item_with_labels_and_label_is_refused(collator):
    """`labels` was used and `label` ignored, with nothing said."""
    items = [{"pixel_values_videos": video(), "labels": 0, "index": 0},
             {"pixel_values_videos": video(), "labels": 1, "label": 2, "index": 3}]
    with pytest.raises(ValueError, match=r"batch item index=3 has both 'labels' and 'label'"):
        collator(items)


def test_labels_given_as_class_names_are_their_class_indices(collator):
    """A datasets column of class-name strings crashed in torch (`new(): invalid data type 'str'`)."""
    items = [{"pixel_values_videos": video(), "label": "yoga"}, {"pixel_values_videos": video(), "label": 3},
             {"pixel_values_videos": video(), "label": "brush_hair"}]
    assert collator(items)["labels"].tolist() == [2, 3, 0]
    with pytest.raises(ValueError, match=r"batch item 1 has label='Yoga', which is none of the 4 class names "
                                         r"\['brush_hair', 'ApplyEyeMakeup', 'yoga', 'archery'\]"):
        collator([items[0], {"pixel_values_videos": video(), "label": "Yoga"}])


@pytest.mark.parametrize(("labels", "message"), [
    ([0, None], r"batch item index=1 has labels=None"),
    ([0, torch.full((4,), 0.25)], r"this batch mixes class indices and soft targets \(batch item index=1 has soft "
                                  r"targets\)"),
    ([torch.full((3,), 1 / 3), torch.full((3,), 1 / 3)], r"batch item index=0 has labels of dtype torch.float32 and "
                                                          r"shape \(3,\).*soft targets of shape \(4,\)"),
    ([0, 4], r"batch item index=1 has labels=4, outside the 4 classes \[0, 4\)"),
    ([-1, 0], r"batch item index=0 has labels=-1, outside"),
], ids=["None", "soft and integer", "soft of the wrong width", "index too large", "negative index"])
def test_labels_that_cannot_be_stacked_or_are_out_of_range_name_the_item(collator, labels, message):
    items = [{"pixel_values_videos": video(), "labels": label, "index": index} for index, label in enumerate(labels)]
    with pytest.raises(ValueError, match=r"^ClassTextCollator: " + message):
        collator(items)


@pytest.mark.parametrize(("items", "error", "message"), [
    ([{"video": video(), "labels": 0}], ValueError,
     r"batch item 0 has the keys \['labels', 'video'\] but not 'pixel_values_videos'"),
    ([{"pixel_values": video(), "labels": 0, "index": 5}], ValueError,
     r"batch item index=5 has the keys \['index', 'labels', 'pixel_values'\] but not 'pixel_values_videos'"),
    ([(video(), 0)], TypeError, r"batch item 0 is a tuple, not a dict"),
    ([], ValueError, r"got an empty batch"),
], ids=["video key", "pixel_values key", "tuple", "empty batch"])
def test_items_that_are_no_video_dicts_are_named_not_called_broken_files(collator, items, error, message):
    """They ended in "all N videos of this batch failed to load ... re-encode the broken files"."""
    with pytest.raises(error, match=r"^ClassTextCollator:? " + message):
        collator(items)
    with pytest.raises(ValueError, match="all 1 videos of this batch failed to load"):  # a broken file still is one
        collator([{"index": 3, "error": "clip3.mp4: cannot decode"}])


def test_a_wrong_tokenizer_or_processor_is_refused_in_one_line(clip_tokenizer):
    """None failed in tokenization ('NoneType' object is not callable), a tokenizer given to from_processor with
    an AttributeError from transformers, a video processor with unexpected keyword arguments."""
    from omniclip_hf import OmniCLIPProcessor, OmniCLIPVideoProcessor
    from omniclip_hf.training.trainer_collator import ClassTextCollator

    processor = OmniCLIPProcessor(video_processor=OmniCLIPVideoProcessor(num_frames=4), tokenizer=clip_tokenizer)
    assert ClassTextCollator.from_processor(processor, CLASS_NAMES).num_classes == 4
    with pytest.raises(TypeError, match=r"^ClassTextCollator: tokenizer must be CLIP's tokenizer .* got NoneType"):
        ClassTextCollator(None, CLASS_NAMES)
    with pytest.raises(TypeError, match=r"^ClassTextCollator: tokenizer is a processor .*from_processor"):
        ClassTextCollator(processor, CLASS_NAMES)
    with pytest.raises(TypeError, match=r"got OmniCLIPVideoProcessor"):
        ClassTextCollator(processor.video_processor, CLASS_NAMES)
    with pytest.raises(TypeError, match=r"^ClassTextCollator.from_processor: processor is a tokenizer"):
        ClassTextCollator.from_processor(clip_tokenizer, CLASS_NAMES)
    with pytest.raises(TypeError, match=r"^ClassTextCollator.from_processor: processor must be an OmniCLIPProcessor"):
        ClassTextCollator.from_processor(processor.video_processor, CLASS_NAMES)


class LabelledVideos(torch.utils.data.Dataset):
    def __init__(self, count: int):
        self.videos = torch.randn(count, 4, 3, 32, 32, generator=torch.Generator().manual_seed(9))

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values_videos": self.videos[index], "labels": index % len(CLASS_NAMES)}


@pytest.mark.parametrize("setting", [{"eval_do_concat_batches": False}, {"batch_eval_metrics": True}],
                         ids=["eval_do_concat_batches=False", "batch_eval_metrics=True"])
def test_accuracy_under_trainers_evaluation_settings_is_the_whole_sets(tiny_clip, collator, tmp_path, setting):
    """eval_do_concat_batches=False gave `AttributeError: 'list' object has no attribute 'ndim'`;
    batch_eval_metrics=True was refused by Trainer (accuracy took no `compute_result`)."""
    from transformers import Trainer, TrainingArguments

    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.training.trainer_collator import ClassTextCollator

    torch.manual_seed(0)
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4).eval()
    data = LabelledVideos(7)
    with torch.no_grad():
        batch = collator([data[index] for index in range(len(data))])
        expected = (model(**batch).logits_per_video.argmax(-1) == batch["labels"]).float().mean().item()
    arguments = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], per_device_eval_batch_size=3,
                                  dataloader_num_workers=0, disable_tqdm=True, **setting)
    for _ in range(2):  # twice: the batches of one evaluation are not counted in the next
        metrics = Trainer(model=model, args=arguments, eval_dataset=data, data_collator=collator,
                          compute_metrics=ClassTextCollator.accuracy).evaluate()
        assert metrics["eval_accuracy"] == pytest.approx(expected)
