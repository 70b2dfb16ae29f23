"""Boundary validation of the data generators' scalar arguments.

``check_int`` and ``check_nonneg`` are the package-wide ones (:mod:`persafl_np.arguments`),
re-exported here for the data modules; ``check_test_fraction`` is specific to the splits.
"""

from __future__ import annotations

from typing import Any

from persafl_np.arguments import check_int, check_nonneg

__all__ = ["check_int", "check_nonneg", "check_test_fraction"]


def check_test_fraction(test_fraction: Any) -> float:
    """``test_fraction`` in the open interval (0, 1)."""
    tf = float(test_fraction)
    if not (0.0 < tf < 1.0):
        raise ValueError(
            f"test_fraction must lie in the open interval (0, 1), got {test_fraction!r}"
        )
    return tf
