"""Boundary validation of the scalar arguments of the data generators and partitioners.

Each check raises ``ValueError`` naming the argument and its allowed range.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["check_int", "check_nonneg", "check_test_fraction"]


def check_int(value: Any, name: str, lo: int, hi: int | None = None) -> int:
    """An ``int`` (not bool, not float) in ``lo..hi`` (``hi=None``: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        allowed = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name} must be {allowed}, got {v}")
    return v


def check_nonneg(value: Any, name: str) -> float:
    """A finite real number ≥ 0."""
    v = float(value)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def check_test_fraction(test_fraction: Any) -> float:
    """``test_fraction`` in the open interval (0, 1)."""
    tf = float(test_fraction)
    if not (0.0 < tf < 1.0):
        raise ValueError(
            f"test_fraction must lie in the open interval (0, 1), got {test_fraction!r}"
        )
    return tf
