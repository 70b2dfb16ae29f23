"""The falsifier (persafl_np.bounds.falsify, theory/tightness.md §1).

* the exact moment recursion (TF-2) of the quadratic family against the simulator (deterministic
  cases to rounding, stochastic ones within Monte-Carlo error) and, for client-dependent
  staleness (no simulator counterpart), against a direct Monte-Carlo loop;
* a deliberately wrong bound, (T1)/20, is violated within a small budget and the returned
  instance reproduces the ratio (closed form and simulator);
* the correct (T1) is not violated and the best ratio is within 5 % of the D4 audit's worst case
  0.1314 (closed form (T4));
* determinism, resume from a truncated state, parallel = serial, the robust (nonconvex) family,
  the corollary (T3), a user's own bound, argument errors.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from persafl_np.bounds import quadratic_ratio_limit
from persafl_np.bounds.check import average_stationarity
from persafl_np.bounds.falsify import (
    FalsifyResult,
    T1Bound,
    T3Bound,
    falsify,
    rerun_instance,
    robust_instance_toml,
)
from persafl_np.bounds.families import (
    BoundInputs,
    QuadraticFamily,
    RobustFamily,
    quadratic_moments,
    quadratic_problem,
)
from persafl_np.sim import run as sim_run

AUDIT_WORST = quadratic_ratio_limit(20, 1 / 320, (1 / 480) / (1 / 320), 1.0)  # 0.13141


def _sim_mean(inst: dict, seeds: int) -> tuple[float, float]:
    prob, alg, arr = quadratic_problem(inst)
    vals = [average_stationarity(sim_run(prob, alg, arr, T=inst["T"], seed=s,
                                         eval_every=1).history, inst["T"]) for s in range(seeds)]
    return float(np.mean(vals)), float(np.std(vals, ddof=1) / math.sqrt(seeds)) if seeds > 1 \
        else 0.0


@pytest.mark.parametrize("K", [1, 2])
def test_closed_form_matches_simulator_deterministic(K):
    fam = QuadraticFamily(n=(1,), d=(2,), Q=(3,), tau=(2,), T=(25,), K=(K,), period=3,
                          noise=False)
    rng = np.random.default_rng(7)
    for _ in range(3):
        inst = fam.decode(rng.random(len(fam.names)))
        closed = fam.measure([inst])[0].measured
        sim, _ = _sim_mean(inst, 1)
        assert closed == pytest.approx(sim, rel=1e-10, abs=1e-14)


def test_closed_form_matches_simulator_noise_and_heterogeneity():
    fam = QuadraticFamily(n=(3,), d=(2,), Q=(2,), tau=(1,), T=(15,), K=(2,), period=2)
    u = np.random.default_rng(3).random(len(fam.names))
    inst = fam.decode(u)
    inst["sigma"] = 0.8
    inst["centers"] = (np.asarray(inst["centers"]) * 0 + np.array(
        [[0.5, -0.2], [-0.3, 0.4], [-0.2, -0.2]])).tolist()
    closed = fam.measure([inst])[0].measured
    mean, se = _sim_mean(inst, 300)
    assert abs(closed - mean) < 4 * se, (closed, mean, se)
    assert se < 0.05 * closed  # the comparison has teeth


def _mc_client_dependent(inst: dict, seeds: int, rng: np.random.Generator) -> np.ndarray:
    """Direct simulation of (T0) with client i using pattern[t mod P][i] (no simulator API)."""
    lam = np.asarray(inst["lam"])
    c = np.asarray(inst["centers"])
    n, d, Q, T = inst["n"], inst["d"], inst["Q"], inst["T"]
    eta, beta, sig = inst["eta"], inst["beta"], inst["sigma"]
    pat = np.asarray(inst["pattern"])
    out = np.empty(seeds)
    for s in range(seeds):
        w = [np.asarray(inst["w0_minus_cbar"], np.float64)]
        tot = 0.0
        for t in range(T):
            tot += float(np.sum((lam * w[t]) ** 2))
            i = int(rng.integers(n))
            y = w[t - min(int(pat[t % len(pat), i]), t)].copy()
            u = y.copy()
            for _ in range(Q):
                g = lam * (y - c[i]) + rng.standard_normal(d) * sig / math.sqrt(d)
                y = y - eta * g
            w.append(w[t] - beta * (u - y))
        out[s] = tot / T
    return out


def test_closed_form_client_dependent_matches_monte_carlo():
    fam = QuadraticFamily(n=(3,), d=(1,), Q=(2,), tau=(3,), T=(12,), K=(1,), period=2,
                          client_dependent=True)
    inst = fam.decode(np.random.default_rng(11).random(len(fam.names)))
    inst["pattern"] = [[0, 3, 1], [2, 0, 3]]
    inst["centers"] = [[1.5], [-0.5], [-1.0]]
    inst["w0_minus_cbar"] = [2.0]
    inst["sigma"] = 0.3
    # big steps (past the caps) make the staleness effects visible; the recursion is exact anyway
    inst["eta"], inst["beta"] = 0.2, 2.0
    closed = fam.measure([inst])[0].measured
    mc = _mc_client_dependent(inst, 4000, np.random.default_rng(0))
    se = mc.std(ddof=1) / math.sqrt(mc.size)
    assert abs(closed - mc.mean()) < 4 * se, (closed, mc.mean(), se)
    # and it differs from the client-independent pattern (the test can fail)
    inst2 = dict(inst, client_dependent=False, pattern=[[0], [0]])
    assert abs(QuadraticFamily().measure([inst2])[0].measured - closed) > 10 * se
    assert fam.measure([inst])[0].inputs.rho == 2


def test_quadratic_constants_exact():
    inst = {"family": "quadratic", "n": 2, "d": 2, "Q": 1, "tau": 0, "T": 5, "K": 1,
            "lam": [1.0, 0.5], "w0_minus_cbar": [1.0, 2.0], "centers": [[1.0, 1.0], [-1.0, -1.0]],
            "sigma": 0.5, "eta": 0.01, "beta": 1.0, "pattern": [[0]]}
    c = QuadraticFamily().measure([inst])[0].inputs
    assert c.L == 1.0 and c.sigma2 == 0.25
    assert c.delta_f == pytest.approx(0.5 * (1.0 + 0.5 * 4.0))
    assert c.gamma2 == pytest.approx(1.0 + 0.25)


def test_wrong_bound_is_violated_and_the_instance_reproduces_it():
    wrong = T1Bound("d4", 0.05)
    res = falsify(wrong, QuadraticFamily(), budget=64, seed=0, starts=1, batch=64)
    assert isinstance(res, FalsifyResult)
    assert res.violated and res.worst_ratio > 2.0  # true worst ≈ 20 x 0.1314 = 2.63
    assert res.worst_ratio < 20 * 0.1317  # and never above the supremum of (T4)
    ratio, measured, inputs = rerun_instance(json.loads(json.dumps(res.instance)), wrong)
    assert ratio == res.worst_ratio and measured == res.measured
    inst = res.instance
    stochastic = inst["n"] > 1 or inst["sigma"] > 0
    mean, se = _sim_mean(inst, 200 if stochastic else 1)
    assert abs(mean - measured) <= (4 * se if stochastic else 1e-9 * measured)
    assert mean / wrong(inputs) > 1.0  # the simulator run violates the wrong bound too


def test_correct_bound_holds_and_best_ratio_near_audit_worst_case():
    res = falsify(T1Bound("d4"), QuadraticFamily(), budget=150, seed=0, starts=2, batch=128)
    assert not res.violated
    assert 0.95 * AUDIT_WORST <= res.worst_ratio <= 0.1317
    assert len(res.history) == res.n_evals == 150
    assert {h[1] for h in res.history} == {"global", "local"}
    assert res.worst_ratio == pytest.approx(float(res.best_so_far[-1]))


def test_sharp_constants_ratio_doubles():
    res = falsify(T1Bound("sharp"), QuadraticFamily(), budget=150, seed=0, starts=2,
                  batch=128)
    assert not res.violated and res.worst_ratio > 0.95 * 2 * AUDIT_WORST


def test_deterministic_resume_and_parallel(tmp_path):
    fam = QuadraticFamily(T=(10, 50))
    kw = {"budget": 60, "seed": 3, "starts": 2, "batch": 16}
    ref = falsify(T1Bound(), fam, **kw)
    state = tmp_path / "state.json"
    first = falsify(T1Bound(), fam, state=state, **kw)
    assert first.resumed == 0 and first.history == ref.history
    doc = json.loads(state.read_text())
    assert len(doc["evals"]) == 60
    doc["evals"] = doc["evals"][:37]  # as if killed mid-search
    state.write_text(json.dumps(doc))
    again = falsify(T1Bound(), fam, state=state, **kw)
    assert again.resumed == 37
    assert again.history == ref.history and again.instance == ref.instance
    par = falsify(T1Bound(), fam, workers=2, **kw)
    assert par.history == ref.history
    from concurrent.futures import ThreadPoolExecutor  # any executor with map (e.g. Dask's)

    with ThreadPoolExecutor(2) as ex:
        assert falsify(T1Bound(), fam, workers=2, executor=ex, **kw).history == ref.history
    with pytest.raises(ValueError, match="another search"):
        falsify(T1Bound(), fam, state=state, **dict(kw, seed=4))


def test_plot_history(tmp_path):
    res = falsify(T1Bound(), QuadraticFamily(T=(10,)), budget=20, seed=0, starts=1, batch=8)
    png = tmp_path / "hist.png"
    res.plot(png)
    assert png.exists()
    rows = png.with_suffix(".csv").read_text().splitlines()
    assert rows[0] == "evaluation,phase,ratio,best_so_far" and len(rows) == 21


def test_robust_family_nonconvex():
    fam = RobustFamily(n=(2,), d=(2,), Q=(1, 2), tau=(0, 1), T=(15,), data_seeds=2, seeds=1)
    res = falsify(T1Bound(), fam, budget=6, seed=0, starts=1, global_fraction=0.5, batch=3)
    assert not res.violated and 0 < res.worst_ratio < 0.2
    ratio, _, _ = rerun_instance(res.instance, T1Bound())
    assert ratio == res.worst_ratio
    import tomllib

    from persafl_np.config import SimConfig

    cfg = SimConfig.from_dict(tomllib.loads(robust_instance_toml(res.instance)))
    assert cfg.model.name == "robust" and cfg.arrivals.mode == "theorem"


def test_corollary_bound_holds():
    res = falsify(T3Bound(), QuadraticFamily(T=(10, 50)), budget=40, seed=1, starts=1,
                  batch=40)
    assert not res.violated and res.worst_ratio > 0
    assert res.instance["beta"] == pytest.approx(1.0)  # the corollary's own steps


def test_user_bound_callable():
    calls = []

    def mine(c: BoundInputs) -> float:
        calls.append(c)
        return 0.5 * c.delta_f / (c.a * c.Q * c.T)  # claims c1 = 1/2: false (worst ≈ 2.1)

    res = falsify(mine, QuadraticFamily(noise=False, heterogeneity=False), budget=40, seed=0,
                  starts=1, batch=40)
    assert calls and res.violated and res.worst_ratio < 8 * 0.1317 / 0.5


def test_argument_errors():
    with pytest.raises(ValueError, match="budget"):
        falsify(T1Bound(), QuadraticFamily(), budget=0)
    with pytest.raises(ValueError, match="global_fraction"):
        falsify(T1Bound(), QuadraticFamily(), budget=10, global_fraction=1.5)
    with pytest.raises(ValueError, match="family.Q"):
        QuadraticFamily(Q=[0])
    with pytest.raises(ValueError, match="family.K"):
        QuadraticFamily(K=(1, 2), client_dependent=True)
    with pytest.raises(ValueError, match="bound returned"):
        falsify(lambda c: -1.0, QuadraticFamily(), budget=4, starts=0)


def test_moments_zero_instance_edge():
    G = quadratic_moments(np.ones((1, 1)), np.zeros((1, 1)), np.zeros((1, 1, 1)), np.ones((1, 1)),
                          np.array([1]), np.array([0.1]), np.array([1.0]), np.array([0.0]),
                          np.array([1]), np.zeros((1, 1, 1), dtype=int), np.array([1]), 4)
    assert np.all(G == 0)


@pytest.mark.slow
def test_rediscover_audit_worst_case_from_scratch():
    """Goal of issue 13: 0.1314 from scratch (D4 constants). Measured: budget 2000, seed 1,
    0.13141 in 84 s on the shared 2-core machine. CI runs budget 300 (0.1283, ~7 s)."""
    ci = bool(os.environ.get("CI"))
    res = falsify(T1Bound("d4"), QuadraticFamily(), budget=300 if ci else 2000, seed=1,
                  starts=4, batch=256)
    assert not res.violated
    assert res.worst_ratio >= (0.97 if ci else 0.999) * AUDIT_WORST


# --- the command line: persafl falsify SPEC.toml -------------------------------------------

def test_cli_falsify_example_spec(tmp_path, capsys):
    from persafl_np.cli import main

    out = tmp_path / "out"
    rc = main(["falsify", "experiments/falsify/t1_d4.toml", "--out", str(out), "--budget", "40"])
    assert rc == 0  # (T1) holds: no violation
    doc = json.loads((out / "result.json").read_text())
    assert 0 < doc["worst_ratio"] < 1 and doc["n_evals"] == 40
    for f in ("worst_instance.json", "history.png", "history.csv", "state.json"):
        assert (out / f).exists()
    assert "no violation" in capsys.readouterr().out
    rc = main(["falsify", "experiments/falsify/t1_d4.toml", "--rerun",
               str(out / "worst_instance.json")])
    assert rc == 0
    assert f"ratio {doc['worst_ratio']:.6g}" in capsys.readouterr().out
    # rerunning the search resumes every evaluation from state.json
    assert main(["falsify", "experiments/falsify/t1_d4.toml", "--out", str(out), "--budget",
                 "40"]) == 0
    assert "(40 resumed)" in capsys.readouterr().out


def test_cli_falsify_user_bound_is_violated(tmp_path, capsys):
    from persafl_np.cli import main

    rc = main(["falsify", "experiments/falsify/my_bound.toml", "--out", str(tmp_path),
               "--budget", "60"])
    assert rc == 1 and "VIOLATED" in capsys.readouterr().out


def test_cli_falsify_spec_errors(tmp_path, capsys):
    from persafl_np.cli import main

    bad = tmp_path / "bad.toml"
    for text, msg in (("budgett = 3\n", "unknown key 'budgett'"),
                      ("[bound]\nname = 'T1'\nconstants = 'x'\n", "bound.constants"),
                      ("[bound]\nname = 'python'\nfunction = 'nofile.py:f'\n", "not found"),
                      ("[family]\nname = 'quadratic'\nQ = [0]\n", "family.Q"),
                      ("[family]\nname = 'cubic'\n", "family.name")):
        bad.write_text(text)
        assert main(["falsify", str(bad), "--out", str(tmp_path / "o")]) == 2
        assert msg in capsys.readouterr().err


def test_tightness_figure_round_trip(tmp_path):
    from persafl_np.plots.tightness import plot_bound_tightness, replot_bound_tightness

    assert replot_bound_tightness(tmp_path) == []  # no CSV: nothing to draw
    rows = [{"n": 1, "Q": 1, "tau": t, "T": T, "exact": 1.0 / T, "bound_d4": 8.0 / T,
             "bound_sharp": 4.0 / T, "falsifier": 0.9 / T, "patterns": "all",
             "worst_pattern": "0-1"} for t in (0, 1) for T in (2, 5)]
    plot_bound_tightness(rows, tmp_path / "bound_tightness.png")
    first = (tmp_path / "bound_tightness.csv").read_bytes()
    assert replot_bound_tightness(tmp_path) == [tmp_path / "bound_tightness.png"]
    assert (tmp_path / "bound_tightness.csv").read_bytes() == first
