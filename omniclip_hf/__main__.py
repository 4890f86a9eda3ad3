# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""`python -m omniclip_hf ...` runs the `omniclip` command line."""

import sys

from .cli import main

sys.exit(main())
