"""Figure functions of persafl_np.plots.bounds: files written, axes labelled (no pixel checks)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from persafl_np.plots import BoundCurve, plot_bound_vs_T, plot_bound_vs_tau, plot_ratio_vs_step


def _curves():
    x = np.array([10.0, 100.0, 1000.0])
    meas = np.array([[1.0, 0.3, 0.1], [1.2, 0.25, 0.12]])
    return [BoundCurve("AL", x, meas, 10 * meas.mean(0)),
            BoundCurve("ME", x, meas / 2, 5 * meas.mean(0))]


@pytest.mark.parametrize(
    ("fn", "xlabel", "xscale"),
    [(plot_bound_vs_T, "T (server steps)", "log"), (plot_bound_vs_tau, "staleness", "linear"),
     (plot_ratio_vs_step, "step scale", "log")],
)
def test_figure_writes_png_and_csv(tmp_path, fn, xlabel, xscale):
    path = tmp_path / "sub" / "fig.png"
    fig = fn(_curves(), path)
    ax = fig.axes[0]
    assert xlabel in ax.get_xlabel()
    assert ax.get_ylabel()
    assert ax.get_xscale() == xscale and ax.get_yscale() == "log"
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(open(path.with_suffix(".csv"))))
    assert len(rows) == 2 * 2 * 3  # curves × seeds × x
    r = rows[0]
    assert float(r["ratio"]) == pytest.approx(float(r["measured"]) / float(r["bound"]))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("AL" in t for t in labels) and any("ME" in t for t in labels)
    assert not list(tmp_path.glob("sub/.*tmp"))  # atomic write left no temp file


def test_deterministic_png(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    plot_bound_vs_T(_curves(), a)
    plot_bound_vs_T(_curves(), b)
    assert a.read_bytes() == b.read_bytes()


def test_bad_curves():
    with pytest.raises(ValueError, match="measured"):
        BoundCurve("x", np.arange(3.0), np.ones((2, 4)), np.ones(3))
    with pytest.raises(ValueError, match="bound"):
        BoundCurve("x", np.arange(3.0), np.ones((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="curves"):
        plot_bound_vs_T([])
    with pytest.raises(ValueError, match="png"):
        plot_bound_vs_T(_curves(), "fig.pdf")
