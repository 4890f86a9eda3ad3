"""Each micro-batch of an accumulated optimizer step draws its own mix, also where a stream's epoch ends inside the
step: the draw's micro-batch index counted from the epoch's start, so the step's next micro-batches repeated the
first ones' mixup weight and cutmix box."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import REPO_ROOT
from .test_training_streaming import shards  # noqa: F401 (fixture)

RECORDER = '''
import json, os
from omniclip_hf.training import loop

_call = loop.VideoMixer.__call__


def recording_call(self, videos, labels, step, micro_batch=0):
    with open(os.environ["MIX_DRAWS"], "a") as handle:
        handle.write(json.dumps([step, micro_batch]) + "\\n")
    return _call(self, videos, labels, step, micro_batch)


loop.VideoMixer.__call__ = recording_call
'''


def test_every_micro_batch_of_a_step_draws_its_own_mix_across_a_streams_epoch_end(tiny_clip_dir, shards, tmp_path):  # noqa: F811
    (tmp_path / "sitecustomize.py").write_text(RECORDER)
    draws = tmp_path / "draws.jsonl"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
                   "MIX_DRAWS": str(draws), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # 4 batches an epoch, 3 micro-batches a step: step 2 takes the first epoch's last batch and the next's first two.
    command = [sys.executable, str(REPO_ROOT / "examples" / "train.py"), "--clip", str(tiny_clip_dir),
               "--streaming", "--train_data", str(shards),
               "--labels_file", str(shards.parent / f"{shards.name}-labels.txt"), "--output_dir", str(tmp_path / "run"),
               "--num_frames", "2", "--batch_size", "2", "--num_workers", "0", "--max_steps", "3",
               "--gradient_accumulation_steps", "3", "--warmup_steps", "0", "--lr", "1e-2"]
    result = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = [tuple(json.loads(line)) for line in draws.read_text().splitlines()]
    assert recorded == [(step, micro) for step in range(3) for micro in range(3)]
