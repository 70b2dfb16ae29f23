"""Print the markdown result tables of experiments/README.md from sweep summaries.

Usage (after ``persafl sweep`` and ``persafl summarize`` of each experiment)::

    python experiments/tables.py results/fedprox_softmax results/digits_label_skew ...

Reads ``summary_mean.csv`` of each directory and prints, at the last evaluation step, one row
per grid point: mean ± std over seeds of the personalized (per-client mean) test accuracy, the
pooled test accuracy of the server model w, the worst client's accuracy and ‖∇F(w^T)‖².
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

COLUMNS = (("acc_pers_mean", "client-mean acc. of served model", "{:.3f}"),
           ("acc_global", "pooled acc. of w", "{:.3f}"),
           ("acc_pers_min", "worst client acc.", "{:.3f}"),
           ("grad_norm2", "‖∇F(w^T)‖²", "{:.2e}"))
META = {"run", "seed", "step", "n_seeds"}


def table(out_dir: str | Path) -> str:
    """The markdown table of one sweep directory (see the module docstring)."""
    path = Path(out_dir) / "summary_mean.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path} has no rows")
    last = max(int(r["step"]) for r in rows)
    rows = [r for r in rows if int(r["step"]) == last]
    varied = [k for k in rows[0] if k not in META and not k.endswith(("_mean", "_std"))]
    head = "| " + " | ".join(varied + ["seeds"] + [c[1] for c in COLUMNS]) + " |"
    lines = [f"{Path(out_dir).name} (step {last})", "", head,
             "|" + "---|" * (len(varied) + 1 + len(COLUMNS))]
    for r in rows:
        cells = [r[k] for k in varied] + [r["n_seeds"]]
        for key, _, fmt in COLUMNS:
            m, s = r.get(f"{key}_mean", ""), r.get(f"{key}_std", "")
            cells.append(f"{fmt.format(float(m))} ± {fmt.format(float(s))}" if m else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    for d in sys.argv[1:]:
        print(table(d))
        print()
