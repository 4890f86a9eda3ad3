# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""The training side of omniclip-hf, used by `examples/train.py`, `examples/evaluate.py` and `examples/push_to_hub.py`.

- `run`: the training run of `examples/train.py` (data, loop, evaluation, final save);
- `data`: video classification data sets (class folders, annotation files, Hub datasets), few-shot subsets, the
  clip dataset and its collator;
- `loop`: options, optimizer, schedule, mixing;
- `checkpoints`: checkpoints and output folders never written half, resumption with fall-back;
- `loader`: DataLoader settings from the input-pipeline measurement;
- `streaming`: training from WebDataset tar shards or a streamed Hub dataset;
- `distributed`: the run's distributed set-up, for `metrics.json`;
- `testing_hooks`: fault injection for the tests, through an environment variable;
- `evaluation`: multi-view prediction and metrics;
- `publishing`: model cards and the Hub upload.
"""
