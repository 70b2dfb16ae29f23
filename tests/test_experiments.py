"""experiments/: every sweep file loads and expands into valid run configurations, and a
tiny-budget version of one experiment runs end to end (sweep → summarize → results table)."""

from __future__ import annotations

import importlib.util
from copy import deepcopy
from pathlib import Path

import pytest

from persafl_np.config import SimConfig
from persafl_np.sweep import RunSpec, expand, load_sweep, run_sweep, summarize

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
FILES = sorted(EXPERIMENTS.glob("*.toml"))


def test_there_are_experiments():
    names = {p.stem for p in FILES}
    assert {"fedprox_softmax", "fedprox_mlp", "digits_label_skew", "staleness_sweep"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_experiment_loads_and_validates(path):
    spec = load_sweep(path)
    runs = expand(spec)
    assert len(runs) == len(spec.seeds) * max(1, _grid_size(spec.grid))
    for r in runs:
        cfg = SimConfig.from_dict(deepcopy(r.config))
        assert cfg.seed == r.seed
        assert all(_get(cfg, k) == (tuple(v) if isinstance(v, list) else v)
                   for k, v in r.values.items())


def test_staleness_sweep_grid_is_the_issue_grid():
    spec = load_sweep(EXPERIMENTS / "staleness_sweep.toml")
    assert spec.grid["arrivals.tau"] == [0, 2, 5, 10, 20, 50]
    assert spec.base["arrivals"]["policy"] == "max"


def test_fedprox_experiments_are_synthetic_half_half():
    for name in ("fedprox_softmax", "fedprox_mlp"):
        d = load_sweep(EXPERIMENTS / f"{name}.toml").base["data"]
        assert (d["name"], d["alpha"], d["beta"]) == ("fedprox_synthetic", 0.5, 0.5)
    d = load_sweep(EXPERIMENTS / "digits_label_skew.toml").base["data"]
    assert (d["name"], d["partition"], d["classes_per_client"]) == ("digits", "label_skew", 2)


def test_tiny_digits_experiment_end_to_end(tmp_path):
    pytest.importorskip("sklearn")
    runs = expand(load_sweep(EXPERIMENTS / "digits_label_skew.toml"))
    tiny = []
    for r in runs:
        if r.seed != 0 or r.values["oracle.name"] == "moreau":
            continue
        cfg = deepcopy(r.config)
        cfg["T"], cfg["eval_every"] = 30, 15
        tiny.append(RunSpec(r.name, r.values, r.seed, cfg))
    assert len(tiny) == 4
    rep = run_sweep(tiny, tmp_path, workers=1, progress=False)
    assert rep.success and rep.completed == 4
    summarize(tmp_path)
    spec = importlib.util.spec_from_file_location("exp_tables", EXPERIMENTS / "tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    text = tables.table(tmp_path)
    lines = [x for x in text.splitlines() if x.startswith("| ") and "oracle.name" not in x]
    assert len(lines) == 4
    for line in lines:  # accuracies are numbers in [0, 1]
        acc = float(line.split("|")[4].split("±")[0])
        assert 0.0 <= acc <= 1.0


def _grid_size(grid):
    n = 1
    for v in grid.values():
        n *= len(v)
    return n


def _get(cfg, dotted):
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj
