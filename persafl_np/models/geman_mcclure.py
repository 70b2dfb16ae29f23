"""The Geman–McClure function φ(t) = t²/(1+t²) and its derivatives (theory/models.md §GM).

It is both the robust-regression loss (``RobustRegression``) and the coordinate-wise
nonconvex regularizer of ``LogisticRegression``. Derivatives (eq. (GM-1)):

    φ'(t)   = 2t/(1+t²)²,            |φ'|   ≤ 3√3/8            (Lemma GM-1, at t² = 1/3)
    φ''(t)  = 2(1−3t²)/(1+t²)³,      −1/2 ≤ φ'' ≤ 2            (Lemma GM-1, at t² = 1, t = 0)
    φ'''(t) = 24 t(t²−1)/(1+t²)⁴,    |φ'''| ≤ GM3_MAX ≈ 4.6686  (Lemma GM-1, at t² = 1 − 2/√5)

Arguments are clipped to ±1e100 first (±1e18 for float32 and narrower inputs): beyond that
φ = 1 and the derivatives underflow to (essentially) 0, and the clip keeps t² finite so no
overflow warning is raised.
Powers of (1+t²) are applied as repeated divisions for the same reason.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from persafl_np.backend import fast_namespace

__all__ = ["GM1_MAX", "GM2_MAX", "GM2_MIN", "GM3_MAX", "gm", "gm1", "gm2", "gm3"]

_CLIP = 1e100
#: The clip for float32 (and narrower) arguments: (1e18)² = 1e36 < float32 max ≈ 3.4e38.
_CLIP32 = 1e18

#: max |φ'| = 3√3/8, attained at t = ±1/√3 (Lemma GM-1).
GM1_MAX = 3.0 * math.sqrt(3.0) / 8.0
#: max φ'' = 2 at t = 0 (Lemma GM-1); this is also max |φ''|.
GM2_MAX = 2.0
#: min φ'' = −1/2 at t = ±1 (Lemma GM-1).
GM2_MIN = -0.5
_T3 = math.sqrt(1.0 - 2.0 / math.sqrt(5.0))
#: max |φ'''| = 24 t₃(1−t₃²)/(1+t₃²)⁴ with t₃² = 1 − 2/√5 (Lemma GM-1), ≈ 4.6685593.
GM3_MAX = 24.0 * _T3 * (1.0 - _T3**2) / (1.0 + _T3**2) ** 4


def _clip(t: Any) -> tuple[Any, Any]:
    xp = fast_namespace(t)
    wide = t.dtype == np.float64 if type(t) is np.ndarray else xp.finfo(t.dtype).bits >= 64
    lim = _CLIP if wide else _CLIP32
    # minimum/maximum rather than clip: same result, far less wrapper overhead on small arrays.
    tc = xp.minimum(xp.maximum(t, -lim), lim)
    return tc, 1.0 + tc * tc


def gm(t: Any) -> Any:
    """φ(t) = t²/(1+t²), eq. (GM-1)."""
    tc, q = _clip(t)
    return (tc * tc) / q


def gm1(t: Any) -> Any:
    """φ'(t) = 2t/(1+t²)², eq. (GM-1)."""
    if type(t) is np.ndarray and t.dtype.kind == "f":
        # the same operations in place (two temporaries instead of six)
        tc = np.maximum(t, -_CLIP if t.dtype == np.float64 else -_CLIP32)
        np.minimum(tc, _CLIP if t.dtype == np.float64 else _CLIP32, out=tc)
        q = np.multiply(tc, tc)
        q += 1.0
        np.multiply(tc, 2.0, out=tc)
        tc /= q
        tc /= q
        return tc
    tc, q = _clip(t)
    return 2.0 * tc / q / q


def gm2(t: Any) -> Any:
    """φ''(t) = 2(1−3t²)/(1+t²)³, eq. (GM-1)."""
    tc, q = _clip(t)
    # (1 − 3t²)/q = 4/q − 3 keeps every intermediate bounded by 4 in magnitude.
    return 2.0 * (4.0 / q - 3.0) / q / q


def gm3(t: Any) -> Any:
    """φ'''(t) = 24t(t²−1)/(1+t²)⁴, eq. (GM-1)."""
    tc, q = _clip(t)
    # t(t²−1)/q² = t(1 − 2/q)/q bounded; then two more divisions.
    return 24.0 * tc * (1.0 - 2.0 / q) / q / q / q
