"""FedProx Synthetic(α, β), the shifted least-squares family and the robust-regression family."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from persafl_np.data import (
    FederatedDataset,
    fedprox_client_sizes,
    fedprox_synthetic,
    robust_family,
    shifted_least_squares,
    split_train_test,
)
from persafl_np.models import LeastSquares


def _same(a: FederatedDataset, b: FederatedDataset) -> bool:
    if a.n_clients != b.n_clients:
        return False
    return all(
        np.array_equal(getattr(ca, f), getattr(cb, f))
        for ca, cb in zip(a.clients, b.clients, strict=True)
        for f in ("X_train", "y_train", "X_test", "y_test")
    )


GENERATORS = {
    "fedprox": lambda s: fedprox_synthetic(1.0, 1.0, 10, s),
    "fedprox_iid": lambda s: fedprox_synthetic(0.0, 0.0, 10, s, iid=True),
    "shifted_ls": lambda s: shifted_least_squares(4, 3, 10, s).dataset,
    "shifted_ls_cond": lambda s: shifted_least_squares(4, 3, 10, s, condition_number=50).dataset,
    "robust": lambda s: robust_family(4, 3, 10, s),
}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_same_seed_same_arrays_different_seed_different_arrays(name):
    make = GENERATORS[name]
    assert _same(make(7), make(7))
    assert _same(make(7), make(np.random.SeedSequence(7)))
    assert _same(make(7), make(np.random.default_rng(7)))
    assert not _same(make(7), make(8))


# --------------------------------------------------------------------------- FedProx Synthetic
def test_fedprox_shapes_labels_and_sizes():
    ds = fedprox_synthetic(0.5, 0.5, seed=3)
    assert (ds.n_clients, ds.n_features, ds.n_classes) == (30, 60, 10)
    # Sizes are drawn first from the same generator, so they equal the size law's draw.
    m = ds.train_sizes + ds.test_sizes
    np.testing.assert_array_equal(m, fedprox_client_sizes(30, np.random.default_rng(3)))
    assert m.min() >= 50
    for c in ds.clients:
        assert c.X_train.shape[1] == 60 and c.y_train.dtype == np.int64
        assert 0 <= c.y_train.min() and c.y_train.max() <= 9
        assert c.n_test == round(0.2 * (c.n_train + c.n_test))


def test_fedprox_client_sizes_follow_the_lognormal_power_law():
    m = fedprox_client_sizes(20000, np.random.default_rng(0))
    excess = m - 50  # = floor(LogNormal(4, 2))
    # Quantiles of floor(e^{4+2Z}): P(excess >= e^{4+2z}) = 1 - Φ(z) up to the floor (which
    # only matters below e^{4+2z} ≈ 1). 3-sigma binomial bands for n = 20000.
    for z, tail in [(0.0, 0.5), (1.0, 0.158655), (2.0, 0.0227501)]:
        frac = np.mean(excess >= math.floor(math.exp(4 + 2 * z)))
        assert abs(frac - tail) < 3 * math.sqrt(tail * (1 - tail) / m.size) + 1e-3, z
    # Heavy tail: the largest client is thousands of times the median one.
    assert m.max() / np.median(m) > 1000


def test_fedprox_feature_covariance_is_diag_j_pow_minus_1_2():
    ds = fedprox_synthetic(0.0, 0.0, 30, 0, iid=True, size_lognormal=(6.0, 0.0))
    X = np.concatenate([np.concatenate([c.X_train, c.X_test]) for c in ds.clients])
    assert X.shape == (30 * 453, 60)  # floor(e^6) + 50 = 453 rows per client
    var = X.var(axis=0)
    expected = np.arange(1, 61) ** -1.2
    # Relative sd of a variance estimate from N = 13590 Gaussian rows is sqrt(2/N) ≈ 1.2 %.
    np.testing.assert_allclose(var, expected, rtol=0.06)
    np.testing.assert_allclose(X.mean(axis=0) / np.sqrt(expected), 0.0, atol=0.05)
    C = np.corrcoef(X[:, :5], rowvar=False)
    np.testing.assert_allclose(C, np.eye(5), atol=0.05)


def _reference_fedprox(alpha, beta, n_clients, seed, iid, d=60, C=10, tf=0.2):
    """Loop-per-sample transcription of FedProx's generate_synthetic.py / generate_iid.py,
    drawing in the order documented by fedprox_synthetic."""
    rng = np.random.default_rng(seed)
    sizes = rng.lognormal(4, 2, n_clients).astype(int) + 50
    # Vectorized power: a scalar loop of (j+1)**-1.2 differs from it by 1 ulp at some j.
    diag = np.arange(1, d + 1, dtype=np.float64) ** -1.2
    if iid:
        W0, b0 = rng.normal(0, 1, (d, C)), rng.normal(0, 1, C)
    out = []
    for m in sizes:
        if iid:
            W, b, v = W0, b0, np.zeros(d)
        else:
            u, B = rng.normal(0, alpha), rng.normal(0, beta)
            v = rng.normal(B, 1, d)
            W, b = rng.normal(u, 1, (d, C)), rng.normal(u, 1, C)
        xx = v + np.sqrt(diag) * rng.standard_normal((m, d))
        yy = np.zeros(m, dtype=np.int64)
        for j in range(m):
            tmp = xx[j] @ W + b
            e = np.exp(tmp - tmp.max())
            yy[j] = np.argmax(e / e.sum())
        tr, te = split_train_test(np.arange(m), tf, rng)
        out.append((xx[tr], yy[tr], xx[te], yy[te]))
    return out


@pytest.mark.parametrize("iid", [False, True])
def test_fedprox_matches_loop_transcription_of_reference(iid):
    # α = 0.5, β = 2 (not 1) so a variance-vs-sd mix-up in the priors would show.
    ds = fedprox_synthetic(0.5, 2.0, 6, 21, iid=iid)
    ref = _reference_fedprox(0.5, 2.0, 6, 21, iid)
    for c, (Xtr, ytr, Xte, yte) in zip(ds.clients, ref, strict=True):
        np.testing.assert_array_equal(c.X_train, Xtr)
        np.testing.assert_array_equal(c.y_train, ytr)
        np.testing.assert_array_equal(c.X_test, Xte)
        np.testing.assert_array_equal(c.y_test, yte)


def test_fedprox_alpha_does_not_change_the_data():
    # The reference recipe adds the scalar u_k to every logit, so argmax ignores α (see the
    # fedprox_synthetic docstring); a faithful reproduction must show exactly that.
    a = fedprox_synthetic(0.0, 1.0, 8, 5)
    b = fedprox_synthetic(3.0, 1.0, 8, 5)
    assert a.name != b.name
    assert all(ca == cb for ca, cb in zip(a.clients, b.clients, strict=True))


def test_fedprox_non_iid_clients_differ_iid_clients_agree():
    def client_means(ds):
        return np.array([c.X_train[:, 0].mean() for c in ds.clients])

    niid = fedprox_synthetic(1.0, 1.0, 30, 4, size_lognormal=(5.0, 0.0))
    iid = fedprox_synthetic(1.0, 1.0, 30, 4, iid=True, size_lognormal=(5.0, 0.0))
    # Non-iid: v_k ~ N(B_k, 1) so client means of feature 0 spread with sd ≈ sqrt(1 + β²);
    # iid: v_k = 0, sd of a client mean ≈ 1/sqrt(157).
    assert client_means(niid).std() > 0.5
    assert client_means(iid).std() < 0.25


# --------------------------------------------------------------------------- shifted least squares
@given(
    n_clients=st.integers(1, 6),
    d=st.integers(1, 6),
    m=st.integers(1, 30),
    spread=st.floats(0.1, 3.0),
    kappa=st.one_of(st.none(), st.floats(1.0, 1e3)),
    seed=st.integers(0, 2**31),
)
def test_shifted_ls_exact_quantities(n_clients, d, m, spread, kappa, seed):
    if kappa is not None and d == 1 and kappa != 1.0:
        with pytest.raises(ValueError, match="condition_number"):
            shifted_least_squares(n_clients, d, m, seed, spread=spread, condition_number=kappa)
        return
    if kappa is not None and m < d:
        with pytest.raises(ValueError, match="n_samples"):
            shifted_least_squares(n_clients, d, m, seed, spread=spread, condition_number=kappa)
        return
    fam = shifted_least_squares(n_clients, d, m, seed, spread=spread, condition_number=kappa)
    model = LeastSquares()
    rng = np.random.default_rng(seed + 1)
    w = rng.standard_normal(d)
    A, C, X = fam.A, fam.centers, fam.X
    # Float64 tolerances: both sides are O(m·d) sums of products of O(1) numbers with no
    # cancellation at a random w, so agreement to ~1e-13 is expected; 1e-10 leaves margin.
    grads = []
    for i, c in enumerate(fam.dataset.clients):
        np.testing.assert_array_equal(c.X_train, X)
        f_model = float(model.loss(w, c.X_train, c.y_train))
        f_quad = 0.5 * (w - C[i]) @ A @ (w - C[i])
        assert f_model == pytest.approx(f_quad, rel=1e-10, abs=1e-14)
        assert fam.loss(w, i) == pytest.approx(f_quad, rel=1e-12, abs=1e-15)
        assert model.smoothness(c.X_train, c.y_train) == pytest.approx(fam.L, rel=1e-10)
        grads.append(model.grad(w, c.X_train, c.y_train))
    G = np.array(grads)
    # γ² by its definition (1/n)Σ‖∇f_i(w) − ∇f(w)‖²; the differences cancel the common
    # A(w − c̄) part (norm ≲ 10 here vs spread ≥ 0.1), costing ≲ 1e-13 relative.
    gamma2_def = np.mean(np.sum((G - G.mean(axis=0)) ** 2, axis=1))
    assert fam.gamma2 == pytest.approx(gamma2_def, rel=1e-8, abs=1e-12)
    # w* = c̄ zeroes ∇f and attains F*; any other w does no better.
    wstar = fam.w_star
    g_star = np.mean([model.grad(wstar, c.X_train, c.y_train) for c in fam.dataset.clients], 0)
    assert np.linalg.norm(g_star) <= 1e-12 * max(1.0, fam.L * np.abs(C).max())
    f_at = np.mean([float(model.loss(wstar, c.X_train, c.y_train)) for c in fam.dataset.clients])
    assert f_at == pytest.approx(fam.F_star, rel=1e-9, abs=1e-14)
    assert fam.loss(w) >= fam.F_star - 1e-12
    if kappa is not None:
        ev = np.linalg.eigvalsh(A)
        assert ev[-1] == pytest.approx(1.0, rel=1e-10)
        assert ev[-1] / ev[0] == pytest.approx(kappa, rel=1e-8)


def test_shifted_ls_personalized_hessian_forms():
    fam = shifted_least_squares(5, 4, 40, 3, condition_number=10.0)
    A, C = fam.A, fam.centers
    alpha = 0.5 / fam.L
    H = A @ (np.eye(4) - alpha * A) @ (np.eye(4) - alpha * A)  # MAML H_F
    # (theory/brief_results.md §C)
    grads = (fam.w_star - C) @ H  # ∇F_i at any w differs from ∇F by −H(c_i − c̄); use w = c̄
    assert fam.gamma2_for(H) == pytest.approx(np.mean(np.sum(grads**2, axis=1)), rel=1e-12)
    F_at_cbar = np.mean([0.5 * (fam.w_star - c) @ H @ (fam.w_star - c) for c in C])
    assert fam.f_star_for(H) == pytest.approx(F_at_cbar, rel=1e-12)
    assert fam.gamma2_for(H) <= fam.gamma2 + 1e-15  # γ_F ≤ γ for A ⪰ 0, α ≤ 1/L
    with pytest.raises(ValueError, match="H must have shape"):
        fam.gamma2_for(np.eye(3))
    with pytest.raises(ValueError, match="H must be symmetric"):
        fam.f_star_for(np.triu(np.ones((4, 4))))
    with pytest.raises(ValueError, match="H must be positive semidefinite"):
        fam.f_star_for(-np.eye(4))


def test_shifted_ls_zero_spread_is_homogeneous():
    fam = shifted_least_squares(4, 3, 12, 0, spread=0.0)
    assert fam.gamma2 == 0.0 and fam.F_star == 0.0
    assert np.all(fam.centers == fam.centers[0])


# --------------------------------------------------------------------------- robust family
def test_robust_family_shapes_and_heterogeneity():
    homo = robust_family(5, 4, 400, 0, shift=0.0, noise=0.0)
    het = robust_family(5, 4, 400, 0, shift=2.0, noise=0.0)
    for ds in (homo, het):
        assert ds.n_classes is None and ds.n_features == 4
        assert all(c.n_train == 400 and c.n_test == 100 for c in ds.clients)

    def lstsq(c):
        return np.linalg.lstsq(c.X_train, c.y_train, rcond=None)[0]

    # Noise-free targets are exactly linear: each client's least-squares fit recovers w_i*.
    w_homo = np.array([lstsq(c) for c in homo.clients])
    np.testing.assert_allclose(w_homo - w_homo[0], 0.0, atol=1e-10)  # shift = 0 → one w*
    w_het = np.array([lstsq(c) for c in het.clients])
    assert np.std(w_het, axis=0).max() > 0.3  # shift = 2 → optima spread ≈ 2/sqrt(d) = 1
    for c, w in zip(het.clients, w_het, strict=True):
        np.testing.assert_allclose(c.X_test @ w, c.y_test, atol=1e-9)  # test shares w_i*


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: fedprox_synthetic(-0.1, 1.0), "alpha"),
        (lambda: fedprox_synthetic(1.0, -1.0), "beta"),
        (lambda: fedprox_synthetic(1.0, 1.0, 0), "n_clients"),
        (lambda: fedprox_synthetic(1.0, 1.0, 3, test_fraction=1.0), "test_fraction"),
        (lambda: fedprox_synthetic(1.0, 1.0, 3, test_fraction=-0.2), "test_fraction"),
        (lambda: fedprox_synthetic(1.0, 1.0, 3, n_classes=1), "n_classes"),
        (lambda: fedprox_synthetic(1.0, 1.0, 3, n_features=0), "n_features"),
        (lambda: fedprox_synthetic(1.0, 1.0, 3, size_lognormal=(4.0, -1.0)), "size_lognormal"),
        (lambda: fedprox_synthetic(1.0, 1.0, 3, seed="x"), "seed"),
        (lambda: shifted_least_squares(0, 3, 10), "n_clients"),
        (lambda: shifted_least_squares(2, 0, 10), "n_features"),
        (lambda: shifted_least_squares(2, 3, 0), "n_samples"),
        (lambda: shifted_least_squares(2, 3, 10, spread=-1.0), "spread"),
        (lambda: shifted_least_squares(2, 3, 10, condition_number=0.5), "condition_number"),
        (lambda: robust_family(0, 3, 10), "n_clients"),
        (lambda: robust_family(2, 3, 10, noise=-1.0), "noise"),
        (lambda: robust_family(2, 3, 10, shift=float("nan")), "shift"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_f_star_for_accepts_an_H_that_cancels_to_rounding():
    """MAML's H_F = A(I − αA)² at α = 1/L on a rank-1 A is 0 up to rounding; it is PSD and
    F* = γ² = 0, not an error (the tolerance is relative to A, not to the ~0 entries of H)."""
    from persafl_np.data import shifted_least_squares

    p = shifted_least_squares(4, 3, 1, seed=0)  # one shared row: A = xxᵀ has rank 1
    alpha = 1.0 / p.L
    H = p.A @ (np.eye(3) - alpha * p.A) @ (np.eye(3) - alpha * p.A)
    assert np.abs(H).max() < 1e-12 * np.abs(p.A).max()
    assert abs(p.f_star_for(H)) < 1e-12 and abs(p.gamma2_for(H)) < 1e-12
    with pytest.raises(ValueError, match="positive semidefinite"):
        p.f_star_for(-p.A)
