"""Each figure function on a tiny input: returns a Figure with the expected axis labels and, given
a path, writes a non-empty PNG and the CSV behind it (checked through matplotlib objects and the
CSV text, not pixels)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from persafl_np.config import SimConfig, simulate
from persafl_np.plots.arrival_bias import ARRIVAL_BIAS_COLUMNS, plot_arrival_bias
from persafl_np.plots.async_sync import ASYNC_SYNC_COLUMNS, plot_async_sync
from persafl_np.plots.personalization import (
    PERSONALIZATION_COLUMNS,
    client_accuracies,
    plot_personalization,
)
from persafl_np.plots.staleness import STALENESS_COLUMNS, plot_staleness_histograms
from persafl_np.plots.timeline import (
    TIMELINE_COLUMNS,
    plot_timeline,
    read_run_tables,
    timeline_table,
)
from persafl_np.plots.tolerance import TOLERANCE_COLUMNS, plot_tolerance

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tiny_event_run(**over):
    d = {"seed": 3, "T": 12, "eval_every": 4,
         "data": {"name": "shifted_least_squares", "n_clients": 3, "n_features": 2,
                  "n_samples": 6},
         "algorithm": {"name": "persafl", "Q": 1, "eta": 0.05},
         "arrivals": {"mode": "event", "speeds": [1.0, 2.0, 4.0],
                      "job_time": {"law": "exponential", "mean": 1.0}}}
    d.update(over)
    return simulate(SimConfig.from_dict(d))


def _check_files(png, columns):
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    with open(png.with_suffix(".csv"), newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == tuple(columns)
    assert len(rows) > 1
    return rows[1:]


def test_timeline_from_saved_run(tmp_path):
    res = _tiny_event_run()
    res.save(tmp_path / "run")
    jobs, trace = read_run_tables(tmp_path / "run")
    tab = timeline_table(jobs, trace)
    # every applied job produced a distinct version 1..T, and staleness = produced - 1 - pulled
    applied = tab["status"] == 0
    assert sorted(tab["produced_version"][applied]) == list(range(1, 13))
    np.testing.assert_array_equal(tab["staleness"][applied],
                                  tab["produced_version"][applied] - 1
                                  - tab["pulled_version"][applied])
    np.testing.assert_array_equal(np.sort(tab["staleness"][applied]),
                                  np.sort(res.trace.staleness[res.trace.accepted]))
    fig = plot_timeline(tab, tmp_path / "tl.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "virtual time"
    assert ax.get_ylabel() == "client"
    assert [t.get_text() for t in ax.get_yticklabels()][-1].startswith("server")
    assert len(ax.patches) == len(tab["client"])  # one bar per job
    rows = _check_files(tmp_path / "tl.png", TIMELINE_COLUMNS)
    assert len(rows) == len(tab["client"])


def test_timeline_same_from_objects_and_files(tmp_path):
    res = _tiny_event_run()
    res.save(tmp_path)
    a = timeline_table(res.jobs, res.trace)
    b = timeline_table(*read_run_tables(tmp_path))
    for k in TIMELINE_COLUMNS:
        np.testing.assert_array_equal(a[k], b[k])


def test_timeline_marks_dropped_jobs():
    res = _tiny_event_run(arrivals={"mode": "event", "speeds": [1.0, 1.0, 8.0],
                                    "staleness": "drop", "tau_max": 0,
                                    "job_time": {"law": "exponential", "mean": 1.0}}, T=6)
    tab = timeline_table(res.jobs, res.trace)
    dropped = tab["status"] == 1
    assert dropped.any()
    assert np.all(tab["produced_version"][dropped] == -1)
    assert np.all(tab["staleness"][~dropped] == 0)


def test_staleness_histograms(tmp_path):
    fig = plot_staleness_histograms({"a": np.array([0, 1, 1, 3]), "b": np.array([2, 2])},
                                    tmp_path / "s.png")
    assert len(fig.axes) == 2
    assert all(ax.get_xlabel() == "staleness τ = t − p (versions)" for ax in fig.axes)
    assert all(ax.get_ylabel() == "fraction of updates" for ax in fig.axes)
    rows = _check_files(tmp_path / "s.png", STALENESS_COLUMNS)
    got = {(r[0], int(r[1])): int(r[2]) for r in rows}
    assert got == {("a", 0): 1, ("a", 1): 2, ("a", 2): 0, ("a", 3): 1,
                   ("b", 0): 0, ("b", 1): 0, ("b", 2): 2}


def test_tolerance(tmp_path):
    rec = {"label": ["AL", "AL", "AL", "AL", "ME", "ME"], "tau_max": [0, 0, 5, 5, 0, 5],
           "seed": [0, 1, 0, 1, 0, 0], "acc_pers_mean": [0.8, 0.9, 0.7, 0.6, 0.85, 0.8],
           "grad_norm2": [1e-2, 2e-2, 1e-1, 3e-1, 1e-3, 1e-2]}
    fig = plot_tolerance(rec, tmp_path / "t.png")
    ax_a, ax_g = fig.axes
    assert "accuracy" in ax_a.get_ylabel()
    assert ax_g.get_yscale() == "log"
    assert ax_a.get_xlabel() == ax_g.get_xlabel() == "staleness bound τ_max (server versions)"
    # the AL line is the mean over the two seeds
    np.testing.assert_allclose(ax_a.lines[0].get_ydata(), [0.85, 0.65])
    assert len(_check_files(tmp_path / "t.png", TOLERANCE_COLUMNS)) == 6


def test_personalization_and_client_accuracies(tmp_path):
    cfg = SimConfig.from_dict({
        "seed": 1, "T": 30, "eval_every": 30, "model": {"name": "softmax"},
        "oracle": {"name": "maml", "alpha": 0.05},
        "data": {"name": "fedprox_synthetic", "n_clients": 4, "n_features": 5, "n_classes": 3},
        "algorithm": {"name": "persafl", "Q": 2, "eta": 0.05},
        "arrivals": {"mode": "theorem"}})
    res = simulate(cfg)
    acc = client_accuracies(cfg, res.params)
    # the engine's own evaluation of the personalized models agrees with the rebuilt one
    assert np.nanmean(acc) == pytest.approx(res.history.acc_pers_mean[-1], abs=1e-12)
    assert np.nanmin(acc) == pytest.approx(res.history.acc_pers_min[-1], abs=1e-12)
    glob = client_accuracies(cfg, res.params, personalize=False)
    fig = plot_personalization({"global": glob, "MAML": acc}, tmp_path / "p.png")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "client test accuracy"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["global", "MAML"]
    assert len(_check_files(tmp_path / "p.png", PERSONALIZATION_COLUMNS)) == 8


def test_client_accuracies_local_only_uses_client_models():
    cfg = SimConfig.from_dict({
        "seed": 2, "T": 20, "eval_every": 20, "model": {"name": "softmax"},
        "data": {"name": "fedprox_synthetic", "n_clients": 3, "n_features": 4, "n_classes": 3},
        "algorithm": {"name": "local", "Q": 2, "eta": 0.1},
        "arrivals": {"mode": "theorem"}})
    res = simulate(cfg)
    acc = client_accuracies(cfg, res.params, res.client_params)
    assert np.nanmean(acc) == pytest.approx(res.history.acc_pers_mean[-1], abs=1e-12)
    with pytest.raises(ValueError, match="client_params"):
        client_accuracies(cfg, res.params, res.client_params[:2])


def test_async_sync(tmp_path):
    t = np.array([0.0, 1.0, 2.0])
    curves = {"async": [(t, [0, 1, 2], [0.1, 0.5, 0.9]), (t * 2, [0, 1, 2], [0.1, 0.3, 0.5])],
              "sync": [(t * 3, [0, 1, 2], [0.1, 0.2, 0.3])]}
    fig = plot_async_sync(curves, tmp_path / "a.png")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("virtual time")
    assert "accuracy" in ax.get_ylabel()
    assert [x.get_text().split(" (")[0] for x in ax.get_legend().get_texts()] == [
        "async", "sync", "thin lines: individual seeds"]
    # per-seed lines stop where the mean stops (the shortest seed run of the label: t <= 2)
    thin = [ln for ln in ax.lines if ln.get_linewidth() < 1]
    assert len(thin) == 3 and max(ln.get_xdata().max() for ln in thin if
                                  ln.get_color() == thin[0].get_color()) == 2.0
    # the mean curves differ in colour, marker and line style, not in colour alone
    thick = [ln for ln in ax.lines if ln.get_linewidth() >= 2]
    assert len({ln.get_marker() for ln in thick}) == len({ln.get_linestyle() for ln in thick}) == 2
    assert len(_check_files(tmp_path / "a.png", ASYNC_SYNC_COLUMNS)) == 9


def test_arrival_bias(tmp_path):
    res = _tiny_event_run(T=40, eval_every=10)
    h = res.history
    fig = plot_arrival_bias([1.0, 2.0, 4.0], [res.shares], h.step, [h.grad_norm2],
                            [h.weighted_grad_norm2], tmp_path / "b.png")
    ax_p, ax_g = fig.axes
    assert ax_p.get_xlabel().startswith("client speed $v_i$")
    assert ax_p.get_ylabel() == "share of applied updates $p_i$"
    assert ax_g.get_xlabel() == "server step $t$" and ax_g.get_yscale() == "log"
    rows = _check_files(tmp_path / "b.png", ARRIVAL_BIAS_COLUMNS)
    shares = [float(r[3]) for r in rows if r[0] == "shares"]
    assert sum(shares) == pytest.approx(1.0)


@pytest.mark.parametrize("call, match", [
    (lambda: plot_staleness_histograms({}), "at least one"),
    (lambda: plot_staleness_histograms({"a": np.array([-1])}), "integers >= 0"),
    (lambda: plot_tolerance({"label": ["a"]}), "missing column"),
    (lambda: plot_personalization({"a": np.zeros((2, 2))}), "1-D"),
    (lambda: plot_async_sync({"a": []}), "at least one run"),
    (lambda: plot_arrival_bias([1.0, -1.0], [[0.5, 0.5]], [0], [[1.0]], [[1.0]]), "positive"),
    (lambda: plot_arrival_bias([1.0, 1.0], [[1.0]], [0], [[1.0]], [[1.0]]), "shares"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_csv_cells_are_plain_numbers(tmp_path):
    rec = {"label": ["AL"], "tau_max": np.array([3]), "seed": np.array([0]),
           "acc_pers_mean": np.array([0.25]), "grad_norm2": [np.float64(0.5)]}
    plot_tolerance(rec, tmp_path / "t.png")
    assert _check_files(tmp_path / "t.png", TOLERANCE_COLUMNS) == [["AL", "3", "0", "0.25",
                                                                    "0.5"]]


def test_path_must_be_png(tmp_path):
    with pytest.raises(ValueError, match="png"):
        plot_staleness_histograms({"a": np.array([0, 1])}, tmp_path / "x.jpg")
