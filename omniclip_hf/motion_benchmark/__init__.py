# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""The synthetic motion benchmark behind `make demo` (docs/motion_benchmark.md).

- `motion_data`: a video set where only the order of frames tells the classes apart;
- `tiny_clip`: a tiny CLIP stand-in pretrained here, since no pretrained CLIP can be downloaded offline;
- `runner`: the demo's recipe, the frame-average baseline and the scores.
"""
