"""Boundary validation of scalar arguments, shared by every layer.

Each check raises ``ValueError`` naming the argument and its allowed range (the
scikit-learn style: validate at the boundary, then trust the value inside).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["INT_MAX", "check_int", "check_nonneg", "shown"]

#: Largest integer any argument may take (int64, TOML).
INT_MAX = 2**63 - 1


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for an error message, safe and short: integers too long for ``repr``
    (over 4300 digits) are described by their size, long reprs are cut at ``limit``."""
    try:
        r = repr(value)
    except ValueError:
        return f"<an integer of {int(value).bit_length()} bits>"
    return r if len(r) <= limit else r[: limit - 3] + "..."


def check_int(value: Any, name: str, lo: int, hi: int | None = None) -> int:
    """An integer (``int`` or NumPy integer, not bool, not float) in ``lo..hi``.

    ``hi=None`` means no upper bound other than :data:`INT_MAX` = 2^63 − 1: counts, sizes and
    seeds end up in int64 arrays and in TOML, whose integers are 64-bit. Returns a Python ``int``.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < lo
        or value > (INT_MAX if hi is None else hi)
    ):
        allowed = f">= {lo} (and < 2^63)" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name} must be an integer {allowed}, got {shown(value)}")
    return int(value)


def check_nonneg(value: Any, name: str) -> float:
    """A finite real number ≥ 0, returned as ``float``."""
    try:
        v = float(value)
    except (OverflowError, TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {shown(value)}")
    return v
