"""The mini-batch law (SIM-BATCH) of theory/simulator.md §1.1, replayed independently.

The replay below is written from the text of theory/simulator.md alone — generator, calls,
order, end of a pass, MAML's three batches per step — with hand-written least-squares
derivatives; it reads the run's trace.csv (and nothing else of the run) and must reproduce
every update norm and the final model.
"""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.models import LeastSquares
from persafl_np.personalization import MAML, Plain
from persafl_np.results import read_trace_csv
from persafl_np.sim import EventDriven, JobTime, Problem, run

SEED, Q, ETA, B, BETA = 7, 3, 0.05, 3, 0.6


def _clients():
    rng = np.random.default_rng(0)
    out = []
    for m in (7, 10, 13, 5):  # 7 = 2·3 + 1 and 13 = 4·3 + 1: passes end with a dropped tail
        X = rng.normal(size=(m, 3))
        out.append((X, X @ rng.normal(size=3) + 0.1 * rng.normal(size=m)))
    return out


class _Client:
    """Client i's stream exactly as theory/simulator.md §1.1 words it."""

    def __init__(self, i: int, m: int) -> None:
        self.g = np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=(1, i)))
        self.m, self.perm, self.pos = m, None, 0

    def batch(self) -> np.ndarray:
        if self.perm is None or self.pos + B > self.m:
            self.perm, self.pos = self.g.permutation(self.m), 0
        idx = self.perm[self.pos:self.pos + B]
        self.pos += B
        return idx


def _grad(w, X, y):
    return X.T @ (X @ w - y) / X.shape[0]


def _hvp(v, X):
    return X.T @ (X @ v) / X.shape[0]


def _direction(kind, w, X, y, c: _Client, alpha=0.05):
    if kind == "plain":
        i = c.batch()
        return _grad(w, X[i], y[i])
    d0, d1, d2 = c.batch(), c.batch(), c.batch()  # D, D', D'' in this order
    v = _grad(w - alpha * _grad(w, X[d0], y[d0]), X[d1], y[d1])
    return v - alpha * _hvp(v, X[d2])


@pytest.mark.parametrize("kind", ["plain", "maml"])
def test_trace_csv_plus_config_replays_every_iterate(kind, tmp_path):
    clients = _clients()
    oracle = Plain() if kind == "plain" else MAML(0.05)
    prob = Problem.build(LeastSquares(), oracle, clients, seed=SEED)
    res = run(prob, Algorithm(persafl(BETA), Q=Q, eta=ETA, batch_size=B),
              EventDriven(job_time=JobTime("exponential")), T=40, seed=SEED, cohort_size=8)
    res.save(tmp_path)
    tr = read_trace_csv(tmp_path / "trace.csv", len(clients))
    streams = {i: _Client(i, X.shape[0]) for i, (X, _) in enumerate(clients)}
    versions = [prob.w0]
    for r in range(len(tr)):
        i, p = int(tr.client[r]), int(tr.pulled_version[r])
        X, y = clients[i]
        u = yq = versions[p]
        for _ in range(Q):
            yq = yq - ETA * _direction(kind, yq, X, y, streams[i])
        delta = u - yq
        np.testing.assert_allclose(np.linalg.norm(delta), tr.update_norm[r], rtol=1e-12)
        if tr.accepted[r]:
            versions.append(versions[-1] - BETA * delta)
    np.testing.assert_allclose(versions[-1], res.params, rtol=1e-12, atol=1e-14)
    # the law is really the pass law: a client that took several jobs has crossed passes
    assert max(np.sum(tr.client == i) for i in range(len(clients))) * Q * B > 13
