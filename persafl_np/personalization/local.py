"""The client side of every algorithm: Q local steps on the personalized objective.

theory/personalization.md eq. (LOC-1) (theory brief B2):
    y_0 = w,  y_{q+1} = y_q − η g_i(y_q),  q = 0..Q−1,   Δ = y_0 − y_Q = η Σ_q g_i(y_q).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from persafl_np.models.base import Model
from persafl_np.personalization.base import Oracle

__all__ = ["LocalUpdate", "local_update"]


@dataclass(frozen=True)
class LocalUpdate:
    """Result of :func:`local_update`.

    Attributes
    ----------
    delta: Δ = y_0 − y_Q.
    n_grad, n_hvp, n_inner: summed oracle costs over the Q steps.
    inner_residual: the largest achieved inner ‖∇h‖ over the Q steps (Moreau), else 0.
    warm: warm-start state after the last step (pass it to the next job of this client).
    """

    delta: Any
    n_grad: int
    n_hvp: int
    n_inner: int
    inner_residual: float
    warm: Any = None


def local_update(
    oracle: Oracle,
    model: Model,
    w: Any,
    X: Any,
    y: Any,
    Q: int,
    eta: float,
    rng: np.random.Generator,
    batch_size: int | None = None,
    warm: Any = None,
) -> LocalUpdate:
    """Run Q steps y ← y − η g(y) from w and return Δ = w − y_Q (eq. (LOC-1)).

    ``batch_size=None`` uses full batches: deterministic, no randomness consumed.
    """
    if isinstance(Q, bool) or not isinstance(Q, (int, np.integer)) or Q < 1:
        raise ValueError(f"Q (local steps) must be an integer >= 1, got {Q!r}")
    eta = float(eta)
    if not math.isfinite(eta) or eta <= 0:
        raise ValueError(f"eta (client step size) must be a finite number > 0, got {eta!r}")
    yq = w
    n_grad = n_hvp = n_inner = 0
    resid = 0.0
    for _ in range(int(Q)):
        s = oracle.step(model, yq, X, y, rng, batch_size, warm)
        yq = yq - eta * s.g
        n_grad += s.n_grad
        n_hvp += s.n_hvp
        n_inner += s.n_inner
        resid = max(resid, s.inner_residual)
        warm = s.warm
    return LocalUpdate(
        delta=w - yq, n_grad=n_grad, n_hvp=n_hvp, n_inner=n_inner, inner_residual=resid, warm=warm
    )
