"""Write docs/lecture.ipynb from docs/lecture.py (percent format: ``# %%`` code cells,
``# %% [markdown]`` markdown cells whose lines start with ``# ``).

The script is the source of truth — it runs with plain Python, which is how the test suite
executes every cell (CI installs no Jupyter) — and the notebook is generated from it, without
outputs, deterministically (the same script gives the same bytes; tests/test_lecture.py checks
that the committed notebook is up to date). Usage: ``python docs/make_notebook.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cells(source: str) -> list[dict]:
    """Split a percent-format script into nbformat-4 cells."""
    out: list[dict] = []
    kind, lines = None, []

    def flush() -> None:
        if kind is None:
            return
        while lines and not lines[-1].strip():
            lines.pop()
        if kind == "markdown":
            text = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
            out.append({"cell_type": "markdown", "metadata": {}, "source": _join(text)})
        else:
            out.append({"cell_type": "code", "execution_count": None, "metadata": {},
                        "outputs": [], "source": _join(lines)})

    for ln in source.splitlines():
        if ln.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in ln else "code"), []
        elif kind is not None:
            lines.append(ln)
    flush()
    return out


def _join(lines: list[str]) -> list[str]:
    return [ln + "\n" for ln in lines[:-1]] + lines[-1:]


def notebook(source: str) -> str:
    nb = {"cells": cells(source),
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                      "name": "python3"},
                       "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    for k, c in enumerate(nb["cells"]):
        c["id"] = f"cell-{k:02d}"
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> int:
    src = (HERE / "lecture.py").read_text(encoding="utf-8")
    from persafl_np.atomic import atomic_write_text

    atomic_write_text(HERE / "lecture.ipynb", notebook(src))
    print(f"wrote {HERE / 'lecture.ipynb'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
