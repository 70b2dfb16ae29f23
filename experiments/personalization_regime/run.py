"""The personalization regime: personalized (MAML, ME) vs global (AL) vs local-only over
(samples per client) × (heterogeneity), with α, λ chosen on a validation split.

Usage::

    python experiments/personalization_regime/run.py experiments/personalization_regime/spec.toml \
        --out experiments/results/personalization_regime --workers 2
    python experiments/personalization_regime/run.py --report \
        experiments/results/personalization_regime          # tables, CSV and figure only

Protocol (experiments/README.md, "The personalization regime"):

1. a *cell* is (data family, samples per client m, heterogeneity h); per cell and seed the data
   are built from the data stream of the seed (``persafl_np.sim.streams.data_rng``): FedProx
   Synthetic(0.5, β) with exactly m training rows and ``test_rows`` test rows per client, or the
   digits with a Dirichlet(α) label partition and each client's training rows subsampled to m;
2. each client's m training rows are split into fit / validation rows
   (``validation_fraction``) by a stream of its own (spawn key :data:`VALIDATION_PURPOSE`);
3. AL (plain oracle), local-only, MAML(α) for every α and ME(λ) for every λ of the spec train on
   the fit rows only — same arrivals, same number of client jobs (T arrivals × Q local steps),
   so the client budgets are equal; every run is scored on the validation rows (by the engine,
   eq. (SIM-EVAL) of theory/simulator.md) and on the test rows (here, the same served models:
   w for AL, θ_i = w − α∇f_i(w) for MAML (eq. (MAML-1)), θ̂_i(w) for ME (eq. (ME-1)), the
   client's own model for local-only);
4. per cell, α* and λ* maximise the mean over seeds of the validation client-mean accuracy; the
   test rows are used only to score the chosen models;
5. per cell and seed the paired differences d_G = pers − AL and d_L = pers − local-only of the
   test client-mean accuracy; a personalized model *wins* a cell when the lower end of the
   one-sided 95 % t-interval over seeds (df = seeds − 1) is > 0 for both d_G and d_L — an
   intersection–union test of "pers > max(global, local)", valid at level 5 % without correction.

Every run appends one JSON line to ``DIR/runs.jsonl`` as soon as it finishes (a rerun skips the
keys already there, so an interrupted sweep resumes); ``--report`` writes ``DIR/cells.csv`` (one
row per cell × personalized oracle), ``figures/personalization_regime.png`` + ``.csv`` and, for
the spec's ``showcase`` cell, ``figures/personalization.png`` + ``.csv`` (per-client accuracies).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import tomllib
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np.atomic import atomic_write_text
from persafl_np.config import SimConfig, simulate
from persafl_np.data.digits import load_digits_federated
from persafl_np.data.federated import ClientData, FederatedDataset
from persafl_np.data.partition import split_train_test
from persafl_np.data.synthetic import fedprox_synthetic
from persafl_np.sim import streams

#: Spawn key of the fit/validation split and of the digits subsampling; distinct from every
#: purpose in persafl_np.sim.streams (0–6), so no simulator stream is consumed or shifted.
VALIDATION_PURPOSE = 100
SPEED_PATTERN = (4.0, 1.0, 1.0)  # every 3rd client 4x faster, as in experiments (a), (b)
CELL_FIELDS = ("family", "samples_per_client", "heterogeneity", "oracle", "param", "n_seeds",
               "acc_pers", "acc_global", "acc_local", "d_global_mean", "d_global_lo95",
               "d_local_mean", "d_local_lo95", "wins")


def build_data(family: str, m: int | str, h: float, seed: int, spec: dict) -> tuple:
    """(fit data set with no test rows, [(validation rows, test rows)] per client).

    The engine gets no test rows, so it never solves for a served model; :func:`one_run` solves
    once per client and scores that model on both the validation and the test rows."""
    n = int(spec["n_clients"])
    rng = streams.data_rng(seed)
    if family == "fedprox":
        t = int(spec["fedprox"]["test_rows"])
        m = int(m)
        data = fedprox_synthetic(0.5, h, n, rng, size_lognormal=(-50.0, 0.0),
                                 min_samples=m + t, test_fraction=t / (m + t))
    else:
        data = load_digits_federated(n, partition="dirichlet", dirichlet_alpha=h,
                                     test_fraction=float(spec["digits"]["test_fraction"]),
                                     seed=rng)
    split = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(VALIDATION_PURPOSE,)))
    frac = float(spec["validation_fraction"])
    fit_clients, tests = [], []
    for c in data.clients:
        idx = np.arange(c.X_train.shape[0])
        if m != "all" and idx.size > int(m):
            idx = np.sort(split.choice(idx, int(m), replace=False))
        fit, val = split_train_test(idx, frac, split)
        fit_clients.append(ClientData(c.X_train[fit], c.y_train[fit],
                                      c.X_train[:0], c.y_train[:0]))
        tests.append((c.X_train[val], c.y_train[val], c.X_test, c.y_test))
    fit_data = FederatedDataset(clients=tuple(fit_clients), n_features=data.n_features,
                                n_classes=data.n_classes, name=f"{data.name}+fit/validation")
    return fit_data, tests


def config(spec: dict, family: str, seed: int, oracle: str, algorithm: str,
           **oracle_params: float) -> SimConfig:
    n = int(spec["n_clients"])
    T = int(spec["T"])
    return SimConfig.from_dict({
        "seed": seed, "T": T, "eval_every": T,
        "model": {"name": "softmax"},
        "oracle": {"name": oracle, "inner_steps": 10, **oracle_params},
        "data": {"name": "fedprox_synthetic" if family == "fedprox" else "digits",
                 "n_clients": n},
        "algorithm": {"name": algorithm, "Q": 5, "eta": 0.05, "batch_size": 16},
        "arrivals": {"mode": "event", "job_time": {"law": "exponential", "mean": 1.0},
                     "speeds": [SPEED_PATTERN[i % 3] for i in range(n)]},
    })


def one_run(job: tuple) -> dict:
    """(key, family, m, h, seed, label, oracle, algorithm, params, spec) -> scores."""
    key, family, m, h, seed, label, oracle, algorithm, params, spec = job
    cfg = config(spec, family, seed, oracle, algorithm, **params)
    data, tests = build_data(family, m, h, seed, spec)
    res = simulate(cfg, dataset=data)
    model = cfg.model.build(data.n_classes)
    orc = cfg.oracle.build()
    w = np.asarray(res.params)
    accs, vals = [], []
    for i, (c, (Xv, yv, Xt, yt)) in enumerate(zip(data.clients, tests, strict=True)):
        if res.client_params is not None:
            theta = res.client_params[i]
        else:
            theta = orc.personalize(model, w, c.X_train, c.y_train)
        if yv.shape[0]:  # a client with 1-2 rows (digits, small Dirichlet alpha) may have
            vals.append(float(np.mean(model.predict(theta, Xv) == yv)))  # no validation row
        if yt.shape[0]:  # ... or no test row: it is left out of the client mean
            accs.append(float(np.mean(model.predict(theta, Xt) == yt)))
    return {"key": key, "family": family, "m": m, "h": h, "seed": seed, "label": label,
            "status": res.status, "val_acc": float(np.mean(vals)),
            "test_acc": float(np.mean(accs)), "test_acc_min": float(np.min(accs)),
            "test_acc_clients": accs, "n_grad": int(res.counters["n_grad"]),
            "arrivals": int(res.counters["arrivals"]),
            "fit_rows": [int(c.X_train.shape[0]) for c in data.clients]}


def control(job: tuple) -> dict:
    """(key, family, m, h, seed, lam, spec) -> ME(λ)'s served model solved from the untrained w⁰.

    θ̂_i(w⁰) = argmin f_i(θ) + (λ/2)‖θ − w⁰‖² (eq. (ME-1)) on the client's fit rows: the same
    evaluation-time solve ME's served model gets, without any federation (the control of
    experiments/fair_personalization). ME − control is what the federated w contributes.
    """
    from persafl_np.sim.engine import Problem

    key, family, m, h, seed, lam, spec = job
    cfg = config(spec, family, seed, "moreau", "persafl", lam=float(lam))
    data, tests = build_data(family, m, h, seed, spec)
    model = cfg.model.build(data.n_classes)
    orc = cfg.oracle.build()
    w0 = Problem.build(model, orc, data, seed=cfg.seed).w0
    accs = [float(np.mean(model.predict(orc.personalize(model, w0, c.X_train, c.y_train), Xt)
                          == yt)) for c, (_, _, Xt, yt) in zip(data.clients, tests, strict=True)]
    return {"key": key, "test_acc": float(np.mean(accs))}


def controls(spec: dict, out: Path, rows: list[dict], workers: int) -> dict[str, dict]:
    """Run (resumably, ``DIR/controls.jsonl``) the control of every ME row that wins."""
    log = out / "controls.jsonl"
    done = read_runs(log)
    todo = []
    for r in rows:
        if r["oracle"] == "ME" and r["wins"]:
            for s in spec["seeds"]:
                key = (f"{r['family']}|{r['samples_per_client']}|{r['heterogeneity']:g}|{s}|"
                       f"ME lambda={r['param']} from w0")
                if key not in done:
                    todo.append((key, r["family"], r["samples_per_client"], r["heterogeneity"],
                                 int(s), float(r["param"]), spec))
    if todo:
        with ProcessPoolExecutor(max_workers=workers) as pool, log.open("a") as fh:
            for res in pool.map(control, todo):
                fh.write(json.dumps(res) + "\n")
                fh.flush()
    return read_runs(log)


def control_table(spec: dict, runs: dict[str, dict], rows: list[dict],
                  ctrl: dict[str, dict]) -> str:
    """Markdown: for each winning ME cell, ME − control per seed and its 95 % lower bound."""
    lines = ["| data | m | heterogeneity | ME (λ*) | control: ME solve from w⁰ | ME − control per "
             "seed | 95 % lower |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if not (r["oracle"] == "ME" and r["wins"]):
            continue
        cell = f"{r['family']}|{r['samples_per_client']}|{r['heterogeneity']:g}"
        me, c = [], []
        for s in spec["seeds"]:
            me.append(runs[f"{cell}|{s}|ME lambda={r['param']}"]["test_acc"])
            c.append(ctrl[f"{cell}|{s}|ME lambda={r['param']} from w0"]["test_acc"])
        d = list(np.asarray(me) - np.asarray(c))
        lines.append(f"| {r['family']} | {r['samples_per_client']} | {r['heterogeneity']:g} | "
                     f"{np.mean(me):.3f} (λ* = {r['param']}) | {np.mean(c):.3f} | "
                     + ", ".join(f"{x:+.3f}" for x in d) + f" | {lower95(d):+.3f} |")
    return "\n".join(lines)


def candidates(spec: dict) -> list[tuple[str, str, str, dict]]:
    """(label, oracle, algorithm, oracle params) of every run of one cell and seed."""
    out = [("AL", "plain", "persafl", {}), ("local-only", "plain", "local", {})]
    out += [(f"MAML alpha={a:g}", "maml", "persafl", {"alpha": float(a)})
            for a in spec["maml_alpha"]]
    out += [(f"ME lambda={v:g}", "moreau", "persafl", {"lam": float(v)})
            for v in spec["moreau_lam"]]
    return out


def cells(spec: dict) -> list[tuple[str, Any, float]]:
    out = [("fedprox", int(m), float(b)) for m in spec["fedprox"]["samples_per_client"]
           for b in spec["fedprox"]["beta"]]
    out += [("digits", m if m == "all" else int(m), float(a))
            for m in spec["digits"]["samples_per_client"]
            for a in spec["digits"]["dirichlet_alpha"]]
    return out


def jobs(spec: dict) -> list[tuple]:
    out = []
    # cheap candidates first within each cell; cells ordered so that partial results are a grid
    for seed in spec["seeds"]:
        for family, m, h in cells(spec):
            for label, oracle, algorithm, params in candidates(spec):
                key = f"{family}|{m}|{h:g}|{seed}|{label}"
                out.append((key, family, m, h, int(seed), label, oracle, algorithm, params, spec))
    return out


def read_runs(path: Path) -> dict[str, dict]:
    """Finished runs by key; a torn last line (interrupted write) is ignored."""
    done: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[r["key"]] = r
    return done


def _t95(df: int) -> float:
    """One-sided 95 % Student-t quantile (scipy is a test/data extra, so a small table)."""
    table = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860,
             9: 1.833, 10: 1.812}
    return table.get(df, 1.645)


def lower95(d: list[float]) -> float:
    """Lower end of the one-sided 95 % t-interval of the mean of paired differences ``d``."""
    a = np.asarray(d, dtype=np.float64)
    if a.size < 2:
        return -math.inf
    return float(a.mean() - _t95(a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))


def analyse(spec: dict, runs: dict[str, dict]) -> list[dict]:
    """One row per cell × personalized oracle (CELL_FIELDS); cells with < 3 seeds are left out."""
    rows = []
    labels = [c[0] for c in candidates(spec)]
    for family, m, h in cells(spec):
        def get(label: str, seed: int, cell: str = f"{family}|{m}|{h:g}") -> dict | None:
            return runs.get(f"{cell}|{seed}|{label}")

        # the seeds whose runs are all finished (an interrupted sweep still reports; >= 3 needed)
        seeds = [int(s) for s in spec["seeds"] if all(get(lab, int(s)) for lab in labels)]
        if len(seeds) < 3:
            continue

        base = {lab: [get(lab, s) for s in seeds] for lab in ("AL", "local-only")}
        if any(r is None for rs in base.values() for r in rs):
            continue
        for oracle, prefix in (("MAML", "MAML alpha="), ("ME", "ME lambda=")):
            labs = [c[0] for c in candidates(spec) if c[0].startswith(prefix)]
            per = {lab: [get(lab, s) for s in seeds] for lab in labs}
            if any(r is None for rs in per.values() for r in rs):
                continue
            best = max(labs, key=lambda lab: np.mean([r["val_acc"] for r in per[lab]]))
            p = np.asarray([r["test_acc"] for r in per[best]])
            g = np.asarray([r["test_acc"] for r in base["AL"]])
            lo = np.asarray([r["test_acc"] for r in base["local-only"]])
            dg, dl = list(p - g), list(p - lo)
            lg, ll = lower95(dg), lower95(dl)
            rows.append({"family": family, "samples_per_client": m, "heterogeneity": h,
                         "oracle": oracle, "param": best[len(prefix):], "n_seeds": len(seeds),
                         "acc_pers": p.mean(), "acc_global": g.mean(), "acc_local": lo.mean(),
                         "d_global_mean": float(np.mean(dg)), "d_global_lo95": lg,
                         "d_local_mean": float(np.mean(dl)), "d_local_lo95": ll,
                         "wins": int(lg > 0.0 and ll > 0.0)})
    return rows


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CELL_FIELDS)
    for r in rows:
        w.writerow([f"{r[k]:.6g}" if isinstance(r[k], float) else r[k] for k in CELL_FIELDS])
    return buf.getvalue()


def showcase(spec: dict, runs: dict[str, dict], rows: list[dict]) -> dict[str, np.ndarray]:
    """Per-client test accuracies (pooled over seeds) of the spec's ``showcase`` cell, for the
    global model, local-only and the chosen MAML and ME models: label → accuracies."""
    sc = spec["showcase"]
    fam, m, h = sc["family"], sc["samples_per_client"], float(sc["heterogeneity"])
    chosen = {r["oracle"]: r for r in rows if (r["family"], str(r["samples_per_client"]),
                                                r["heterogeneity"]) == (fam, str(m), h)}
    if set(chosen) != {"MAML", "ME"}:
        raise ValueError(f"showcase cell {fam}, m={m}, {h:g} has no finished analysis")
    labels = {"local-only": "local-only", "global (AL)": "AL",
              f"MAML (α* = {chosen['MAML']['param']})": f"MAML alpha={chosen['MAML']['param']}",
              f"ME (λ* = {chosen['ME']['param']})": f"ME lambda={chosen['ME']['param']}"}
    seeds = [int(s) for s in spec["seeds"]]
    return {shown: np.concatenate([runs[f"{fam}|{m}|{h:g}|{s}|{lab}"]["test_acc_clients"]
                                   for s in seeds])
            for shown, lab in labels.items()}


def report(spec: dict, out: Path, figure: Path | None) -> list[dict]:
    runs = read_runs(out / "runs.jsonl")
    rows = analyse(spec, runs)
    atomic_write_text(out / "cells.csv", _csv(rows))
    if figure is not None and rows:
        from persafl_np.plots.personalization import plot_personalization
        from persafl_np.plots.regime import plot_regime

        plot_regime(rows, figure)
        if "showcase" in spec:
            sc = spec["showcase"]
            plot_personalization(
                showcase(spec, runs, rows), figure.with_name("personalization.png"),
                title=f"inside the regime: {sc['description']}\nper-client test accuracy, "
                      f"{len(spec['seeds'])} seeds pooled (one dot per client and seed)")
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| data | m | heterogeneity | oracle (chosen) | pers. | global | local | "
             "pers − global [95 % lower] | pers − local [95 % lower] | wins |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        het = ("β = " if r["family"] == "fedprox" else "Dir α = ") + f"{r['heterogeneity']:g}"
        par = ("α = " if r["oracle"] == "MAML" else "λ = ") + r["param"]
        lines.append(
            f"| {r['family']} | {r['samples_per_client']} | {het} | {r['oracle']} ({par}) | "
            f"{r['acc_pers']:.3f} | {r['acc_global']:.3f} | {r['acc_local']:.3f} | "
            f"{r['d_global_mean']:+.3f} [{r['d_global_lo95']:+.3f}] | "
            f"{r['d_local_mean']:+.3f} [{r['d_local_lo95']:+.3f}] | "
            f"{'yes' if r['wins'] else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--report", action="store_true", help="only tables, CSV and figure")
    ap.add_argument("--controls", action="store_true",
                    help="also the no-federation control of every winning ME cell")
    ap.add_argument("--figure", type=Path, default=Path("figures/personalization_regime.png"))
    args = ap.parse_args(argv)
    with args.spec.open("rb") as fh:
        spec = tomllib.load(fh)
    frac = float(spec["validation_fraction"])
    if not 0.0 < frac < 1.0:
        raise ValueError(f"validation_fraction must lie in (0, 1), got {frac!r}")
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "runs.jsonl"
    if not args.report:
        done = read_runs(log)
        todo = [j for j in jobs(spec) if j[0] not in done]
        print(f"{len(todo)} runs to do ({len(done)} already in {log})", flush=True)
        with ProcessPoolExecutor(max_workers=args.workers) as pool, log.open("a") as fh:
            futs = [pool.submit(one_run, j) for j in todo]
            for k, fut in enumerate(as_completed(futs), start=1):
                r = fut.result()
                fh.write(json.dumps(r) + "\n")
                fh.flush()
                print(f"[{k}/{len(todo)}] {r['key']}: val {r['val_acc']:.3f} "
                      f"test {r['test_acc']:.3f}", flush=True)
    rows = report(spec, args.out, args.figure)
    print(markdown(rows))
    if args.controls:
        ctrl = controls(spec, args.out, rows, args.workers)
        print()
        print(control_table(spec, read_runs(args.out / "runs.jsonl"), rows, ctrl))


if __name__ == "__main__":
    main(sys.argv[1:])
