"""load_digits_federated: needs scikit-learn's bundled data (the `data` extra)."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from persafl_np.data import load_digits_federated


def test_missing_sklearn_raises_import_error_with_install_hint(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install 'persafl_np\[data\]'"):
        load_digits_federated(seed=0)


@pytest.fixture
def sklearn_datasets():
    # Skip per test (not per module) so the ImportError test above runs without scikit-learn.
    return pytest.importorskip(
        "sklearn.datasets",
        reason="scikit-learn not installed (pip install 'persafl_np[data]'); digits tests skipped",
    )


def _pooled(ds):
    X = np.concatenate([np.concatenate([c.X_train, c.X_test]) for c in ds.clients])
    y = np.concatenate([np.concatenate([c.y_train, c.y_test]) for c in ds.clients])
    return X, y


def _sorted_rows(X, y):
    Z = np.column_stack([X, y])
    return Z[np.lexsort(Z.T[::-1])]


@pytest.mark.parametrize("partition", ["label_skew", "dirichlet", "iid"])
def test_digits_cover_all_1797_samples(partition, sklearn_datasets):
    ds = load_digits_federated(20, partition=partition, seed=0, standardize=False)
    assert (ds.n_clients, ds.n_features, ds.n_classes) == (20, 64, 10)
    assert int(ds.train_sizes.sum() + ds.test_sizes.sum()) == 1797
    X_ref, y_ref = sklearn_datasets.load_digits(return_X_y=True)
    X, y = _pooled(ds)
    # Same multiset of (image, label) rows: every sample exactly once.
    np.testing.assert_array_equal(_sorted_rows(X, y), _sorted_rows(X_ref.astype(float), y_ref))


def test_digits_label_skew_two_classes_per_client(sklearn_datasets):
    ds = load_digits_federated(20, classes_per_client=2, seed=1)
    for c in ds.clients:
        assert np.unique(np.concatenate([c.y_train, c.y_test])).size == 2
        assert c.n_train >= 1 and c.n_test >= 1


def test_digits_standardized_features_and_determinism(sklearn_datasets):
    a = load_digits_federated(10, partition="iid", seed=2)
    b = load_digits_federated(10, partition="iid", seed=2)
    c = load_digits_federated(10, partition="iid", seed=3)
    X, _ = _pooled(a)
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-12)
    sd = X.std(axis=0)
    assert np.all((np.abs(sd - 1.0) < 1e-12) | (sd == 0.0))  # constant pixels stay 0
    pairs_same = zip(a.clients, b.clients, strict=True)
    pairs_diff = zip(a.clients, c.clients, strict=True)
    assert all(np.array_equal(p.X_train, q.X_train) for p, q in pairs_same)
    assert not all(np.array_equal(p.X_train, q.X_train) for p, q in pairs_diff)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_clients": 0}, "n_clients"),
        ({"partition": "shards"}, "partition"),
        ({"classes_per_client": 11}, "classes_per_client"),
        ({"classes_per_client": 0}, "classes_per_client"),
        ({"partition": "dirichlet", "dirichlet_alpha": -1.0}, "alpha"),
        ({"test_fraction": 1.5}, "test_fraction"),
    ],
)
def test_digits_bad_input(kwargs, match, sklearn_datasets):
    with pytest.raises(ValueError, match=match):
        load_digits_federated(**kwargs)
