"""Moreau-envelope personalization (pFedMe): theory/personalization.md §3.

    F_i(w) = min_θ h(θ),   h(θ) = f_i(θ) + (λ/2)‖θ − w‖²            (eq. (ME-1))
    ∇F_i(w) = λ(w − θ̂_i(w)) = ∇f_i(θ̂_i(w))                          (eq. (ME-2))

The prox point θ̂_i(w) comes from an inner solver (:func:`solve_prox`): gradient descent with
step 1/(λ+L) — for λ > L the map contracts by q = 2L/(λ+L) (eq. (ME-5); q = L/(λ+L) for convex
f_i) — or, for convex f_i only, Nesterov's constant-momentum method. It stops after
``inner_steps`` iterations or when ‖∇h(θ)‖ ≤ ``inner_tol``, whichever comes first, and returns the
achieved ‖∇h(θ̃)‖ so the caller can bound the gradient error (eq. (ME-6)):

    ‖λ(w − θ̃) − ∇F_i(w)‖ ≤ λ‖∇h(θ̃)‖/(λ − L)      (λ‖∇h(θ̃)‖/λ = ‖∇h(θ̃)‖ for convex f_i).

Smoothness L: ``MoreauEnvelope(smoothness=L)`` uses that number for every inner problem (the
caller must make it valid for every mini-batch objective f_i(·; D), e.g. a per-sample bound;
note that the full-data L of a client need *not* bound a mini-batch's L). Without it:

* a mini-batch step (eq. (ME-9)) on rows D uses L_D = (1/|D|) Σ_{j∈D} L_j, the mean of the
  model's per-sample constants ``model.sample_smoothness`` (eq. (M-4)): a valid L for
  f_i(·; D) by eq. (ME-13), O(|D| d) and no spectral norm per step. A model without
  ``sample_smoothness`` gets ``model.smoothness`` of the batch (one spectral norm per call);
* a full-batch step and the full-data methods (``prox``, ``value``, ``grad``, ``personalize``
  and their cohort forms) use ``model.smoothness`` of the client's data (exact for least
  squares); the evaluator computes it once per run (``smoothness_many``).

λ ≤ L is rejected for non-convex models: h is then not strongly convex, the prox point may be
non-unique and F_i need not be differentiable (eq. (ME-4) breaks down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, NamedTuple

import numpy as np

from persafl_np.backend import (
    NUMPY_NAMESPACE,
    array_namespace,
    take_rows,
    to_device_like,
    to_numpy,
)
from persafl_np.models.base import Model
from persafl_np.parameters import Param, validate_fields
from persafl_np.personalization.base import OracleStep, PersonalizedConstants, sample_batch
from persafl_np.personalization.cohort import FullBatches, ManyStep

__all__ = [
    "DEFAULT_INNER_TOL",
    "DEFAULT_MAX_INNER",
    "INNER_METHODS",
    "PERSONALIZE_TOL",
    "MoreauEnvelope",
    "MoreauValue",
    "ProxResult",
    "solve_prox",
]

#: Accepted values of ``MoreauEnvelope(inner=...)``.
INNER_METHODS = ("gd", "nesterov")
#: ‖∇h‖ target when neither ``inner_steps`` nor ``inner_tol`` is given.
DEFAULT_INNER_TOL = 1e-10
#: Iteration cap when only ``inner_tol`` is given (or neither).
DEFAULT_MAX_INNER = 1000
#: ‖∇h‖ target of :meth:`MoreauEnvelope.personalize` (the served model θ̂_i(w)).
PERSONALIZE_TOL = 1e-10
#: Iteration cap of :meth:`MoreauEnvelope.personalize`.
PERSONALIZE_MAX_INNER = 10_000


@dataclass(frozen=True)
class ProxResult:
    """Output of :func:`solve_prox`.

    Attributes
    ----------
    theta: θ̃, the point whose inner gradient norm is ``residual``.
    residual: ‖∇h(θ̃)‖, h(θ) = f(θ) + (λ/2)‖θ − w‖².
    n_inner: solver iterations taken.
    n_grad: model gradient evaluations (n_inner + 1: the last one measures ``residual``).
    converged: ``residual <= tol`` (always False when no tolerance was set).
    """

    theta: Any
    residual: float
    n_inner: int
    n_grad: int
    converged: bool


@dataclass(frozen=True)
class MoreauValue:
    """Output of :meth:`MoreauEnvelope.value_info`.

    Attributes
    ----------
    value: h(θ̃) = f_i(θ̃) + (λ/2)‖θ̃ − w‖² ≥ F_i(w).
    gap_bound: h(θ̃) − F_i(w) ≤ ‖∇h(θ̃)‖²/(2μ), μ = λ − L (λ if convex), eq. (ME-7).
    prox: the inner solve (θ̃, residual, counters).
    """

    value: float
    gap_bound: float
    prox: ProxResult


def _norm(xp: Any, v: Any) -> float:
    return float(xp.sqrt(xp.sum(v * v)))


def solve_prox(
    model: Model,
    w: Any,
    X: Any,
    y: Any,
    lam: float,
    L: float,
    *,
    theta0: Any = None,
    method: str = "gd",
    max_steps: int = DEFAULT_MAX_INNER,
    tol: float | None = DEFAULT_INNER_TOL,
) -> ProxResult:
    """Approximate θ̂ = argmin_θ f(θ) + (λ/2)‖θ − w‖² (eqs. (ME-5), (ME-8)).

    ``method="gd"``: θ ← θ − ∇h(θ)/(λ+L). ``method="nesterov"`` (f convex, h λ-strongly convex,
    (λ+L)-smooth): constant momentum (1−√κ⁻¹)/(1+√κ⁻¹), κ = (λ+L)/λ, and the returned point is
    the extrapolated point at which the residual was measured. Starts at ``theta0`` (default w).
    The caller is responsible for λ > L or convexity (:class:`MoreauEnvelope` checks it).
    """
    xp = array_namespace(w, X)
    step = 1.0 / (lam + L)
    theta = w if theta0 is None else theta0
    tol_v = -1.0 if tol is None else float(tol)
    if method == "nesterov":
        q = math.sqrt(lam / (lam + L))
        mom = (1.0 - q) / (1.0 + q)
        x_prev = theta
    k = 0
    while True:
        gh = model.grad(theta, X, y) + lam * (theta - w)
        r = _norm(xp, gh)
        if r <= tol_v or k >= max_steps or not math.isfinite(r):
            return ProxResult(
                theta=theta, residual=r, n_inner=k, n_grad=k + 1, converged=r <= tol_v
            )
        if method == "nesterov":
            x_new = theta - step * gh
            theta = x_new + mom * (x_new - x_prev)
            x_prev = x_new
        else:
            theta = theta - step * gh
        k += 1


class ProxMany(NamedTuple):
    """Output of :func:`solve_prox_many`: the :class:`ProxResult` fields, one row per client."""

    theta: Any
    residual: np.ndarray
    n_inner: np.ndarray
    n_grad: np.ndarray


def _take_rows(xp: Any, sel: Any, A: Any) -> Any:
    return A[sel] if type(A) is np.ndarray else xp.take(A, sel, axis=0)


def _batch_grad(kern: Any, X: Any, y: Any, mask: Any) -> Any:
    """θ ↦ kern.grad(θ, X, y, mask) for the inner solver's fixed batch; through the model's
    ``grad_many_on`` (labels prepared once) when the kernels call the model's own
    ``grad_many`` (same bits)."""
    on = getattr(getattr(kern, "model", None), "grad_many_on", None)
    if on is not None and getattr(kern, "native", False):
        return on(X, y, mask)
    return lambda theta: kern.grad(theta, X, y, mask)


def solve_prox_many(
    kern: Any, W: Any, X: Any, y: Any, mask: Any, lam: float, L: np.ndarray, *,
    theta0: Any = None, method: str = "gd", max_steps: int = DEFAULT_MAX_INNER,
    tol: float | None = DEFAULT_INNER_TOL,
) -> ProxMany:
    """:func:`solve_prox` stacked over a cohort, each row stopping on its own rule.

    Row c runs exactly the iteration of :func:`solve_prox` with L = ``L[c]`` (step
    1/(λ + L[c]), eqs. (ME-5), (ME-8)) and stops when ‖∇h_c‖ ≤ tol, after ``max_steps``
    iterations, or at a non-finite residual. Rows that stopped leave the stacked computation
    (the others are gathered), so the cost follows the iterations each client needs.
    """
    on_np = type(W) is np.ndarray and type(X) is np.ndarray
    xp = NUMPY_NAMESPACE if on_np else array_namespace(W, X)
    C = int(W.shape[0])
    if C == 0:
        return ProxMany(W, np.zeros(0), np.zeros(0, dtype=np.int64), np.ones(0, dtype=np.int64))
    L = np.asarray(L, dtype=np.float64)
    if on_np:
        # the per-row step spread over the whole (C, p) block once: a (C, 1) operand makes
        # every iteration's multiply a row-by-row broadcast loop (~2.4x slower at 13 x 610)
        step_all = np.repeat((1.0 / (lam + L)).astype(W.dtype, copy=False)[:, None],
                             W.shape[1], axis=1)
    else:
        step_all = xp.asarray(to_device_like(1.0 / (lam + L), W), dtype=W.dtype)[:, None]
    tol_v = -1.0 if tol is None else float(tol)
    theta = W if theta0 is None else theta0
    out_theta = [None] * C
    resid = np.zeros(C, dtype=np.float64)
    n_inner = np.zeros(C, dtype=np.int64)
    act = np.arange(C)
    Wa, Xa, ya, ma, step = W, X, y, mask, step_all
    if method == "nesterov":
        q = np.sqrt(lam / (lam + L))
        mom_all = xp.asarray(to_device_like((1.0 - q) / (1.0 + q), W), dtype=W.dtype)[:, None]
        if on_np:
            mom_all = np.repeat(mom_all, W.shape[1], axis=1)
        mom, x_prev = mom_all, theta
    k = 0
    grad = _batch_grad(kern, Xa, ya, ma)
    while True:
        if on_np:
            # ∇h = ∇f(θ) + λ(θ − w) and its row norms, temporaries reused (same arithmetic)
            t = theta - Wa
            t *= lam
            gh = np.add(grad(theta), t, out=t)
            sq = np.add.reduce(gh * gh, axis=1)
            # a fixed K before its last iterate: no row can stop unless ‖∇h‖² is not finite
            # (NaN propagates through maximum), and r = √(‖∇h‖²) is not needed
            skip = tol is None and k < max_steps and np.maximum.reduce(sq) < math.inf
            r = None if skip else np.sqrt(sq).astype(np.float64, copy=False)
        else:
            gh = grad(theta) + lam * (theta - Wa)
            r = np.asarray(to_numpy(xp.sqrt(xp.sum(gh * gh, axis=1))), dtype=np.float64)
        # No row stops at this iterate iff k < max_steps and every r is finite and > tol
        # (NaN propagates through minimum/maximum): two reductions instead of the elementwise
        # stopping vector on most iterations.
        if r is None or (k < max_steps and (tol is None or np.minimum.reduce(r) > tol_v)
                         and np.maximum.reduce(r) < math.inf):
            done = None
        else:
            done = (r <= tol_v) | (k >= max_steps) | ~np.isfinite(r)
        if done is not None and k and act.size == C and bool(done.all()):
            # every row stops at the same iterate (a fixed K, the common case): θ itself is
            # the stacked result (a fresh array for k ≥ 1), no per-row copy-out
            n_all = np.full(C, k, dtype=np.int64)
            return ProxMany(theta, r, n_all, n_all + 1)
        if done is not None and done.any():
            for j in np.flatnonzero(done).tolist():
                c = int(act[j])
                out_theta[c] = theta[j, ...]
                resid[c], n_inner[c] = r[j], k
            keep = np.flatnonzero(~done)
            if keep.size == 0:
                break
            sel = keep if type(W) is np.ndarray else to_device_like(keep, W)
            take = partial(_take_rows, xp, sel)
            act = act[keep]
            theta, gh, Wa, Xa, ya, step = take(theta), take(gh), take(Wa), take(Xa), take(ya), \
                take(step)
            ma = None if ma is None else take(ma)
            grad = _batch_grad(kern, Xa, ya, ma)
            if method == "nesterov":
                mom, x_prev = take(mom), take(x_prev)
        if on_np:
            # θ − step·∇h into ∇h's buffer (a fresh array of this iteration: θ starts as the
            # caller's W or θ₀, which must not change)
            x_new = np.multiply(gh, step, out=gh)
            np.subtract(theta, x_new, out=x_new)
            if method == "nesterov":
                t = np.subtract(x_new, x_prev)
                np.multiply(mom, t, out=t)
                theta = np.add(x_new, t, out=t)
                x_prev = x_new
            else:
                theta = x_new
        elif method == "nesterov":
            x_new = theta - step * gh
            theta = x_new + mom * (x_new - x_prev)
            x_prev = x_new
        else:
            theta = theta - step * gh
        k += 1
    return ProxMany(xp.stack(out_theta), resid, n_inner, n_inner + 1)


def _finite_smoothness(L: float) -> float:
    """``L`` itself; ``ValueError`` when it is infinite or NaN (e.g. the MLP, Prop. MLP-1)."""
    if not math.isfinite(L):
        raise ValueError(
            "model.smoothness is infinite on this data; pass MoreauEnvelope(smoothness=L) "
            "with a finite L valid for every batch"
        )
    return L


@dataclass(frozen=True)
class MoreauEnvelope:
    """Moreau-envelope oracle (see the module docstring).

    Parameters
    ----------
    lam: λ > 0 (λ > L required unless the model is convex; checked per call).
    inner: ``"gd"`` or ``"nesterov"`` (convex models only).
    inner_steps: iteration cap K of the inner solver (``None``: :data:`DEFAULT_MAX_INNER`).
    inner_tol: stop when ‖∇h‖ ≤ inner_tol. With ``inner_steps`` set and ``inner_tol=None`` the
        solver runs exactly K steps (pFedMe's regime); with neither set, inner_tol defaults to
        :data:`DEFAULT_INNER_TOL`.
    warm_start: start the inner solver of :meth:`step` from the ``warm`` state (the previous
        θ̃ of this client) and return the new θ̃ as ``OracleStep.warm``.
    smoothness: optional L used for every inner problem (see the module docstring).
    """

    lam: float
    inner: str = "gd"
    inner_steps: int | None = None
    inner_tol: float | None = None
    warm_start: bool = True
    smoothness: float | None = None
    name: str = "moreau"
    params: ClassVar[tuple[Param, ...]] = (
        Param("lam", "float", 15.0, "Moreau parameter lambda (> L unless f_i is convex)",
              lo=0.0, lo_open=True),
        Param("inner", "str", "gd", "inner prox solver (nesterov: convex models only)",
              choices=INNER_METHODS),
        Param("inner_steps", "int", None, "inner iteration cap K (omit: DEFAULT_MAX_INNER)",
              lo=1, optional=True),
        Param("inner_tol", "float", None, "stop the inner solver when ||grad h|| <= inner_tol",
              lo=0.0, lo_open=True, optional=True),
        Param("warm_start", "bool", True, "start each prox solve from the client's last one"),
        Param("smoothness", "float", None, "L of every inner problem (a bound valid for every "
              "mini-batch when f_i is nonconvex)", lo=0.0, lo_open=True, optional=True),
    )

    def __post_init__(self) -> None:
        validate_fields(self)

    # -- stopping rule -----------------------------------------------------------------------
    @property
    def max_steps(self) -> int:
        """Effective inner iteration cap."""
        return DEFAULT_MAX_INNER if self.inner_steps is None else self.inner_steps

    @property
    def tol(self) -> float | None:
        """Effective ‖∇h‖ tolerance (``None``: run exactly :attr:`max_steps` iterations)."""
        if self.inner_tol is None and self.inner_steps is None:
            return DEFAULT_INNER_TOL
        return self.inner_tol

    def strong_convexity(self, model: Model, L: float) -> float:
        """μ of h: λ for convex f_i, λ − L otherwise (raises ``ValueError`` when λ ≤ L)."""
        if model.is_convex():
            return self.lam
        if self.lam <= L:
            raise ValueError(
                f"lam must be > L = {L:.6g} for a non-convex model, got {self.lam:.6g}: for "
                "lam <= L the inner problem f + (lam/2)||theta - w||^2 is not strongly convex, "
                "the prox point may not be unique and the envelope need not be smooth "
                "(theory/personalization.md eq. (ME-4))"
            )
        return self.lam - L

    def _smoothness(self, model: Model, X: Any, y: Any) -> float:
        L = self.smoothness if self.smoothness is not None else float(model.smoothness(X, y))
        return _finite_smoothness(L)

    def _step_smoothness(self, model: Model, X: Any, y: Any) -> float:
        """L_D of a step's batch: ``smoothness`` if set, else the per-sample mean (ME-13)."""
        if self.smoothness is not None or not hasattr(model, "sample_smoothness"):
            return self._smoothness(model, X, y)
        return _finite_smoothness(float(np.mean(model.sample_smoothness(X, y))))

    def _solve(
        self, model: Model, w: Any, X: Any, y: Any, theta0: Any, max_steps: int, tol: float | None,
        method: str | None = None, L: float | None = None,
    ) -> tuple[ProxResult, float]:
        method = self.inner if method is None else method
        if method == "nesterov" and not model.is_convex():
            raise ValueError(
                "inner='nesterov' needs a convex model (model.is_convex() is False); use inner='gd'"
            )
        if L is None:
            L = self._smoothness(model, X, y)
        try:
            self.strong_convexity(model, L)
        except ValueError as exc:
            if self.smoothness is not None:
                raise
            # L came from this batch: a mini-batch can be less smooth than the full data.
            raise ValueError(
                f"{exc}. L was computed on this batch of {X.shape[0]} samples; pass "
                "MoreauEnvelope(smoothness=...) with a bound valid for every batch (e.g. the "
                "largest per-sample L) and a lam above it"
            ) from None
        res = solve_prox(
            model, w, X, y, self.lam, L, theta0=theta0, method=method,
            max_steps=max_steps, tol=tol,
        )
        return res, L

    # -- the oracle --------------------------------------------------------------------------
    def prox(self, model: Model, w: Any, X: Any, y: Any, warm: Any = None) -> ProxResult:
        """The configured inner solve on (X, y), from ``warm`` (if given) else from w."""
        return self._solve(model, w, X, y, self._start(w, warm), self.max_steps, self.tol)[0]

    def value_info(self, model: Model, w: Any, X: Any, y: Any, warm: Any = None) -> MoreauValue:
        """h(θ̃) ≥ F_i(w) with the certified gap ‖∇h‖²/(2μ) (eqs. (ME-1), (ME-7)), full batch."""
        res, L = self._solve(model, w, X, y, self._start(w, warm), self.max_steps, self.tol)
        xp = array_namespace(w, X)
        d = res.theta - w
        val = float(model.loss(res.theta, X, y)) + 0.5 * self.lam * float(xp.sum(d * d))
        mu = self.strong_convexity(model, L)
        return MoreauValue(value=val, gap_bound=res.residual**2 / (2.0 * mu), prox=res)

    def value(self, model: Model, w: Any, X: Any, y: Any) -> float:
        """F_i(w) at the computed prox point; see :meth:`value_info` for its accuracy."""
        return self.value_info(model, w, X, y).value

    def grad(self, model: Model, w: Any, X: Any, y: Any) -> Any:
        """λ(w − θ̃) on the full batch, cold start (eq. (ME-2); error: eq. (ME-6))."""
        return self.lam * (w - self.prox(model, w, X, y).theta)

    def step(
        self,
        model: Model,
        w: Any,
        X: Any,
        y: Any,
        rng: np.random.Generator,
        batch_size: int | None,
        warm: Any = None,
    ) -> OracleStep:
        """Mini-batch prox (one draw D): g = λ(w − θ̃_D), θ̃_D ≈ prox of f_i(·; D) (eq. (ME-9))."""
        idx = sample_batch(rng, X.shape[0], batch_size)
        Xb, yb = take_rows(X, idx), take_rows(y, idx)
        # full batch: the exact L of the client's data; a mini-batch: the bound (ME-13)
        L = None if isinstance(idx, slice) else self._step_smoothness(model, Xb, yb)
        res = self._solve(model, w, Xb, yb, self._start(w, warm), self.max_steps, self.tol,
                          L=L)[0]
        return OracleStep(
            g=self.lam * (w - res.theta),
            n_grad=res.n_grad,
            n_hvp=0,
            n_inner=res.n_inner,
            inner_residual=res.residual,
            warm=res.theta if self.warm_start else None,
        )

    @property
    def exact_grad(self) -> bool:
        """``grad`` is ∇F_i to the inner tolerance (eq. (ME-6)); with a fixed iteration count
        and no tolerance it is the K-step approximation, not ∇F_i."""
        return self.tol is not None

    def batches_per_step(self, batch_size: int | None) -> int:
        """One batch D per step (eq. (ME-9))."""
        return 1

    def smoothness_many(self, model: Model, X: Any, y: Any, mask: Any) -> np.ndarray:
        """L of every row's inner problem: ``smoothness`` if set, else ``model.smoothness`` of
        row c's (real) rows, each checked as in the single-client path."""
        C = int(X.shape[0])
        if self.smoothness is not None:
            L = np.full(C, self.smoothness)
        else:
            Xn, yn = to_numpy(X), to_numpy(y)
            mn = None if mask is None else to_numpy(mask)
            L = np.empty(C)
            for c in range(C):
                n = Xn.shape[1] if mn is None else int(mn[c].sum())
                L[c] = self._smoothness(model, Xn[c, :n], yn[c, :n])
        self._check_solver(model, L)
        return L

    def step_smoothness_many(self, model: Model, X: Any, y: Any, mask: Any) -> np.ndarray:
        """L_D of every row's step batch, as :meth:`step` computes it: ``smoothness`` if set,
        else the mean of ``model.sample_smoothness`` over row c's real rows (eq. (ME-13)), else
        :meth:`smoothness_many`; checked as in the single-client path."""
        if self.smoothness is not None or not hasattr(model, "sample_smoothness"):
            return self.smoothness_many(model, X, y, mask)
        Lj = model.sample_smoothness(X, y)                               # (C, m)
        if mask is None:
            L = np.add.reduce(Lj, axis=-1)
            L /= Lj.shape[-1]
        else:
            mn = np.asarray(to_numpy(mask), dtype=np.float64)
            L = np.add.reduce(Lj * mn, axis=-1) / np.add.reduce(mn, axis=-1)
        _finite_smoothness(float(np.maximum.reduce(L)))
        self._check_solver(model, L)
        return L

    def _check_solver(self, model: Model, L: np.ndarray) -> None:
        if self.inner == "nesterov" and not model.is_convex():
            raise ValueError(
                "inner='nesterov' needs a convex model (model.is_convex() is False); use inner='gd'"
            )
        if not model.is_convex():
            self.strong_convexity(model, float(np.max(L)))

    def step_many(self, kern: Any, Y: Any, batches: list, warm: Any = None) -> ManyStep:
        """eq. (ME-9) for a cohort: G[c] = λ(Y[c] − θ̃_c), θ̃_c from the stacked inner solver
        started at warm[c] (``warm_start``) or Y[c]; each row stops on its own tolerance."""
        X, y, mask = batches[0]
        if isinstance(batches, FullBatches):
            L = self.smoothness_many(kern.model, X, y, mask)
        else:
            L = self.step_smoothness_many(kern.model, X, y, mask)
        theta0 = warm if (warm is not None and self.warm_start) else Y
        res = solve_prox_many(kern, Y, X, y, mask, self.lam, L, theta0=theta0,
                              method=self.inner, max_steps=self.max_steps, tol=self.tol)
        G = Y - res.theta
        G *= self.lam                               # λ(Y − θ̃), in place (same rounding)
        return ManyStep(G, res.n_grad, 0, res.n_inner, res.residual,
                        res.theta if self.warm_start else None)

    def value_grad_many(self, kern: Any, W: Any, X: Any, y: Any, mask: Any,
                        L: Any = None) -> tuple[Any, Any]:
        """Full-batch (h(θ̃_c), λ(W[c] − θ̃_c)) for a cohort, cold start (eqs. (ME-1), (ME-2)).

        ``L``: each client's full-data smoothness (computed once per run by the caller);
        None computes it here."""
        if L is None:
            L = self.smoothness_many(kern.model, X, y, mask)
        res = solve_prox_many(kern, W, X, y, mask, self.lam, L, method=self.inner,
                              max_steps=self.max_steps, tol=self.tol)
        xp = array_namespace(W, X)
        D = res.theta - W
        val = kern.loss(res.theta, X, y, mask) + 0.5 * self.lam * xp.sum(D * D, axis=1)
        return val, self.lam * (W - res.theta)

    def personalize_many(self, kern: Any, W: Any, X: Any, y: Any, mask: Any,
                         L: Any = None) -> Any:
        """θ̂_c(W[c]) to ‖∇h‖ ≤ PERSONALIZE_TOL (cap PERSONALIZE_MAX_INNER), per
        :meth:`personalize`."""
        if L is None:
            L = self.smoothness_many(kern.model, X, y, mask)
        tol = PERSONALIZE_TOL if self.inner_tol is None else min(self.inner_tol, PERSONALIZE_TOL)
        return solve_prox_many(kern, W, X, y, mask, self.lam, L,
                               method=self._personalize_method(kern.model),
                               max_steps=PERSONALIZE_MAX_INNER, tol=tol).theta

    @staticmethod
    def _personalize_method(model: Model) -> str:
        # The served model only needs ‖∇h‖ ≤ tol; for convex f_i Nesterov's method reaches it in
        # O(√κ) instead of O(κ) iterations, κ = (λ+L)/λ (3x fewer on the 100-client workload).
        return "nesterov" if model.is_convex() else "gd"

    def stochastic_grad(
        self, model: Model, w: Any, X: Any, y: Any, rng: np.random.Generator, batch_size: int | None
    ) -> Any:
        return self.step(model, w, X, y, rng, batch_size).g

    def personalize(self, model: Model, w: Any, X: Any, y: Any) -> Any:
        """θ̂_i(w), full batch, to ‖∇h‖ ≤ :data:`PERSONALIZE_TOL` (cap PERSONALIZE_MAX_INNER).

        The solver is Nesterov's method for convex models (any method meets the tolerance; this
        one in O(√κ) iterations) and gradient descent otherwise, whatever ``inner`` says."""
        tol = PERSONALIZE_TOL if self.inner_tol is None else min(self.inner_tol, PERSONALIZE_TOL)
        return self._solve(model, w, X, y, w, PERSONALIZE_MAX_INNER, tol,
                           self._personalize_method(model))[0].theta

    def _start(self, w: Any, warm: Any) -> Any:
        if warm is None or not self.warm_start:
            return w
        if tuple(warm.shape) != tuple(w.shape):
            raise ValueError(f"warm must have the shape of w {tuple(w.shape)}, got {warm.shape}")
        return warm

    # -- constants ---------------------------------------------------------------------------
    def constants(
        self,
        L: float,
        rho: float,
        B: float,
        *,
        convex: bool = False,
        quadratic_eigs: Any = None,
        sigma: float = 0.0,
        batch_size: int | None = None,
    ) -> PersonalizedConstants:
        """L_F of F_i and the bias of the mini-batch prox oracle (theory/personalization.md §3).

        * ``quadratic_eigs`` (Hessian eigenvalues a, all with a + λ > 0):
          L_F = max_a |λa/(a + λ)| exactly (eq. (ME-10)).
        * ``convex=True`` (eigenvalues in [0, L]): L_F = λL/(λ + L) (eq. (ME-4), attained at a = L).
        * otherwise λ > L is required: L_F = λL/(λ − L) (eq. (ME-4), attained at a = −L).
        * bias (eq. (ME-11)): ‖E g − ∇F_i‖ ≤ (λ/μ)(σ/√b + inner_tol), μ = λ − L (λ if convex);
          with no ``inner_tol`` the per-call term (λ/μ)·``OracleStep.inner_residual`` applies.
        ρ and B are not needed (ME needs neither a Lipschitz Hessian nor bounded gradients).
        """
        L, sigma, lam = float(L), float(sigma), self.lam
        if not (math.isfinite(L) and L >= 0):
            raise ValueError(f"L must be a finite number >= 0, got {L!r}")
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
        if quadratic_eigs is not None:
            eigs = np.asarray(quadratic_eigs, dtype=np.float64).ravel()
            if eigs.size == 0 or not np.all(np.isfinite(eigs)):
                raise ValueError("quadratic_eigs must be a non-empty array of finite eigenvalues")
            if np.any(eigs + lam <= 0):
                raise ValueError(
                    f"lam must exceed -min(quadratic_eigs) = {-eigs.min():.6g}, got {lam:.6g}: "
                    "otherwise the inner problem is unbounded below"
                )
            L_F = float(np.max(np.abs(lam * eigs / (eigs + lam))))
            mu = float(np.min(eigs)) + lam
            note = "ME quadratic: L_F = max|lam a/(a+lam)| (ME-10)"
        elif convex:
            L_F, mu, note = lam * L / (lam + L), lam, "ME convex: L_F = lam L/(lam+L) (ME-4)"
        else:
            if lam <= L:
                raise ValueError(
                    f"lam must be > L = {L:.6g} for a non-convex f_i, got {lam:.6g}: the envelope "
                    "need not be smooth for lam <= L (theory/personalization.md eq. (ME-4))"
                )
            L_F, mu, note = lam * L / (lam - L), lam - L, "ME: L_F = lam L/(lam-L) (ME-4)"
        bias = 0.0
        if batch_size is not None:
            if int(batch_size) < 1:
                raise ValueError(f"batch_size must be >= 1 or None, got {batch_size!r}")
            bias += lam / mu * sigma / math.sqrt(int(batch_size))
        if self.inner_tol is not None:
            bias += lam / mu * self.inner_tol
        return PersonalizedConstants(L_F=L_F, bias=bias, note=note)

    # -- per-variant bound constants (bounds/constants.py asks the oracle, never its class) --
    def bound_variant(self) -> str:
        """The variant label of the bounds ("ME")."""
        return "ME"

    def personalized_hessian(self, A: Any) -> np.ndarray:
        """H_F of eq. (AS-1) for f = ½(w − c)ᵀA(w − c): λA(A + λI)⁻¹."""
        A = np.asarray(A, dtype=np.float64)
        return self.lam * np.linalg.solve(A + self.lam * np.eye(A.shape[0]), A)

    def gradient_bound_factor(self, L: float) -> float:
        """‖∇F_i(w)‖ = ‖∇f_i(θ̂)‖ ≤ B_i (eq. (AS-4)): factor 1."""
        return 1.0

    def noise_sigma2(self) -> float:
        """σ² added on top of the full-batch gradient: none."""
        return 0.0
