"""Numerical checks of hand-written derivatives and constants, for built-in and users' models.

Every check takes plain callables over a flat parameter vector (``f(w)``, ``grad(w)``,
``hvp(w, v)``, ``hessian(w)``) so it works for any model; :func:`check_model` binds a
:class:`~persafl_np.models.base.Model` and its data and runs them all. The arrays may live in
any supported namespace (NumPy, CuPy, ``array_api_strict``); perturbation directions are drawn
on the host from a ``numpy.random.Generator`` and moved next to ``w``, and outputs are
compared on the host in float64. Each check returns a frozen result object, not a bool.

Finite-difference tolerances (theory/models.md §CHK, eq. (CHK-1))
-----------------------------------------------------------------
A central difference D_h = (φ(h) − φ(−h))/(2h) of a C³ function φ along a unit direction has

    |D_h − φ'(0)| ≤ h²·sup|φ'''|/6  (truncation)  +  ε_f/h  (rounding of the two values),

where ε_f is the absolute rounding error of one evaluation (≈ a few ulps of |φ|). The default
h = ε^{1/3} ≈ 6e-6 balances the two. The truncation term is *estimated* from the data rather
than assumed: D_{2h} − D_h = h²φ'''/2 + O(h⁴), i.e. three times the truncation error of D_h, so
``|D_{2h} − D_h|`` is a conservative estimate of it. A direction passes when

    |D_h − analytic| ≤ rtol·max(|analytic|, |D_h|) + |D_{2h} − D_h| + 64·ε·max(|φ(±h)|, s₀)/h.

The factor 64 covers the rounding of a sum of many terms inside φ. The floor s₀
(``noise_floor``, default 1) is there because the absolute rounding error of a value is set by
the *intermediate* quantities, not by the value: a cross-entropy near 0 is computed as
log(1 + tiny) with an absolute error of ≈ ε, not ε·|f|. Pass a smaller ``noise_floor`` for
problems whose intermediates are all much smaller than 1. Exact-vs-exact comparisons
(:func:`check_hessian`) allow only rounding: rtol·(|H||v|)_max, with rtol = 1e-9.

Cohort (batched) methods (theory/models.md §CO)
-----------------------------------------------
:func:`check_cohort` compares a model's ``loss_many``/``grad_many``/``hvp_many``/``predict_many``
with its single-client methods on a small cohort built from the data (unequal real sizes via
a padding mask), to 1e-12 relative: both compute the same formula and differ only in the
order of the sums. It also recomputes the cohort under other groupings (each client alone,
and a reordered subset) and requires **bit-identical** rows on NumPy (1e-12 relative on other
backends), the contract of :mod:`persafl_np.models.cohort`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from persafl_np.backend import NUMPY_NAMESPACE, array_namespace, take_rows, to_device_like, to_numpy
from persafl_np.models.base import Model

__all__ = [
    "BoundCheck",
    "CohortCheck",
    "DerivativeCheck",
    "LipschitzCheck",
    "ModelCheck",
    "OracleCheck",
    "check_cohort",
    "check_grad",
    "check_grad_bound",
    "check_hessian",
    "check_hessian_lipschitz",
    "check_hvp",
    "check_model",
    "check_oracle",
    "check_smoothness",
]

_EPS = float(np.finfo(np.float64).eps)
#: Default central-difference step ε^{1/3} (eq. (CHK-1)).
DEFAULT_STEP = _EPS ** (1.0 / 3.0)
#: Parameter count up to which the default directions are all coordinate axes.
MAX_AXIS_DIRECTIONS = 64
_ROUNDING_FACTOR = 64.0


@dataclass(frozen=True)
class DerivativeCheck:
    """Result of comparing an analytic derivative with a reference.

    Attributes
    ----------
    kind: ``"grad"``, ``"hvp"`` or ``"hessian"``.
    max_abs_error: max over directions of ‖reference − analytic‖_∞.
    max_rel_error: max over directions of that error / max(‖analytic‖_∞, ‖reference‖_∞).
    worst_excess: max over directions of error / tolerance (``ok`` iff ≤ 1).
    n_checked: number of directions compared.
    step: the finite-difference step h (0 for exact-vs-exact checks).
    ok: every direction within its tolerance (eq. (CHK-1)).
    max_asymmetry: for ``"hessian"``, max|H − Hᵀ| / max(max|H|, noise_floor); else 0.
    """

    kind: str
    max_abs_error: float
    max_rel_error: float
    worst_excess: float
    n_checked: int
    step: float
    ok: bool
    max_asymmetry: float = 0.0


@dataclass(frozen=True)
class LipschitzCheck:
    """Result of sampling pairs (w, u) against a claimed Lipschitz constant.

    Attributes
    ----------
    constant: the claimed constant (L or ρ).
    worst_ratio: max over pairs of ‖F(w) − F(u)‖ / (constant·‖w − u‖); must be ≤ 1.
    worst_distance: ‖w − u‖ of the worst pair.
    worst_spread: distance of the worst pair's first point from the base point.
    n_checked: number of pairs.
    ok: every pair satisfies ‖F(w) − F(u)‖ ≤ constant·‖w − u‖·(1 + rtol) + rounding allowance.
    """

    constant: float
    worst_ratio: float
    worst_distance: float
    worst_spread: float
    n_checked: int
    ok: bool


@dataclass(frozen=True)
class BoundCheck:
    """Result of sampling points against a claimed gradient bound B.

    Attributes
    ----------
    bound: the claimed B.
    worst_ratio: max over points of ‖∇f(w)‖ / B (0 when B = ∞).
    largest_norm: max over points of ‖∇f(w)‖.
    n_checked: number of points.
    ok: worst_ratio ≤ 1 + rtol.
    """

    bound: float
    worst_ratio: float
    largest_norm: float
    n_checked: int
    ok: bool


@dataclass(frozen=True)
class CohortCheck:
    """Result of comparing a model's batched methods with its single-client ones.

    Attributes
    ----------
    n_clients: size of the probe cohort (clients with different real row counts).
    max_rel_error: max over methods ("loss", "grad", "hvp", "predict") and clients of
        max|batched − single| / max|single| (must be ≤ ``rtol``).
    worst_method: the method attaining ``max_rel_error``.
    max_grouping_diff: max over methods, clients and regroupings of
        max|row in cohort − row regrouped| / max|row| (0 when bit-identical).
    bit_identical: every regrouped row equals the full-cohort row exactly.
    require_bits: bit-identity was required (NumPy inputs); else ≤ ``rtol`` sufficed.
    ok: both comparisons within their tolerance.
    """

    n_clients: int
    max_rel_error: float
    worst_method: str
    max_grouping_diff: float
    bit_identical: bool
    require_bits: bool
    ok: bool


@dataclass(frozen=True)
class ModelCheck:
    """All checks of one model on one data set (:func:`check_model`).

    ``hessian`` and ``hessian_lipschitz`` are ``None`` when the dense Hessian was skipped;
    ``cohort`` is ``None`` when the model has no batched (``*_many``) methods.
    """

    grad: DerivativeCheck
    hvp: DerivativeCheck
    hessian: DerivativeCheck | None
    smoothness: LipschitzCheck
    hessian_lipschitz: LipschitzCheck | None
    grad_bound: BoundCheck
    cohort: CohortCheck | None = None

    @property
    def ok(self) -> bool:
        parts = (self.grad, self.hvp, self.hessian, self.smoothness, self.hessian_lipschitz,
                 self.grad_bound, self.cohort)
        return all(p.ok for p in parts if p is not None)


# ------------------------------------------------------------------ validation / plumbing
def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy.random.Generator, a seed >= 0 or None, got {rng!r}")


def _positive(value: float, name: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def _count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _constant(value: float, name: str) -> float:
    v = float(value)
    if math.isnan(v) or v < 0.0:
        raise ValueError(f"{name} must be >= 0 (math.inf allowed), got {value!r}")
    return v


def _host(a: Any) -> np.ndarray:
    return np.asarray(to_numpy(a), dtype=np.float64)


def _flat_params(w: Any) -> np.ndarray:
    wn = _host(w)
    if wn.ndim != 1 or wn.size < 1:
        raise ValueError(f"w must be a non-empty 1-D parameter vector, got shape {wn.shape}")
    if not np.all(np.isfinite(wn)):
        raise ValueError("w contains NaN or Inf")
    return wn


def _unit_rows(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    if np.any(n == 0):
        raise ValueError("directions must be nonzero vectors")
    return a / n


def _directions(
    directions: Any, p: int, rng: np.random.Generator, n_directions: int, unit: bool
) -> np.ndarray:
    """Rows to probe: given ones, all axes (p ≤ MAX_AXIS_DIRECTIONS) or random Gaussian ones."""
    if directions is not None:
        D = _host(directions)
        if D.ndim == 1:
            D = D[None, :]
        if D.ndim != 2 or D.shape[1] != p or D.shape[0] < 1:
            raise ValueError(f"directions must have shape (k, {p}) or ({p},), got {D.shape}")
        if not np.all(np.isfinite(D)):
            raise ValueError("directions contain NaN or Inf")
        return _unit_rows(D) if unit else D
    if p <= MAX_AXIS_DIRECTIONS:
        return np.eye(p)
    return _unit_rows(rng.standard_normal((n_directions, p)))


# ------------------------------------------------------------------ derivative checks
def _fd_excess(
    fd_h: np.ndarray, fd_2h: np.ndarray, analytic: np.ndarray, scale: float, h: float, rtol: float
) -> tuple[float, float, float]:
    """(abs error, rel error, error/tolerance) of one direction, tolerance of eq. (CHK-1)."""
    err = float(np.max(np.abs(fd_h - analytic)))
    mag = max(float(np.max(np.abs(analytic))), float(np.max(np.abs(fd_h))))
    trunc = float(np.max(np.abs(fd_2h - fd_h)))
    tol = rtol * mag + trunc + _ROUNDING_FACTOR * _EPS * scale / h
    rel = err / mag if mag > 0 else (0.0 if err == 0 else math.inf)
    excess = err / tol if tol > 0 else (0.0 if err == 0 else math.inf)
    return err, rel, excess


def _summarize(kind: str, rows: list[tuple[float, float, float]], h: float) -> DerivativeCheck:
    errs, rels, exc = (np.array(c, dtype=np.float64) for c in zip(*rows, strict=True))
    worst = float(exc.max())
    return DerivativeCheck(
        kind=kind,
        max_abs_error=float(errs.max()),
        max_rel_error=float(rels.max()),
        worst_excess=worst,
        n_checked=len(rows),
        step=h,
        ok=bool(worst <= 1.0),
    )


def check_grad(
    f: Callable[[Any], Any],
    grad: Callable[[Any], Any],
    w: Any,
    *,
    directions: Any = None,
    n_directions: int = 16,
    rng: np.random.Generator | int | None = None,
    step: float = DEFAULT_STEP,
    rtol: float = 1e-6,
    noise_floor: float = 1.0,
) -> DerivativeCheck:
    """Compare ∇f(w)·u with central differences of f along unit directions u (eq. (CHK-1)).

    Parameters
    ----------
    f, grad: ``f(w)`` → scalar (0-d array or float), ``grad(w)`` → array of ``w``'s shape.
    w: 1-D parameter vector (any supported namespace).
    directions: (k, p) or (p,) array of probe directions (normalized here); by default all
        coordinate axes when p ≤ 64, else ``n_directions`` random unit vectors from ``rng``.
    step: h > 0; rtol > 0: relative tolerance on top of the estimated FD error.
    noise_floor: s₀ ≥ 0 of eq. (CHK-1), the smallest magnitude assumed for f's rounding error.
    """
    wn = _flat_params(w)
    h, rtol = _positive(step, "step"), _positive(rtol, "rtol")
    floor = _constant(noise_floor, "noise_floor")
    n_directions = _count(n_directions, "n_directions")
    U = _directions(directions, wn.size, _rng(rng), n_directions, unit=True)
    g = _host(grad(w))
    if g.shape != wn.shape:
        raise ValueError(f"grad(w) must have shape {wn.shape}, got {g.shape}")
    rows = []
    for u in U:
        ux = to_device_like(u, w)
        vals = [float(_host(f(w + s * ux))) for s in (h, -h, 2 * h, -2 * h)]
        fd_h = np.array([(vals[0] - vals[1]) / (2 * h)])
        fd_2h = np.array([(vals[2] - vals[3]) / (4 * h)])
        scale = max(max(map(abs, vals)), floor)
        rows.append(_fd_excess(fd_h, fd_2h, np.array([g @ u]), scale, h, rtol))
    return _summarize("grad", rows, h)


def check_hvp(
    grad: Callable[[Any], Any],
    hvp: Callable[[Any, Any], Any],
    w: Any,
    v: Any = None,
    *,
    n_directions: int = 8,
    rng: np.random.Generator | int | None = None,
    step: float = DEFAULT_STEP,
    rtol: float = 1e-6,
    noise_floor: float = 1.0,
) -> DerivativeCheck:
    """Compare ``hvp(w, v)`` with central differences of ``grad`` along v (eq. (CHK-1)).

    ``v`` is a (p,) vector or (k, p) array of directions (not normalized: the FD is taken along
    v/‖v‖ and rescaled by ‖v‖); by default ``n_directions`` random Gaussian vectors.
    ``noise_floor`` is s₀ of eq. (CHK-1) for the gradient's entries.
    """
    wn = _flat_params(w)
    h, rtol = _positive(step, "step"), _positive(rtol, "rtol")
    floor = _constant(noise_floor, "noise_floor")
    n_directions = _count(n_directions, "n_directions")
    if v is None:
        V = _rng(rng).standard_normal((n_directions, wn.size))
    else:
        V = _directions(v, wn.size, _rng(rng), n_directions, unit=False)
    rows = []
    for vv in V:
        nv = float(np.linalg.norm(vv))
        if nv == 0.0:
            raise ValueError("v must be nonzero")
        ux = to_device_like(vv / nv, w)
        gs = [_host(grad(w + s * ux)) for s in (h, -h, 2 * h, -2 * h)]
        fd_h = (gs[0] - gs[1]) / (2 * h) * nv
        fd_2h = (gs[2] - gs[3]) / (4 * h) * nv
        an = _host(hvp(w, to_device_like(vv, w)))
        if an.shape != wn.shape:
            raise ValueError(f"hvp(w, v) must have shape {wn.shape}, got {an.shape}")
        scale = max(max(float(np.max(np.abs(gg))) for gg in gs), floor) * nv
        rows.append(_fd_excess(fd_h, fd_2h, an, scale, h, rtol))
    return _summarize("hvp", rows, h)


def check_hessian(
    hessian: Callable[[Any], Any],
    hvp: Callable[[Any, Any], Any],
    w: Any,
    *,
    directions: Any = None,
    n_directions: int = 16,
    rng: np.random.Generator | int | None = None,
    rtol: float = 1e-9,
    noise_floor: float = 1.0,
) -> DerivativeCheck:
    """Compare ``hessian(w) @ v`` with ``hvp(w, v)`` and check symmetry (both exact).

    Only rounding separates two exact formulas, so the tolerance per direction is
    rtol·max(max_i Σ_k |H_ik||v_k|, s₀‖v‖_∞) (the scale of the rounding error of H v, floored
    by ``noise_floor`` s₀ because the rounding comes from intermediates that can be much larger
    than H itself, e.g. a saturated softmax); symmetry must hold to
    max|H − Hᵀ| ≤ rtol·max(max|H|, s₀). Default directions: all axes when p ≤ 64, else random.
    """
    wn = _flat_params(w)
    rtol = _positive(rtol, "rtol")
    floor = _constant(noise_floor, "noise_floor")
    n_directions = _count(n_directions, "n_directions")
    p = wn.size
    H = _host(hessian(w))
    if H.shape != (p, p):
        raise ValueError(f"hessian(w) must have shape ({p}, {p}), got {H.shape}")
    V = _directions(directions, p, _rng(rng), n_directions, unit=False)
    rows = []
    for vv in V:
        an = _host(hvp(w, to_device_like(vv, w)))
        ref = H @ vv
        err = float(np.max(np.abs(ref - an)))
        mag = max(float(np.max(np.abs(ref))), float(np.max(np.abs(an))))
        tol = rtol * max(float(np.max(np.abs(H) @ np.abs(vv))), floor * float(np.max(np.abs(vv))))
        rel = err / mag if mag > 0 else (0.0 if err == 0 else math.inf)
        rows.append((err, rel, err / tol if tol > 0 else (0.0 if err == 0 else math.inf)))
    res = _summarize("hessian", rows, 0.0)
    hmax = max(float(np.max(np.abs(H))), floor)
    asym_abs = float(np.max(np.abs(H - H.T)))
    asym = asym_abs / hmax if hmax > 0 else (0.0 if asym_abs == 0 else math.inf)
    return DerivativeCheck(
        kind="hessian",
        max_abs_error=res.max_abs_error,
        max_rel_error=res.max_rel_error,
        worst_excess=res.worst_excess,
        n_checked=res.n_checked,
        step=0.0,
        ok=bool(res.ok and asym <= rtol),
        max_asymmetry=asym,
    )


# ------------------------------------------------------------------ constants
def _sample_pairs(
    wn: np.ndarray,
    rng: np.random.Generator,
    n_pairs: int,
    distances: Sequence[float],
    spreads: Sequence[float],
) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
    """Pairs (a, b): a = w + spread·unit, b = a + distance·unit, for every spread × distance."""
    ds = [_positive(d, "distances") for d in distances]
    ss = [float(s) for s in spreads]
    if not ds or not ss or any(not math.isfinite(s) or s < 0 for s in ss):
        raise ValueError("distances must be non-empty > 0 and spreads non-empty finite >= 0")
    out = []
    p = wn.size
    for s in ss:
        for d in ds:
            for _ in range(n_pairs):
                a = wn + s * _unit_rows(rng.standard_normal((1, p)))[0]
                b = a + d * _unit_rows(rng.standard_normal((1, p)))[0]
                out.append((a, b, float(np.linalg.norm(b - a)), s))
    return out


def _check_lipschitz(
    fun: Callable[[Any], Any],
    const: float,
    w: Any,
    norm: Callable[[np.ndarray], float],
    rng: np.random.Generator | int | None,
    n_pairs: int,
    distances: Sequence[float],
    spreads: Sequence[float],
    rtol: float,
) -> LipschitzCheck:
    wn = _flat_params(w)
    n_pairs = _count(n_pairs, "n_pairs")
    rtol = _positive(rtol, "rtol")
    pairs = _sample_pairs(wn, _rng(rng), n_pairs, distances, spreads)
    if math.isinf(const):
        return LipschitzCheck(const, 0.0, 0.0, 0.0, 0, True)
    worst, worst_d, worst_s, ok = -1.0, 0.0, 0.0, True
    for a, b, dist, s in pairs:
        fa = _host(fun(to_device_like(a, w)))
        fb = _host(fun(to_device_like(b, w)))
        num = norm(fa - fb)
        # Rounding of the two evaluations: a few ulps of their magnitudes (and of w's size).
        slack = _ROUNDING_FACTOR * _EPS * (norm(fa) + norm(fb) + const * float(np.linalg.norm(a)))
        ok = ok and num <= const * dist * (1.0 + rtol) + slack
        ratio = num / (const * dist) if const > 0 else (0.0 if num == 0 else math.inf)
        if ratio > worst:
            worst, worst_d, worst_s = ratio, dist, s
    return LipschitzCheck(const, worst, worst_d, worst_s, len(pairs), bool(ok))


def check_smoothness(
    grad: Callable[[Any], Any],
    L: float,
    w: Any,
    *,
    rng: np.random.Generator | int | None = None,
    n_pairs: int = 4,
    distances: Sequence[float] = (1e-4, 1e-2, 1.0, 100.0),
    spreads: Sequence[float] = (0.0, 1.0, 10.0, 1000.0),
    rtol: float = 1e-9,
) -> LipschitzCheck:
    """Worst ratio ‖∇f(a) − ∇f(b)‖/(L‖a − b‖) over sampled pairs (must be ≤ 1).

    For each spread s and distance δ, ``n_pairs`` pairs a = w + s·u₁, b = a + δ·u₂ with random
    unit u₁, u₂: close pairs probe the local Hessian, far pairs the global behaviour, large
    spreads the regime of large ‖w‖. ``L = math.inf`` passes trivially (n_checked = 0).
    """
    return _check_lipschitz(grad, _constant(L, "L"), w, lambda a: float(np.linalg.norm(a)),
                            rng, n_pairs, distances, spreads, rtol)


def check_hessian_lipschitz(
    hessian: Callable[[Any], Any],
    rho: float,
    w: Any,
    *,
    rng: np.random.Generator | int | None = None,
    n_pairs: int = 4,
    distances: Sequence[float] = (1e-3, 1e-1, 1.0, 10.0),
    spreads: Sequence[float] = (0.0, 1.0, 10.0),
    rtol: float = 1e-9,
) -> LipschitzCheck:
    """Worst ratio ‖∇²f(a) − ∇²f(b)‖₂/(ρ‖a − b‖) over sampled pairs (spectral norm)."""
    return _check_lipschitz(hessian, _constant(rho, "rho"), w,
                            lambda a: float(np.linalg.norm(a, 2)) if a.size else 0.0,
                            rng, n_pairs, distances, spreads, rtol)


def check_grad_bound(
    grad: Callable[[Any], Any],
    B: float,
    w: Any,
    *,
    rng: np.random.Generator | int | None = None,
    n_points: int = 8,
    spreads: Sequence[float] = (0.0, 1.0, 10.0, 1e3, 1e6),
    rtol: float = 1e-9,
) -> BoundCheck:
    """Worst ratio ‖∇f(a)‖/B over points a = w + s·u (random unit u) for each spread s."""
    wn = _flat_params(w)
    B = _constant(B, "B")
    n_points = _count(n_points, "n_points")
    rtol = _positive(rtol, "rtol")
    g = _rng(rng)
    norms = []
    for s in spreads:
        s = float(s)
        if not math.isfinite(s) or s < 0:
            raise ValueError(f"spreads must be finite and >= 0, got {s!r}")
        for _ in range(n_points):
            a = wn + s * _unit_rows(g.standard_normal((1, wn.size)))[0]
            norms.append(float(np.linalg.norm(_host(grad(to_device_like(a, w))))))
    largest = max(norms)
    if math.isinf(B):
        return BoundCheck(B, 0.0, largest, len(norms), True)
    ratio = largest / B if B > 0 else (0.0 if largest == 0 else math.inf)
    return BoundCheck(B, ratio, largest, len(norms), bool(ratio <= 1.0 + rtol))


# ------------------------------------------------------------------ cohort methods
_COHORT_METHODS = ("loss_many", "grad_many", "hvp_many", "predict_many")


def _probe_cohort(X: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Three clients over the m rows of (X, y): all rows; the first ⌈m/2⌉; every other row
    in reverse order. Returns their real-row indices and the (3, m) 0/1 mask (padding rows
    hold zeros and the label/target y[0], which is valid for the model)."""
    m = X.shape[0]
    rows = [np.arange(m), np.arange((m + 1) // 2), np.arange(m - 1, -1, -2)]
    mask = np.zeros((len(rows), m))
    for c, r in enumerate(rows):
        mask[c, : r.size] = 1.0
    return rows, mask


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return err / scale if scale > 0 else err


def _sample_scale(fn: Callable[[Any, Any], Any], Xn: np.ndarray, yn: np.ndarray,
                  like: Any) -> float:
    """max_k (1/n)Σ_j |fn(x_j, y_j)|_k: the rounding scale of a mean over the n samples."""
    rows = [np.abs(_host(fn(to_device_like(Xn[j:j + 1], like), to_device_like(yn[j:j + 1], like))))
            for j in range(Xn.shape[0])]
    return float(np.max(np.mean(rows, axis=0)))


def check_cohort(
    model: Any,
    X: Any,
    y: Any,
    w: Any,
    *,
    rng: np.random.Generator | int | None = None,
    rtol: float = 1e-12,
) -> CohortCheck:
    """Compare ``model``'s batched methods with its single-client ones (see module docstring).

    The probe cohort has three clients built from the rows of (X, y) — all rows, the first
    half, every other row reversed — padded to m rows with a mask, at parameters w, w + u and
    w − u (u random, ‖u‖ = ½‖w‖ + ½). Row c of each batched method must match the single-client
    method on client c's real rows to ``rtol`` (relative to max|single|, or, where that fails,
    to the rounding scale of a mean, max_k (1/n_c)Σ_j|per-sample value|_k); regrouping (each
    client alone, and clients (2, 0) as a cohort) must give bit-identical rows on NumPy, or
    rows within ``rtol`` on other namespaces.
    """
    missing = [k for k in _COHORT_METHODS if not hasattr(model, k)]
    if missing:
        raise ValueError(f"model has no batched methods {missing} (see persafl_np.models.base)")
    rtol = _positive(rtol, "rtol")
    g = _rng(rng)
    wn = _flat_params(w)
    Xn, yn = to_numpy(X), to_numpy(y)
    rows, mask_n = _probe_cohort(Xn, yn)
    C, (m, d) = len(rows), Xn.shape
    Xc = np.zeros((C, m, d), dtype=Xn.dtype)
    yc = np.full((C, m), yn[0], dtype=yn.dtype)
    for c, r in enumerate(rows):
        Xc[c, : r.size], yc[c, : r.size] = Xn[r], yn[r]
    u = _unit_rows(g.standard_normal((1, wn.size)))[0] * (0.5 * float(np.linalg.norm(wn)) + 0.5)
    Wn = np.stack([wn, wn + u, wn - u]).astype(Xn.dtype)
    Vn = g.standard_normal(Wn.shape).astype(Xn.dtype)
    dev = [to_device_like(a, X) for a in (Wn, Vn, Xc, yc, mask_n.astype(Xn.dtype))]
    W, V, Xd, yd, mask = dev

    def run(idx: Any) -> dict[str, np.ndarray]:
        if idx is None:
            a = dev
        else:
            ii = to_device_like(np.asarray(idx), X)
            a = [take_rows(t, ii) for t in dev]
        return {
            "loss": _host(model.loss_many(a[0], a[2], a[3], a[4])),
            "grad": _host(model.grad_many(a[0], a[2], a[3], a[4])),
            "hvp": _host(model.hvp_many(a[0], a[1], a[2], a[3], a[4])),
            "predict": _host(model.predict_many(a[0], a[2])),
        }

    full = run(None)
    worst, worst_name = 0.0, "loss"
    for c, r in enumerate(rows):
        Xr, yr = to_device_like(Xn[r], X), to_device_like(yn[r], X)
        wc, vc = to_device_like(Wn[c], X), to_device_like(Vn[c], X)
        single = {
            "loss": _host(model.loss(wc, Xr, yr)),
            "grad": _host(model.grad(wc, Xr, yr)),
            "hvp": _host(model.hvp(wc, vc, Xr, yr)),
            "predict": _host(model.predict(wc, to_device_like(Xc[c], X))),
        }
        per_sample = {
            "loss": lambda a, b: model.loss(wc, a, b),  # noqa: B023
            "grad": lambda a, b: model.grad(wc, a, b),  # noqa: B023
            "hvp": lambda a, b: model.hvp(wc, vc, a, b),  # noqa: B023
        }
        for name, ref in single.items():
            got = np.asarray(full[name][c])
            e = _rel(got, ref)
            if e > rtol and name in per_sample:
                # A mean can cancel far below its terms; rounding is relative to Σ|terms|.
                scale = max(float(np.max(np.abs(ref))),
                            _sample_scale(per_sample[name], Xn[r], yn[r], X))
                e = float(np.max(np.abs(got - ref))) / scale if scale > 0 else e
            if e > worst or math.isnan(e):
                worst, worst_name = (math.inf if math.isnan(e) else e), name
    bits, gdiff = True, 0.0
    for idx in [[c] for c in range(C)] + [[2, 0]]:
        part = run(idx)
        for name, ref in full.items():
            a, b = part[name], ref[np.asarray(idx)]
            bits = bits and bool(np.array_equal(a, b))
            gdiff = max(gdiff, _rel(a, b) if a.shape == b.shape else math.inf)
    require_bits = array_namespace(Xd) is NUMPY_NAMESPACE
    grouping_ok = bits if require_bits else gdiff <= rtol
    return CohortCheck(
        n_clients=C,
        max_rel_error=worst,
        worst_method=worst_name,
        max_grouping_diff=gdiff,
        bit_identical=bits,
        require_bits=require_bits,
        ok=bool(worst <= rtol and grouping_ok),
    )


def check_model(
    model: Model,
    X: Any,
    y: Any,
    w: Any = None,
    *,
    rng: np.random.Generator | int | None = None,
    dense: bool = True,
) -> ModelCheck:
    """Run every check on a :class:`~persafl_np.models.base.Model` and one data set.

    ``w`` defaults to ``model.init_params(rng, d)`` in ``X``'s namespace. The dense Hessian
    checks are skipped (``None``) when ``dense`` is false or the model has more than 256
    parameters. Models with batched methods also get :func:`check_cohort` (``cohort``);
    it is ``None`` for a model without them.
    """
    model.check_data(X, y)
    g = _rng(rng)
    d = int(X.shape[1])
    if w is None:
        w = to_device_like(model.init_params(g, d), X)

    def f(a: Any) -> Any:
        return model.loss(a, X, y)

    def gr(a: Any) -> Any:
        return model.grad(a, X, y)

    def hv(a: Any, v: Any) -> Any:
        return model.hvp(a, v, X, y)

    def he(a: Any) -> Any:
        return model.hessian(a, X, y)

    use_dense = dense and model.num_params(d) <= 256
    return ModelCheck(
        grad=check_grad(f, gr, w, rng=g),
        hvp=check_hvp(gr, hv, w, rng=g),
        hessian=check_hessian(he, hv, w, rng=g) if use_dense else None,
        smoothness=check_smoothness(gr, model.smoothness(X, y), w, rng=g),
        hessian_lipschitz=(
            check_hessian_lipschitz(he, model.hessian_lipschitz(X, y), w, rng=g)
            if use_dense else None
        ),
        grad_bound=check_grad_bound(gr, model.grad_bound(X, y), w, rng=g),
        cohort=(
            check_cohort(model, X, y, w, rng=g)
            if all(hasattr(model, k) for k in _COHORT_METHODS) else None
        ),
    )


# ------------------------------------------------------------------ oracles (check_oracle)
@dataclass(frozen=True)
class OracleCheck:
    """Result of :func:`check_oracle` (a personalization oracle on one data set).

    Attributes
    ----------
    grad: ``oracle.grad`` against central differences of ``oracle.value`` (eq. (CHK-1));
        required only when ``grad_exact`` (the oracle's ``exact_grad``, default True).
    grad_exact: the oracle declares ``grad`` = ∇F_i (False: first-order MAML, fixed-K Moreau).
    max_rel_error: max over the compared quantities ("step", "local_update", "value", "grad",
        "personalize") and clients of max|stacked − single| / max|single|.
    worst: the quantity attaining ``max_rel_error``.
    counters_equal: the stacked counters (n_grad, n_hvp, n_inner) equal the single ones.
    bit_identical: ``local_update_many`` rows are the same bits for every grouping (NumPy;
        ≤ ``rtol`` required elsewhere).
    ok: everything within tolerance.
    """

    grad: DerivativeCheck
    grad_exact: bool
    max_rel_error: float
    worst: str
    counters_equal: bool
    bit_identical: bool
    ok: bool


class _FixedBatches:
    """A sampler that hands out given batches in order (same interface as BatchSampler)."""

    def __init__(self, batches: list[np.ndarray]) -> None:
        self.batches, self.k = batches, 0

    def take(self, m: int, b: int | None, k: int) -> np.ndarray | None:
        if b is None or b >= m:
            return None
        out = np.stack(self.batches[self.k:self.k + k])
        self.k += k
        return out


def check_oracle(
    oracle: Any,
    model: Any,
    X: Any,
    y: Any,
    w: Any = None,
    *,
    batch_size: int = 4,
    rng: np.random.Generator | int | None = None,
    rtol: float = 1e-10,
) -> OracleCheck:
    """Conformance of a personalization oracle (theory/personalization.md §1, eq. (LOC-C)).

    * ``grad`` is checked against finite differences of ``value`` at w (full batch);
    * on a probe cohort of three clients built from (X, y) (all rows, the first half, every
      other row reversed: unequal sizes), each stacked method is compared with the single-client
      one, to ``rtol`` relative: ``step_many`` against ``step`` on the same mini-batches of
      ``batch_size`` rows; ``local_update_many`` against ``local_update`` (Q = 3, with and
      without a proximal term, samplers from equal seeds; counters must be equal);
      ``value_grad_many``/``personalize_many`` against ``value``/``grad``/``personalize`` on the
      clients' full (padded) data;
    * ``local_update_many`` on the whole cohort against each client alone: bit-identical rows on
      NumPy (the engine's grouping invariance), ≤ ``rtol`` on other namespaces.
    """
    from persafl_np.personalization.cohort import CohortData, Kernels, local_update_many
    from persafl_np.personalization.local import local_update
    from persafl_np.personalization.sampling import BatchSampler

    rtol = _positive(rtol, "rtol")
    g = _rng(rng)
    Xn, yn = to_numpy(X), to_numpy(y)
    m, d = Xn.shape
    b = _count(batch_size, "batch_size")
    if w is None:
        w = to_device_like(model.init_params(g, d), X)
    grad = check_grad(lambda a: oracle.value(model, a, X, y),
                      lambda a: oracle.grad(model, a, X, y), w, rng=g)
    rows, _ = _probe_cohort(Xn, yn)
    Xs = [to_device_like(Xn[r], X) for r in rows]
    ys = [to_device_like(yn[r], y) for r in rows]
    C = len(rows)
    xp = array_namespace(w, X)
    wn = _flat_params(w)
    u = _unit_rows(g.standard_normal((1, wn.size)))[0] * (0.1 * float(np.linalg.norm(wn)) + 0.1)
    Wn = np.stack([wn, wn + u, wn - u]).astype(Xn.dtype)
    W = to_device_like(Wn, X)
    kern = Kernels(model)
    data = CohortData(Xs, ys)
    errs: dict[str, float] = {}

    def note(name: str, a: Any, ref: Any) -> None:
        errs[name] = max(errs.get(name, 0.0), _rel(_host(a), _host(ref)))

    # step_many vs step on the same mini-batches (clients with more than b rows)
    k = max(1, oracle.batches_per_step(b))
    mini = [c for c in range(C) if rows[c].size > b]
    if mini and oracle.batches_per_step(b) > 0:
        picks = {c: [g.permutation(rows[c].size)[:b] for _ in range(k)] for c in mini}
        batches = []
        for j in range(k):
            Xb = xp.stack([take_rows(Xs[c], picks[c][j]) for c in mini])
            yb = xp.stack([take_rows(ys[c], picks[c][j]) for c in mini])
            batches.append((Xb, yb, None))
        Wm = xp.stack([W[c, ...] for c in mini])
        s = oracle.step_many(kern, Wm, batches, None)
        for r, c in enumerate(mini):
            one = oracle.step(model, W[c, ...], Xs[c], ys[c], _FixedBatches(picks[c]), b)
            note("step", s.g[r, ...], one.g)
    # local_update_many vs local_update, and grouping invariance
    counters_equal = True
    bits = True
    idx = np.arange(C, dtype=np.int64)
    for prox in (0.0, 0.5):
        for group in (idx[[c for c in range(C) if rows[c].size > b]],
                      idx[[c for c in range(C) if rows[c].size <= b]], idx):
            if group.size == 0:
                continue
            bsz = b if group is not idx else None
            samplers = [BatchSampler(np.random.default_rng(100 + int(c))) for c in group]
            Wg = xp.stack([W[int(c), ...] for c in group])
            res = local_update_many(oracle, kern, data, group, Wg, samplers, 3, 0.05, bsz,
                                    prox, None)
            for r, c in enumerate(group.tolist()):
                one = local_update(oracle, model, W[c, ...], Xs[c], ys[c], 3, 0.05,
                                   BatchSampler(np.random.default_rng(100 + c)), bsz,
                                   prox=prox)
                note("local_update", res.delta[r, ...], one.delta)
                counts = tuple(int(v[r]) for v in res.row_counts())
                counters_equal &= counts == (one.n_grad, one.n_hvp, one.n_inner)
                alone = local_update_many(oracle, kern, data, group[r:r + 1],
                                          Wg[r:r + 1, ...],
                                          [BatchSampler(np.random.default_rng(100 + c))], 3,
                                          0.05, bsz, prox, None)
                a, ref = _host(alone.delta[0, ...]), _host(res.delta[r, ...])
                if type(W) is np.ndarray:
                    bits &= bool(np.array_equal(a, ref))
                else:
                    bits &= _rel(a, ref) <= rtol
    # full-batch value / grad / personalize
    core = getattr(oracle, "base", oracle)
    Xf, yf, mf = data.full(idx)
    Fc, G = core.value_grad_many(kern, W, Xf, yf, mf)
    P = core.personalize_many(kern, W, Xf, yf, mf)
    for c in range(C):
        note("value", Fc[c], oracle.value(model, W[c, ...], Xs[c], ys[c]))
        note("grad", G[c, ...], oracle.grad(model, W[c, ...], Xs[c], ys[c]))
        note("personalize", P[c, ...], oracle.personalize(model, W[c, ...], Xs[c], ys[c]))
    worst = max(errs, key=errs.get)
    err = errs[worst]
    exact = bool(getattr(oracle, "exact_grad", True))
    return OracleCheck(grad=grad, grad_exact=exact, max_rel_error=err, worst=worst,
                       counters_equal=counters_equal, bit_identical=bits,
                       ok=(grad.ok or not exact) and err <= rtol and counters_equal and bits)
