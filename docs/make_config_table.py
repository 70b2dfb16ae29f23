"""Regenerate the README's configuration table from the declarations.

    python docs/make_config_table.py

Replaces the lines between the ``config-table:start`` and ``config-table:end`` markers of
README.md by ``persafl_np.config.describe(markdown=True)`` (tests/test_config_reference.py
checks that it is up to date).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- config-table:start", "<!-- config-table:end -->"


def table_block(text: str) -> tuple[int, int]:
    """(start, end) offsets of the generated block inside README text."""
    i = text.index(START)
    i = text.index("-->", i) + 3
    return i, text.index(END)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from persafl_np.config import describe

    p = ROOT / "README.md"
    s = p.read_text(encoding="utf-8")
    i, j = table_block(s)
    p.write_text(s[:i] + "\n" + describe(markdown=True) + s[j:], encoding="utf-8")
    print(f"wrote {p}")


if __name__ == "__main__":
    main()
