"""The standard personalized-FL workload, persafl_np against the plain per-client NumPy loop.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_workload.py [--repeats 3]
        [--inner 3] [--updates 1000] [--modes sync_fedavg,al_event,...]
        [--dtypes float32,float64] [--cohort-sweep] [--paired R]

``--paired R`` replaces the table by R (reference, mode) pairs run back to back per mode and
dtype, the ratio taken within each pair (median, min, max): on a VM whose speed drifts by
1.5x within a minute, this is the ratio least exposed to the drift.

Workload (issue 9; ../shared/reference/README.md): FedProx Synthetic(0.5, 0.5) from the
reference's own ``make_synthetic.generate`` (100 clients × 250 samples, 200 train / 50 test,
d = 60, 10 classes, seed 0), softmax regression with a bias (a ones column: d = 61, 610
parameters), batch 20, Q = 10 local steps per client job, η = 0.01.

Rows, each timed in its own subprocess (so peak RSS is per row), interleaved and repeated:

* ``reference``  — the loop of ``numpy_fedavg_reference.py`` (its own ``grad`` function, the same
  round structure: copy, shuffle, 10 batches, weighted average) in the row's dtype; the float32
  row is the reference exactly as published;
* ``sync_fedavg`` — persafl_np synchronous FedAvg, 100 clients per round (β = 1);
* ``al_event``   — PersA-FL AL, event mode, every client in flight, Exp job times;
* ``al_theorem`` — PersA-FL AL, theorem mode, τ = 10 (policy ``max``);
* ``maml_exact`` / ``maml_fo`` — PersA-FL with MAML clients (α = 0.01), event mode;
* ``moreau_k5``  — PersA-FL with Moreau-envelope clients (λ = 15, K = 5 inner GD steps, the
  inner L of every batch the mean of its per-sample constants ‖x_j‖²/2, the oracle's default,
  theory/personalization.md eq. (ME-13)), event mode;
* ``moreau_k5_fixedL`` — the same with ``smoothness`` = the per-sample bound max_j‖x_j‖²/2 over
  all clients, valid for every batch (pFedMe's fixed personal learning rate).

Each row's subprocess runs its computation ``--inner`` times (the same deterministic run) and
reports the fastest: as in ``timeit``, the minimum is the estimate least disturbed by the other
processes of a shared machine (a repeat's median still spreads over moments of different load).

Printed per row: client updates/s (jobs finished per second of training wall time; evaluation
excluded, it is outside the clock), local steps/s, gradient-equivalents/s (model gradients +
Hessian-vector products per second), peak RSS of the subprocess, and the ratio of client
updates/s to the reference row of the same dtype and repeat (the median over repeats is shown).
Only the ratios are meaningful on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REFERENCE = Path(os.environ.get("PERSAFL_REFERENCE",
                                Path(__file__).resolve().parents[2] / "shared" / "reference"))
MODES = ("reference", "sync_fedavg", "al_event", "al_theorem", "maml_exact", "maml_fo",
         "moreau_k5", "moreau_k5_fixedL")
#: client updates per row, relative to --updates: every mode runs the same number of arrivals.
#: (Earlier, MAML ran half and Moreau a quarter of them. With all 100 clients in flight, a run
#: of T arrivals computes ~T + 90 jobs — those still in flight at the end whose cohort was
#: already computed — so shorter runs carried a larger share of work no arrival counts: 596 jobs
#: for 500 MAML arrivals (19 %), ~340 for 250 Moreau arrivals (~35 %), ~1090 for 1000 (9 %).)
SCALE: dict[str, float] = {}
N_CLIENTS, BATCH, Q, LR = 100, 20, 10, 0.01


def _data():
    sys.path.insert(0, str(REFERENCE))
    from make_synthetic import generate  # noqa: PLC0415

    return generate(n_clients=N_CLIENTS, seed=0)


def _reference(dtype: str, updates: int) -> dict:
    """The reference loop (numpy_fedavg_reference.py's main loop with its grad), in ``dtype``."""
    sys.path.insert(0, str(REFERENCE))
    from numpy_fedavg_reference import grad  # noqa: PLC0415

    xtr, ytr, _, _ = _data()
    dt = np.dtype(dtype)
    xtr = [x.astype(dt) for x in xtr]
    rng = np.random.default_rng(1)
    C, d = 10, xtr[0].shape[1]
    W, b = np.zeros((C, d), dt), np.zeros(C, dt)
    lr = dt.type(LR)
    rounds = max(1, updates // N_CLIENTS)
    steps = 0
    t0 = time.perf_counter()
    for _ in range(rounds):
        W_sum, b_sum, n_sum = np.zeros_like(W), np.zeros_like(b), 0
        for k in range(N_CLIENTS):
            Wk, bk = W.copy(), b.copy()
            x, y = xtr[k], ytr[k]
            n = y.size
            perm = rng.permutation(n)
            for s in range(0, n - BATCH + 1, BATCH):
                idx = perm[s:s + BATCH]
                gW, gb = grad(Wk, bk, x[idx], y[idx])
                Wk -= lr * gW
                bk -= lr * gb
                steps += 1
            W_sum += n * Wk
            b_sum += n * bk
            n_sum += n
        W, b = W_sum / n_sum, b_sum / n_sum
    wall = time.perf_counter() - t0
    return {"updates": rounds * N_CLIENTS, "steps": steps, "grads": steps, "wall": wall}


def _persafl(mode: str, dtype: str, updates: int, cohort: int | None) -> dict:
    from persafl_np.algorithms import Algorithm, persafl, sync_average  # noqa: PLC0415
    from persafl_np.models import SoftmaxRegression  # noqa: PLC0415
    from persafl_np.personalization import MAML, MoreauEnvelope, Plain  # noqa: PLC0415
    from persafl_np.sim import EventDriven, Problem, TheoremMode, run  # noqa: PLC0415

    xtr, ytr, xte, yte = _data()

    def add(x):
        return np.hstack([x.astype(np.float64), np.ones((x.shape[0], 1))])

    clients = [(add(a), b, add(c), e) for a, b, c, e in zip(xtr, ytr, xte, yte, strict=True)]
    L_bound = max(float(np.max(np.sum(c[0] ** 2, axis=1))) for c in clients) / 2.0
    oracle = {
        "maml_exact": MAML(0.01), "maml_fo": MAML(0.01, "first_order"),
        "moreau_k5": MoreauEnvelope(15.0, inner_steps=5),
        "moreau_k5_fixedL": MoreauEnvelope(15.0, inner_steps=5, smoothness=L_bound),
    }.get(mode, Plain())
    prob = Problem.build(SoftmaxRegression(10), oracle, clients, seed=0, dtype=dtype)
    if mode == "sync_fedavg":
        alg = Algorithm(sync_average(1.0, N_CLIENTS), Q=Q, eta=LR, batch_size=BATCH,
                        synchronous=True)
        spec, T = TheoremMode(), max(1, updates // N_CLIENTS)
    else:
        alg = Algorithm(persafl(1.0), Q=Q, eta=LR, batch_size=BATCH)
        spec = TheoremMode(tau=10, policy="max") if mode == "al_theorem" else EventDriven()
        T = updates
    res = run(prob, alg, spec, T=T, seed=0, eval_every=10**9, cohort_size=cohort)
    c = res.counters
    wall = c["wall_seconds"] - c["eval_seconds"]
    return {"updates": c["arrivals"], "steps": c["arrivals"] * Q,
            "grads": c["n_grad"] + c["n_hvp"], "wall": wall, "status": res.status}


def worker(mode: str, dtype: str, updates: int, cohort: int | None, inner: int = 1) -> None:
    runs = [_reference(dtype, updates) if mode == "reference"
            else _persafl(mode, dtype, updates, cohort) for _ in range(max(1, inner))]
    r = min(runs, key=lambda q: q["wall"])
    r["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(r))


def _spawn(mode: str, dtype: str, updates: int, cohort: int | None = None,
           inner: int = 1) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--worker", mode, dtype, str(updates),
           "0" if cohort is None else str(cohort), str(inner)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--inner", type=int, default=3,
                    help="runs per row subprocess; the fastest is reported")
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--cohort-sweep", action="store_true",
                    help="also time al_event and sync_fedavg at cohort_size 1, 8, 32, 128, 512")
    ap.add_argument("--paired", type=int, default=0, metavar="R",
                    help="instead: R back-to-back (reference, mode) pairs per mode and dtype, "
                         "the ratio taken within each pair (less exposed to the machine's "
                         "drift); prints the median and the range")
    ap.add_argument("--worker", nargs=5, metavar=("MODE", "DTYPE", "UPDATES", "COHORT", "INNER"))
    a = ap.parse_args()
    if a.worker:
        m, dt, u, cs, inner = a.worker
        worker(m, dt, int(u), int(cs) or None, int(inner))
        return
    modes = [m for m in a.modes.split(",") if m]
    if "reference" not in modes:
        modes.insert(0, "reference")
    dtypes = a.dtypes.split(",")
    if a.paired:
        _paired(modes, dtypes, a.paired, a.updates, a.inner)
        return
    rows: dict[tuple[str, str], list[dict]] = {}
    for rep in range(a.repeats):
        for dt in dtypes:
            ref = None
            for m in modes:
                u = max(N_CLIENTS, int(a.updates * SCALE.get(m, 1.0)))
                r = _spawn(m, dt, u, None, a.inner)
                if m == "reference":
                    ref = r
                r["ratio"] = (r["updates"] / r["wall"]) / (ref["updates"] / ref["wall"])
                rows.setdefault((m, dt), []).append(r)
                print(f"  rep {rep} {dt} {m}: {r['updates'] / r['wall']:.0f} updates/s "
                      f"(x{r['ratio']:.2f})", file=sys.stderr, flush=True)
    print("\n| mode | dtype | client updates/s | local steps/s | grad-equiv/s | peak RSS MB "
          "| ratio to loop (median) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (m, dt), rs in rows.items():
        def med(k, rs=rs):
            return statistics.median(k(r) for r in rs)
        print(f"| {m} | {dt} | {med(lambda r: r['updates'] / r['wall']):,.0f} | "
              f"{med(lambda r: r['steps'] / r['wall']):,.0f} | "
              f"{med(lambda r: r['grads'] / r['wall']):,.0f} | "
              f"{max(r['rss_mb'] for r in rs):.0f} | {med(lambda r: r['ratio']):.2f} |")
    if a.cohort_sweep:
        print("\n| mode | dtype | cohort_size | client updates/s | ratio to cohort_size 1 |")
        print("|---|---|---:|---:|---:|")
        for dt in dtypes:
            for m in ("al_event", "sync_fedavg"):
                base = None
                for cs in (1, 8, 32, 128, 512):
                    vals = []
                    for _ in range(a.repeats):
                        r = _spawn(m, dt, a.updates, cs, a.inner)
                        vals.append(r["updates"] / r["wall"])
                    v = statistics.median(vals)
                    base = base or v
                    print(f"| {m} | {dt} | {cs} | {v:,.0f} | {v / base:.2f} |", flush=True)


def _paired(modes: list[str], dtypes: list[str], R: int, updates: int, inner: int) -> None:
    """``--paired R``: per (mode, dtype), R pairs (reference, mode) run back to back."""
    print("| mode | dtype | pairs | ratio to loop (median) | min | max |")
    print("|---|---|---:|---:|---:|---:|")
    for dt in dtypes:
        for m in modes:
            if m == "reference":
                continue
            u = max(N_CLIENTS, int(updates * SCALE.get(m, 1.0)))
            ratios = []
            for _ in range(R):
                ref = _spawn("reference", dt, updates, None, inner)
                r = _spawn(m, dt, u, None, inner)
                ratios.append((r["updates"] / r["wall"]) / (ref["updates"] / ref["wall"]))
            print(f"| {m} | {dt} | {R} | {statistics.median(ratios):.2f} | {min(ratios):.2f} | "
                  f"{max(ratios):.2f} |", flush=True)


if __name__ == "__main__":
    main()
