"""Time one exact evaluation (SIM-EVAL, theory/simulator.md §6) on the README run config.

The README's run configuration (softmax, MAML, FedProx Synthetic) is read from README.md, its
problem built as ``simulate`` builds it; optionally with ``--clients`` to scale the data set.
Prints the real rows, the padded rows one evaluation processes (train + test, grouped by the
per-client widths of :mod:`persafl_np.sim.evaluation`) and the median of ``--repeat`` timed
evaluations at w0 (the Evaluator, per-client constants included, is built once). Usage::

    PYTHONPATH=. python benchmarks/bench_evaluation.py [--clients 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

import numpy as np

from persafl_np.config import SimConfig
from persafl_np.sim.engine import Problem
from persafl_np.sim.evaluation import Evaluator

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=None, help="override data.n_clients")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import tomllib

    text = (ROOT / "README.md").read_text()
    block = re.search(r"^```toml\n(seed = 0\nT = 600.*?)^```", text, re.M | re.S).group(1)
    d = tomllib.loads(block)
    if args.clients is not None:
        d.setdefault("data", {})["n_clients"] = args.clients
    cfg = SimConfig.from_dict(d)
    data = cfg.data.build(cfg.seed)
    prob = Problem.build(cfg.model.build(getattr(data, "n_classes", None)), cfg.oracle.build(),
                         data, seed=cfg.seed, dtype=cfg.dtype)
    t0 = time.perf_counter()
    ev = Evaluator(prob)
    t_build = time.perf_counter() - t0
    shares = np.full(prob.n_clients, 1.0 / prob.n_clients)
    real = sum(int(c[0].shape[0]) + int(c[2].shape[0]) for c in prob.clients)
    padded = getattr(ev, "padded_rows", None)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ev(prob.w0, shares)
        times.append(time.perf_counter() - t0)
    print(f"clients {prob.n_clients}  real rows {real}  padded rows {padded}  "
          f"build {t_build * 1e3:.1f} ms  evaluation median {statistics.median(times) * 1e3:.1f} ms"
          f"  (min {min(times) * 1e3:.1f} ms, {args.repeat} repeats)")


if __name__ == "__main__":
    main()
