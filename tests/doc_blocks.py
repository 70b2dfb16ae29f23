"""Fenced code blocks of a Markdown document, and running its ``persafl ...`` shell lines
(shared by the README and tutorial tests: every documented command is executed)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(path: Path) -> list[tuple[str, str]]:
    """(language, code) of every fenced block of ``path``, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(path.read_text())]


def run_shell_block(code: str, k: int) -> int:
    """Run each ``persafl ...`` line of shell block ``k`` through the CLI's ``main``; every
    line must exit 0, and any other command fails the test. Returns the number of lines run."""
    from persafl_np.cli import main

    ran = 0
    for line in code.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        argv = shlex.split(line)
        if argv[0] != "persafl":
            pytest.fail(f"block {k}: only `persafl ...` commands can be run, got {line!r}")
        assert main(argv[1:]) == 0, f"block {k}: {line!r} failed"
        ran += 1
    return ran
