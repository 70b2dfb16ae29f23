"""The three alpha ranges of theory/personalization.md "Range of alpha" (MAML-9), numerically.

(MAML-7c) L_F = L + alpha rho B and the transfer gamma_F <= gamma (TR-1) hold for convex f up to
alpha = 2/L (not only 1/L) and fail beyond it; (MAML-7) holds for every alpha >= 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.data import shifted_least_squares
from persafl_np.models import LeastSquares, LogisticRegression
from persafl_np.personalization import MAML


def _lipschitz_ratios(oracle, model, X, y, rng, n=300, d=4):
    out = []
    for _ in range(n):
        w = rng.normal(size=d) * rng.choice([0.3, 1.0, 3.0])
        u = w + rng.normal(size=d) * rng.choice([1e-2, 0.3, 2.0])
        gw, gu = oracle.grad(model, w, X, y), oracle.grad(model, u, X, y)
        out.append(np.linalg.norm(gw - gu) / np.linalg.norm(w - u))
    return np.asarray(out)


@pytest.mark.parametrize("k", [0.5, 1.0, 1.5, 2.0])
def test_maml7c_holds_for_convex_f_up_to_two_over_L(k):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = (rng.random(40) < 0.5).astype(np.int64)
    model = LogisticRegression()
    L, rho, B = model.smoothness(X, y), model.hessian_lipschitz(X, y), model.grad_bound(X, y)
    alpha = k / L
    ratios = _lipschitz_ratios(MAML(alpha), model, X, y, rng)
    assert ratios.max() <= (L + alpha * rho * B) * (1 + 1e-9)
    # (MAML-7) for every alpha: the larger constant holds as well
    assert ratios.max() <= (L * (1 + alpha * L) ** 2 + alpha * rho * B) * (1 + 1e-9)


def test_maml7c_and_tr1_fail_beyond_two_over_L():
    # a quadratic with top eigenvalue L (shared design): L_F = max_a |a(1 - alpha a)^2| (MAML-8)
    p = shifted_least_squares(3, 3, 12, 4, spread=2.0, condition_number=5.0)
    model, L = LeastSquares(), p.L
    X, y = p.dataset.clients[0].X_train, p.dataset.clients[0].y_train
    evals, evecs = np.linalg.eigh(p.A)
    top = evecs[:, -1]

    def gamma2(alpha):
        G = np.stack([MAML(alpha).grad(model, np.zeros(3), c.X_train, c.y_train)
                      for c in p.dataset.clients])
        return float(np.mean(np.sum((G - G.mean(0)) ** 2, axis=1)))

    g_plain = gamma2(0.0)
    for k in (0.5, 1.0, 1.5, 2.0):
        assert gamma2(k / L) <= g_plain * (1 + 1e-9)  # (TR-1) up to 2/L
        w = np.ones(3)
        slope = np.linalg.norm(MAML(k / L).grad(model, w + top, X, y)
                               - MAML(k / L).grad(model, w, X, y))
        assert slope <= L * (1 + 1e-9)  # (MAML-7c) with rho = 0
    alpha = 2.5 / L
    slope = np.linalg.norm(MAML(alpha).grad(model, np.ones(3) + top, X, y)
                           - MAML(alpha).grad(model, np.ones(3), X, y))
    assert slope == pytest.approx(L * (alpha * L - 1) ** 2, rel=1e-8)
    assert slope > 2 * L  # L(alpha L - 1)^2 = 2.25 L: the convex constant L fails beyond 2/L
    # the transfer fails too: the spread along the top eigenvector is amplified
    shift = np.outer(np.arange(3) - 1.0, top) * 3.0
    from persafl_np.data import ClientData, FederatedDataset

    ds = FederatedDataset(clients=tuple(
        ClientData(X, X @ c, X[:0], y[:0]) for c in shift), n_features=3, n_classes=None,
        name="top")

    def gamma2_top(a):
        G = np.stack([MAML(a).grad(model, np.zeros(3), c.X_train, c.y_train) for c in ds.clients])
        return float(np.mean(np.sum((G - G.mean(0)) ** 2, axis=1)))

    assert gamma2_top(alpha) > 2 * gamma2_top(0.0)
