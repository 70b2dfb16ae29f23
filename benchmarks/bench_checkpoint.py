"""Checkpoint cost: a long run with 10 checkpoints vs the same run without (plain script).

    PYTHONPATH=. python benchmarks/bench_checkpoint.py [--arrivals 1000000] [--repeats 2]

Event-driven PersA-FL (concurrency 10), least squares d = 2 on 100 clients (one row each),
exponential job times, T = arrivals server steps, evaluation every T/10 steps. Runs alternate
(plain, checkpointed, plain, ...) so drifting machine load hits both; reports the best wall
time of each, their ratio, the time spent inside the saves (the checkpoint cost itself,
unaffected by load drift between runs), the checkpoint folder size and the bytes each
checkpoint wrote (segments: only the rows appended since the previous one). Also checks that
the two results are bit-identical.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.models import LeastSquares
from persafl_np.personalization import Plain
from persafl_np.sim import EventDriven, JobTime, Problem, run
from persafl_np.sim.checkpoint import Checkpointer

_save = Checkpointer.save
save_seconds: list[float] = []


def _timed_save(self, *args, **kwargs):  # the time spent committing checkpoints
    t0 = time.perf_counter()
    _save(self, *args, **kwargs)
    save_seconds.append(time.perf_counter() - t0)


Checkpointer.save = _timed_save


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arrivals", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--checkpoints", type=int, default=10)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    clients = [(rng.normal(size=(1, 2)), rng.normal(size=1)) for _ in range(100)]
    prob = Problem.build(LeastSquares(), Plain(), clients, seed=0)
    alg = Algorithm(persafl(0.1), Q=1, eta=0.01)
    spec = EventDriven(job_time=JobTime("exponential"), concurrency=10)
    T = a.arrivals
    kw = dict(T=T, seed=0, eval_every=max(1, T // 10))
    best = {"plain": float("inf"), "checkpointed": float("inf")}
    digests = set()
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        r = run(prob, alg, spec, **kw)
        best["plain"] = min(best["plain"], time.perf_counter() - t0)
        digests.add(r.digest())
        with tempfile.TemporaryDirectory() as d:
            save_seconds.clear()
            t0 = time.perf_counter()
            r = run(prob, alg, spec, checkpoint_dir=d, checkpoint_every=T // a.checkpoints, **kw)
            best["checkpointed"] = min(best["checkpointed"], time.perf_counter() - t0)
            best["saves"] = min(best.get("saves", float("inf")), sum(save_seconds))
            digests.add(r.digest())
            files = sorted(Path(d).iterdir())
            size = sum(p.stat().st_size for p in files)
            man = json.loads((Path(d) / "MANIFEST.json").read_text())
            segs = [s["bytes"] for s in man["segments"]]
    print(f"arrivals {int(r.counters['arrivals'])}, T {T}, {a.checkpoints} checkpoints, "
          f"best of {a.repeats}")
    print(f"plain        {best['plain']:8.2f} s")
    print(f"checkpointed {best['checkpointed']:8.2f} s   ratio "
          f"{best['checkpointed'] / best['plain']:.3f}")
    print(f"time inside the {a.checkpoints} saves {best['saves']:.2f} s = "
          f"{best['saves'] / best['plain']:.3f} of the plain run (robust to load drift: "
          f"(plain + saves) / plain = {1 + best['saves'] / best['plain']:.3f})")
    print(f"checkpoint folder {size / 1e6:.1f} MB in {len(files)} files; segment bytes "
          f"min {min(segs) / 1e6:.2f} MB max {max(segs) / 1e6:.2f} MB")
    print("bit-identical results:", len(digests) == 1, "; status", r.status)


if __name__ == "__main__":
    main()
