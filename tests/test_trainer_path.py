"""The transformers.Trainer path: ClassTextCollator under nn.DataParallel's split, failed and unlabelled items under
Trainer's remove_unused_columns, and the package's weight-decay groups for Trainer's optimizer."""

from __future__ import annotations

import pytest
import torch

CLASS_NAMES = ["brush_hair", "ApplyEyeMakeup", "yoga", "archery"]


class Videos(torch.utils.data.Dataset):
    """Items as VideoClipDataset yields them; `failed` indices give `{"index", "error"}` as an undecodable file does."""

    def __init__(self, count: int, seed: int, failed: tuple[int, ...] = (), labelled: bool = True):
        generator = torch.Generator().manual_seed(seed)
        self.videos = torch.randn(count, 4, 3, 32, 32, generator=generator)
        self.failed, self.labelled = failed, labelled

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        if index in self.failed:
            return {"index": index, "error": f"clip{index}.mp4: cannot decode"}
        item = {"pixel_values_videos": self.videos[index], "index": index}
        if self.labelled:
            item["labels"] = index % len(CLASS_NAMES)
        return item


def arguments(tmp_path, **overrides):
    from transformers import TrainingArguments

    settings = dict(output_dir=str(tmp_path), use_cpu=True, report_to=[], save_strategy="no", dataloader_num_workers=0,
                    per_device_train_batch_size=4, per_device_eval_batch_size=4, learning_rate=1e-2, max_steps=1,
                    disable_tqdm=True)
    settings.update(overrides)
    return TrainingArguments(**settings)


@pytest.fixture()
def model_and_collator(tiny_clip, clip_tokenizer):
    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.training.trainer_collator import ClassTextCollator

    torch.manual_seed(0)
    return OmniCLIPModel.from_clip(tiny_clip, num_frames=4).eval(), ClassTextCollator(clip_tokenizer, CLASS_NAMES)


@pytest.mark.parametrize("count", [4, 5])
def test_dataparallel_split_keeps_every_class(model_and_collator, count):
    """nn.DataParallel (Trainer with several GPUs in one process) chunks every tensor argument along dim 0: each
    replica must still score its videos against every class, so the replicas' logits put together are the batch's."""
    model, collator = model_and_collator
    data = Videos(count, seed=0)
    batch = collator([data[index] for index in range(count)])
    with torch.no_grad():
        whole = model(**batch)
        two_d = model(**{**batch, "input_ids": collator.input_ids, "attention_mask": collator.attention_mask})
        torch.testing.assert_close(whole.logits_per_video, two_d.logits_per_video, rtol=0, atol=0)  # 2-D path as before
        replicas = [{key: value.chunk(2, dim=0)[part] for key, value in batch.items()} for part in range(2)]
        outputs = [model(**replica) for replica in replicas]
        summed = [model(**replica, num_items_in_batch=count) for replica in replicas]
    torch.testing.assert_close(torch.cat([output.logits_per_video for output in outputs]), whole.logits_per_video)
    # the loss: per replica on its own videos; summed over replicas with Trainer's num_items_in_batch, the batch's
    torch.testing.assert_close(sum(output.loss for output in summed), whole.loss)
    if count % 2 == 0:  # equal halves: DataParallel's mean of the replica losses is the batch's mean
        torch.testing.assert_close(torch.stack([output.loss for output in outputs]).mean(), whole.loss)
    assert batch["input_ids"].shape == (count, len(CLASS_NAMES), collator.input_ids.shape[1])
    # Contiguous copies: the DataLoader's pin_memory (Trainer's default on a GPU) refuses a stride-0 view.
    assert batch["input_ids"].is_contiguous() and batch["attention_mask"].is_contiguous()
    # nn.DataParallel gathers every output along dim 0: each runs along the batch, so unequal parts join.
    for name in ("logits_per_video", "video_embeds", "text_embeds"):
        joined = torch.cat([getattr(output, name) for output in outputs])
        assert joined.shape[0] == count, name
        torch.testing.assert_close(joined, getattr(whole, name).expand_as(joined), msg=name)
    assert whole.logits_per_text is None and two_d.logits_per_text.shape == (len(CLASS_NAMES), count)


def test_three_d_class_texts_must_repeat_one_set(model_and_collator):
    model, collator = model_and_collator
    videos = Videos(2, seed=1).videos
    input_ids = collator.input_ids.expand(2, -1, -1).clone()
    attention_mask = collator.attention_mask.expand(2, -1, -1).clone()
    with torch.no_grad():
        reference = model(pixel_values_videos=videos, input_ids=collator.input_ids).logits_per_video
        same = model(pixel_values_videos=videos, input_ids=input_ids, attention_mask=attention_mask).logits_per_video
    torch.testing.assert_close(same, reference)
    other = input_ids.clone()
    other[1] = other[1].flip(0)  # the second video's classes in another order
    with pytest.raises(ValueError, match="must repeat one"):
        model(pixel_values_videos=videos, input_ids=other, attention_mask=attention_mask)
    with pytest.raises(ValueError, match="must repeat one"):
        model(pixel_values_videos=videos, input_ids=input_ids, attention_mask=collator.attention_mask)


def test_failed_video_is_skipped_under_remove_unused_columns(model_and_collator, tmp_path, caplog):
    """Trainer's default remove_unused_columns=True strips a failed item's "error": it arrives as `{}`."""
    from transformers import Trainer

    model, collator = model_and_collator
    trainer = Trainer(model=model, args=arguments(tmp_path), train_dataset=Videos(4, seed=2, failed=(1,)),
                      eval_dataset=Videos(5, seed=3, failed=(2,)), data_collator=collator,
                      compute_metrics=collator.accuracy)
    assert trainer.args.remove_unused_columns
    result = trainer.train()
    assert result.global_step == 1 and torch.isfinite(torch.tensor(result.training_loss))
    metrics = trainer.evaluate()
    assert {"eval_loss", "eval_accuracy"} <= set(metrics)
    assert trainer.predict(Videos(5, seed=3, failed=(2,))).predictions.shape == (4, len(CLASS_NAMES))
    with caplog.at_level("WARNING"):
        batch = collator([{}, Videos(2, seed=4)[0]])
    assert batch["pixel_values_videos"].shape[0] == 1 and batch["labels"].tolist() == [0]
    with pytest.raises(ValueError, match="all 2 videos of this batch failed"):
        collator([{}, {"index": 3, "error": "clip3.mp4: cannot decode"}])


def test_deferred_colour_augmentation_is_refused_without_its_key(model_and_collator):
    """remove_unused_columns=True strips the deferred item's "color_augmentation" key: its uint8 frames still tell."""
    _, collator = model_and_collator
    item = {"pixel_values_videos": torch.zeros(4, 3, 32, 32, dtype=torch.uint8), "labels": 0}
    with pytest.raises(ValueError, match="uint8 frames"):
        collator([item, item])
    with pytest.raises(ValueError, match="uint8 frames"):
        collator([{**item, "color_augmentation": torch.zeros(4)}])


def test_predict_on_unlabelled_videos(model_and_collator, tmp_path):
    from transformers import Trainer

    model, collator = model_and_collator
    data = Videos(5, seed=5, labelled=False)
    assert "labels" not in collator([data[0], data[1]])
    trainer = Trainer(model=model, args=arguments(tmp_path), data_collator=collator)
    prediction = trainer.predict(data)
    assert prediction.predictions.shape == (5, len(CLASS_NAMES)) and prediction.label_ids is None
    with torch.no_grad():
        expected = model(**collator([data[index] for index in range(5)])).logits_per_video
    torch.testing.assert_close(torch.as_tensor(prediction.predictions), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="some items of this batch have a label"):
        collator([data[0], Videos(1, seed=5)[0]])


def test_trainer_optimizer_decays_as_the_package_loop(model_and_collator, tmp_path):
    """Trainer's own AdamW decays the adapter gates and the position embeddings; trainer_optimizer does not."""
    from transformers import Trainer

    from omniclip_hf.training.loop import parameter_groups
    from omniclip_hf.training.trainer_collator import trainer_optimizer

    model, collator = model_and_collator
    args = arguments(tmp_path, weight_decay=0.05, adam_beta2=0.98, adam_epsilon=1e-6)
    optimizer = trainer_optimizer(model, args)
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    decayed = [names[id(p)] for group in optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]]
    kept = [names[id(p)] for group in optimizer.param_groups if group["weight_decay"] == 0 for p in group["params"]]
    assert decayed and all(group["weight_decay"] in (0.0, 0.05) for group in optimizer.param_groups)
    assert not [name for name in decayed if "alpha" in name or "embedding" in name or model.get_parameter(name).ndim < 2]
    assert any("alpha" in name for name in kept) and any("embedding" in name for name in kept)
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert sorted(decayed + kept) == sorted(trainable)  # every trainable parameter once, no frozen CLIP one
    assert optimizer.defaults["betas"] == (0.9, 0.98) and optimizer.defaults["eps"] == 1e-6
    assert [len(group["params"]) for group in parameter_groups(model, 1.0, 0.05)] == [len(decayed), len(kept)]

    trainer = Trainer(model=model.train(), args=args, train_dataset=Videos(4, seed=6), data_collator=collator,
                      optimizers=(optimizer, None))
    trainer.train()
    used = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    assert used is optimizer


@pytest.mark.parametrize("optim, expected", [("sgd", torch.optim.SGD), ("adamw_torch", torch.optim.AdamW),
                                             ("adagrad", torch.optim.Adagrad)])
def test_trainer_optimizer_is_the_one_args_optim_names(model_and_collator, tmp_path, optim, expected):
    """It built AdamW whatever `optim` said: `optim="sgd"` trained with AdamW, with nothing said."""
    from omniclip_hf.training.trainer_collator import trainer_optimizer

    model, _ = model_and_collator
    optimizer = trainer_optimizer(model, arguments(tmp_path, optim=optim, weight_decay=0.05))
    assert type(optimizer) is expected
    assert sorted(group["weight_decay"] for group in optimizer.param_groups) == [0.0, 0.05]


class SoftLabelledVideos(Videos):
    """Mixup-style soft targets `(num_classes,)` instead of class indices."""

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        item["labels"] = torch.nn.functional.one_hot(torch.tensor(item["labels"]), len(CLASS_NAMES)) * 0.8 + 0.05
        return item


@pytest.mark.parametrize("dataset", [Videos, SoftLabelledVideos], ids=["class indices", "soft targets"])
def test_accumulated_micro_batches_of_unequal_size_step_as_one_batch(tiny_clip, clip_tokenizer, tmp_path, dataset):
    """Trainer passed no `num_items_in_batch` (accepts_loss_kwargs was False) and divided each micro-batch's mean
    loss by the accumulation steps: 6 videos as micro-batches of 4 and 2 weighted the 2 double, and the step moved the
    weights up to 0.05 away from one batch of 6's, with nothing said."""
    from transformers import Trainer

    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.training.trainer_collator import ClassTextCollator

    def trained(batch_size: int, accumulation: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4)
        settings = arguments(tmp_path / f"{batch_size}x{accumulation}", per_device_train_batch_size=batch_size,
                             gradient_accumulation_steps=accumulation, optim="sgd", learning_rate=1.0,
                             lr_scheduler_type="constant")
        Trainer(model=model, args=settings, train_dataset=dataset(6, seed=3),
                data_collator=ClassTextCollator(clip_tokenizer, CLASS_NAMES)).train()
        return {name: tensor.detach().clone() for name, tensor in model.named_parameters() if tensor.requires_grad}

    one_batch, two_micro_batches = trained(6, 1), trained(4, 2)
    for name, tensor in one_batch.items():
        torch.testing.assert_close(two_micro_batches[name], tensor, rtol=0, atol=1e-6, msg=name)


def test_trainers_label_smoothing_gives_the_models_smoothed_loss(tiny_clip, clip_tokenizer, tmp_path):
    """TrainingArguments(label_smoothing_factor=0.1) failed with KeyError 'logits' inside Trainer: its smoother reads
    outputs["logits"]. It now smooths the class logits, as the model's own label_smoothing does."""
    from transformers import Trainer

    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.training.trainer_collator import ClassTextCollator

    torch.manual_seed(0)
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4).eval()
    collator = ClassTextCollator(clip_tokenizer, CLASS_NAMES)
    batch = collator([Videos(4, seed=1)[index] for index in range(4)])
    trainer = Trainer(model=model, args=arguments(tmp_path, label_smoothing_factor=0.1), data_collator=collator)
    with torch.no_grad():
        trainers = trainer.compute_loss(model, dict(batch))
        model.config.label_smoothing = 0.1
        models_own = model(**batch).loss
    torch.testing.assert_close(trainers, models_own)
    output = model(**batch)
    assert output["logits"] is output.logits_per_video and len(output.to_tuple()) == len(output.keys())


def test_the_trainer_card_names_a_hub_base_clip_and_never_a_local_folder(tiny_clip_dir, tmp_path):
    """docs/training.md's `create_model_card(finetuned_from=card_base_model(model))`: a CLIP loaded from a local folder
    is left out of the card (the config's `base_clip_name_or_path` as it was gave `base_model: <the local path>`),
    a Hub id is the card's `base_model`."""
    from transformers import Trainer

    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.training.trainer_collator import card_base_model

    model = OmniCLIPModel.from_clip(str(tiny_clip_dir), num_frames=4)
    trainer = Trainer(model=model, args=arguments(tmp_path))
    assert card_base_model(model) is None
    trainer.create_model_card(finetuned_from=card_base_model(model))
    card = (tmp_path / "README.md").read_text()
    assert "base_model" not in card and str(tiny_clip_dir) not in card, card[:400]
    model.config.base_clip_name_or_path = "openai/clip-vit-base-patch16"
    trainer.create_model_card(finetuned_from=card_base_model(model))
    assert "\nbase_model: openai/clip-vit-base-patch16\n" in (tmp_path / "README.md").read_text()
