"""FederatedDataset.load on crafted files: ValueError naming the file and the field, before any
large allocation; shared designs stored once; Problem.build checks labels against n_classes."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from persafl_np.data import ClientData, FederatedDataset, shifted_least_squares


def _ds(n=2, n_classes=3):
    rng = np.random.default_rng(0)
    cl = [ClientData(rng.normal(size=(4, 2)), rng.integers(0, n_classes, 4),
                     rng.normal(size=(2, 2)), rng.integers(0, n_classes, 2)) for _ in range(n)]
    return FederatedDataset(tuple(cl), 2, n_classes, "t")


def _members(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _write(path, arrays, raw=None):
    """npz from arrays, plus raw members {name: bytes} written verbatim."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    if raw:
        with zipfile.ZipFile(buf, "a") as z:
            for name, data in raw.items():
                z.writestr(name, data)
    path.write_bytes(buf.getvalue())


def _meta(**kw):
    m = {"format": "persafl_np.FederatedDataset", "version": 1, "n_clients": 2,
         "n_features": 2, "n_classes": 3, "name": "t"}
    m.update(kw)
    return np.array(json.dumps(m))


def _npy_header(shape, descr="<f8"):
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": descr, "fortran_order": False,
                                             "shape": shape})
    return h.getvalue()  # magic + header, no data


def test_round_trip_still_exact(tmp_path):
    ds = _ds()
    ds.save(tmp_path / "d.npz")
    assert FederatedDataset.load(tmp_path / "d.npz") == ds


@pytest.mark.parametrize("change,field", [
    ({"n_clients": 10**9}, "meta.n_clients"),
    ({"n_clients": "2"}, "meta.n_clients"),
    ({"n_clients": 0}, "meta.n_clients"),
    ({"n_features": -1}, "meta.n_features"),
    ({"n_features": 2.5}, "meta.n_features"),
    ({"n_classes": 1}, "meta.n_classes"),
    ({"n_classes": [3]}, "meta.n_classes"),
    ({"name": None}, "meta.name"),
    ({"version": 99}, "meta.version"),
    ({"format": "x"}, "meta.format"),
])
def test_crafted_meta_rejected_naming_the_field(tmp_path, change, field):
    _ds().save(tmp_path / "d.npz")
    arrays = _members(tmp_path / "d.npz")
    arrays["meta"] = _meta(**change)
    _write(tmp_path / "bad.npz", arrays)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as e:
        FederatedDataset.load(tmp_path / "bad.npz")
    assert "bad.npz" in str(e.value)


def test_crafted_arrays_rejected(tmp_path):
    _ds().save(tmp_path / "d.npz")
    good = _members(tmp_path / "d.npz")
    cases = []
    a = dict(good)
    a["meta"] = np.array([1, 2])
    cases.append((a, None, "meta"))
    a = dict(good)
    a["meta"] = np.array("{not json")
    cases.append((a, None, "meta"))
    a = dict(good)
    del a["client1_y_test"]
    cases.append((a, None, "missing arrays"))
    a = dict(good)
    a["client7_X_train"] = np.zeros((1, 2))
    cases.append((a, None, "unexpected arrays"))
    a = dict(good)
    a["client0_y_train"] = np.array([0, 1, 2, 7])
    cases.append((a, None, "client.*labels must lie in 0..2"))
    a = dict(good)
    a["client0_X_train"] = np.zeros((4, 2, 1))
    cases.append((a, None, "client0_X_train"))
    a = dict(good)
    a["client0_X_train"] = good["client0_X_train"].copy()
    a["client0_X_train"][0, 0] = np.nan
    cases.append((a, None, "NaN"))
    a = dict(good)
    del a["client0_X_train"]
    # a header that declares 10^12 float64 (8 TB) but stores nothing: refused before allocation
    cases.append((a, {"client0_X_train.npy": _npy_header((10**6, 10**6))}, "declares shape"))
    a = dict(good)
    del a["client0_y_train"]
    cases.append((a, {"client0_y_train.npy": _npy_header((4,), "|O") + b"\x80\x04N."},
                  "Python objects"))
    a = dict(good)
    del a["client0_y_train"]
    cases.append((a, {"client0_y_train.npy": b"\x93NUMPY garbage"}, "malformed header"))
    for arrays, raw, msg in cases:
        _write(tmp_path / "bad.npz", arrays, raw)
        with pytest.raises(ValueError, match=msg) as e:
            FederatedDataset.load(tmp_path / "bad.npz")
        assert "bad.npz" in str(e.value), msg


def test_not_an_npz_truncated_or_missing(tmp_path):
    _ds().save(tmp_path / "d.npz")
    data = (tmp_path / "d.npz").read_bytes()
    for body in (b"", b"hello", data[: len(data) // 2], data[:-30]):
        (tmp_path / "bad.npz").write_bytes(body)
        with pytest.raises(ValueError, match="bad.npz"):
            FederatedDataset.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="does not exist"):
        FederatedDataset.load(tmp_path / "nope.npz")


def test_shared_design_is_stored_once():
    sls = shifted_least_squares(50, 4, 30, 0)
    cl = sls.dataset.clients
    base = cl[0].X_train
    assert all(c.X_train is base and c.X_test is base for c in cl)
    assert base is sls.X and not base.flags.writeable
    assert all(np.shares_memory(c.y_train, c.y_test) for c in cl)
    # a writable input is still copied (nobody else may mutate the dataset's arrays)
    X = np.ones((3, 2))
    c = ClientData(X, np.zeros(3), X, np.zeros(3))
    assert not np.shares_memory(c.X_train, X)


def test_problem_build_checks_labels_against_n_classes():
    from types import SimpleNamespace

    from persafl_np.models import LeastSquares
    from persafl_np.personalization import Plain
    from persafl_np.sim import Problem

    X = np.ones((4, 2))

    def data(y):  # a container that declares 3 classes; the model itself checks nothing
        return SimpleNamespace(n_classes=3, clients=[(X, y, X[:1], y[:1])])

    Problem.build(LeastSquares(), Plain(), data(np.array([0.0, 1.0, 2.0, 0.0])))
    for y, msg in ((np.array([0.0, 1.0, 7.0, 0.0]), "client 0: y_train labels must lie in 0..2"),
                   (np.array([-1.0, 1.0, 1.0, 0.0]), "y_train labels must lie in 0..2.*-1"),
                   (np.array([0.0, 1.5, 1.0, 0.0]), "integer class labels")):
        with pytest.raises(ValueError, match=msg):
            Problem.build(LeastSquares(), Plain(), data(y))
