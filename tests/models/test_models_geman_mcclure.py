"""Lemma GM-1: derivatives of φ(t) = t²/(1+t²) and their exact extrema."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from persafl_np.models.geman_mcclure import GM1_MAX, GM2_MAX, GM2_MIN, GM3_MAX, gm, gm1, gm2, gm3
from persafl_np.models.logistic import SIGMOID2_MAX


def test_extrema_on_dense_grid():
    t = np.linspace(-6, 6, 1_200_001)  # spacing 1e-5: grid maxima within O(1e-10) of the sup
    assert np.abs(gm1(t)).max() == pytest.approx(GM1_MAX, rel=1e-9)
    assert gm2(t).max() == pytest.approx(GM2_MAX, rel=1e-12)
    assert gm2(t).min() == pytest.approx(GM2_MIN, rel=1e-9)
    assert np.abs(gm3(t)).max() == pytest.approx(GM3_MAX, rel=1e-9)
    # Beyond |t| = 6 every derivative is smaller than near its maximizer (all decay like |t|^-3).
    far = np.linspace(6, 1e4, 100_001)
    assert np.abs(gm1(far)).max() < GM1_MAX and np.abs(gm3(far)).max() < GM3_MAX


def test_closed_forms():
    assert GM1_MAX == pytest.approx(9 / (8 * math.sqrt(3)), rel=1e-15)
    assert gm1(np.array([1 / math.sqrt(3)]))[0] == pytest.approx(GM1_MAX, rel=1e-15)
    assert gm2(np.array([1.0]))[0] == pytest.approx(-0.5, rel=1e-15)
    assert GM3_MAX == pytest.approx(4.668559284, rel=1e-9)
    t = np.linspace(-8, 8, 100_001)
    s = 1 / (1 + np.exp(-t))
    assert np.abs(s * (1 - s) * (1 - 2 * s)).max() == pytest.approx(SIGMOID2_MAX, rel=1e-8)


def test_derivative_chain_by_central_differences():
    t = np.linspace(-4, 4, 81)
    h = 1e-5
    # Central-difference error ≈ h²·|next derivative|/6 + ε/h ≤ 1e-9 for these bounded functions.
    for f, df in ((gm, gm1), (gm1, gm2), (gm2, gm3)):
        np.testing.assert_allclose((f(t + h) - f(t - h)) / (2 * h), df(t), atol=1e-8)


def test_huge_arguments_are_finite_and_silent():
    t = np.array([-1e308, -1e150, 1e150, 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vals = [f(t) for f in (gm, gm1, gm2, gm3)]
    np.testing.assert_array_equal(vals[0], 1.0)
    for v in vals[1:]:
        assert np.all(np.isfinite(v)) and np.all(np.abs(v) < 1e-290)
