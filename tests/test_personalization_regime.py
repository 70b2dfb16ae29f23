"""experiments/personalization_regime/: exact samples per client, fit/validation/test rows
disjoint, the paired 95 % lower bound, α*/λ* chosen on validation (never test), the
intersection–union verdict, and one tiny run end to end."""

from __future__ import annotations

import importlib.util
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parents[1] / "experiments" / "personalization_regime"


def _module():
    spec = importlib.util.spec_from_file_location("personalization_regime", HERE / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PR = _module()


def _spec(**over):
    with (HERE / "spec.toml").open("rb") as fh:
        spec = tomllib.load(fh)
    spec.update(over)
    return spec


def _rows(X):
    return {r.tobytes() for r in X}


@pytest.mark.parametrize("m", [10, 40])
def test_fedprox_clients_have_exactly_m_rows_and_disjoint_splits(m):
    spec = _spec(n_clients=4)
    data, tests = PR.build_data("fedprox", m, 0.5, 0, spec)
    for c, (Xv, _, Xt, _) in zip(data.clients, tests, strict=True):
        assert c.X_train.shape[0] + Xv.shape[0] == m
        assert Xv.shape[0] == round(0.25 * m) and c.X_test.shape[0] == 0
        assert Xt.shape[0] == spec["fedprox"]["test_rows"]
        fit, val, test = _rows(c.X_train), _rows(Xv), _rows(Xt)
        assert not fit & val and not fit & test and not val & test


def test_digits_rows_subsampled_to_m():
    pytest.importorskip("sklearn")
    data, tests = PR.build_data("digits", 10, 1.0, 0, _spec())
    for c, (Xv, _, _, _) in zip(data.clients, tests, strict=True):
        assert c.X_train.shape[0] + Xv.shape[0] <= 10


def test_lower95_is_the_one_sided_t_bound():
    assert PR.lower95([1.0, 2.0, 3.0]) == pytest.approx(2.0 - 2.920 / math.sqrt(3.0))
    assert PR.lower95([0.5]) == -math.inf


def _fake_runs(spec, accs):
    """accs: label -> (validation, test) per seed, the same for every cell."""
    runs = {}
    for family, m, h in PR.cells(spec):
        for seed in spec["seeds"]:
            for label, *_ in PR.candidates(spec):
                v, t = accs.get(label, (0.5, 0.5))
                key = f"{family}|{m}|{h:g}|{seed}|{label}"
                runs[key] = {"val_acc": v, "test_acc": t + 0.001 * seed}
    return runs


def test_analyse_chooses_on_validation_and_needs_both_baselines_beaten():
    spec = _spec()
    # ME lambda=1 is best on validation, ME lambda=0.1 on test: lambda* must be 1
    accs = {"AL": (0.6, 0.6), "local-only": (0.7, 0.7), "ME lambda=1": (0.9, 0.8),
            "ME lambda=0.1": (0.5, 0.95), "MAML alpha=0.01": (0.6, 0.65)}
    rows = PR.analyse(spec, _fake_runs(spec, accs))
    assert len(rows) == 2 * len(PR.cells(spec))
    me = [r for r in rows if r["oracle"] == "ME"]
    maml = [r for r in rows if r["oracle"] == "MAML"]
    assert all(r["param"] == "1" and r["wins"] == 1 for r in me)
    assert all(r["wins"] == 0 for r in maml)  # beats global, not local
    # fewer than 3 seeds finished: the cell is left out
    partial = {k: v for k, v in _fake_runs(spec, accs).items() if not k.split("|")[3] == "2"}
    partial = {k: v for k, v in partial.items() if not k.split("|")[3] == "1"}
    assert PR.analyse(spec, partial) == []


def test_one_tiny_run(tmp_path):
    spec = _spec(n_clients=3, T=12)
    job = ("k", "fedprox", 10, 0.5, 0, "ME lambda=1", "moreau", "persafl", {"lam": 1.0}, spec)
    r = PR.one_run(job)
    assert r["status"] == "ok" and 0.0 <= r["val_acc"] <= 1.0 and 0.0 <= r["test_acc"] <= 1.0
    assert len(r["test_acc_clients"]) == 3 and r["arrivals"] == 12
    assert np.isclose(r["test_acc"], np.mean(r["test_acc_clients"]))


def test_regime_figure_marks_the_winning_halves(tmp_path):
    from persafl_np.plots.regime import REGIME_COLUMNS, plot_regime

    spec = _spec()
    accs = {"AL": (0.6, 0.6), "local-only": (0.7, 0.7), "ME lambda=1": (0.9, 0.8)}
    rows = PR.analyse(spec, _fake_runs(spec, accs))
    fig = plot_regime(rows, tmp_path / "regime.png")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sum("✓" in t for t in texts) == len(PR.cells(spec))  # every ME half, no MAML half
    assert all("MAML" not in t for t in texts if "✓" in t)
    header = (tmp_path / "regime.csv").read_text().splitlines()[0]
    assert header == ",".join(REGIME_COLUMNS)
    with pytest.raises(ValueError, match="at least one"):
        plot_regime([], tmp_path / "x.png")
