#!/usr/bin/env bash
# The prepared device run (issue 14): one call, about 7 minutes on one H200. Not a test.
#
#   1. bench_model.py --device cuda --compile: bare CLIP, X-CLIP and OmniCLIP at ViT-B/16 shapes, inference and
#      training clips/s, peak memory, eager and torch.compile, with and without gradient checkpointing;
#   2. bench_input_pipeline.py with 1 to 14 DataLoader workers on the shared clips;
#   3. a few training steps of examples/train.py through `accelerate launch` with the shipped FSDP and DDP
#      configs (one process), on a ViT-B/16-shaped random CLIP and a small motion set written there.
#
# The GPU image has torch and transformers but neither PyAV nor datasets: they travel as wheels in .whl/, and
# the shared clips in .gpu_carry/videos (both ignored by git). Prepare them here, then call the device tool:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av datasets dill multiprocess
#   mkdir -p .gpu_carry && cp -r ../shared/videos .gpu_carry/
#   device run: bash benchmarks/gpu_session.sh   (carry: .whl .gpu_carry)
set -u
OUT=${OUT:-gpu_session_output}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
WORK=/tmp/omniclip_gpu_session
mkdir -p "$WORK"

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'cpus', __import__('os').cpu_count())"
} 2>&1 | tee "$OUT/environment.txt"

PARTS=${GPU_SESSION_PARTS:-1 2 3}  # e.g. GPU_SESSION_PARTS="2 3" to rerun the last two
if [[ " $PARTS " == *" 1 "* ]]; then
echo "== 1. bench_model.py --device cuda --compile"
timeout 240 python3 benchmarks/bench_model.py --device cuda --compile 2>&1 | tee "$OUT/bench_model.txt"
fi

if [[ " $PARTS " == *" 2 "* ]]; then
echo "== 2. bench_input_pipeline.py"
timeout 100 python3 benchmarks/bench_input_pipeline.py --videos .gpu_carry/videos --clips 64 --workers 4 8 14 \
    --gpu_clips_per_second 413 397 265 2>&1 | tee "$OUT/bench_input_pipeline.txt"
fi

[[ " $PARTS " == *" 3 "* ]] || exit 0
echo "== 3. accelerate launch examples/train.py, FSDP and DDP"
timeout 60 python3 - "$WORK" <<'EOF' 2>&1 | tee "$OUT/train_setup.txt"
import sys
from pathlib import Path

from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from omniclip_hf import default_tokenizer_path
from omniclip_hf.motion_benchmark.motion_data import write_motion_dataset

work = Path(sys.argv[1])
config = CLIPConfig(
    vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                       image_size=224, patch_size=16),
    text_config=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8),
    projection_dim=512)
CLIPModel(config).save_pretrained(work / "clip_b16")
CLIPTokenizer.from_pretrained(default_tokenizer_path()).save_pretrained(work / "clip_b16")
write_motion_dataset(work / "motion", num_train_per_class=32, num_test_per_class=4, size=64)
print("wrote", work / "clip_b16", "and", work / "motion")
EOF
for name in ${GPU_SESSION_CONFIGS:-fsdp multi_gpu}; do
    timeout 100 accelerate launch --config_file "examples/accelerate_configs/$name.yaml" --num_processes 1 \
        examples/train.py --clip "$WORK/clip_b16" --train_data "$WORK/motion/train" --eval_data "$WORK/motion/test" \
        --labels_file "$WORK/motion/labels.txt" --output_dir "$WORK/run_$name" --max_steps 6 --batch_size 32 \
        --mixed_precision bf16 --num_workers 12 --checkpointing_steps 3 --eval_num_clips 1 --eval_num_crops 1 \
        --warmup_epochs 0 2>&1 | tr '\r' '\n' | tee "$OUT/train_$name.txt" | grep -v "^training: *[0-9]*%.*it/s\]$" | tail -25
    echo "exit status $name: ${PIPESTATUS[0]}"
    ls "$WORK/run_$name" "$WORK/run_$name/checkpoints" 2>&1 | tee -a "$OUT/train_$name.txt"
    python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print({k: m.get(k) for k in ('global_step','top1','train_losses')})" \
        "$WORK/run_$name/metrics.json" 2>&1 | tee -a "$OUT/train_$name.txt"
    # Resume under the same config: 6 -> 9 steps from checkpoints/step_00000006 (FSDP: accelerate's load_fsdp_model).
    timeout 100 accelerate launch --config_file "examples/accelerate_configs/$name.yaml" --num_processes 1 \
        examples/train.py --clip "$WORK/clip_b16" --train_data "$WORK/motion/train" \
        --labels_file "$WORK/motion/labels.txt" --output_dir "$WORK/run_$name" --max_steps 9 --batch_size 32 \
        --mixed_precision bf16 --num_workers 12 --checkpointing_steps 3 --warmup_epochs 0 \
        --resume_from_checkpoint latest 2>&1 | tr '\r' '\n' | grep -v "^training: *[0-9]*%.*it/s\]$" \
        | tee "$OUT/train_${name}_resume.txt" | tail -8
    echo "exit status $name resume: ${PIPESTATUS[0]}"
done
