"""FederatedDataset / ClientData: validation at the boundary and the .npz round trip."""

from __future__ import annotations

import os

import numpy as np
import pytest

from persafl_np.data import ClientData, FederatedDataset, federate, partition_iid


def _client(rng, m=5, d=3, classes=None, m_test=2):
    def y(k):
        return rng.integers(0, classes, k) if classes else rng.standard_normal(k)

    X, X_test = rng.standard_normal((m, d)), rng.standard_normal((m_test, d))
    return ClientData(X, y(m), X_test, y(m_test))


def _assert_identical(a: FederatedDataset, b: FederatedDataset) -> None:
    assert (a.name, a.n_features, a.n_classes, a.n_clients) == (
        b.name,
        b.n_features,
        b.n_classes,
        b.n_clients,
    )
    for ca, cb in zip(a.clients, b.clients, strict=True):
        for field in ("X_train", "y_train", "X_test", "y_test"):
            x, z = getattr(ca, field), getattr(cb, field)
            assert x.dtype == z.dtype and x.shape == z.shape
            assert x.tobytes() == z.tobytes(), field


@pytest.mark.parametrize("n_classes", [None, 4])
def test_save_load_round_trip_is_bit_identical(tmp_path, n_classes):
    rng = np.random.default_rng(0)
    clients = (_client(rng, 7, 3, n_classes), _client(rng, 1, 3, n_classes, m_test=0))
    ds = FederatedDataset(clients=clients, n_features=3, n_classes=n_classes, name="t ü")
    path = tmp_path / "ds.npz"
    assert ds.save(path) == path
    back = FederatedDataset.load(path)
    _assert_identical(ds, back)
    assert back == ds and back is not ds
    assert back.clients[0].y_train.dtype == (np.float64 if n_classes is None else np.int64)
    # Atomic write: nothing but the target is left in the directory.
    assert os.listdir(tmp_path) == ["ds.npz"]
    # Saving again over an existing file replaces it.
    ds2 = FederatedDataset(clients=clients[:1], n_features=3, n_classes=n_classes, name="two")
    ds2.save(path)
    _assert_identical(ds2, FederatedDataset.load(path))


def test_load_rejects_foreign_npz(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(ValueError, match="not a saved FederatedDataset"):
        FederatedDataset.load(path)


def test_arrays_are_read_only_copies():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, 2))
    c = ClientData(X, np.zeros(4), X[:1], np.zeros(1))
    X[0, 0] = 123.0  # mutating the caller's array must not reach the client
    assert c.X_train[0, 0] != 123.0
    with pytest.raises(ValueError):
        c.X_train[0, 0] = 1.0


def test_labels_are_int64_for_classification_and_float64_for_regression():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, 2))
    c_float_labels = ClientData(X, np.array([0.0, 1.0, 2.0, 1.0]), X[:0], np.zeros(0))
    ds = FederatedDataset((c_float_labels,), 2, 3, "x")
    assert ds.clients[0].y_train.dtype == np.int64
    c_int_targets = ClientData(X, np.array([0, 1, 2, 1]), X[:0], np.zeros(0, np.int64))
    ds = FederatedDataset((c_int_targets,), 2, None, "x")
    assert ds.clients[0].y_train.dtype == np.float64


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda X, y: FederatedDataset((), 2, None, "x"), "clients"),
        (lambda X, y: ClientData(X[:, 0], y, X, y), "X_train"),
        (lambda X, y: ClientData(X, y[:-1], X, y), "y_train"),
        (lambda X, y: ClientData(X[:0], y[:0], X, y), "X_train"),
        (lambda X, y: ClientData(X, y, X[:, :1], y), "X_test"),
        (lambda X, y: ClientData(np.where(X > 0, np.nan, X), y, X, y), "X_train"),
        (lambda X, y: ClientData(X, y, X, np.full_like(y, np.inf)), "y_test"),
        (lambda X, y: FederatedDataset((ClientData(X, y, X, y),), 3, None, "x"), "n_features"),
        (lambda X, y: FederatedDataset((ClientData(X, y, X, y),), 0, None, "x"), "n_features"),
        (lambda X, y: FederatedDataset((ClientData(X, y, X, y),), 2, 1, "x"), "n_classes"),
        (lambda X, y: FederatedDataset((ClientData(X, y + 0.5, X, y),), 2, 5, "x"), "y_train"),
        (lambda X, y: FederatedDataset((ClientData(X, y, X, y + 3),), 2, 4, "x"), "y_test"),
        (lambda X, y: FederatedDataset((ClientData(X, y - 1, X, y),), 2, 4, "x"), "y_train"),
    ],
)
def test_bad_input_names_the_argument(make, match):
    X = np.arange(8.0).reshape(4, 2)
    y = np.array([0.0, 1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=match):
        make(X, y)


def test_federate_infers_task_from_label_dtype():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 2))
    parts = partition_iid(30, 3, seed=0)
    cls = federate(X, rng.integers(0, 4, 30), parts, seed=0)
    assert cls.n_classes is not None and cls.n_classes >= 2
    reg = federate(X, rng.standard_normal(30), parts, seed=0)
    assert reg.n_classes is None
    assert reg.clients[0].y_train.dtype == np.float64


def test_equality_is_exact_and_value_based():
    rng = np.random.default_rng(4)
    c = _client(rng, 5, 2, 3)
    ds = FederatedDataset((c,), 2, 3, "a")
    same = FederatedDataset((ClientData(c.X_train, c.y_train, c.X_test, c.y_test),), 2, 3, "a")
    assert ds == same
    assert ds != FederatedDataset((c,), 2, 3, "b")
    assert ds != FederatedDataset((c,), 2, 4, "a")
    X = c.X_train.copy()
    X[0, 0] = np.nextafter(X[0, 0], np.inf)  # one ulp
    assert ds != FederatedDataset((ClientData(X, c.y_train, c.X_test, c.y_test),), 2, 3, "a")
    with pytest.raises(TypeError):
        hash(ds)
