"""Boundary validation of scalar arguments, shared by every layer.

Each check raises ``ValueError`` naming the argument and its allowed range (the
scikit-learn style: validate at the boundary, then trust the value inside).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["check_int", "check_nonneg"]


def check_int(value: Any, name: str, lo: int, hi: int | None = None) -> int:
    """An integer (``int`` or NumPy integer, not bool, not float) in ``lo..hi``.

    ``hi=None`` means no upper bound. Returns a Python ``int``.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < lo
        or (hi is not None and value > hi)
    ):
        allowed = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    return int(value)


def check_nonneg(value: Any, name: str) -> float:
    """A finite real number ≥ 0, returned as ``float``."""
    v = float(value)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v
