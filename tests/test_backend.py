import numpy as np
import pytest

from persafl_np.backend import array_namespace, get_backend, take_rows, to_numpy


def test_take_rows_numpy_and_strict():
    xs = pytest.importorskip("array_api_strict")
    a = np.arange(12.0).reshape(4, 3)
    idx = np.array([3, 1])
    np.testing.assert_array_equal(take_rows(a, idx), a[idx])
    s = xs.asarray(a)
    np.testing.assert_array_equal(to_numpy(take_rows(s, idx)), a[idx])
    np.testing.assert_array_equal(to_numpy(take_rows(s, slice(1, 3))), a[1:3])


def test_mixed_namespaces_refused():
    xs = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError):
        array_namespace(np.ones(2), xs.ones(2))


def test_get_backend_errors():
    with pytest.raises(ValueError, match="backend must be one of"):
        get_backend("torch")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="gpu"):
            get_backend("cupy")
