"""The data generators validate their arguments with their own declarations (the ones the
``[data]`` table is built from), so a Python call and a config reject the same values."""

import re

import numpy as np
import pytest

from persafl_np.data import (
    fedprox_synthetic,
    load_digits_federated,
    robust_family,
    shifted_least_squares,
)
from persafl_np.parameters import declarations


def _call(fn, **kw):
    base = {
        fedprox_synthetic: dict(alpha=0.5, beta=0.5, n_clients=2, seed=0),
        shifted_least_squares: dict(n_clients=2, n_features=2, n_samples=3, seed=0),
        robust_family: dict(n_clients=2, n_features=2, n_samples=3, seed=0),
    }[fn]
    return fn(**{**base, **kw})


@pytest.mark.parametrize("fn, key, bad", [
    (fedprox_synthetic, "alpha", -0.1),
    (fedprox_synthetic, "beta", True),  # a bool is not a number (check_nonneg took it as 1.0)
    (fedprox_synthetic, "n_classes", 1),
    (fedprox_synthetic, "test_fraction", 1.0),
    (shifted_least_squares, "spread", "1"),
    (shifted_least_squares, "n_samples", 0),
    (robust_family, "noise", float("nan")),
    (robust_family, "n_test", -1),
    (robust_family, "n_features", 2.0),
])
def test_bad_argument_is_refused_with_the_declared_range(fn, key, bad):
    p = {q.name: q for q in declarations(fn)}[key]
    pattern = "^" + re.escape(key) + " must be .*" + re.escape(p.range_text()[:12])
    with pytest.raises(ValueError, match=pattern):
        _call(fn, **{key: bad})


def test_valid_arguments_are_normalized():
    ds = _call(robust_family, n_clients=np.int64(2), n_test=0)
    assert ds.n_clients == 2
    assert all(c.X_test.shape[0] == 0 for c in ds.clients)


def test_digits_checks_before_loading_the_images():
    with pytest.raises(ValueError, match=r"^n_clients must be .*1797"):
        load_digits_federated(1798)
    with pytest.raises(ValueError, match="^partition must be one of"):
        load_digits_federated(4, partition="skew")
