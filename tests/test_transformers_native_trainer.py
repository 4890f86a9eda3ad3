"""transformers.Trainer trains and evaluates OmniCLIP with the package's collator (class texts tokenized once)."""

from __future__ import annotations

import pytest
import torch


class RandomVideos(torch.utils.data.Dataset):
    """Videos as VideoClipDataset yields them: (T, 3, H, W) pixel values and an integer label."""

    def __init__(self, count: int, num_classes: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.videos = torch.randn(count, 4, 3, 32, 32, generator=generator)
        self.labels = torch.arange(count) % num_classes

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values_videos": self.videos[index], "labels": int(self.labels[index]), "index": index}


def test_trainer_trains_two_steps_and_evaluates(tiny_clip, clip_tokenizer, tmp_path):
    from transformers import Trainer, TrainingArguments

    from omniclip_hf import OmniCLIPModel
    from omniclip_hf.training.trainer_collator import ClassTextCollator

    class_names = ["brush_hair", "ApplyEyeMakeup", "yoga"]
    model = OmniCLIPModel.from_clip(tiny_clip, num_frames=4)
    collator = ClassTextCollator(clip_tokenizer, class_names)
    expected_ids = clip_tokenizer(
        ["a video of brush hair action", "a video of apply eye makeup action", "a video of yoga action"],
        padding=True, return_tensors="pt",
    )["input_ids"]
    assert torch.equal(collator.input_ids, expected_ids)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    arguments = TrainingArguments(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, per_device_eval_batch_size=3,
        learning_rate=1e-2, use_cpu=True, report_to=[], save_strategy="no", logging_steps=1,
        dataloader_num_workers=0, gradient_accumulation_steps=1,
    )
    trainer = Trainer(
        model=model, args=arguments, train_dataset=RandomVideos(4, 3, seed=0), eval_dataset=RandomVideos(5, 3, seed=1),
        data_collator=collator, compute_metrics=ClassTextCollator.accuracy,
    )
    result = trainer.train()
    assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))
    changed = {name for name, parameter in model.named_parameters() if not torch.equal(parameter, before[name])}
    assert changed and all(not name.startswith("clip.") for name in changed)  # only OmniCLIP modules train
    metrics = trainer.evaluate()
    assert {"eval_loss", "eval_accuracy"} <= set(metrics)
    predictions = trainer.predict(RandomVideos(5, 3, seed=1))
    assert predictions.predictions.shape == (5, 3)
    model.eval()
    with torch.no_grad():
        batch = collator([RandomVideos(5, 3, seed=1)[index] for index in range(5)])
        logits = model(**batch).logits_per_video
    torch.testing.assert_close(torch.as_tensor(predictions.predictions), logits, atol=1e-5, rtol=1e-5)
    expected_accuracy = (logits.argmax(dim=-1) == batch["labels"]).float().mean().item()
    assert metrics["eval_accuracy"] == pytest.approx(expected_accuracy)
