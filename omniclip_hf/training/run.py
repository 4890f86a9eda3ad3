# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""The training run of `examples/train.py`: the model and data, the loop with checkpoints and resumption,
evaluation of every eval set, and the final save. The script itself only parses options and sets up Accelerate."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from ..configuration_omniclip import OmniCLIPConfig, changed_architecture_fields
from ..model_loading import load_omniclip_model
from ..modeling_omniclip import OmniCLIPModel, enable_activation_checkpointing
from ..processing_omniclip import OmniCLIPProcessor, load_label_names
from . import testing_hooks
from .checkpoints import (
    ARCHITECTURE_KEY,
    FEW_SHOT_SELECTION_NAME,
    FROZEN_CLIP_KEY,
    OPTIMIZER_GROUPS_KEY,
    TRACKER_PROJECT_NAME,
    TRAINABLE_WEIGHTS_KEY,
    check_output_dir_for_a_new_run,
    delete_earlier_checkpoints,
    frozen_clip_fingerprint,
    keep_checkpoints_trainable_only,
    restore_checkpoint,
    save_checkpoint,
    trainable_weight_shapes,
    write_folder_atomically,
)
from .data import (
    VideoClassificationData,
    VideoClipDataset,
    _normalise_name,
    blank_clip,
    collate_video_batch,
    few_shot_subset,
    labels_in_class_order,
    load_video_dataset,
)
from .distributed import keep_frozen_scalars_out_of_deepspeed
from .evaluation import (
    FRAME_AVERAGE,
    class_text_embeddings,
    classification_metrics,
    eval_set_names,
    mean_and_std,
    predict,
    trained_class_names,
    warn_if_classes_differ_from_training,
    write_confusion_matrix_png,
)
from .loader import batch_to_device, loader_settings
from .loop import (
    TrainingOptions,
    VideoMixer,
    build_optimizer,
    build_processor,
    build_scheduler,
    is_omniclip_folder,
    keep_frozen_clip_out_of_fsdp,
)
from .recipe import (
    RECIPE_KEY,
    recipe_of,
    training_data_of,
    warn_about_changed_recipe,
    write_training_options,
)
from .streaming import (
    StreamingVideoClipDataset,
    batches_while_every_process_has_one,
    load_streaming_dataset,
    stream_for_process,
)


logger = logging.getLogger("omniclip.train")
# Undecodable training videos are named by every process (the scripts quiet `logger` on all but the main one).
skipped_logger = logging.getLogger("omniclip.train.skipped")
skipped_logger.setLevel(logging.WARNING)


# Video processor settings that shape training clips only (augmentation, and how this run's workers decode): every
# other --video_processor_overrides setting (sampling, sizes, normalisation) is also what the model must be evaluated
# and served with, so it goes into the processor that is saved beside the model.
TRAINING_ONLY_VIDEO_SETTINGS = ("do_augment", "augment_resize_shortest_edge", "augment_crop_scale",
                                "augment_crop_ratio", "flip_prob", "color_jitter_prob", "color_jitter",
                                "grayscale_prob", "video_backend", "decoder_threading", "device")


def load_model_and_processor(options: TrainingOptions):
    """The model and its processor. `options.num_frames` left out becomes the --model folder's frame count (its saved
    processor's), or the config default with --clip; the processor then carries every setting the model is evaluated
    and served with: the frame count, --text_template and the non-augmentation --video_processor_overrides."""
    overrides = json.loads(options.model_overrides) if options.model_overrides else {}
    if options.text_template:
        overrides["text_template"] = options.text_template
    if options.clip:
        options.num_frames = options.num_frames or OmniCLIPConfig().num_frames
        if not options.train_data:
            # Evaluation only: the modules would stay untrained (SPG random, results depending on --seed); the CLIP
            # is evaluated as examples/evaluate.py --clip evaluates it, the frame-averaged baseline.
            overrides = {**FRAME_AVERAGE, **overrides}
        model = OmniCLIPModel.from_clip(
            options.clip, num_frames=options.num_frames, label_smoothing=options.label_smoothing, **overrides
        )
        processor = build_processor(options.clip, options.num_frames)
    else:
        # A config.json that does not fit its weights is one line naming them (as examples/evaluate.py says it), not
        # transformers' report table and a RuntimeError traceback.
        model = load_omniclip_model(options.model)
        rebuilt = sorted(changed_architecture_fields(model.config.architecture(), overrides))
        if rebuilt:  # the loaded modules would train on unchanged, and the saved model/ would not load
            built_with = ", ".join(f"{key}={getattr(model.config, key)!r}" for key in rebuilt)
            raise ValueError(f"--model_overrides {', '.join(rebuilt)}: the --model's modules are built with "
                             f"{built_with}, which its weights fit; change them with --clip (a new model), or leave "
                             "them out.")
        for key, value in {"label_smoothing": options.label_smoothing, **overrides}.items():
            setattr(model.config, key, value)
        if options.train_data and not model.config.use_spg:
            # `omniclip init` folders are CLIP at the identity, SPG off: trained, they stay without it.
            logger.warning("--model %s has no self-prompt generator (use_spg false, as `omniclip init` writes CLIP "
                           "at the identity): it trains without it; to train the paper's model, pass the CLIP as "
                           "--clip instead.", options.model)
        processor = OmniCLIPProcessor.from_pretrained(options.model)
        # Before, the default 8 replaced the folder's own count: a 32-frame model went on training at 8, its saved
        # config and processor then disagreeing.
        options.num_frames = options.num_frames or processor.video_processor.num_frames
        processor.video_processor.num_frames = options.num_frames
    processor.text_template = model.config.text_template  # the saved processor's prompts are the model's
    video_overrides = json.loads(options.video_processor_overrides) if options.video_processor_overrides else {}
    for key, value in video_overrides.items():
        if key not in TRAINING_ONLY_VIDEO_SETTINGS:
            setattr(processor.video_processor, key, value)
    return model, processor


def load_eval_sets(options: TrainingOptions, trained_classes: list[str] | None = None):
    """The --eval_data sets. One with a labels file (--eval_labels_file, or --labels_file) is scored over that
    file's class names; one without, over `trained_classes` (the training data's, or a trained --model's), as
    examples/evaluate.py scores it: over its own names alone, an eval set holding some of the classes was a
    multiple-choice test among those few, its top-1 far above the model's (0.5 where evaluate.py measured 0.0)."""
    sets = []
    label_files = options.eval_labels_file or [options.labels_file]
    argument = "--eval_labels_file" if options.eval_labels_file else "--labels_file"
    for index, source in enumerate(options.eval_data or []):
        labels_file = label_files[index] if len(label_files) > 1 else label_files[0]
        data = load_video_dataset(source, labels_file, options.eval_split, options.video_column,
                                  options.label_column, options.eval_data_root or options.data_root)
        if labels_file is None and trained_classes is not None:
            data = scored_over_trained_classes(data, trained_classes)
        elif trained_classes is not None:  # as examples/evaluate.py warns: indices read in another class order
            warn_if_classes_differ_from_training(labels_file, data.class_names, trained_classes, argument)
        sets.append(data)
    return sets


def scored_over_trained_classes(data: VideoClassificationData, trained_classes: list[str]) -> VideoClassificationData:
    """`data` with its labels re-indexed into `trained_classes` (matched by name, as class names are matched
    everywhere); a class the model is not trained on is refused in one line, before training starts."""
    trained = {_normalise_name(name) for name in trained_classes}
    unknown = [name for name in data.class_names if _normalise_name(name) not in trained]
    if unknown:
        raise ValueError(
            f"--eval_data {data.source}: {len(unknown)} of its classes are not among the {len(trained_classes)} the "
            f"model is trained on (e.g. {unknown[:3]}); it is scored over the trained classes unless it has a labels "
            "file: to evaluate it zero-shot over its own class names, pass --eval_labels_file with them.")
    dataset = labels_in_class_order(data.dataset, "label", list(trained_classes), data.source)
    return VideoClassificationData(dataset, list(trained_classes), data.source)


def trained_classes_of(options: TrainingOptions, train_data=None) -> list[str] | None:
    """The classes a run's model is trained on: the training data's, or an evaluated --model's `id2label` (None
    for a model never trained, or a --clip evaluated as it is: its eval sets are scored over their own names)."""
    if train_data is not None:
        return list(train_data.class_names)
    if options.model and (is_omniclip_folder(options.model) or not Path(options.model).exists()):  # or a Hub id
        try:
            config = OmniCLIPConfig.from_pretrained(options.model)
        except (OSError, ValueError):  # said in full when the model loads
            return None
        return trained_class_names(config, options.model)
    return None


def evaluate_all(options, accelerator, model, processor, eval_sets, output_dir: Path) -> dict:
    """Multi-view evaluation of every eval set; zero-shot runs with several sets also get mean and std."""
    unwrapped = accelerator.unwrap_model(model)
    results = {}
    names = eval_set_names([data.source for data in eval_sets])
    for data, name in zip(eval_sets, names):
        text_embeds = class_text_embeddings(unwrapped, processor.tokenizer, data.class_names)
        logits, labels, errors = predict(
            model, processor.video_processor, data, text_embeds, accelerator,
            batch_size=options.eval_batch_size or options.batch_size, num_workers=options.num_workers,
            num_temporal_clips=options.eval_num_clips, num_spatial_crops=options.eval_num_crops,
        )
        metrics = classification_metrics(logits, labels, data.class_names)
        metrics["failed_videos"] = errors
        if accelerator.is_main_process:
            write_confusion_matrix_png(metrics["confusion_matrix"], data.class_names,
                                       output_dir / f"confusion_matrix_{name}.png")
        results[name] = metrics
    summary = {}
    if len(results) == 1:
        only = next(iter(results.values()))
        summary = {"top1": only["top1"], "top5": only["top5"], "eval": only}
    elif results:
        summary = {
            "top1": mean_and_std([m["top1"] for m in results.values()]),
            "top5": mean_and_std([m["top5"] for m in results.values()]),
            "eval_sets": results,
        }
    return summary


def training_data(options: TrainingOptions, accelerator: Accelerator):
    """The training split: listed (a `VideoClassificationData`; with --shots, `few_shot_indices` says which videos of
    the full split it holds) or, with --streaming, this process's stream."""
    if options.streaming:
        class_names = load_label_names(options.labels_file) if options.labels_file else None
        data = load_streaming_dataset(options.train_data, class_names, options.train_split, options.video_column,
                                      options.label_column, check_shards=False)  # checked before (check_inputs_exist)
        accelerator.print(f"streaming {data.num_shards} shards of {len(data.class_names)} classes from {data.source}")
        return stream_for_process(data, accelerator.process_index, accelerator.num_processes, options.seed,
                                  options.shuffle_buffer)
    data = load_video_dataset(options.train_data, options.labels_file, options.train_split, options.video_column,
                              options.label_column, options.data_root)
    if options.shots:
        data, data.few_shot_indices = few_shot_subset(data, options.shots, options.seed)
    accelerator.print(f"training on {len(data)} videos of {len(data.class_names)} classes from {data.source}")
    return data


def write_few_shot_selection(data, output_dir: Path) -> None:
    """`few_shot_selection.json`: each training video of a --shots run, its index in the full split and its label."""
    selection = [{"index": index, "video": data.dataset[n]["video"],
                  "label": data.class_names[data.dataset[n]["label"]]} for n, index in enumerate(data.few_shot_indices)]
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / FEW_SHOT_SELECTION_NAME).write_text(json.dumps(selection, indent=2))


def color_augmentation_on_device(options: TrainingOptions, accelerator: Accelerator) -> bool:
    """--color_augmentation_on: 'auto' is the device when it is an accelerator. On a CPU the loop's own process would
    take the work from the workers, and the copy it saves is none."""
    if options.color_augmentation_on == "auto":
        return accelerator.device.type != "cpu"
    return options.color_augmentation_on == "device"


def training_loader(options: TrainingOptions, accelerator: Accelerator, data, video_processor):
    """The training dataset, its DataLoader, and the optimizer steps an epoch (None for a stream: unknown).

    Undecodable videos come back as errors in the batch, never raised in a worker: --strict is enforced by the loop,
    in the main process, so the user sees one line instead of the worker's traceback.
    """
    video_overrides = json.loads(options.video_processor_overrides) if options.video_processor_overrides else {}
    if color_augmentation_on_device(options, accelerator):
        video_overrides["defer_color_augmentation"] = True  # the loop finishes the views (`finish_views`)
    if options.streaming:
        dataset = StreamingVideoClipDataset(data, video_processor, options.batch_size, seed=options.seed,
                                            **video_overrides)
        loader = torch.utils.data.DataLoader(dataset, batch_size=options.batch_size, collate_fn=collate_video_batch,
                                             **loader_settings(options.num_workers, accelerator.device))
        return dataset, loader, None  # not prepared: a stream's processes already read their own shards
    dataset = VideoClipDataset(data, video_processor, train=True, seed=options.seed, **video_overrides)
    # Every video once an epoch, as transformers' Trainer reads its data: the last batch is short on one process, and
    # with several Accelerate fills the last round from the epoch's first videos (`even_batches`). Dropping the short
    # batches instead cost up to processes x batch size videos an epoch (64 of 102 for a K=2 few-shot HMDB51 on 8).
    loader = torch.utils.data.DataLoader(dataset, batch_size=options.batch_size, shuffle=True,
                                         collate_fn=collate_video_batch,
                                         **loader_settings(options.num_workers, accelerator.device))
    # Sharded per process by Accelerate, but moved to the device by the loop (`batch_to_device`).
    loader = accelerator.prepare_data_loader(loader, device_placement=False)
    return dataset, loader, optimizer_steps_per_epoch(len(loader), options.gradient_accumulation_steps)


def optimizer_steps_per_epoch(batches_per_process: int, gradient_accumulation_steps: int) -> int:
    """Optimizer steps in an epoch of `batches_per_process` (the prepared loader's length): one per
    `gradient_accumulation_steps` batches, and one more for a shorter last group, which Accelerate steps at the
    loader's end. The schedule's length and warmup count in these; a floor ended training epochs early."""
    return max(1, math.ceil(batches_per_process / gradient_accumulation_steps))


def check_scheduler_stepping(accelerator: Accelerator) -> None:
    """The loop steps the learning-rate schedule once per optimizer step, so the schedule is the same for one process
    or many. An Accelerator built with its default `step_scheduler_with_optimizer=True` would step a prepared
    schedule once per process at every optimizer step instead (its convention for schedules counted in unsharded
    batches): with 8 GPUs, warmup and the cosine would run 8 times too fast and the rate climb back up after the
    first eighth of training, with nothing said."""
    if accelerator.step_scheduler_with_optimizer:
        raise ValueError("train() steps the learning-rate schedule itself: build the Accelerator with "
                         "step_scheduler_with_optimizer=False, as examples/train.py does.")


def start_trackers(options: TrainingOptions, accelerator: Accelerator) -> None:
    """--report_to's trackers (the Accelerator was built with `log_with`), given the run's scalar options."""
    if options.report_to:
        config = {name: value for name, value in vars(options).items() if value is not None and not isinstance(value, list)}
        accelerator.init_trackers(TRACKER_PROJECT_NAME, config=config)


def warn_about_unused_epochs(options: TrainingOptions) -> None:
    """--max_steps sets how long training runs, as `max_steps` does in transformers' Trainer: an --epochs that was
    set (other than its default) would otherwise be dropped with nothing said (with --streaming always)."""
    if options.max_steps and options.epochs != TrainingOptions.epochs:  # the dataclass default
        logger.warning("--epochs %d is not used: --max_steps %d sets how long training runs.", options.epochs,
                       options.max_steps)


def train(options: TrainingOptions, accelerator: Accelerator, model, processor, output_dir: Path,
          data=None) -> dict:
    """Trains `model` on `data` (`training_data(options, accelerator)`, loaded here when not given)."""
    check_scheduler_stepping(accelerator)
    warn_about_unused_epochs(options)
    # Before anything is written to output_dir; every rank checks, so none waits alone. An earlier run's checkpoints
    # are deleted (--overwrite_output_dir) only once this run's data has loaded, by the main process.
    check_output_dir_for_a_new_run(output_dir, options.resume_from_checkpoint, options.overwrite_output_dir,
                                   delete=False)
    if data is None:
        data = training_data(options, accelerator)
    if options.gradient_checkpointing:
        enable_activation_checkpointing(model)
    text_embeds = class_text_embeddings(model, processor.tokenizer, data.class_names).to(accelerator.device)
    dataset, loader, steps_per_epoch = training_loader(options, accelerator, data, processor.video_processor)
    if options.overwrite_output_dir and accelerator.is_main_process:
        delete_earlier_checkpoints(output_dir)
    if getattr(data, "few_shot_indices", None) is not None and accelerator.is_main_process:
        write_few_shot_selection(data, output_dir)  # after the earlier run's copy is deleted
    accelerator.wait_for_everyone()
    start_trackers(options, accelerator)  # after the earlier run's logs are deleted, or they would take the new ones
    optimizer = build_optimizer(model, options)
    total_steps = options.max_steps or options.epochs * steps_per_epoch
    scheduler = build_scheduler(optimizer, options, steps_per_epoch or 0, total_steps)
    settings = optimizer_settings(optimizer, scheduler)
    optimizer_groups = [len(group["params"]) for group in optimizer.param_groups]
    keep_frozen_clip_out_of_fsdp(accelerator, model)
    keep_checkpoints_trainable_only(model)
    trainable_weights = trainable_weight_shapes(model)
    frozen_clip = frozen_clip_fingerprint(model)
    architecture = recorded_architecture(model.config)
    keep_frozen_scalars_out_of_deepspeed(accelerator, model)  # after the fingerprint, which reads the parameters
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    mixer = VideoMixer(len(data.class_names), options.mixup_alpha, options.cutmix_alpha, options.mix_prob, options.seed,
                       rank=accelerator.process_index)

    state = {"global_step": 0, "epoch": 0, "batches_in_epoch": 0, "skipped_videos": 0, "losses": [],
             "learning_rates": []}
    restored = None
    if options.resume_from_checkpoint:
        restored = restore_checkpoint(accelerator, options.resume_from_checkpoint, output_dir, trainable_weights,
                                      frozen_clip, optimizer_groups, architecture, loop_records=True)
        if restored is not None:
            checkpoint, state = restored
            keep_this_runs_optimizer_settings(optimizer, scheduler, settings)
            accelerator.print(f"resumed from {checkpoint} at step {state['global_step']} "
                              f"(epoch {state['epoch']}, batch {state['batches_in_epoch']})")
            warn_about_changed_recipe(options, output_dir, checkpoint, state.get(RECIPE_KEY), accelerator.num_processes,
                                      data.class_names, training_data_of(data))
            if not accelerator.is_main_process:
                state["skipped_videos"] = 0  # the checkpoint's count is every process's, restored on the main one
    state.setdefault("learning_rates", [])  # a checkpoint of an earlier version has none
    state[TRAINABLE_WEIGHTS_KEY] = trainable_weights
    state[FROZEN_CLIP_KEY] = frozen_clip
    state[OPTIMIZER_GROUPS_KEY] = optimizer_groups
    state[ARCHITECTURE_KEY] = architecture
    state[RECIPE_KEY] = recipe_of(options, accelerator.num_processes, data.class_names, training_data_of(data))
    losses = StepLosses(accelerator, state["losses"])
    write_training_options(options, accelerator, output_dir)  # only now: a refused resume leaves the old ones

    # A resumed run's position is the checkpoint it was restored from: at an epoch's last step the epoch-end save
    # would otherwise rewrite that checkpoint at once.
    saved_at = {"step": state["global_step"] if restored is not None else None}

    def checkpoint_now():
        if saved_at["step"] == state["global_step"]:
            return  # the step checkpoint of the last batch already holds this position
        saved_at["step"] = state["global_step"]
        losses.read()  # the checkpoint's state holds every step's loss so far
        # The main process writes the state: it records every process's skipped videos (a resume gives them back to
        # the main process alone).
        skipped = skipped_videos_of_every_process(accelerator, state["skipped_videos"])
        save_checkpoint(accelerator, output_dir, state["global_step"], {**state, "skipped_videos": skipped},
                        options.checkpoints_total_limit)

    epoch_batches = None if options.streaming else len(loader)  # each process's; a stream's end is not known ahead
    progress = tqdm(total=total_steps, initial=state["global_step"], desc="training",
                    disable=not accelerator.is_local_main_process)
    last_good_batch = None
    unwrapped_config = accelerator.unwrap_model(model).config
    rank_prefix = f"process {accelerator.process_index}: " if accelerator.num_processes > 1 else ""
    seen_indices: list = []
    record_seen_indices = testing_hooks.records_seen_indices()

    def finished() -> bool:
        return state["global_step"] >= total_steps or (not options.max_steps and state["epoch"] >= options.epochs)

    try:
        while not finished():
            dataset.set_epoch(state["epoch"])
            model.train()
            if options.streaming:  # skipped batches are read past, not decoded
                dataset.skip_batches(state["batches_in_epoch"])
                epoch_loader = batches_while_every_process_has_one(loader, accelerator)
            else:
                loader.set_epoch(state["epoch"])
                epoch_loader = accelerator.skip_first_batches(loader, state["batches_in_epoch"]) if state["batches_in_epoch"] else loader
            batches_this_pass = decoded_this_pass = 0
            skipped_at_start = state["batches_in_epoch"]
            for batch in epoch_loader:
                batch = batch_to_device(batch, accelerator.device)
                state["batches_in_epoch"] += 1
                batches_this_pass += 1
                if options.strict and batch["errors"]:
                    raise ValueError(f"{batch['errors'][0]} (run without --strict to skip it)")
                for error in batch["errors"]:  # from every process: each names its own
                    skipped_logger.warning("%sskipped an undecodable training video: %s", rank_prefix, error)
                state["skipped_videos"] += len(batch["errors"])
                decoded_this_pass += "pixel_values_videos" in batch
                batch, weight = batch_to_train_on(batch, last_good_batch, processor.video_processor,
                                                  dataset.processor_kwargs, unwrapped_config, accelerator.device)
                last_good_batch = batch
                if record_seen_indices and weight:
                    seen_indices.append([state["epoch"], batch["indices"].tolist()])
                with accelerator.accumulate(model):
                    # The micro-batch's place in this optimizer step: counted since the last step, not from the
                    # epoch's start, since a stream's epoch can end inside an accumulation group (two micro-batches
                    # of one step then drew the same mix).
                    videos, targets = mixer(batch["pixel_values_videos"], batch["labels"], state["global_step"],
                                            losses.micro_batches_in_step)
                    # Accelerate's FSDP2 path wraps no autocast around forward (DDP's does): the frozen CLIP, kept out
                    # of FSDP in float32, and the bf16 FSDP modules meet only under autocast.
                    with accelerator.autocast():
                        loss = model(text_embeds=text_embeds, pixel_values_videos=videos, labels=targets).loss * weight
                    accelerator.backward(loss * group_scale(state["batches_in_epoch"], epoch_batches,
                                                            options.gradient_accumulation_steps))
                    if accelerator.sync_gradients and options.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), options.max_grad_norm)
                    losses.add_micro_batch(loss, weight)
                    if accelerator.sync_gradients:
                        state["learning_rates"].append(scheduler.get_last_lr()[0])  # the one this step uses
                    optimizer.step()
                    if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                        scheduler.step()  # once per optimizer step, however many processes (`check_scheduler_stepping`)
                    optimizer.zero_grad(set_to_none=True)
                if not accelerator.sync_gradients:
                    continue
                state["global_step"] += 1
                progress.update(1)
                losses.end_step()
                if state["global_step"] % options.logging_steps == 0:
                    mean_loss = losses.read()[-1]
                    # The rate this step used (the schedule has already moved on to the next step's).
                    accelerator.log({"train/loss": mean_loss, "train/lr": state["learning_rates"][-1]},
                                    step=state["global_step"])
                    progress.set_postfix(loss=f"{mean_loss:.4f}")
                if options.checkpointing_steps and state["global_step"] % options.checkpointing_steps == 0:
                    checkpoint_now()
                testing_hooks.after_optimizer_step(state["global_step"])
                if state["global_step"] >= total_steps:
                    break
            else:  # the epoch ran to its end
                if not batches_this_pass and not skipped_at_start:  # would go on to the next epoch, forever
                    raise ValueError(empty_epoch_message(data, options, accelerator.num_processes))
                if batches_this_pass and not decoded_by_any_process(accelerator, decoded_this_pass):
                    # (Not "no optimizer step": with --gradient_accumulation_steps above an epoch's batches, an epoch
                    # of good videos makes none, its gradients carried into the next.)
                    raise ValueError(f"{data.source}: every video of an epoch failed to decode (the warnings above "
                                     "name them); check the files or the --data_root they are read from.")
                state["epoch"] += 1
                state["batches_in_epoch"] = 0
                if accelerator.sync_gradients:
                    checkpoint_now()
                # Otherwise the epoch ended between optimizer steps, its last gradients accumulated and carried into
                # the next epoch (a stream's end is not known ahead; Accelerate steps at a listed loader's end). No
                # checkpoint holds such gradients, so none is written here: the next one is at an optimizer step,
                # and a resume from the one before replays this epoch's end exactly.
                continue
            checkpoint_now()  # stopped by max_steps in the middle of an epoch
            break
    finally:
        progress.close()  # before any error line, so it does not share the bar's line
    losses.read()
    if record_seen_indices:
        (output_dir / f"seen_indices_rank{accelerator.process_index}.json").write_text(json.dumps(seen_indices))
    skipped = skipped_videos_of_every_process(accelerator, state["skipped_videos"])
    accelerator.print(f"finished at step {state['global_step']}; {skipped} undecodable training videos skipped")
    return {"global_step": state["global_step"], "skipped_videos": int(skipped), "train_losses": state["losses"],
            "train_learning_rates": state["learning_rates"],
            "class_names": data.class_names, "model": model}


def batch_to_train_on(batch: dict[str, Any], last_good_batch: dict[str, Any] | None, video_processor,
                      processor_kwargs: dict[str, Any], config, device) -> tuple[dict[str, Any], float]:
    """The batch the step trains on, and its weight in the update.

    A batch none of whose videos decoded gives a forward with no weight (the last good batch, or a blank clip): it
    keeps the processes' forwards and gradient all-reduce in step, and (one process too) Accelerate's count of the
    accumulation group's batches in step with the epoch's, which the schedule's steps and `group_scale` are counted
    over. Skipped, its group took the next batch, and an epoch made one optimizer step fewer than the schedule has.
    Colour augmentation the workers deferred is finished here, on the device, with their call settings
    (`--video_processor_overrides` may change normalisation).
    """
    if "pixel_values_videos" not in batch:
        return last_good_batch or {"labels": torch.zeros(1, dtype=torch.long, device=device),
                                   "pixel_values_videos": blank_clip(config, device)}, 0.0
    if "color_augmentation" in batch:
        batch["pixel_values_videos"] = video_processor.finish_views(
            batch["pixel_values_videos"], batch.pop("color_augmentation"), **processor_kwargs)
    return batch, 1.0


def recorded_architecture(config) -> dict[str, Any]:
    """The model config's architecture fields as a checkpoint's trainer state records them (JSON: tuples become
    lists), so a resume compares like with like."""
    return json.loads(json.dumps(config.architecture()))


def group_scale(batch_in_epoch: int, epoch_batches: int | None, gradient_accumulation_steps: int) -> float:
    """The factor that makes an epoch's short last accumulation group (k < gradient_accumulation_steps batches,
    which Accelerate steps at the loader's end) give the mean gradient of its batches: Accelerate divides every
    batch's loss by the full count, so the group's gradient came out k/count of it. 1 elsewhere, and for a stream."""
    if not epoch_batches or gradient_accumulation_steps == 1:
        return 1.0
    full_groups_end = epoch_batches // gradient_accumulation_steps * gradient_accumulation_steps
    if batch_in_epoch <= full_groups_end:
        return 1.0
    return gradient_accumulation_steps / (epoch_batches - full_groups_end)


def optimizer_settings(optimizer, scheduler) -> dict[str, Any]:
    """The hyperparameters this run's options give the optimizer's groups and the schedule's base rates."""
    keys = ("initial_lr", "weight_decay", "betas")
    return {"groups": [{key: group[key] for key in keys} for group in optimizer.param_groups],
            "base_lrs": list(scheduler.base_lrs)}


def keep_this_runs_optimizer_settings(optimizer, scheduler, settings: dict[str, Any]) -> None:
    """After a resume: this run's options over the checkpoint's. `accelerator.load_state` restores the optimizer's
    hyperparameters (rates, weight decay, betas) and the schedule's base rates with their state, so a resume with
    another --lr, --weight_decay, --adam_beta2 or rate scale went on with the old values while training_options.json
    and metrics.json recorded the new ones. The moments, the step count and the schedule's position stay restored;
    the rate of the resumed step is this run's schedule at that position."""
    schedule = getattr(scheduler, "scheduler", scheduler)  # Accelerate's wrapper holds the LambdaLR
    for group, values in zip(optimizer.param_groups, settings["groups"]):
        group.update(values)
    rates = [base * factor(schedule.last_epoch) for base, factor in zip(settings["base_lrs"], schedule.lr_lambdas)]
    for group, rate in zip(optimizer.param_groups, rates):
        group["lr"] = rate
    schedule.load_state_dict({**schedule.state_dict(), "base_lrs": settings["base_lrs"], "_last_lr": rates})


def decoded_by_any_process(accelerator: Accelerator, decoded_batches: int) -> bool:
    """Whether any process decoded a batch this epoch (a collective at the epoch's end, which every process reaches
    together): one process whose every video failed goes on with blank batches while the others train."""
    if accelerator.num_processes > 1:
        decoded_batches = int(accelerator.reduce(torch.tensor([decoded_batches], device=accelerator.device),
                                                 reduction="sum").item())
    return decoded_batches > 0


def empty_epoch_message(data, options: TrainingOptions, processes: int) -> str:
    """Why an epoch gave no batch at all (only a stream can: listed data is checked when it loads)."""
    shards = getattr(data, "num_shards", None)
    if processes > 1:
        return (f"{data.source}: an epoch gave a process no batch: {shards} shards over {processes} processes leave one "
                "with no samples; give at least as many shards as processes, each with samples.")
    return f"{data.source}: the stream gave no samples (split {options.train_split!r}); check its shards or columns."


def skipped_videos_of_every_process(accelerator: Accelerator, count: int) -> int:
    """The sum of every process's count (a collective)."""
    return int(accelerator.gather(torch.tensor([count], device=accelerator.device)).sum().item())


class StepLosses:
    """Each optimizer step's loss, the mean over processes, appended to `recorded` when read: at logging steps,
    checkpoints and the end of training. The host reads a GPU's loss only by waiting for the GPU to finish the
    step; reading every step would keep it from queuing step k+1 while the GPU runs step k (transformers' Trainer
    reads its loss at logging steps too)."""

    def __init__(self, accelerator: Accelerator, recorded: list[float]):
        self.accelerator = accelerator
        self.recorded = recorded
        self.pending: list[torch.Tensor] = []
        self.micro_batches: list[tuple[torch.Tensor, float]] = []

    def add_micro_batch(self, loss: torch.Tensor, weight: float = 1.0) -> None:
        """One forward's loss; with --gradient_accumulation_steps a step's loss is the mean of its micro-batches' (the
        last one's alone was recorded before). `weight` 0: a batch none of whose videos decoded, whose forward only
        keeps the processes in step; it does not count (a step of such batches only records 0)."""
        self.micro_batches.append((loss.detach().float(), weight))

    @property
    def micro_batches_in_step(self) -> int:
        """Micro-batches of the current optimizer step so far (0 for its first)."""
        return len(self.micro_batches)

    def end_step(self) -> None:
        if self.micro_batches:
            losses = torch.stack([loss for loss, _ in self.micro_batches])
            weights = torch.tensor([weight for _, weight in self.micro_batches], device=losses.device)
            self.pending.append((losses * weights).sum() / weights.sum().clamp(min=1.0))
            self.micro_batches.clear()

    def read(self) -> list[float]:
        """Every step's loss so far, rounded to 6 decimals: one reduction over processes and one read."""
        if self.pending:
            means = self.accelerator.reduce(torch.stack(self.pending), reduction="mean")
            self.recorded.extend(round(value, 6) for value in means.tolist())
            self.pending.clear()
        return self.recorded


def save_final_model(options: TrainingOptions, model: OmniCLIPModel, processor, folder: Path,
                     state_dict: dict | None = None) -> None:
    """`state_dict`: the full weights gathered from the training model (under FSDP its parameters are shards).

    Written under a temporary name and renamed when complete: a full disk or a kill never leaves a `model/` with a
    config and no weights.
    """

    base = model.config.base_clip_name_or_path  # a local folder's absolute path (`from_clip`), or a Hub id

    def write(partial: Path) -> None:
        if options.adapter_only:
            model.save_adapter(partial, base_clip_name_or_path=base, state_dict=state_dict)
        else:
            model.save_pretrained(partial, state_dict=state_dict)
        processor.save_pretrained(partial)

    write_folder_atomically(folder, write)


__all__ = [
    "evaluate_all",
    "load_eval_sets",
    "load_model_and_processor",
    "save_final_model",
    "scored_over_trained_classes",
    "train",
    "trained_classes_of",
    "training_data",
    "training_loader",
]
