"""Synthetic federated data: FedProx Synthetic(α, β), shifted least squares, robust regression.

* :func:`fedprox_synthetic` — the classification benchmark of Li et al., "Federated Optimization
  in Heterogeneous Networks" (FedProx, MLSys 2020, §5.1), reproduced from the authors' generator
  ``litian96/FedProx: data/synthetic_1_1/generate_synthetic.py`` (non-iid) and
  ``data/synthetic_iid/generate_iid.py`` (iid), vectorized.
* :func:`shifted_least_squares` — n least-squares clients sharing one design X, so every
  f_i(w) = ½(w − c_i)ᵀA(w − c_i) with A = XᵀX/m and the constants L, F*, w*, γ² are exact
  (theory/assumptions.md eqs. (AS-1)–(AS-3); the loss is theory/models.md eq. (LS-1)).
* :func:`robust_family` — linear-regression clients with shifted optima, for the nonconvex
  ``RobustRegression`` model (φ(r) = r²/(1+r²), theory/models.md §GM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from persafl_np.data.arguments import (
    N_CLIENTS,
    N_FEATURES,
    N_SAMPLES,
    TEST_FRACTION,
    check_int,
)
from persafl_np.data.federated import ClientData, FederatedDataset
from persafl_np.data.partition import split_train_test
from persafl_np.data.rng import SeedLike, as_generator
from persafl_np.parameters import Param, check_args, declares

__all__ = [
    "ShiftedLeastSquares",
    "fedprox_client_sizes",
    "fedprox_synthetic",
    "robust_family",
    "shifted_least_squares",
]


# --------------------------------------------------------------------------- FedProx Synthetic
def fedprox_client_sizes(
    n_clients: int,
    seed: SeedLike = None,
    size_lognormal: tuple[float, float] = (4.0, 2.0),
    min_samples: int = 50,
) -> np.ndarray:
    """Client sample counts m_k = ⌊LogNormal(μ, s)⌋ + ``min_samples`` (FedProx's power law).

    Matches ``np.random.lognormal(4, 2, NUM_USER).astype(int) + 50`` in the FedProx generator:
    μ, s are the mean and standard deviation of the underlying normal, so m_k − 50 has a
    heavy (log-normal) right tail; median e^μ + 50 ≈ 105 for the defaults.
    """
    n_clients = check_int(n_clients, "n_clients", 1)
    if len(size_lognormal) != 2:
        raise ValueError(f"size_lognormal must be a pair (mu, sigma), got {size_lognormal!r}")
    mu, s = float(size_lognormal[0]), float(size_lognormal[1])
    if not (math.isfinite(mu) and math.isfinite(s) and s >= 0.0):
        raise ValueError(
            f"size_lognormal must be (finite mu, finite sigma >= 0), got {size_lognormal!r}"
        )
    min_samples = check_int(min_samples, "min_samples", 1)
    return as_generator(seed).lognormal(mu, s, n_clients).astype(np.int64) + min_samples


@declares(
    N_CLIENTS,
    Param("alpha", "float", 0.5, "FedProx model heterogeneity alpha", lo=0.0),
    Param("beta", "float", 0.5, "FedProx feature heterogeneity beta", lo=0.0),
    replace(N_FEATURES, default=60),
    Param("n_classes", "int", 10, "classes C", lo=2),
    Param("iid", "bool", False, "one shared (W, b) for every client"),
    Param("min_samples", "int", 50, "added to each client's lognormal size", lo=1),
    TEST_FRACTION,
)
def fedprox_synthetic(
    alpha: float,
    beta: float,
    n_clients: int = 30,
    seed: SeedLike = None,
    *,
    n_features: int = 60,
    n_classes: int = 10,
    iid: bool = False,
    test_fraction: float = 0.2,
    size_lognormal: tuple[float, float] = (4.0, 2.0),
    min_samples: int = 50,
) -> FederatedDataset:
    """FedProx ``Synthetic(α, β)`` (Li et al. 2020, §5.1 / appendix C.1), vectorized.

    Source: ``litian96/FedProx``, ``data/synthetic_1_1/generate_synthetic.py`` and
    ``data/synthetic_iid/generate_iid.py``. For each client k = 0..n−1, with d = ``n_features``
    and C = ``n_classes``:

    * m_k = ⌊LogNormal(4, 2)⌋ + 50 samples (:func:`fedprox_client_sizes`);
    * u_k ~ N(0, α²)  (model prior; the code's ``np.random.normal(0, alpha)``, i.e. α is a
      *standard deviation* although the paper writes N(0, α));
    * B_k ~ N(0, β²), v_k ~ N(B_k, 1) ∈ ℝᵈ (data prior);
    * W_k ~ N(u_k, 1) ∈ ℝ^{d×C}, b_k ~ N(u_k, 1) ∈ ℝ^C (the same u_k for both, as in the code);
    * x ~ N(v_k, Σ), Σ = diag(j^{−1.2}), j = 1..d;
    * y = argmax(softmax(xᵀW_k + b_k)) = argmax(xᵀW_k + b_k).

    **Note (a property of the reference recipe, kept as is):** u_k shifts *every* entry of W_k
    and b_k by the same scalar, so all C logits move by the same u_k(1 + Σ_j x_j) and the
    argmax is unchanged: **α has no effect on the data distribution** (with the same seed the
    arrays are identical for every α, up to ties). Client heterogeneity in the labelling comes
    from the independent per-client W_k, b_k (present for every α, even α = 0), and in the
    features from β. Synthetic(0, 0) is therefore still non-iid; only ``iid=True`` is iid.

    ``iid=True`` is ``generate_iid.py``: one W, b ~ N(0, 1) shared by all clients and v_k = 0;
    ``alpha`` and ``beta`` are then ignored (but still validated).

    Deviations from the reference (none changes the distribution): sampling is vectorized
    (x = v_k + √Σ ⊙ z with z ~ N(0, I), no per-sample loop), randomness comes from ``seed``
    (a NumPy ``Generator``, not the global state), so the arrays are not the reference files'
    arrays; the train/test split is ``test_fraction`` = 0.2 by default where the reference
    keeps 90 % for training (pass ``test_fraction=0.1`` to match); ``n_features``,
    ``n_classes``, ``size_lognormal`` and ``min_samples`` are exposed (defaults = the paper's).
    Draw order: sizes, then per client (u_k, B_k, v_k, W_k, b_k, x); in iid mode the shared
    (W, b) are drawn once after the sizes.
    """
    a, b, n_clients, d, C, tf = check_args(
        fedprox_synthetic, alpha=alpha, beta=beta, n_clients=n_clients, n_features=n_features,
        n_classes=n_classes, test_fraction=test_fraction)
    rng = as_generator(seed)
    sizes = fedprox_client_sizes(n_clients, rng, size_lognormal, min_samples)
    sd_x = np.sqrt(np.arange(1, d + 1, dtype=np.float64) ** -1.2)  # √Σ_jj, Σ_jj = j^{-1.2}
    if iid:
        W_shared = rng.normal(0.0, 1.0, (d, C))
        b_shared = rng.normal(0.0, 1.0, C)
    clients = []
    for m in sizes:
        if iid:
            W, bias, v = W_shared, b_shared, np.zeros(d)
        else:
            u = rng.normal(0.0, a)
            B = rng.normal(0.0, b)
            v = rng.normal(B, 1.0, d)
            W = rng.normal(u, 1.0, (d, C))
            bias = rng.normal(u, 1.0, C)
        X = v + sd_x * rng.standard_normal((int(m), d))
        y = np.argmax(X @ W + bias, axis=1).astype(np.int64)
        tr, te = split_train_test(np.arange(int(m)), tf, rng)
        clients.append(ClientData(X[tr], y[tr], X[te], y[te]))
    tag = "iid" if iid else f"alpha={a:g},beta={b:g}"
    return FederatedDataset(
        clients=tuple(clients), n_features=d, n_classes=C, name=f"fedprox_synthetic({tag})"
    )


# --------------------------------------------------------------------------- shifted least squares
@dataclass(frozen=True)
class ShiftedLeastSquares:
    """A least-squares federation with a shared design: f_i(w) = ½(w − c_i)ᵀA(w − c_i).

    Every client i has the same design ``X`` (m × d) and targets y_i = X c_i, so with the
    ``LeastSquares()`` model f_i(w) = ‖Xw − Xc_i‖²/(2m) = ½(w − c_i)ᵀA(w − c_i), A = XᵀX/m
    (theory/models.md eq. (LS-1)), and f = (1/n)Σ f_i. The *test* split of each client is the
    training split again (same X, same y_i): this family is for optimization and bound tests,
    where generalization is not measured.

    Exact constants (derivations in the method docstrings): :attr:`L`, :attr:`w_star`,
    :attr:`F_star`, :attr:`gamma2`. The personalized objectives of this family are again
    shared-Hessian quadratics F_i(w) = ½(w − c_i)ᵀH_F(w − c_i) (MAML: H_F = A(I − αA)²;
    Moreau: H_F = λA(A + λI)⁻¹; theory/assumptions.md eq. (AS-1)), so :meth:`f_star_for` and
    :meth:`gamma2_for` take H_F and give the exact F* (AS-2) and γ_F² (AS-3) of any variant.

    Attributes
    ----------
    X: ``(m, d)`` shared design (read-only).
    centers: ``(n, d)`` client optima c_i (read-only).
    A: ``(d, d)`` = XᵀX/m, symmetric positive semidefinite (read-only).
    dataset: the :class:`FederatedDataset` (n clients, regression).
    """

    X: np.ndarray
    centers: np.ndarray
    A: np.ndarray
    dataset: FederatedDataset

    @property
    def n_clients(self) -> int:
        return int(self.centers.shape[0])

    @property
    def L(self) -> float:
        """L = λ_max(A): ∇²f_i = A for every i and w, so this is each f_i's (and f's) exact
        smoothness constant; equals ``LeastSquares().smoothness(X, y_i)``."""
        return float(np.linalg.eigvalsh(self.A)[-1])

    @property
    def mu(self) -> float:
        """λ_min(A) (≥ 0 up to rounding; > 0 iff every f_i is strongly convex)."""
        return float(np.linalg.eigvalsh(self.A)[0])

    @property
    def w_star(self) -> np.ndarray:
        """c̄ = (1/n)Σ c_i: ∇f(w) = A(w − c̄) vanishes there, so c̄ minimizes f (the unique
        minimizer when A ≻ 0; one of an affine set of minimizers otherwise)."""
        return self.centers.mean(axis=0)

    def f_star_for(self, H: np.ndarray | None = None) -> float:
        """F* of theory/assumptions.md eq. (AS-2), in closed form for H ⪰ 0:

        inf_w (1/n)Σ ½(w − c_i)ᵀH(w − c_i) = (1/(2n)) Σ (c_i − c̄)ᵀH(c_i − c̄).

        Proof: (1/n)Σ ½(w − c_i)ᵀH(w − c_i) = ½(w − c̄)ᵀH(w − c̄) + (1/(2n))Σ(c_i − c̄)ᵀH(c_i − c̄)
        (the cross terms average to 0), minimized at w = c̄. ``H=None`` means H = A.
        """
        H = self._hessian(H)
        D = self.centers - self.w_star
        return float(0.5 * np.mean(np.einsum("ij,jk,ik->i", D, H, D)))

    def gamma2_for(self, H: np.ndarray | None = None) -> float:
        """γ² = (1/n)Σ ‖H(c_i − c̄)‖² (theory/assumptions.md eq. (AS-3)) for ½(w − c_i)ᵀH(w − c_i).

        ∇F_i(w) − ∇F(w) = H(w − c_i) − H(w − c̄) = −H(c_i − c̄) for every w, so the bound of
        theory/brief_results.md §A (γ²) holds with equality at all w. ``H=None`` means H = A.
        """
        H = self._hessian(H)
        G = (self.centers - self.w_star) @ H.T
        return float(np.mean(np.sum(G * G, axis=1)))

    @property
    def F_star(self) -> float:
        """F* = inf f for the plain/AL objective f = (1/n)Σ f_i (:meth:`f_star_for` with H = A).

        Each inf f_i = 0 (at c_i), but F* > 0 as soon as the centers differ in the A-seminorm.
        """
        return self.f_star_for(None)

    @property
    def gamma2(self) -> float:
        """γ² = (1/n)Σ ‖A(c_i − c̄)‖² for the plain/AL objective (:meth:`gamma2_for`, H = A)."""
        return self.gamma2_for(None)

    def loss(self, w: np.ndarray, i: int | None = None) -> float:
        """Closed form f_i(w) = ½(w − c_i)ᵀA(w − c_i), or f(w) when ``i`` is None."""
        w = np.asarray(w, dtype=np.float64)
        D = w[None, :] - (self.centers if i is None else self.centers[i : i + 1])
        return float(0.5 * np.mean(np.einsum("ij,jk,ik->i", D, self.A, D)))

    def _hessian(self, H: np.ndarray | None) -> np.ndarray:
        if H is None:
            return self.A
        H = np.asarray(H, dtype=np.float64)
        d = self.A.shape[0]
        if H.shape != (d, d):
            raise ValueError(f"H must have shape ({d}, {d}), got {H.shape}")
        if not np.all(np.isfinite(H)):
            raise ValueError("H contains NaN or Inf")
        # Rounding in H_F = A(I − αA)² etc. is relative to A's scale, not H's: an H that
        # cancels to ~0 (MAML with α = 1/L on a rank-1 A) must pass as PSD.
        scale = max(float(np.abs(H).max()), float(np.abs(self.A).max()),
                    np.finfo(np.float64).tiny)
        if np.abs(H - H.T).max() > 1e-10 * scale:
            raise ValueError("H must be symmetric (a Hessian H_F of the family)")
        # An indefinite H has inf F = −∞; the closed forms only hold for H ⪰ 0.
        if np.linalg.eigvalsh(0.5 * (H + H.T))[0] < -1e-10 * scale:
            raise ValueError("H must be positive semidefinite (inf F = -inf otherwise)")
        return H


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@declares(
    N_CLIENTS, N_FEATURES, N_SAMPLES,
    Param("spread", "float", 1.0, "spread of the client optima c_i = c0 + spread*z_i", lo=0.0),
)
def shifted_least_squares(
    n_clients: int,
    n_features: int,
    n_samples: int,
    seed: SeedLike = None,
    *,
    spread: float = 1.0,
    condition_number: float | None = None,
) -> ShiftedLeastSquares:
    """Shared-design least-squares clients with optima c_i = c₀ + spread·z_i.

    * Design: with ``condition_number=None``, X has i.i.d. N(0, 1) entries (A = XᵀX/m ≈ I for
      m ≫ d; singular when m < d). With ``condition_number=κ ≥ 1`` (needs m ≥ d),
      X = √m·Q₁ diag(√λ) Q₂ᵀ with Q₁ (m × d, orthonormal columns) and Q₂ (d × d, orthogonal)
      Haar-random and λ log-spaced from 1/κ to 1, so A = Q₂ diag(λ) Q₂ᵀ, L = 1, μ = 1/κ.
    * Centers: c₀ ~ N(0, I/d), z_i ~ N(0, I/d) (so ‖c₀‖, ‖z_i‖ ≈ 1); ``spread=0`` gives
      identical clients (γ² = 0, F* = 0).
    * y_i = X c_i exactly (no noise), so inf f_i = 0.
    """
    n_clients, d, m, s = check_args(shifted_least_squares, n_clients=n_clients,
                                    n_features=n_features, n_samples=n_samples, spread=spread)
    rng = as_generator(seed)
    if condition_number is None:
        X = rng.standard_normal((m, d))
    else:
        kappa = float(condition_number)
        if not (math.isfinite(kappa) and kappa >= 1.0):
            raise ValueError(
                f"condition_number must be a finite number >= 1, got {condition_number!r}"
            )
        if d == 1 and kappa != 1.0:
            raise ValueError(
                f"condition_number must be 1 when n_features=1 (A is 1×1), got {condition_number!r}"
            )
        if m < d:
            raise ValueError(
                f"condition_number needs n_samples >= n_features (A = XᵀX/m must have full rank), "
                f"got n_samples={m} < n_features={d}"
            )
        Q1, R1 = np.linalg.qr(rng.standard_normal((m, d)))
        Q2, R2 = np.linalg.qr(rng.standard_normal((d, d)))
        # Sign fix makes the QR factors Haar-distributed (Mezzadri 2007).
        Q1 = Q1 * np.sign(np.diag(R1))
        Q2 = Q2 * np.sign(np.diag(R2))
        lam = np.logspace(-math.log10(kappa), 0.0, d) if d > 1 else np.ones(1)
        X = math.sqrt(m) * (Q1 * np.sqrt(lam)) @ Q2.T
    c0 = rng.standard_normal(d) / math.sqrt(d)
    centers = c0 + s * rng.standard_normal((n_clients, d)) / math.sqrt(d)
    A = X.T @ X / m
    A = 0.5 * (A + A.T)  # exact symmetry so eigvalsh and H-forms agree to the last bit
    Y = _readonly(centers @ X.T)  # row i = X c_i
    X = _readonly(X)
    # read-only inputs are shared by ClientData, not copied: one design for all clients
    clients = tuple(ClientData(X, Y[i], X, Y[i]) for i in range(n_clients))
    cond = "none" if condition_number is None else f"{float(condition_number):g}"
    ds = FederatedDataset(
        clients=clients,
        n_features=d,
        n_classes=None,
        name=f"shifted_least_squares(spread={s:g},condition_number={cond})",
    )
    return ShiftedLeastSquares(
        X=X, centers=_readonly(centers), A=_readonly(A), dataset=ds
    )


# --------------------------------------------------------------------------- robust regression
@declares(
    N_CLIENTS, N_FEATURES, N_SAMPLES,
    Param("shift", "float", 1.0, "shift of the client optima w_i* = w* + shift*u_i", lo=0.0),
    Param("noise", "float", 0.1, "residual noise scale", lo=0.0),
    Param("n_test", "int", None, "test rows per client (omit: max(1, n_samples // 4))", lo=0,
          optional=True),
)
def robust_family(
    n_clients: int,
    n_features: int,
    n_samples: int,
    seed: SeedLike = None,
    *,
    shift: float = 1.0,
    noise: float = 0.1,
    n_test: int | None = None,
) -> FederatedDataset:
    """Regression clients with shifted optima, for ``RobustRegression`` (nonconvex).

    w* ~ N(0, I/d); client i: u_i ~ N(0, I/d), w_i* = w* + shift·u_i; its own design
    X_i ~ N(0, I) of ``n_samples`` training rows plus ``n_test`` test rows (default
    max(1, n_samples // 4)) drawn the same way; y = X_i w_i* + noise·ε, ε ~ N(0, 1).
    ``shift`` controls heterogeneity (0: every client has the same w_i*), ``noise`` the
    residual scale at w_i*.
    """
    n_clients, d, m, sh, nz, mt = check_args(
        robust_family, n_clients=n_clients, n_features=n_features, n_samples=n_samples,
        shift=shift, noise=noise, n_test=n_test)
    mt = max(1, m // 4) if mt is None else mt
    rng = as_generator(seed)
    w_star = rng.standard_normal(d) / math.sqrt(d)
    clients = []
    for _ in range(n_clients):
        w_i = w_star + sh * rng.standard_normal(d) / math.sqrt(d)
        X = rng.standard_normal((m + mt, d))
        y = X @ w_i + nz * rng.standard_normal(m + mt)
        clients.append(ClientData(X[:m], y[:m], X[m:], y[m:]))
    return FederatedDataset(
        clients=tuple(clients),
        n_features=d,
        n_classes=None,
        name=f"robust_family(shift={sh:g},noise={nz:g})",
    )
