"""Exact full-batch evaluation of a run at w = w^t, vectorized over clients (eq. (SIM-EVAL)).

theory/simulator.md §6:

    ‖∇F(w)‖², F(w) = (1/n) Σ_i F_i(w), ‖Σ_i p_i ∇F_i(w)‖², and for classifiers the pooled test
    accuracy of w and the mean / min over clients of the test accuracy of θ_i = personalize(w).

:class:`Evaluator` is built once per run: it lays the clients' training and test rows out in the
cohort layout (:class:`~persafl_np.personalization.cohort.CohortData`) and computes the per-client
constants the oracle needs at every evaluation once (the Moreau envelope's inner L from one
spectral norm of each client's data). Each evaluation then runs the oracle's stacked full-batch
methods (``value_grad_many``, ``personalize_many``) on padded full batches.

Padding: client i is padded to its own width :func:`eval_width` (m_i rounded up to a power of
two, at most the run's largest m), not to the largest client: on FedProx-style sizes
(m_max ≈ 40 × the mean) padding everyone to m_max processes ~8× the real rows, the ladder
< 2×. Clients are taken in windows of :data:`EVAL_CHUNK` consecutive indices; within a window
the clients of one width form stacked calls of at most EVAL_CHUNK clients (fewer when the
padded gather would exceed :data:`PADDED_BYTES`). A client's width depends only on its own
size, and a row of a stacked call does not depend on the other rows
(:mod:`persafl_np.models.cohort`, "Grouping invariance"), so each client's terms do not depend
on the windows or groups. The sums over clients are accumulated client by client in index order,
as the per-client loop of :func:`evaluate` does, so the values do not depend on any cohort
setting of the run (nor on EVAL_CHUNK).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from persafl_np.backend import array_namespace, to_device_like, to_numpy
from persafl_np.data.federated import packed_rows
from persafl_np.personalization.cohort import CohortData, Kernels

__all__ = ["EVAL_CHUNK", "PADDED_BYTES", "Evaluator", "eval_width", "evaluate", "padded_chunk"]

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


def eval_width(m: np.ndarray) -> np.ndarray:
    """Padded width of each client of sizes ``m`` (int64, ≥ 1) in an evaluation: the least power
    of two ≥ m_i, capped at max(m) (so a run whose clients are all equal is not padded)."""
    m = np.asarray(m, dtype=np.int64)
    w = np.left_shift(1, np.ceil(np.log2(np.maximum(m, 1))).astype(np.int64))
    w = np.where(w < m, 2 * w, w)  # guard log2's rounding at exact powers of two
    return np.minimum(w, int(m.max()))


def _groups(widths: np.ndarray, a: int, b: int, row: int, limit: int) -> list:
    """The stacked calls of the window a..b−1: (width, positions) per call, in width order,
    positions (into the window, ascending) of at most ``limit`` clients, fewer when the padded
    gather would exceed PADDED_BYTES (``row`` bytes per padded row)."""
    win = widths[a:b]
    out = []
    for wd in np.unique(win).tolist():
        pos = np.flatnonzero(win == wd)
        step = max(1, min(limit, PADDED_BYTES // (int(wd) * row)))
        out.extend((int(wd), pos[k:k + step]) for k in range(0, pos.size, step))
    return out


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
        self.width = eval_width(train.m)
        self.classifier = bool(getattr(model, "is_classifier", False))
        self.core = getattr(oracle, "base", oracle)
        # per-client constants, once per run (Moreau: the full-data L of every client)
        self.L: np.ndarray | None = None
        if hasattr(self.core, "smoothness_many"):
            L = np.empty(self.n)
            for a in range(0, self.n, EVAL_CHUNK):
                b = min(self.n, a + EVAL_CHUNK)
                for wd, pos in _groups(self.width, a, b, self._row(train), EVAL_CHUNK):
                    cl = a + pos
                    L[cl] = self.core.smoothness_many(model, *self.train.full(cl, wd))
            self.L = L
        mt_all = np.asarray([int(c[2].shape[0]) for c in clients], dtype=np.int64)
        self.test_clients = np.flatnonzero(mt_all > 0).astype(np.int64)
        self.test = None
        self.padded_rows = int(self.width.sum())
        if self.classifier and self.test_clients.size:
            tc = self.test_clients.tolist()
            Xt = packed_rows([clients[i][2] for i in tc])
            mt = mt_all[self.test_clients]
            self.test = CohortData(_split(up(Xt), mt), [clients[i][3] for i in tc])
            self.test_width = eval_width(mt)
            # position of client i among the test clients (−1: no test rows)
            self.test_pos = np.full(self.n, -1, dtype=np.int64)
            self.test_pos[self.test_clients] = np.arange(self.test_clients.size)
            self.padded_rows += int(self.test_width.sum())

    @staticmethod
    def _row(data: CohortData) -> int:
        return (data.d + 1) * 8

    def _rows(self, w: Any, C: int) -> Any:
        if type(w) is np.ndarray:
            return np.repeat(w[None, :], C, axis=0)
        xp = self.xp
        return xp.zeros((C, int(w.shape[0])), dtype=w.dtype) + w[None, :]

    def _take(self, A: Any, sel: np.ndarray) -> Any:
        """Rows ``sel`` of a stacked array (a C-contiguous copy), None passes through."""
        if A is None:
            return None
        if type(A) is np.ndarray:
            return A[sel]
        return self.xp.take(A, to_device_like(sel, A), axis=0)

    def __call__(self, w: Any, shares: np.ndarray, own: Any = None) -> tuple:
        """Evaluate at w; ``own`` (n, p): the local-only clients' models (θ_i = own[i])."""
        xp, n, core, kern = self.xp, self.n, self.core, self.kern
        if self.cast:
            w = xp.astype(w, xp.float64)
            own = None if own is None else xp.astype(own, xp.float64)
        test = self.test
        g_mean = g_w = None
        F = 0.0
        correct = total = 0
        accs = np.empty(0 if test is None else self.test_clients.size)
        row = self._row(self.train)
        for a in range(0, n, EVAL_CHUNK):
            b = min(n, a + EVAL_CHUNK)
            Fs: list = [None] * (b - a)
            Gs: list = [None] * (b - a)
            theta: dict = {}  # window position -> θ_i (personalized model of a test client)
            for wd, pos in _groups(self.width, a, b, row, EVAL_CHUNK):
                cl = a + pos
                X, y, mask = self.train.full(cl, wd)
                Lc = None if self.L is None else self.L[cl]
                Fc, G = core.value_grad_many(kern, self._rows(w, cl.size), X, y, mask, Lc)
                Fn = np.asarray(to_numpy(Fc), dtype=np.float64)
                for c, k in enumerate(pos.tolist()):
                    Fs[k], Gs[k] = float(Fn[c]), G[c, ...]
                if test is None or own is not None:
                    continue
                sel = np.flatnonzero(self.test_pos[cl] >= 0)
                if sel.size == 0:
                    continue
                if sel.size < cl.size:
                    X, y, mask = self._take(X, sel), self._take(y, sel), self._take(mask, sel)
                    Lc = None if Lc is None else Lc[sel]
                P = core.personalize_many(kern, self._rows(w, sel.size), X, y, mask, Lc)
                for c, k in enumerate(pos[sel].tolist()):
                    theta[k] = P[c, ...]
            for k in range(b - a):  # the sums, client by client in index order
                g = Gs[k]
                F += Fs[k]
                g_mean = g if g_mean is None else g_mean + g
                gw = float(shares[a + k]) * g
                g_w = gw if g_w is None else g_w + gw
            if test is None:
                continue
            tp = self.test_pos[a:b]
            tp = tp[tp >= 0]  # the window's test clients: consecutive test positions
            if tp.size == 0:
                continue
            ta, tb = int(tp[0]), int(tp[-1]) + 1
            for wd, loc_rel in _groups(self.test_width, ta, tb, self._row(test), EVAL_CHUNK):
                loc = ta + loc_rel
                cl = self.test_clients[loc]
                Xt, yt, _ = test.full(loc, wd)
                W = self._rows(w, cl.size)
                hit = to_numpy(xp.astype(kern.predict(W, Xt) == yt, xp.int64))
                if own is not None:
                    Th = xp.stack([own[i, ...] for i in cl.tolist()])
                else:
                    Th = xp.stack([theta[i - a] for i in cl.tolist()])
                hit_p = to_numpy(xp.astype(kern.predict(Th, Xt) == yt, xp.int64))
                real = test.real(loc, wd)
                if real is None:
                    real = np.ones(Xt.shape[:2], dtype=bool)
                mt_c = test.m[loc]
                correct += int(np.sum(np.asarray(hit)[real]))
                total += int(mt_c.sum())
                accs[loc] = np.where(real, np.asarray(hit_p), 0).sum(axis=1) / mt_c
        g_mean = g_mean / n
        acc_g = acc_m = acc_min = math.nan
        if total:
            acc_g = correct / total
            acc_m, acc_min = float(np.mean(accs)), float(np.min(accs))
        return _sq(xp, g_mean), F / n, _sq(xp, g_w), acc_g, acc_m, acc_min
