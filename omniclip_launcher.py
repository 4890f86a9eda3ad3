# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""The `omniclip` console script: reads the command line before the `omniclip_hf` package initialises.

`import omniclip_hf` imports torch and transformers (seconds) because it registers the model, processors and the
zero-shot pipeline with transformers' Auto classes, and a package's `__init__` runs before any of its modules. A
console script inside the package would pay that before it could answer `--help` or reject a typo. So this script
creates the package module without running its `__init__`, lets `omniclip_hf.cli` (which imports nothing heavy at
module level) parse the arguments, and only then runs the package's `__init__`, exactly as `import omniclip_hf`
would, before the command itself.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Sequence

PACKAGE = "omniclip_hf"


def main(argv: Sequence[str] | None = None) -> int:
    """Parses `argv` (default: `sys.argv[1:]`), then initialises `omniclip_hf` and runs the command."""
    if PACKAGE in sys.modules:  # imported already (an in-process caller): nothing left to defer
        from omniclip_hf import cli

        return cli.main(argv)
    spec = importlib.util.find_spec(PACKAGE)
    package = importlib.util.module_from_spec(spec)  # has __path__, so submodules import; __init__ not run yet
    sys.modules[PACKAGE] = package
    try:
        from omniclip_hf import cli

        args = cli.parse_arguments(argv)  # `--help` and usage errors exit here
    except BaseException:
        # Leave no package without its __init__ behind for anything that runs after us in this process.
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        raise
    spec.loader.exec_module(package)
    return cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
