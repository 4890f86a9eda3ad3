"""Train and evaluate OmniCLIP with Accelerate: supervised, few-shot and zero-shot, on a CPU, one GPU or many.

    accelerate launch -q --config_file examples/accelerate_configs/single.yaml examples/train.py \\
        --clip openai/clip-vit-base-patch16 --train_data hmdb51/train.csv --eval_data hmdb51/test.csv \\
        --labels_file labels/hmdb51.txt --output_dir runs/hmdb51
    accelerate launch --config_file examples/accelerate_configs/multi_gpu.yaml examples/train.py \\
        --config examples/configs/k400_supervised.yaml --clip ...     # 8 GPUs (its total_batch_size: 32 x 8)
    torchrun --nproc_per_node 2 examples/train.py ...        # two CPU processes (gloo)

The output folder holds `metrics.json` (top1/top5 on each eval set), `checkpoints/` (accelerate state, trainable
weights only) and `model/` (an OmniCLIP folder with its processor, loadable by `OmniCLIPModel.from_pretrained`
and the zero-shot pipeline). Every flag can also be set in a `--config` YAML file; see `docs/training.md`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed

from omniclip_hf.training.checkpoints import (
    check_output_dir_for_a_new_run,
    check_output_dir_for_an_evaluation,
    delete_earlier_checkpoints,
)
from omniclip_hf.training.distributed import (
    check_launch,
    check_total_batch_size,
    configure_deepspeed,
    cpu_only,
    describe_distributed_setup,
    full_state_dict,
)
from omniclip_hf.training.evaluation import write_metrics
from omniclip_hf.training.loop import check_inputs_exist, parse_training_options, run_script
from omniclip_hf.training.publishing import publish_model
from omniclip_hf.training.run import (
    evaluate_all,
    load_eval_sets,
    load_model_and_processor,
    save_final_model,
    train,
    trained_classes_of,
    training_data,
)
from omniclip_hf.training.recipe import write_training_options


logger = logging.getLogger("omniclip.train")


def main(argv: list[str] | None = None) -> None:
    options = parse_training_options(argv)
    check_inputs_exist(options)  # before Accelerate and the model: a missing path fails at once, in one line
    if not options.train_data:
        check_output_dir_for_an_evaluation(options.output_dir, options.overwrite_output_dir)
    output_dir = Path(options.output_dir)
    accelerator = Accelerator(
        cpu=cpu_only(options.cpu),  # without a GPU, what makes torchrun's processes a MULTI_CPU (gloo) group
        mixed_precision=options.mixed_precision,  # None: the launcher's (its config file's), as Accelerate reads it
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        log_with=options.report_to,
        project_dir=str(output_dir),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=options.seed),
        # The loop steps the schedule once per optimizer step (Accelerate's default steps it once per process).
        step_scheduler_with_optimizer=False,
    )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO if accelerator.is_main_process else logging.ERROR)
    check_launch(accelerator, options.gradient_accumulation_steps)
    check_total_batch_size(options, accelerator.num_processes)
    configure_deepspeed(accelerator, options)
    set_seed(options.seed)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)

    train_data = None
    if options.train_data:  # before the model: data that cannot load fails at once
        check_output_dir_for_a_new_run(output_dir, options.resume_from_checkpoint, options.overwrite_output_dir,
                                       delete=False)
        train_data = training_data(options, accelerator)
    # Before training: an eval set that cannot load (tar shards, a class the model is not trained on) fails now, not
    # after the last step.
    eval_sets = load_eval_sets(options, trained_classes_of(options, train_data))
    model, processor = load_model_and_processor(options)  # settles --num_frames (the --model's own, if left out)
    if not options.train_data:
        if options.overwrite_output_dir and accelerator.is_main_process:
            delete_earlier_checkpoints(output_dir)  # its checkpoints would stay beside this evaluation's results
        accelerator.wait_for_everyone()
        write_training_options(options, accelerator, output_dir)  # a training run writes them once it has resumed
    metrics: dict = {"options": vars(options), "distributed": describe_distributed_setup(accelerator)}
    trained_model = model
    if options.train_data:
        result = train(options, accelerator, model, processor, output_dir, train_data)
        trained_model = result.pop("model")
        metrics.update({key: value for key, value in result.items() if key != "class_names"})
        model = accelerator.unwrap_model(trained_model, keep_torch_compile=False)  # the OmniCLIPModel itself
        model.config.id2label = dict(enumerate(result["class_names"]))
        model.config.label2id = {name: index for index, name in enumerate(result["class_names"])}
    model.eval()
    # Under FSDP the trainable weights are sharded: every rank takes part in gathering the full state dict.
    state_dict = full_state_dict(accelerator, trained_model) if options.train_data else None
    if accelerator.is_main_process:
        save_final_model(options, model, processor, output_dir / "model", state_dict)
    accelerator.wait_for_everyone()

    if eval_sets:
        metrics.update(evaluate_all(options, accelerator, trained_model, processor, eval_sets, output_dir))
    if accelerator.is_main_process:
        metrics["trainable_parameters"] = model.num_trainable_parameters()
        write_metrics(metrics, output_dir / "metrics.json")
        summary = {key: metrics[key] for key in ("top1", "top5") if key in metrics}
        accelerator.print(f"metrics: {json.dumps(summary)} -> {output_dir / 'metrics.json'}")
        if options.push_to_hub or options.dry_run:
            dry_run = options.dry_run or not options.push_to_hub
            publish_model(output_dir / "model", options, metrics, dry_run=dry_run, dry_run_dir=output_dir / "hub_upload")
            if dry_run:
                accelerator.print(f"dry run: wrote what --push_to_hub would upload to {output_dir / 'hub_upload'}; "
                                  "nothing was uploaded")
    accelerator.end_training()


if __name__ == "__main__":
    run_script(main)
