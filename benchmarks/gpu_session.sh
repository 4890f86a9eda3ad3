#!/usr/bin/env bash
# The prepared device run (issue 14): one call, parts 1, 3 and 2 in that order within a budget of 540 s (under the
# device's 600-s call limit): a command the budget cannot fit is skipped with a line saying so, and what was
# measured before stays in $OUT. Not a test.
#
#   1. bench_model.py --device cuda --compile: bare CLIP, X-CLIP and OmniCLIP at ViT-B/16 shapes, inference and
#      training clips/s, peak memory, eager and torch.compile, with and without gradient checkpointing, and with
#      CLIP's own MLP modules instead of the fused QuickGELU ones (`omniclip+clip-mlp`); then the
#      PTA's temporal attention alone per SDPA kernel (flash, memory-efficient, cuDNN, math) and one block's pieces
#      (frozen layer, the adapter's LayerNorm/Down/q-k/attention/Up, the residual add), each with its share of
#      OmniCLIP's inference time (the inference goal: >= 0.75x bare CLIP, 0.64x on 2026-11-30); the same block's
#      pieces in training, forward + backward, with the PTA attention per SDPA kernel and written out; training FLOPs per
#      clip, OmniCLIP against X-CLIP (the training ratio at equal kernel efficiency); then bench_frozen_mlp.py, one
#      frozen MLP: CLIP's own against the fused one with the 1.702 in the GEMMs and in the weights;
#   2. bench_input_pipeline.py with 4 to 14 DataLoader workers on the shared clips, decoding the videos and reading
#      frame folders extracted from them (--frames), and with the colour augmentation left to the GPU
#      (--color_on_device: the workers' rate, and the GPU's time to finish a batch); then bench_color_augmentation.py,
#      the GPU's time to colour a batch of 32 at once against clip by clip;
#   3. a few training steps of examples/train.py through `accelerate launch` with the shipped FSDP and DDP
#      configs (one process; colour augmentation on the GPU, as `--color_augmentation_on auto` puts it there), on a
#      ViT-B/16-shaped random CLIP and a small motion set written there; what the checkpoints hold (FSDP and DDP
#      alike: only the trainable weights, no `clip.` key); then a resume from the step-6 checkpoint to step 9 under
#      the same config;
#   4. only when asked (GPU_SESSION_PARTS="4"): 20 steps of examples/train.py compiled (--dynamo_backend inductor);
#   5. only when asked (GPU_SESSION_PARTS="5"): profile_step.py, where an eager OmniCLIP inference forward, an eager
#      OmniCLIP training step and an eager X-CLIP training step spend their time, operator by operator;
#   6. only when asked (GPU_SESSION_PARTS="6"): part 3's steps, checkpoint check and resume with the shipped
#      DeepSpeed ZeRO-2 config (one process), which has never run (deepspeed's wheels must be in .whl/).
# Part 1 times X-CLIP under torch.compile last, so a slow compile there costs only that row. GPU_SESSION_PARTS picks
# the parts and their order (default "1 3 2": the model's numbers, then FSDP/DDP training, then the input
# pipeline); GPU_SESSION_BUDGET_S the budget. With device time left, a second call with GPU_SESSION_PARTS="2 6 5 4".
#
# The GPU image has torch and transformers but neither PyAV nor datasets: they travel as wheels in .whl/, and
# the shared clips in .gpu_carry/videos (both ignored by git). Prepare them here, then call the device tool:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av datasets dill multiprocess \
#       hjson py-cpuinfo msgpack einops ninja pydantic pydantic-core annotated-types typing-inspection
#   .venv/bin/pip wheel --no-deps --no-build-isolation -w .whl deepspeed   # part 6 (DeepSpeed ships no wheel)
#   mkdir -p .gpu_carry && cp -r ../shared/videos .gpu_carry/
#   device run: bash benchmarks/gpu_session.sh   (carry: .whl .gpu_carry)
#
# Rehearsal on a CPU, to catch script errors before device time is spent (tiny CLIP, 2 steps, no bf16):
#   GPU_SESSION_DRY_RUN=1 OUT=/tmp/gpu_session_dry WORK=/tmp/gpu_session_dry_work bash benchmarks/gpu_session.sh
# and on the GPU image's versions (what 2026-11-30 reported), from a venv of its own put first on PATH:
#   python3 -m venv /tmp/t211 && /tmp/t211/bin/pip install torch==2.11.0 torchvision==0.26.0 transformers==5.17.0 \
#       accelerate==1.15.0 datasets av safetensors matplotlib pyyaml
#   PATH=/tmp/t211/bin:$PATH GPU_SESSION_DRY_RUN=1 OUT=/tmp/gpu_session_dry WORK=/tmp/gpu_session_dry_work bash ...
set -u
OUT=${OUT:-gpu_session_output}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
WORK=${WORK:-/tmp/omniclip_gpu_session}
mkdir -p "$WORK"
# The device run's shapes and settings; GPU_SESSION_DRY_RUN=1 shrinks them for the CPU rehearsal.
CLIP_SHAPE=b16 BATCH=32 PRECISION=bf16 WORKERS=12 STEPS=6 RESUME_STEPS=9 EVERY=3 VIDEOS=.gpu_carry/videos
DYNAMO_BACKEND=inductor COMPILED_STEPS=20
COLOURS=auto  # part 3's --color_augmentation_on: the GPU there; the rehearsal forces the same path on the CPU
BENCH_MODEL_ARGS="--device cuda --compile"
FROZEN_MLP_ARGS="--device cuda --dtype bf16 --batch_size 32"
PIPELINE_ARGS="--clips 64 --workers 4 8 14 --frames --color_on_device"
PROFILE_ARGS="--device cuda"
COLOUR_ARGS=""
if [ -n "${GPU_SESSION_DRY_RUN:-}" ]; then
    CLIP_SHAPE=tiny BATCH=4 PRECISION=no WORKERS=0 STEPS=2 RESUME_STEPS=3 EVERY=1 VIDEOS=${VIDEOS_DIR:-../shared/videos}
    DYNAMO_BACKEND=aot_eager COMPILED_STEPS=3  # no C++ compiler needed
    COLOURS=device
    BENCH_MODEL_ARGS="--pta_tables_only --batch_size 1 --repeats 1"
    FROZEN_MLP_ARGS="--repeats 3"
    PIPELINE_ARGS="--clips 4 --workers 1 --frames --color_on_device"
    PROFILE_ARGS="--batch_size 1 --num_classes 8 --rows 8"
    COLOUR_ARGS="--repeats 1"
fi

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi (a CPU rehearsal?)"
    python3 -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'cpus', __import__('os').cpu_count())"
} 2>&1 | tee "$OUT/environment.txt"

# Each part's header says when it started, and the end says the total: what the next device session plans by.
trap 'echo "== finished after ${SECONDS} s"' EXIT
PARTS=${GPU_SESSION_PARTS:-1 3 2}  # e.g. GPU_SESSION_PARTS="2 5 4" in a second call
BUDGET=${GPU_SESSION_BUDGET_S:-540}  # seconds for the whole call: under the device's 600-s limit, room for the tail

# `within_budget LIMIT command...`: the command under `timeout`, at most LIMIT seconds and what the budget has left;
# skipped, with a line saying so, when under 20 s are left (a kill at the call limit would lose the lines after it).
within_budget() {
    local limit=$1 left=$((BUDGET - SECONDS))
    shift
    if [ "$left" -lt 20 ]; then
        echo "skipped at ${SECONDS} s (under 20 s of the ${BUDGET}-s budget left): ${*:1:3} ..."
        return 124
    fi
    [ "$left" -lt "$limit" ] && limit=$left
    timeout "$limit" "$@"
}

part_1() {
echo "== 1. bench_model.py $BENCH_MODEL_ARGS  (at ${SECONDS} s)"
within_budget 330 python3 benchmarks/bench_model.py $BENCH_MODEL_ARGS 2>&1 | tee "$OUT/bench_model.txt"
echo "== 1b. bench_frozen_mlp.py $FROZEN_MLP_ARGS  (at ${SECONDS} s)"
within_budget 60 python3 benchmarks/bench_frozen_mlp.py $FROZEN_MLP_ARGS 2>&1 | tee "$OUT/bench_frozen_mlp.txt"
}

part_2() {
echo "== 2. bench_input_pipeline.py  (at ${SECONDS} s)"
within_budget 200 python3 benchmarks/bench_input_pipeline.py --videos "$VIDEOS" $PIPELINE_ARGS \
    --gpu_clips_per_second 413 397 265 2>&1 | tee "$OUT/bench_input_pipeline.txt"
echo "== 2b. bench_color_augmentation.py $COLOUR_ARGS  (at ${SECONDS} s)"
within_budget 90 python3 benchmarks/bench_color_augmentation.py $COLOUR_ARGS 2>&1 | tee "$OUT/bench_color_augmentation.txt"
}

part_5() {
echo "== 5. profile_step.py $PROFILE_ARGS  (at ${SECONDS} s)"
within_budget 150 python3 benchmarks/profile_step.py $PROFILE_ARGS 2>&1 | tee "$OUT/profile_step.txt"
}

# Parts 3 and 4 train on a CLIP and a motion set written once, by the first of them to run in the call.
train_setup() {
[ -f "$WORK/setup_done" ] && return 0
echo "== 3/4. a ViT-B/16-shaped random CLIP and a small motion set for examples/train.py  (at ${SECONDS} s)"
within_budget 60 python3 - "$WORK" "$CLIP_SHAPE" <<'EOF' 2>&1 | tee "$OUT/train_setup.txt"
import sys
from pathlib import Path

from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from omniclip_hf import default_tokenizer_path
from omniclip_hf.motion_benchmark.motion_data import write_motion_dataset

work, shape = Path(sys.argv[1]), sys.argv[2]
if shape == "b16":
    config = CLIPConfig(
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=224, patch_size=16),
        text_config=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8),
        projection_dim=512)
else:  # the CPU rehearsal
    config = CLIPConfig(
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2),
        projection_dim=32)
CLIPModel(config).save_pretrained(work / "clip")
CLIPTokenizer.from_pretrained(default_tokenizer_path()).save_pretrained(work / "clip")
write_motion_dataset(work / "motion", num_train_per_class=32, num_test_per_class=4, size=64)
print("wrote", work / "clip", f"({shape})", "and", work / "motion")
EOF
[ "${PIPESTATUS[0]}" = 0 ] && touch "$WORK/setup_done"
}

# `train_and_resume CONFIG...`: for each shipped accelerate config, a few steps of examples/train.py, what its
# checkpoints hold, and a resume from the step-$STEPS checkpoint under the same config. Each launch gets
# at most TRAIN_LIMIT_S seconds (100 unless set), and what the budget has left.
train_and_resume() {
for name in "$@"; do
    rm -rf "$WORK/run_$name"
    within_budget "${TRAIN_LIMIT_S:-100}" accelerate launch --config_file "examples/accelerate_configs/$name.yaml" --num_processes 1 \
        examples/train.py --clip "$WORK/clip" --train_data "$WORK/motion/train" --eval_data "$WORK/motion/test" \
        --labels_file "$WORK/motion/labels.txt" --output_dir "$WORK/run_$name" --max_steps "$STEPS" \
        --batch_size "$BATCH" --mixed_precision "$PRECISION" --num_workers "$WORKERS" --checkpointing_steps "$EVERY" \
        --eval_num_clips 1 --eval_num_crops 1 --warmup_epochs 0 --color_augmentation_on "$COLOURS" \
        2>&1 | tr '\r' '\n' | tee "$OUT/train_$name.txt" | grep -v "^training: *[0-9]*%.*it/s\]$" | tail -25
    echo "exit status $name: ${PIPESTATUS[0]}"
    ls "$WORK/run_$name" "$WORK/run_$name/checkpoints" 2>&1 | tee -a "$OUT/train_$name.txt"
    python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print({k: m.get(k) for k in ('global_step','top1','train_losses','distributed')})" \
        "$WORK/run_$name/metrics.json" 2>&1 | tee -a "$OUT/train_$name.txt"
    # What each checkpoint holds: only the trainable weights (FSDP: pytorch_model_fsdp.bin; DDP: model.safetensors;
    # DeepSpeed: pytorch_model/mp_rank_00_model_states.pt).
    python3 benchmarks/checkpoint_contents.py "$WORK/clip" "$WORK/run_$name/checkpoints"/step_* 2>&1 \
        | tee -a "$OUT/train_$name.txt"
    # Resume under the same config from the step-$STEPS checkpoint to step $RESUME_STEPS (FSDP: load_fsdp_model;
    # DeepSpeed: its engine's load_checkpoint).
    within_budget "${TRAIN_LIMIT_S:-100}" accelerate launch --config_file "examples/accelerate_configs/$name.yaml" --num_processes 1 \
        examples/train.py --clip "$WORK/clip" --train_data "$WORK/motion/train" \
        --labels_file "$WORK/motion/labels.txt" --output_dir "$WORK/run_$name" --max_steps "$RESUME_STEPS" \
        --batch_size "$BATCH" --mixed_precision "$PRECISION" --num_workers "$WORKERS" --checkpointing_steps "$EVERY" \
        --warmup_epochs 0 --resume_from_checkpoint latest --color_augmentation_on "$COLOURS" \
        2>&1 | tr '\r' '\n' | grep -v "^training: *[0-9]*%.*it/s\]$" | tee "$OUT/train_${name}_resume.txt" | tail -8
    echo "exit status $name resume: ${PIPESTATUS[0]}"
    python3 benchmarks/checkpoint_contents.py "$WORK/clip" "$WORK/run_$name/checkpoints"/step_* 2>&1 | tail -1 \
        | tee -a "$OUT/train_${name}_resume.txt"
done
}

part_3() {
train_setup
echo "== 3. accelerate launch examples/train.py, FSDP and DDP  (at ${SECONDS} s)"
train_and_resume ${GPU_SESSION_CONFIGS:-fsdp multi_gpu}
}

# 6 (not in the default run; GPU_SESSION_PARTS="6"): the shipped DeepSpeed ZeRO-2 config, as part 3 runs FSDP and
# DDP; never run on a GPU yet. Needs deepspeed's wheels in .whl/ (see the header). Accelerate places DeepSpeed on GPUs
# only: the CPU rehearsal runs it on DeepSpeed's CPU accelerator through the tests' hook (one process), as
# tests/test_training_deepspeed.py does.
part_6() {
echo "== 6. accelerate launch examples/train.py, DeepSpeed ZeRO-2  (at ${SECONDS} s)"
if ! python3 -c "import deepspeed" >/dev/null 2>&1; then
    echo "skipped: deepspeed does not import here (carry its wheels in .whl/, as the header says)"
    return 0
fi
train_setup
# 150 s a launch, not 100: importing deepspeed and building its engine come first (on this CPU, with two other
# processes busy, the first launch passed 100 s before its first step).
if [ -n "${GPU_SESSION_DRY_RUN:-}" ]; then
    OMNICLIP_TRAINING_TEST_HOOKS='{"deepspeed_on_cpu": true}' TRAIN_LIMIT_S=150 train_and_resume deepspeed_zero2
else
    TRAIN_LIMIT_S=150 train_and_resume deepspeed_zero2
fi
}

# 4 (not in the default run; GPU_SESSION_PARTS="4" when time is left): examples/train.py compiled through
# `accelerate launch --dynamo_backend`, DDP config, one process; its metrics (distributed.torch_compile), the tail of
# its progress bar (it/s), and whether model/ loads.
part_4() {
    train_setup
    echo "== 4. accelerate launch --dynamo_backend $DYNAMO_BACKEND examples/train.py  (at ${SECONDS} s)"
    rm -rf "$WORK/run_compiled"
    within_budget 300 accelerate launch --config_file examples/accelerate_configs/multi_gpu.yaml --num_processes 1 \
        --dynamo_backend "$DYNAMO_BACKEND" examples/train.py --clip "$WORK/clip" --train_data "$WORK/motion/train" \
        --labels_file "$WORK/motion/labels.txt" --output_dir "$WORK/run_compiled" --max_steps "$COMPILED_STEPS" \
        --batch_size "$BATCH" --mixed_precision "$PRECISION" --num_workers "$WORKERS" --warmup_epochs 0 \
        2>&1 | tr '\r' '\n' | tee "$OUT/train_compiled.txt" | grep -v "^training: *[0-9]*%.*it/s\]$" | tail -8
    echo "exit status compiled: ${PIPESTATUS[0]}"
    grep "^training: *100%" "$OUT/train_compiled.txt" | tail -1
    python3 -c "
import json, sys
from omniclip_hf import OmniCLIPModel
m = json.load(open(sys.argv[1] + '/metrics.json'))
print({k: m.get(k) for k in ('global_step', 'train_losses', 'distributed')})
OmniCLIPModel.from_pretrained(sys.argv[1] + '/model')
print('model/ loads')" "$WORK/run_compiled" 2>&1 | tail -3 | tee -a "$OUT/train_compiled.txt"
}

rm -f "$WORK/setup_done"  # a fresh CLIP and motion set for this call's training runs
for part in $PARTS; do
    case "$part" in
        1|2|3|4|5|6) "part_$part" ;;
        *) echo "unknown part $part in GPU_SESSION_PARTS (the parts are 1 to 6)" ;;
    esac
done
