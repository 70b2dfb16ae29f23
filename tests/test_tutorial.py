"""docs/tutorial.md cannot rot: every ```python block runs (in order, one namespace, in a
temporary directory) and every ``persafl ...`` line of a ```bash block runs through the command
line's ``main`` and must exit 0."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(TUTORIAL.read_text())]


def test_tutorial_has_code():
    kinds = [k for k, _ in blocks()]
    assert kinds.count("python") >= 5 and "bash" in kinds
    assert set(kinds) <= {"python", "bash"}, f"unexecuted block kinds: {set(kinds)}"


def test_tutorial_runs(tmp_path, monkeypatch, capsys):
    from persafl_np.cli import main

    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "tutorial"}
    for k, (kind, code) in enumerate(blocks()):
        if kind == "python":
            exec(compile(code, f"{TUTORIAL.name}[block {k}]", "exec"), ns)  # noqa: S102
            continue
        for line in code.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            argv = shlex.split(line)
            if argv[0] != "persafl":
                pytest.fail(f"block {k}: only `persafl ...` commands can be run, got {line!r}")
            assert main(argv[1:]) == 0, f"block {k}: {line!r} failed"
    out = capsys.readouterr().out
    assert "relative error: exact MAML" in out
    assert (tmp_path / "timeline.png").stat().st_size > 1000
    assert (tmp_path / "demo_run" / "run" / "trace.csv").exists()
    assert (tmp_path / "demo_run" / "bound_vs_T.png").stat().st_size > 1000
