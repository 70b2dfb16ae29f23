"""README.md cannot rot: every code block is executed or checked.

* ```python blocks run in order, in one namespace, inside a temporary directory;
* ```toml blocks are validated: a block with a ``[grid]`` is a sweep file (written to
  ``sweep.toml`` and expanded: every run config validated), any other is a run config
  (written to ``run.toml`` and validated);
* ```bash blocks: ``persafl ...`` lines run through the command line's ``main`` (exit 0), and
  the Quick start block must be, verbatim, the two commands CI runs (``.ci/run``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import doc_blocks

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def blocks() -> list[tuple[str, str]]:
    return doc_blocks.blocks(README)


def test_readme_block_kinds_are_all_checked():
    kinds = [k for k, _ in blocks()]
    assert set(kinds) <= {"python", "toml", "bash"}, set(kinds)
    assert kinds.count("toml") >= 2 and kinds.count("python") >= 2


def test_quick_start_is_what_ci_runs():
    quick = blocks()[0]
    assert quick[0] == "bash"
    ci = (ROOT / ".ci" / "run").read_text()
    for line in quick[1].strip().splitlines():
        assert line in ci.splitlines(), line


def test_readme_runs(tmp_path, monkeypatch, capsys):
    from persafl_np.config import SimConfig
    from persafl_np.sweep import expand, parse_sweep

    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "readme"}
    ran = 0
    for k, (kind, code) in enumerate(blocks()[1:], start=1):
        if kind == "python":
            exec(compile(code, f"README.md[block {k}]", "exec"), ns)  # noqa: S102
        elif kind == "toml":
            doc = tomllib.loads(code)
            if "grid" in doc:
                assert len(expand(parse_sweep(doc))) >= 2
                Path("sweep.toml").write_text(code)
            else:
                SimConfig.from_dict(doc)
                Path("run.toml").write_text(code)
        else:
            ran += doc_blocks.run_shell_block(code, k)
    assert ran >= 2
    assert (tmp_path / "sweep_out" / "summary_mean.csv").exists()
    assert (tmp_path / "mydata.npz").exists()
    assert "ok=True" in capsys.readouterr().out  # check_model's verdict on the example
