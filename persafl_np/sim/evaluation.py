"""Exact full-batch evaluation of a run at w = w^t, vectorized over clients (eq. (SIM-EVAL)).

theory/simulator.md §6:

    ‖∇F(w)‖², F(w) = (1/n) Σ_i F_i(w), ‖Σ_i p_i ∇F_i(w)‖², and for classifiers the pooled test
    accuracy of w and the mean / min over clients of the test accuracy of θ_i = personalize(w).

:class:`Evaluator` is built once per run: it lays the clients' training and test rows out in the
cohort layout (:class:`~persafl_np.personalization.cohort.CohortData`) and computes the per-client
constants the oracle needs at every evaluation once (the Moreau envelope's inner L from one
spectral norm of each client's data). Each evaluation then runs the oracle's stacked full-batch
methods (``value_grad_many``, ``personalize_many``) over chunks of :data:`EVAL_CHUNK` clients
(fewer when the padded gather would exceed :data:`PADDED_BYTES`).
The sums over clients are accumulated client by client in index order, as the per-client loop of
:func:`evaluate` does, so the values do not depend on any cohort setting of the run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from persafl_np.backend import array_namespace, to_numpy
from persafl_np.data.federated import packed_rows
from persafl_np.personalization.cohort import CohortData, Kernels

__all__ = ["EVAL_CHUNK", "PADDED_BYTES", "Evaluator", "evaluate", "padded_chunk"]

#: Clients per stacked evaluation call (bounds the (C, m, d) padded gathers; fixed, so the
#: evaluated values never depend on the run's cohort_size).
EVAL_CHUNK = 256
#: ... and fewer when the padded gather of EVAL_CHUNK clients would exceed this many bytes
#: (FedProx-style sizes: m_max ≈ 40 × the mean). A row's values do not depend on its chunk.
PADDED_BYTES = 64 * 2**20


def padded_chunk(data: CohortData, limit: int = EVAL_CHUNK) -> int:
    """Clients per padded full-batch gather of ``data``: ≤ ``limit``, ≤ PADDED_BYTES."""
    row = data.m_max * (data.d + 1) * 8
    return max(1, min(limit, PADDED_BYTES // row))


def _split(A: Any, m: np.ndarray) -> list:
    """Views of the packed rows ``A`` per client (sizes ``m``): CohortData holds them once."""
    off = np.concatenate([[0], np.cumsum(m)]).tolist()
    return [A[off[k]:off[k + 1], ...] for k in range(len(m))]


def _sq(xp: Any, v: Any) -> float:
    return float(xp.sum(v * v))


def evaluate(problem: Any, w: Any, shares: np.ndarray, own: list | None = None) -> tuple:
    """(‖∇F‖², F, ‖Σ p_i ∇F_i‖², acc_global, acc_pers_mean, acc_pers_min) at w (SIM-EVAL).

    One-off convenience: builds an :class:`Evaluator` (per-client constants included) and calls
    it. ``own``: per-client models for the local-only baseline (then θ_i = own[i]).
    """
    ev = Evaluator(problem)
    return ev(w, shares, None if own is None else array_namespace(w).stack(list(own)))


class Evaluator:
    """(SIM-EVAL) for one problem; see the module docstring."""

    def __init__(self, problem: Any, train: CohortData | None = None) -> None:
        """``train``: the run's cohort layout of the training rows, reused when the run is
        float64 (saves a copy of the data)."""
        self.problem = problem
        model, oracle = problem.model, problem.oracle
        self.kern = Kernels(model)
        self.xp = array_namespace(problem.w0)
        self.n = problem.n_clients
        # Evaluation is exact and float64 whatever the run's dtype (a float32 run is evaluated
        # at its iterate cast to float64; the prox point of ME is solved to 1e-10, out of
        # float32's reach). The float64 copies exist only for runs in another dtype.
        f64 = self.xp.float64
        self.cast = problem.w0.dtype != f64
        up = (lambda a: self.xp.astype(a, f64)) if self.cast else (lambda a: a)  # noqa: E731
        clients = problem.clients
        if train is None:
            train = CohortData([c[0] for c in clients], [c[1] for c in clients])
        if self.cast:  # one float64 copy of the packed rows, clients as views of it
            train = CohortData(_split(up(train.Xz), train.m), _split(train.yz, train.m))
        self.train = train
        self.chunk = padded_chunk(train)
        self.classifier = bool(getattr(model, "is_classifier", False))
        self.core = getattr(oracle, "base", oracle)
        # per-client constants, once per run (Moreau: the full-data L of every client)
        self.L: np.ndarray | None = None
        if hasattr(self.core, "smoothness_many"):
            L = np.empty(self.n)
            for a in range(0, self.n, self.chunk):
                cl = np.arange(a, min(self.n, a + self.chunk))
                L[cl] = self.core.smoothness_many(model, *self.train.full(cl))
            self.L = L
        self.test_clients = np.asarray(
            [i for i, c in enumerate(clients) if int(c[2].shape[0]) > 0], dtype=np.int64)
        self.test = None
        if self.classifier and self.test_clients.size:
            tc = self.test_clients.tolist()
            Xt = packed_rows([clients[i][2] for i in tc])
            mt = np.asarray([int(clients[i][2].shape[0]) for i in tc], dtype=np.int64)
            self.test = CohortData(_split(up(Xt), mt), [clients[i][3] for i in tc])
            self.test_chunk = padded_chunk(self.test, self.chunk)

    def _rows(self, w: Any, C: int) -> Any:
        if type(w) is np.ndarray:
            return np.repeat(w[None, :], C, axis=0)
        xp = self.xp
        return xp.zeros((C, int(w.shape[0])), dtype=w.dtype) + w[None, :]

    def __call__(self, w: Any, shares: np.ndarray, own: Any = None) -> tuple:
        """Evaluate at w; ``own`` (n, p): the local-only clients' models (θ_i = own[i])."""
        xp, n, core, kern = self.xp, self.n, self.core, self.kern
        if self.cast:
            w = xp.astype(w, xp.float64)
            own = None if own is None else xp.astype(own, xp.float64)
        g_mean = g_w = None
        F = 0.0
        for a in range(0, n, self.chunk):
            cl = np.arange(a, min(n, a + self.chunk))
            X, y, mask = self.train.full(cl)
            Fc, G = core.value_grad_many(kern, self._rows(w, cl.size), X, y, mask,
                                         None if self.L is None else self.L[cl])
            Fn = np.asarray(to_numpy(Fc), dtype=np.float64)
            for c, i in enumerate(cl.tolist()):
                g = G[c, ...]
                F += float(Fn[c])
                g_mean = g if g_mean is None else g_mean + g
                gw = float(shares[i]) * g
                g_w = gw if g_w is None else g_w + gw
        g_mean = g_mean / n
        acc_g = acc_m = acc_min = math.nan
        if self.test is not None:
            correct = total = 0
            accs = []
            tc = self.test_clients
            for a in range(0, tc.size, self.test_chunk):
                loc = np.arange(a, min(tc.size, a + self.test_chunk))
                cl = tc[loc]
                Xt, yt, mt = self.test.full(loc)
                W = self._rows(w, cl.size)
                hit = to_numpy(xp.astype(kern.predict(W, Xt) == yt, xp.int64))
                if own is not None:
                    theta = xp.stack([own[i, ...] for i in cl.tolist()])
                else:
                    X, y, mask = self.train.full(cl)
                    theta = core.personalize_many(kern, W, X, y, mask,
                                                  None if self.L is None else self.L[cl])
                hit_p = to_numpy(xp.astype(kern.predict(theta, Xt) == yt, xp.int64))
                real = self.test.real(loc)
                if real is None:
                    real = np.ones(Xt.shape[:2], dtype=bool)
                mt_c = self.test.m[loc]
                correct += int(np.sum(np.asarray(hit)[real]))
                total += int(mt_c.sum())
                hp = np.where(real, np.asarray(hit_p), 0).sum(axis=1)
                accs.extend((hp / mt_c).tolist())
            if total:
                acc_g = correct / total
                acc_m, acc_min = float(np.mean(accs)), float(np.min(accs))
        return _sq(xp, g_mean), F / n, _sq(xp, g_w), acc_g, acc_m, acc_min
