"""docs/tutorial.md cannot rot: every ```python block runs (in order, one namespace, in a
temporary directory) and every ``persafl ...`` line of a ```bash block runs through the command
line's ``main`` and must exit 0."""

from __future__ import annotations

from pathlib import Path

import doc_blocks

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"


def blocks() -> list[tuple[str, str]]:
    return doc_blocks.blocks(TUTORIAL)


def test_tutorial_has_code():
    kinds = [k for k, _ in blocks()]
    assert kinds.count("python") >= 5 and "bash" in kinds
    assert set(kinds) <= {"python", "bash"}, f"unexecuted block kinds: {set(kinds)}"


def test_tutorial_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "tutorial"}
    for k, (kind, code) in enumerate(blocks()):
        if kind == "python":
            exec(compile(code, f"{TUTORIAL.name}[block {k}]", "exec"), ns)  # noqa: S102
            continue
        doc_blocks.run_shell_block(code, k)
    out = capsys.readouterr().out
    assert "relative error: exact MAML" in out
    assert (tmp_path / "timeline.png").stat().st_size > 1000
    assert (tmp_path / "demo_run" / "run" / "trace.csv").exists()
    assert (tmp_path / "demo_run" / "bound_vs_T.png").stat().st_size > 1000
