"""Partitioners and federate(): coverage, label-skew/Dirichlet structure, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from persafl_np.data import (
    federate,
    partition_dirichlet,
    partition_iid,
    partition_label_skew,
)


def _assert_partition(parts, n_samples, n_clients):
    assert len(parts) == n_clients
    for p in parts:
        assert p.dtype == np.int64 and p.ndim == 1 and p.size >= 1
        assert np.all(np.diff(p) > 0), "sorted, no repeats"
    allidx = np.concatenate(parts)
    # Every sample exactly once.
    np.testing.assert_array_equal(np.sort(allidx), np.arange(n_samples))


def _labels(seed, n_samples, n_classes):
    return np.random.default_rng(seed).integers(0, n_classes, n_samples)


@given(st.data())
def test_iid_covers_every_sample_once(data):
    n = data.draw(st.integers(1, 400), label="n_samples")
    k = data.draw(st.integers(1, n), label="n_clients")
    parts = partition_iid(n, k, seed=data.draw(st.integers(0, 2**32 - 1)))
    _assert_partition(parts, n, k)
    sizes = [p.size for p in parts]
    assert max(sizes) - min(sizes) <= 1


@given(st.data())
def test_label_skew_covers_and_limits_classes(data):
    C = data.draw(st.integers(1, 10), label="n_classes")
    n_clients = data.draw(st.integers(1, 12), label="n_clients")
    k = data.draw(st.integers(max(1, -(-C // n_clients)), C), label="classes_per_client")
    # Every class has at least n_clients samples, so no client can come out empty and
    # every client gets exactly k distinct labels.
    reps = data.draw(st.integers(n_clients, n_clients + 20), label="per_class")
    y = np.repeat(np.arange(C), reps)
    y = np.random.default_rng(data.draw(st.integers(0, 1000))).permutation(y)
    parts = partition_label_skew(y, n_clients, k, seed=data.draw(st.integers(0, 1000)))
    _assert_partition(parts, y.size, n_clients)
    for p in parts:
        assert np.unique(y[p]).size == k


@given(st.data())
def test_label_skew_on_unbalanced_labels_never_exceeds_k(data):
    n = data.draw(st.integers(20, 300), label="n_samples")
    C = data.draw(st.integers(2, 10), label="n_classes")
    y = _labels(data.draw(st.integers(0, 1000)), n, C)
    n_distinct = np.unique(y).size
    n_clients = data.draw(st.integers(1, 8), label="n_clients")
    k = data.draw(st.integers(1, n_distinct), label="classes_per_client")
    if n_clients * k < n_distinct:
        with pytest.raises(ValueError, match="classes_per_client"):
            partition_label_skew(y, n_clients, k, seed=0)
        return
    try:
        parts = partition_label_skew(y, n_clients, k, seed=data.draw(st.integers(0, 1000)))
    except ValueError as exc:  # only legitimate failure: a client left without samples
        assert "no samples" in str(exc)
        return
    _assert_partition(parts, n, n_clients)
    assert all(np.unique(y[p]).size <= k for p in parts)


def test_label_skew_each_class_spread_evenly_over_holders():
    y = np.repeat(np.arange(10), 100)
    parts = partition_label_skew(y, 20, 2, seed=5)
    # 40 slots over 10 classes: every class is held by exactly 4 clients, 25 samples each.
    for c in range(10):
        counts = [int(np.sum(y[p] == c)) for p in parts if np.any(y[p] == c)]
        assert counts == [25, 25, 25, 25]


def test_label_skew_empty_client_is_an_error():
    y = np.array([0, 0, 1])  # 3 clients × 1 class: class 1 has 1 sample for 1 holder, fine;
    with pytest.raises(ValueError, match="no samples"):
        partition_label_skew(y, 4, 1, seed=0)  # 4 clients but only 3 samples


@given(st.data())
def test_dirichlet_covers_every_sample_once(data):
    n = data.draw(st.integers(30, 300), label="n_samples")
    y = _labels(data.draw(st.integers(0, 1000)), n, data.draw(st.integers(1, 10)))
    n_clients = data.draw(st.integers(1, 6), label="n_clients")
    alpha = data.draw(st.floats(0.5, 1e3), label="alpha")
    min_size = data.draw(st.integers(1, 3), label="min_size")
    parts = partition_dirichlet(y, n_clients, alpha, seed=data.draw(st.integers(0, 1000)),
                                min_size=min_size)
    _assert_partition(parts, n, n_clients)
    assert min(p.size for p in parts) >= min_size


def _class_fractions(y, parts, C):
    return np.array([np.bincount(y[p], minlength=C) / p.size for p in parts])


def test_dirichlet_large_alpha_is_close_to_iid_small_alpha_is_skewed():
    C, n_clients = 10, 10
    y = np.repeat(np.arange(C), 500)  # global proportions 0.1 each
    big = _class_fractions(y, partition_dirichlet(y, n_clients, 1e4, seed=0), C)
    small = _class_fractions(y, partition_dirichlet(y, n_clients, 0.1, seed=0), C)
    # α = 1e4: p_cj has sd ≈ sqrt(1/(n²α)) = 1e-3, so each client's class mix is 0.1 ± ~0.01.
    assert np.max(np.abs(big - 0.1)) < 0.03
    # α = 0.1: a typical client is dominated by one or two classes.
    assert np.mean(small.max(axis=1)) > 0.4
    assert np.mean(big.max(axis=1)) < 0.15


def test_dirichlet_min_size_gives_clear_error_after_bounded_tries():
    y = np.repeat(np.arange(2), 20)
    with pytest.raises(ValueError, match="max_tries=3"):
        partition_dirichlet(y, 10, 1e-3, seed=0, min_size=4, max_tries=3)


@given(st.data())
def test_federate_splits_each_client_and_keeps_a_training_row(data):
    n = data.draw(st.integers(1, 200), label="n_samples")
    n_clients = data.draw(st.integers(1, n), label="n_clients")
    tf = data.draw(st.floats(0.01, 0.99), label="test_fraction")
    parts = partition_iid(n, n_clients, seed=0)
    X = np.stack([np.arange(n, dtype=np.float64), np.ones(n)], axis=1)  # column 0 = sample id
    ds = federate(X, np.arange(n) % 3, parts, test_fraction=tf, seed=1)
    seen = []
    for c, p in zip(ds.clients, parts, strict=True):
        m = p.size
        assert c.n_train >= 1 and c.n_train + c.n_test == m
        expected_test = min(max(round(tf * m), 1), m - 1) if m >= 2 else 0
        assert c.n_test == expected_test
        ids = np.concatenate([c.X_train[:, 0], c.X_test[:, 0]]).astype(np.int64)
        np.testing.assert_array_equal(np.sort(ids), p)
        np.testing.assert_array_equal(c.y_train, c.X_train[:, 0].astype(np.int64) % 3)
        seen.append(ids)
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(n))


def test_partitions_are_deterministic_given_seed():
    y = _labels(0, 500, 10)
    for make in (
        lambda s: partition_iid(500, 7, seed=s),
        lambda s: partition_label_skew(y, 7, 3, seed=s),
        lambda s: partition_dirichlet(y, 7, 0.5, seed=s),
    ):
        a, b, c = make(11), make(11), make(12)
        assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
        assert not all(np.array_equal(p, q) for p, q in zip(a, c, strict=True))
        ss = make(np.random.SeedSequence(11))
        assert all(np.array_equal(p, q) for p, q in zip(a, ss, strict=True))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda y: partition_iid(10, 0), "n_clients"),
        (lambda y: partition_iid(10, 11), "n_clients"),
        (lambda y: partition_iid(0, 1), "n_samples"),
        (lambda y: partition_iid(10, 2.0), "n_clients"),
        (lambda y: partition_iid(10, 2, seed=-1), "seed"),
        (lambda y: partition_iid(10, 2, seed=1.5), "seed"),
        (lambda y: partition_label_skew(y, 0, 1), "n_clients"),
        (lambda y: partition_label_skew(y, 5, 0), "classes_per_client"),
        (lambda y: partition_label_skew(y, 5, 4), "classes_per_client"),
        (lambda y: partition_label_skew(y, 1, 2), "classes_per_client"),
        (lambda y: partition_label_skew(y + 0.5, 5, 1), "y"),
        (lambda y: partition_label_skew(y[:, None], 5, 1), "y"),
        (lambda y: partition_dirichlet(y, 5, -1.0), "alpha"),
        (lambda y: partition_dirichlet(y, 5, 0.0), "alpha"),
        (lambda y: partition_dirichlet(y, 5, float("inf")), "alpha"),
        (lambda y: partition_dirichlet(y, 0, 1.0), "n_clients"),
        (lambda y: partition_dirichlet(y, 5, 1.0, min_size=0), "min_size"),
        (lambda y: partition_dirichlet(y, 5, 1.0, min_size=7), "min_size"),
        (lambda y: federate(np.ones((30, 2)), y, [np.arange(30)], test_fraction=0), "test_frac"),
        (lambda y: federate(np.ones((30, 2)), y, [np.arange(30)], test_fraction=1), "test_frac"),
        (lambda y: federate(np.ones((30, 2)), y, [np.arange(30)], n_classes=1), "n_classes"),
        (lambda y: federate(np.ones(30), y, [np.arange(30)]), "X"),
        (lambda y: federate(np.ones((30, 2)), y[:-1], [np.arange(30)]), "y"),
        (lambda y: federate(np.ones((30, 2)), y, []), "parts"),
        (lambda y: federate(np.ones((30, 2)), y, [np.arange(31)]), r"parts\[0\]"),
        (lambda y: federate(np.ones((30, 2)), y, [np.arange(5), np.arange(3, 9)]), r"parts\[1\]"),
        (lambda y: federate(np.ones((30, 2)), y, [np.array([], dtype=int)]), r"parts\[0\]"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    y = np.arange(30) % 3
    with pytest.raises(ValueError, match=match):
        call(y)


def test_dirichlet_no_client_is_starved_by_rounding():
    """Regression: cutting at floor(N_c * cumsum(p)) gave client 0 nothing when every class
    has fewer samples than clients (floor(3 * 1/6) = 0 for every class). Multinomial counts
    give every client N/n samples on average."""
    y = np.repeat(np.arange(9), 3)  # 27 samples, 3 per class
    sizes = np.array(
        [[p.size for p in partition_dirichlet(y, 6, 1e3, seed=s)] for s in range(400)]
    )
    # Per-client mean over 400 draws: 27/6 = 4.5, standard error about sqrt(3.75/400) = 0.1.
    np.testing.assert_allclose(sizes.mean(axis=0), 4.5, atol=0.5)
