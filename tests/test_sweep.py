"""Sweeps: expansion, up-front validation, resumability, failure isolation, Dask parity.

The run function here is a small deterministic stand-in that writes a history.csv from
its config, so these tests exercise the sweep machinery alone; tests/sim covers the
simulator that the default run function calls.
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest

from persafl_np.sweep import DONE, expand, load_sweep, parse_sweep, run_sweep, summarize


def _accept(cfg):
    allowed = {"seed", "client", "algorithm"}
    unknown = set(cfg) - allowed
    if unknown:
        raise ValueError(f"unknown config field(s) {sorted(unknown)}")
    if cfg["client"]["eta"] <= 0:
        raise ValueError("client.eta must be > 0")
    return cfg


def fake_run(config, run_dir):
    """Deterministic stand-in for simulate+save: 3 eval points of a made-up metric."""
    if config["algorithm"]["name"] == "boom":
        raise RuntimeError("deliberate failure")
    eta, seed = config["client"]["eta"], config["seed"]
    with open(Path(run_dir) / "history.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "grad_norm2"])
        for step in range(3):
            w.writerow([step, eta * (step + 1) + 0.01 * seed])


BASE = {"client": {"eta": 0.1, "Q": 1}, "algorithm": {"name": "persafl"}}


def _spec(grid, seeds=(0, 1)):
    return parse_sweep({"base": BASE, "grid": grid, "seeds": list(seeds)})


def test_expand_is_cartesian_product_times_seeds():
    spec = _spec({"client.eta": [0.1, 0.2], "algorithm.name": ["persafl", "fedasync"]})
    runs = expand(spec, validate=_accept)
    assert len(runs) == 2 * 2 * 2
    assert len({r.name for r in runs}) == len(runs)
    etas = sorted({r.config["client"]["eta"] for r in runs})
    assert etas == [0.1, 0.2]
    assert all(r.config["client"]["Q"] == 1 for r in runs)  # base values kept
    assert BASE["client"]["eta"] == 0.1  # base not mutated


@pytest.mark.parametrize(
    "doc, match",
    [
        ({"base": BASE, "grid": {"client.eta": []}}, "non-empty list"),
        ({"base": BASE, "grid": {"client.eta": [0.1, "x"]}}, "mixes value types"),
        ({"base": BASE, "grid": {}, "seeds": []}, "seeds"),
        ({"grid": {}}, r"\[base\]"),
        ({"base": BASE, "grdi": {}}, "unknown top-level"),
    ],
)
def test_bad_sweep_structure_rejected(doc, match):
    with pytest.raises(ValueError, match=match):
        parse_sweep(doc)


def test_unknown_field_and_bad_value_rejected_before_any_run(tmp_path):
    calls = []
    with pytest.raises(ValueError, match="unknown config field"):
        expand(_spec({"clinet.eta": [0.1]}), validate=_accept)
    with pytest.raises(ValueError, match="client.eta must be > 0"):
        runs = expand(_spec({"client.eta": [0.1, -1.0]}), validate=_accept)
        run_sweep(runs, tmp_path, workers=1, run_fn=lambda c, d: calls.append(c), progress=False)
    assert calls == []


def test_load_sweep_toml(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(
        textwrap.dedent(
            """
            name = "t"
            seeds = [3]
            [base.client]
            eta = 0.5
            [base.algorithm]
            name = "persafl"
            [grid]
            "client.eta" = [0.5, 1.0]
            """
        )
    )
    spec = load_sweep(p)
    assert spec.seeds == [3] and spec.grid == {"client.eta": [0.5, 1.0]}


def test_failure_isolated_and_resume_skips_finished(tmp_path):
    spec = _spec({"algorithm.name": ["persafl", "boom"]}, seeds=(0,))
    runs = expand(spec, validate=_accept)
    rep = run_sweep(runs, tmp_path, workers=1, run_fn=fake_run, progress=False)
    assert rep.total == 2 and rep.completed == 1 and len(rep.failed) == 1
    (bad,) = rep.failed
    assert "boom" in bad and "deliberate failure" in rep.failed[bad]
    assert (tmp_path / bad / "ERROR.txt").exists()
    # Rerun: the finished run is skipped, the failed one is tried again.
    seen = []

    def counting(config, run_dir):
        seen.append(config["algorithm"]["name"])
        fake_run(config, run_dir)

    rep2 = run_sweep(runs, tmp_path, workers=1, run_fn=counting, progress=False)
    assert rep2.skipped == 1 and seen == ["boom"]


def test_interrupted_sweep_completes_on_rerun(tmp_path):
    """Simulate a kill after two runs: rerunning finishes the rest and touches nothing done."""
    runs = expand(_spec({"client.eta": [0.1, 0.2, 0.3]}, seeds=(0, 1)), validate=_accept)
    run_sweep(runs[:2], tmp_path, workers=1, run_fn=fake_run, progress=False)
    stamps = {r.name: (tmp_path / r.name / DONE).stat().st_mtime_ns for r in runs[:2]}
    # A half-written run (no DONE marker) must be redone.
    (tmp_path / runs[2].name).mkdir()
    (tmp_path / runs[2].name / "history.csv").write_text("garbage")
    rep = run_sweep(runs, tmp_path, workers=1, run_fn=fake_run, progress=False)
    assert rep.skipped == 2 and rep.completed == len(runs) - 2
    for name, ns in stamps.items():
        assert (tmp_path / name / DONE).stat().st_mtime_ns == ns
    assert all((tmp_path / r.name / DONE).exists() for r in runs)


def test_summarize_tidy_and_mean_std(tmp_path):
    runs = expand(_spec({"client.eta": [0.1, 0.2]}, seeds=(0, 1)), validate=_accept)
    run_sweep(runs, tmp_path, workers=1, run_fn=fake_run, progress=False)
    path = summarize(tmp_path)
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 * 3
    with open(path.with_name("summary_mean.csv")) as fh:
        mean_rows = list(csv.DictReader(fh))
    assert len(mean_rows) == 2 * 3
    r = next(r for r in mean_rows if json.loads(r["client.eta"]) == 0.2 and r["step"] == "2")
    # values 0.2*3 + 0.00 and 0.2*3 + 0.01 -> mean 0.605, sample std 0.01/sqrt(2)
    assert float(r["grad_norm2_mean"]) == pytest.approx(0.605)
    assert float(r["grad_norm2_std"]) == pytest.approx(0.01 / 2**0.5)


def _collect(root):
    out = {}
    for p in sorted(Path(root).iterdir()):
        if (p / DONE).exists():
            out[p.name] = (p / "history.csv").read_bytes()
    return out


def test_processes_and_dask_give_identical_results(tmp_path):
    pytest.importorskip(
        "dask.distributed", reason="dask[distributed] (the `dist` extra) not installed"
    )
    runs = expand(
        _spec({"client.eta": [0.1, 0.2], "algorithm.name": ["persafl", "fedasync"]}),
        validate=_accept,
    )
    a, b = tmp_path / "proc", tmp_path / "dask"
    rep_a = run_sweep(runs, a, workers=2, run_fn=fake_run, progress=False)
    rep_b = run_sweep(runs, b, workers=2, dask="local", run_fn=fake_run, progress=False)
    assert rep_a.completed == rep_b.completed == 8
    assert _collect(a) == _collect(b) and len(_collect(a)) == 8
