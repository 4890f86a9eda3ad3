#!/usr/bin/env python
# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Pretrain a tiny CLIP here, on the CPU, as the stand-in for pretrained CLIP (docs/motion_benchmark.md: its times).

    python examples/pretrain_tiny_clip.py --output_dir demo_output/tiny_clip

Contrastive image-caption training on synthetic single frames drawn with the motion set's renderer ("a small red
triangle at the top left"), with the real CLIP tokenizer. Saves an ordinary CLIP folder (`CLIPModel`,
`CLIPTokenizer`, `CLIPImageProcessor`) that OmniCLIP loads with `from_clip` and keeps frozen, plus
`pretrain_metrics.json` with zero-shot accuracies on held-out (colour, shape) combinations. The logic lives in
`omniclip_hf/motion_benchmark/tiny_clip.py`; `main(argv)` here and there is the same function. See
docs/motion_benchmark.md.
"""

import sys

from omniclip_hf.motion_benchmark.tiny_clip import main

if __name__ == "__main__":
    try:
        main()
    except ValueError as error:  # bad flag values, an --output_dir it must not write: one clear line
        sys.exit(f"error: {error}")
    except OSError as error:  # a folder it cannot create or write (permissions, a full disk): one line, not a traceback
        sys.exit(f"error: cannot save the tiny CLIP: {error}")
