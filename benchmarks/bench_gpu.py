"""The workload of bench_workload.py at 10², 10⁴, 10⁵ clients, CuPy against NumPy.

    python benchmarks/bench_gpu.py [--clients 100,10000,100000] [--backends numpy,cupy]
        [--dtype float32] [--updates-per-client 2] [--cohort 4096]

FedProx Synthetic(0.5, 0.5) clients from the reference's ``make_synthetic.generate`` (250
samples, 200 train, d = 60 + bias, 10 classes), softmax regression, batch 20, Q = 10, η = 0.01.
For each client count and backend two runs are timed (evaluation excluded):

* ``sync_fedavg`` — synchronous FedAvg rounds of min(n, 1000) clients;
* ``al_event``    — PersA-FL AL, event mode, every client in flight (Exp job times).

Each run does ``updates-per-client × n`` client updates (at least 1000). The same seed gives
the same schedule on both backends; the final models agree to float rounding (the table
prints max|w_cupy − w_numpy|/max|w_numpy|). The CuPy arrays are built once per client count
(``cupy.asarray`` of every client's data) outside the timed part. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REFERENCE = Path(os.environ.get("PERSAFL_REFERENCE",
                                Path(__file__).resolve().parents[2] / "shared" / "reference"))


def _clients(n: int) -> list:
    sys.path.insert(0, str(REFERENCE))
    from make_synthetic import generate  # noqa: PLC0415

    xtr, ytr, xte, yte = generate(n_clients=n, seed=0)

    def add(x):
        return np.hstack([x.astype(np.float64), np.ones((x.shape[0], 1))])

    return [(add(a), b, add(c), e) for a, b, c, e in zip(xtr, ytr, xte, yte, strict=True)]


def _run(clients: list, backend: str, mode: str, updates: int, dtype: str, cohort: int) -> tuple:
    from persafl_np.algorithms import Algorithm, persafl, sync_average  # noqa: PLC0415
    from persafl_np.backend import get_backend, to_numpy  # noqa: PLC0415
    from persafl_np.models import SoftmaxRegression  # noqa: PLC0415
    from persafl_np.personalization import Plain  # noqa: PLC0415
    from persafl_np.sim import EventDriven, Problem, TheoremMode, run  # noqa: PLC0415

    xp = get_backend(backend)
    dev = [tuple(xp.asarray(a) for a in c) for c in clients] if backend != "numpy" else clients
    prob = Problem.build(SoftmaxRegression(10), Plain(), dev, seed=0, dtype=dtype)
    n = len(clients)
    if mode == "sync_fedavg":
        m = min(n, 1000)
        alg = Algorithm(sync_average(1.0, m), Q=10, eta=0.01, batch_size=20, synchronous=True)
        spec, T = TheoremMode(), max(1, updates // m)
    else:
        alg = Algorithm(persafl(1.0), Q=10, eta=0.01, batch_size=20)
        spec, T = EventDriven(), updates
    if backend == "cupy":  # pragma: no cover - needs a GPU
        xp.cuda.Device().synchronize()
    res = run(prob, alg, spec, T=T, seed=0, eval_every=10**9, cohort_size=cohort)
    if backend == "cupy":  # pragma: no cover
        xp.cuda.Device().synchronize()
    c = res.counters
    return c["arrivals"] / (c["wall_seconds"] - c["eval_seconds"]), np.asarray(to_numpy(res.params))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="100,10000,100000")
    ap.add_argument("--backends", default="numpy,cupy")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--updates-per-client", type=float, default=2.0)
    ap.add_argument("--cohort", type=int, default=4096)
    a = ap.parse_args()
    print("| clients | mode | backend | client updates/s | speed-up vs numpy | "
          "max rel diff to numpy |\n|---:|---|---|---:|---:|---:|")
    for n in (int(x) for x in a.clients.split(",")):
        clients = _clients(n)
        updates = max(1000, int(a.updates_per_client * n))
        for mode in ("sync_fedavg", "al_event"):
            base = ref = None
            for backend in a.backends.split(","):
                t0 = time.perf_counter()
                try:
                    rate, w = _run(clients, backend, mode, updates, a.dtype, a.cohort)
                except ImportError as exc:
                    print(f"| {n} | {mode} | {backend} | unavailable ({exc}) | | |")
                    continue
                base = base or rate
                ref = w if ref is None else ref
                diff = float(np.max(np.abs(w - ref)) / np.max(np.abs(ref)))
                print(f"| {n} | {mode} | {backend} | {rate:,.0f} | {rate / base:.2f} | "
                      f"{diff:.1e} |  (wall {time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
