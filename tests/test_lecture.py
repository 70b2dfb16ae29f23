"""docs/lecture.py (the lecture, percent format) and docs/lecture.ipynb (generated from it):
the committed notebook is up to date, every notebook cell executes in order (the exercises'
solutions check themselves with assert), and the output is small and deterministic."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import runpy
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _make_notebook():
    spec = importlib.util.spec_from_file_location("make_notebook", DOCS / "make_notebook.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_notebook_is_generated_from_the_script():
    mk = _make_notebook()
    src = (DOCS / "lecture.py").read_text(encoding="utf-8")
    assert (DOCS / "lecture.ipynb").read_text(encoding="utf-8") == mk.notebook(src)
    nb = json.loads(mk.notebook(src))
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert kinds.count("code") >= 12 and kinds.count("markdown") >= 12
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    for topic in ("Synchronous vs asynchronous", "Staleness", "Bounded-staleness",
                  "Arrival bias", "MAML vs Moreau", "bound against a run"):
        assert topic in text, topic
    assert text.count("**Exercise") == 6


def test_every_cell_runs_and_the_output_is_small_and_deterministic():
    nb = json.loads((DOCS / "lecture.ipynb").read_text(encoding="utf-8"))
    ns: dict = {"__name__": "__lecture__"}
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        for k, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), f"lecture.ipynb cell {k}", "exec"), ns)
    out = buf.getvalue()
    lines = out.splitlines()
    assert 20 <= len(lines) <= 80 and max(len(ln) for ln in lines) <= 160
    again = io.StringIO()
    with contextlib.redirect_stdout(again):
        runpy.run_path(str(DOCS / "lecture.py"), run_name="__lecture__")
    assert again.getvalue() == out  # the script and the notebook say the same, bit for bit
