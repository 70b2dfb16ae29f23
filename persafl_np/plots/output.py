"""Writing a figure: the PNG and the tidy CSV behind it, each atomically (temp file + rename).

Every figure module of :mod:`persafl_np.plots` returns a matplotlib ``Figure`` and, given a
``path`` ending in ``.png``, calls :func:`save_figure` so that ``name.png`` and ``name.csv`` are
always written together and a reader never sees a half-written file. PNG metadata is fixed so the
same data give the same bytes, and CSV floats use ``repr`` so a rerun is byte-identical.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from persafl_np.atomic import atomic_write_bytes

__all__ = ["new_figure", "save_figure"]


def new_figure(ncols: int = 1, width: float = 6.4, height: float = 4.4) -> tuple[Any, list]:
    """A pyplot-free Figure (no global state, works headless) and its ``ncols`` axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = [fig.add_subplot(1, ncols, k + 1) for k in range(ncols)]
    return fig, axes


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float):  # np.float64 too: its repr is "np.float64(...)" under NumPy 2
        v = float(v)
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else repr(v))
    if hasattr(v, "item"):  # NumPy scalar
        return _cell(v.item())
    return str(v)


def save_figure(fig: Any, path: str | os.PathLike[str] | None, columns: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> Path | None:
    """Write ``path`` (PNG) and ``path`` with suffix ``.csv`` (header ``columns``, ``rows``).

    Returns the PNG path, or None when ``path`` is None (nothing is written).
    """
    if path is None:
        return None
    png = Path(path)
    if png.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png, got {str(path)!r}")
    for r in rows:
        if len(r) != len(columns):
            raise ValueError(f"every CSV row must have {len(columns)} cells, got {len(r)}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows([[_cell(v) for v in r] for r in rows])
    img = io.BytesIO()
    # Fixed metadata (no software/date stamp) so identical data give identical bytes.
    fig.savefig(img, format="png", dpi=110, metadata={"Software": None})
    png.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(png, img.getvalue())
    atomic_write_bytes(png.with_suffix(".csv"), buf.getvalue().encode("utf-8"))
    return png
