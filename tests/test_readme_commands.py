"""The README's and docs/data.md's shell commands work verbatim in a fresh shell after `make install`."""

from __future__ import annotations

import functools
import re
import shlex
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, run_script_in_process

DOCUMENTS = [REPO_ROOT / "README.md", REPO_ROOT / "docs" / "data.md"]
# Programs that live in .venv/bin only: in a fresh shell, without `source .venv/bin/activate`, a bare name is the
# system's (or nothing).
VENV_PROGRAMS = ("python", "python3", "omniclip", "accelerate", "pytest", "torchrun")


def shell_commands(markdown: str) -> list[str]:
    """Commands of ```bash blocks (continuation lines joined) and of inline code that starts with a program."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    prose = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL).replace("\n", " ")
    for span in re.findall(r"`([^`]+)`", prose):
        if re.match(rf"(\.venv/bin/)?({'|'.join(VENV_PROGRAMS)}|make) ", span):
            commands.append(span)
    return commands


def all_commands() -> list[tuple[str, str]]:
    return [(path.name, command) for path in DOCUMENTS for command in shell_commands(path.read_text())]


def test_the_documents_have_commands():
    names = {name for name, _ in all_commands()}
    assert names == {"README.md", "data.md"}


@pytest.mark.parametrize("document, command", all_commands())
def test_command_runs_from_the_venv_and_names_existing_files(document, command):
    words = shlex.split(command)
    program = words[0]
    assert program not in VENV_PROGRAMS, f"{document}: `{command}` needs .venv/bin/{program} in a fresh shell"
    if program.startswith(".venv/bin/"):
        # The test runs in that venv: its bin folder is where the README's programs are.
        assert (Path(sys.executable).parent / program.removeprefix(".venv/bin/")).exists(), command
    for word in words[1:]:
        if re.match(r"(examples|benchmarks|labels|docs)/[\w./-]+\.\w+$", word):
            assert (REPO_ROOT / word).is_file(), f"{document}: `{command}` names {word}, which does not exist"


SCRIPT_PATTERN = r"(examples|benchmarks)/\w+\.py"
SCRIPT_COMMANDS = sorted(
    {
        (re.search(SCRIPT_PATTERN, command).group(0), command)
        for _, command in all_commands()
        if re.search(SCRIPT_PATTERN, command) and command.startswith(".venv/bin/")
    }
)


@pytest.mark.parametrize("script, command", SCRIPT_COMMANDS)
def test_every_flag_of_a_documented_command_is_one_the_script_accepts(script, command):
    words = shlex.split(command)
    # Flags before the script are the launcher's (`accelerate launch -q --config_file ...`), after it the script's.
    flags = {word.split("=")[0] for word in words[words.index(script) + 1 :] if word.startswith("--")}
    accepted = accepted_flags(script)
    assert flags <= accepted, f"`{command}`: {sorted(flags - accepted)} not in {script} --help"


@functools.lru_cache(maxsize=None)
def accepted_flags(script: str) -> set[str]:
    status, help_text, stderr = run_script_in_process(REPO_ROOT / script, ["--help"])
    assert status == 0 and help_text, f"{script} --help: status {status}\n{stderr[-2000:]}"
    return set(re.findall(r"--[\w-]+", help_text))
