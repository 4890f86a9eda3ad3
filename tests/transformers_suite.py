"""Transformers' own common model tests (`ModelTesterMixin`, `ConfigTester`), at the installed transformers version.

Transformers publishes its test suite's top-level files in the source distribution on PyPI (not in the wheel).
`python -m tests.transformers_suite` (run by `make test`) downloads that sdist with pip, for exactly the installed
version, and extracts the two files the common tests need into a git-ignored folder:

    .transformers-tests/<version>/test_modeling_common.py
    .transformers-tests/<version>/test_configuration_common.py

`load_suite()` imports them as a package. Three of their imports are test modules the sdist does not ship
(`tests/exporters`, `tests/generation`, `tests/utils`); they are replaced by the stand-ins below, which say what
each one drops. Nothing from transformers' test suite is kept in this repository.

The folder can be moved with `OMNICLIP_TRANSFORMERS_TESTS=/path/to/folder` (e.g. a `tests/` folder of a
transformers checkout at the installed version's tag).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tarfile
import tempfile
import types
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SUITE_FILES = ("test_modeling_common.py", "test_configuration_common.py")
PACKAGE = "transformers_common_suite"


def installed_version() -> str:
    import transformers

    return transformers.__version__


def suite_dir() -> Path:
    override = os.environ.get("OMNICLIP_TRANSFORMERS_TESTS")
    return Path(override) if override else REPO_ROOT / ".transformers-tests" / installed_version()


def missing_reason() -> str | None:
    """None when the suite's files are in place, else one line saying what is missing and how to get it."""
    folder = suite_dir()
    missing = [name for name in SUITE_FILES if not (folder / name).is_file()]
    if not missing:
        return None
    return (
        f"transformers {installed_version()}'s common tests are not in {folder} (missing {', '.join(missing)}): "
        "run `python -m tests.transformers_suite` (or `make test`) once with access to PyPI."
    )


def download(folder: Path) -> None:
    """Extracts the suite's files from the sdist of the installed transformers version (pip, PyPI or a mirror)."""
    version = installed_version()
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            sys.executable, "-m", "pip", "download", f"transformers=={version}",
            "--no-binary", ":all:", "--no-deps", "--quiet", "--dest", scratch,
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        archives = list(Path(scratch).glob("transformers-*.tar.gz"))
        if result.returncode != 0 or not archives:
            last_line = (result.stderr.strip().splitlines() or ["no sdist downloaded"])[-1]
            raise RuntimeError(f"pip could not download the transformers {version} sdist: {last_line}")
        with tarfile.open(archives[0]) as archive:
            members = {Path(member.name).name: member for member in archive.getmembers()
                       if member.isfile() and Path(member.name).parent.name == "tests"}
            missing = [name for name in SUITE_FILES if name not in members]
            if missing:
                raise RuntimeError(f"the transformers {version} sdist has no tests/{', tests/'.join(missing)}")
            folder.mkdir(parents=True, exist_ok=True)
            for name in SUITE_FILES:
                (folder / name).write_bytes(archive.extractfile(members[name]).read())
    # test_configuration_common.py reads its own folder as a package (`direct_transformers_import`).
    (folder / "__init__.py").write_text("")


# ----------------------------------------------------------------------------------------------------------------
# Stand-ins for the suite's imports that the sdist does not ship
# ----------------------------------------------------------------------------------------------------------------
class ExportTesterMixin:
    """Stand-in for `tests/exporters/test_export.py`'s mixin: the export tests (torch.export, ONNX, ExecuTorch, ...)
    are not in the sdist, so they do not run here, for OmniCLIP nor for CLIP."""


class GenerationTesterMixin:
    """Stand-in for `tests/generation/test_utils.py`'s mixin: only checked with `issubclass`, and neither CLIP nor
    OmniCLIP generates text, so no test class inherits it."""


# `tests/utils/test_configuration_utils.py`'s `config_common_kwargs` is read only by `check_config_arguments_init`,
# which returns before reading it for configs with sub-configs (CLIPConfig, OmniCLIPConfig).
CONFIG_COMMON_KWARGS: dict = {}


def _stand_in(name: str, **attributes) -> None:
    module = types.ModuleType(f"{PACKAGE}.{name}")
    module.__dict__.update(attributes)
    sys.modules[module.__name__] = module


def load_suite() -> types.SimpleNamespace:
    """Imports the suite's modules (call `missing_reason()` first)."""
    import pytest

    if PACKAGE not in sys.modules:
        package = types.ModuleType(PACKAGE)
        package.__path__ = [str(suite_dir())]
        sys.modules[PACKAGE] = package
        for folder in ("exporters", "generation", "utils"):
            _stand_in(folder, __path__=[])
        _stand_in("exporters.test_export", ExportTesterMixin=ExportTesterMixin)
        _stand_in("generation.test_utils", GenerationTesterMixin=GenerationTesterMixin)
        _stand_in("utils.test_configuration_utils", config_common_kwargs=CONFIG_COMMON_KWARGS)
    with warnings.catch_warnings():
        # The suite marks tests with marks that transformers' own conftest registers (flash_attn_test, ...).
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        modeling = importlib.import_module(f"{PACKAGE}.test_modeling_common")
        configuration = importlib.import_module(f"{PACKAGE}.test_configuration_common")
    return types.SimpleNamespace(modeling=modeling, configuration=configuration)


def main() -> int:
    folder = suite_dir()
    if missing_reason() is None:
        print(f"transformers {installed_version()}'s common tests are in {folder}")
        return 0
    try:
        download(folder)
    except (RuntimeError, OSError, tarfile.TarError) as error:
        # Not fatal for `make test`: the common tests then skip, naming this command.
        print(f"note: {error}; tests/test_transformers_common.py will skip", file=sys.stderr)
        return 0
    print(f"extracted transformers {installed_version()}'s common tests into {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
