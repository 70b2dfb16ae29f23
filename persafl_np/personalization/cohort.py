"""Cohort execution: the Q local steps (LOC-1)/(LOC-PROX) of C client jobs at once.

theory/personalization.md §1 (eq. (LOC-1), (LOC-PROX); "Cohort form", eq. (LOC-C)):

    Y_0 = U,  Y_{q+1} = Y_q − η (G_q + ρ (Y_q − U)),  Δ = U − Y_Q,   G_q[c] = g_{i_c}(Y_q[c]),

row c being client i_c's job started from its pulled model U[c]. Every operation is one stacked
model kernel (``grad_many`` …, :mod:`persafl_np.models.cohort`), an elementwise operation or a
reduction along a row, so row c does not depend on the other rows: on NumPy the result of a job
is bit-identical whatever cohort it was computed in (the engine's grouping test).

Data layout (:class:`CohortData`): the clients' rows are concatenated once per run into one
(N, d) array (a view, not a copy, when the clients' arrays already lie back to back
in one array); a mini-batch of client c is the gather ``X_all[off_c + idx]`` — (C, b, d) for a
cohort. Full-batch work (b = None, b ≥ m_c) pads each client with zero rows (written into the
gathered copy) and a 0/1 mask (why padding: :mod:`persafl_np.models.cohort`) to a width the
caller chooses, ``full(clients, width)``: the engine and the evaluation both use the client's own
width :func:`persafl_np.sim.evaluation.eval_width` and stack clients of one width together. The
padded width of a client and the presence of the mask are fixed per run, so shapes never
depend on the grouping.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from persafl_np.backend import array_namespace, to_device_like
from persafl_np.data.federated import packed_rows
from persafl_np.personalization.sampling import BatchSampler

__all__ = ["CohortData", "CohortUpdate", "FullBatches", "Kernels", "ManyStep", "local_update_many"]


class ManyStep(NamedTuple):
    """One stacked oracle call: directions G (C, p) and per-row costs.

    n_grad, n_hvp, n_inner: ints (same for every row) or (C,) int64 arrays; resid: (C,) float64
    or 0.0; warm: (C, p) warm-start states or None.
    """

    g: Any
    n_grad: Any
    n_hvp: Any = 0
    n_inner: Any = 0
    resid: Any = 0.0
    warm: Any = None


class FullBatches(list):
    """The ``batches`` argument of ``step_many`` for a full-batch step: ``[(X, y, mask)] * 3``,
    every batch being all of each row's client data (padded, with ``mask``). A plain list
    holds mini-batches; oracles may tell the two apart (the Moreau envelope's inner L).

    ``FullBatches(load=f)`` gathers lazily: ``f()`` → (X, y, mask) runs on the first access
    (index, slice, iteration, ``len``, ``in``, ``==``, ``repr``), so an oracle that never reads
    the data (one that draws no batch and needs no gradient of it) costs no (C, width, d)
    gather per cohort."""

    __slots__ = ("_load",)

    def __init__(self, items: Any = (), load: Any = None) -> None:
        super().__init__(items)
        self._load = load

    def _fill(self) -> None:
        load = self._load
        if load is not None:
            self._load = None
            super().extend([load()] * 3)

    def __getitem__(self, k: Any) -> Any:
        self._fill()
        return super().__getitem__(k)

    def __iter__(self) -> Any:
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def __contains__(self, x: Any) -> bool:
        self._fill()
        return super().__contains__(x)

    def __eq__(self, other: object) -> bool:
        self._fill()
        if isinstance(other, FullBatches):
            other._fill()
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._fill()
        return f"FullBatches({super().__repr__()})"


class CohortUpdate(NamedTuple):
    """Result of :func:`local_update_many` (row c = job c).

    ``n_grad``, ``n_hvp``, ``n_inner``: each an int when every row has the same count (the
    usual case: building (C,) arrays of one value per cohort is measurable engine overhead),
    else a (C,) int64 array; :meth:`row_counts` gives the (C,) arrays either way. ``resid``:
    (C,) float64, or 0.0 when no step reported a residual."""

    delta: Any
    n_grad: int | np.ndarray
    n_hvp: int | np.ndarray
    n_inner: int | np.ndarray
    resid: float | np.ndarray
    warm: Any
    batches: list | None

    def row_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n_grad, n_hvp, n_inner) as (C,) int64 arrays."""
        C = int(self.delta.shape[0])
        return tuple(np.broadcast_to(np.asarray(v, dtype=np.int64), (C,)).copy()
                     for v in (self.n_grad, self.n_hvp, self.n_inner))


class Kernels:
    """The batched model methods resolved once per run.

    Uses the model's ``loss_many``/``grad_many``/``hvp_many``/``predict_many`` with
    ``validate=False`` (the engine validated the data once with ``model.check_data``); a model
    without them (a user's model that only implements the single-client protocol) gets a loop
    over its single methods, correct but slow.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.native = all(hasattr(model, k) for k in ("grad_many", "hvp_many", "loss_many"))
        if self.native:
            # the hot path calls the model's methods directly (same signatures as below)
            self.grad = partial(model.grad_many, validate=False)
            self.hvp = partial(model.hvp_many, validate=False)
            self.loss = partial(model.loss_many, validate=False)

    def grad(self, W: Any, X: Any, y: Any, mask: Any = None) -> Any:
        if self.native:
            return self.model.grad_many(W, X, y, mask, validate=False)
        return self._loop("grad", W, None, X, y, mask)

    def hvp(self, W: Any, V: Any, X: Any, y: Any, mask: Any = None) -> Any:
        if self.native:
            return self.model.hvp_many(W, V, X, y, mask, validate=False)
        return self._loop("hvp", W, V, X, y, mask)

    def loss(self, W: Any, X: Any, y: Any, mask: Any = None) -> Any:
        if self.native:
            return self.model.loss_many(W, X, y, mask, validate=False)
        xp = array_namespace(W, X)
        return xp.stack([xp.asarray(v) for v in self._rows("loss", W, None, X, y, mask)])

    def predict(self, W: Any, X: Any) -> Any:
        if hasattr(self.model, "predict_many"):
            return self.model.predict_many(W, X)
        xp = array_namespace(W, X)
        return xp.stack([self.model.predict(W[c, ...], X[c, ...]) for c in range(W.shape[0])])

    def _rows(self, name: str, W: Any, V: Any, X: Any, y: Any, mask: Any) -> list:
        f = getattr(self.model, name)
        out = []
        for c in range(W.shape[0]):
            Xc, yc = X[c, ...], y[c, ...]
            if mask is not None:
                n = int(np.sum(np.asarray(mask[c, ...] if type(mask) is np.ndarray else
                                          np.asarray(mask[c, ...]))))
                Xc, yc = Xc[:n, ...], yc[:n, ...]
            out.append(f(W[c, ...], Xc, yc) if V is None else f(W[c, ...], V[c, ...], Xc, yc))
        return out

    def _loop(self, name: str, W: Any, V: Any, X: Any, y: Any, mask: Any) -> Any:
        return array_namespace(W, X).stack(self._rows(name, W, V, X, y, mask))


class CohortData:
    """The run's client training data in the cohort layout (module docstring).

    ``Xs``, ``ys``: per-client arrays of one namespace (already in the run's dtype).
    """

    def __init__(self, Xs: list, ys: list) -> None:
        xp = array_namespace(Xs[0], ys[0])
        self.xp = xp
        self.numpy = type(Xs[0]) is np.ndarray
        self.m = np.asarray([int(X.shape[0]) for X in Xs], dtype=np.int64)
        self.off = np.concatenate([[0], np.cumsum(self.m)[:-1]]).astype(np.int64)
        self.m_max = int(self.m.max())
        self.d = int(Xs[0].shape[1])
        # rows 0..N−1 are the clients' rows in order, held once: a view of the caller's arrays
        # when they already lie back to back (data.federated.packed_rows), else one copy
        self.Xz = packed_rows(list(Xs))
        self.yz = packed_rows(list(ys))
        self.equal = bool(np.all(self.m == self.m_max))
        self._j = np.arange(self.m_max, dtype=np.int64)

    def real(self, clients: np.ndarray, width: int | None = None) -> np.ndarray | None:
        """(C, width) bool (width m_max by default): which padded positions of :meth:`full`
        hold real rows (None when every client has m_max rows)."""
        if self.equal:
            return None
        j = self._j if width is None else np.arange(width, dtype=np.int64)
        return j[None, :] < self.m[clients][:, None]

    def _gather(self, A: Any, G: np.ndarray) -> Any:
        if self.numpy:
            # a 1-D take is ~2x faster than fancy indexing with a 2-D index array
            return A.take(G.reshape(-1), axis=0).reshape(G.shape + A.shape[1:])
        xp = self.xp
        flat = xp.take(A, to_device_like(G.reshape(-1), A), axis=0)
        return xp.reshape(flat, tuple(G.shape) + tuple(A.shape[1:]))

    def rows(self, G: np.ndarray) -> tuple[Any, Any]:
        """(X, y) of global row indices G (any shape): X G.shape + (d,), y G.shape."""
        return self._gather(self.Xz, G), self._gather(self.yz, G)

    def rows_into(self, G: np.ndarray, X: np.ndarray, y: np.ndarray) -> None:
        """NumPy only: :meth:`rows` written into ``X`` (G.shape + (d,)) and ``y`` (G.shape),
        C-contiguous buffers the caller reuses (a (C, b, d) step batch stays in cache, where
        one gather of all Q·k batches of a job, ~4 MB at 13 jobs, does not). ``G`` must hold
        valid row indices (``mode="clip"`` skips the buffered bounds-checked path of
        ``np.take(out=...)``, ~3x slower)."""
        g = G.reshape(-1)
        np.take(self.Xz, g, axis=0, out=X.reshape(g.size, -1), mode="clip")
        np.take(self.yz, g, axis=0, out=y.reshape(g.size), mode="clip")

    def full(self, clients: np.ndarray, width: int | None = None) -> tuple[Any, Any, Any]:
        """Padded full batches (X (C, W, d), y (C, W), mask (C, W) or None), W = ``width``
        (≥ every client's m; m_max by default; the evaluation pads each client to its own width).

        Padding rows are exact zeros (label 0 / target 0), built per call: no (n, m_max)
        index is kept. The mask is None exactly when every client of the run has m_max rows."""
        real = self.real(clients, width)
        j = self._j if width is None else np.arange(width, dtype=np.int64)
        G = self.off[clients][:, None] + j[None, :]
        if real is not None:
            G = np.where(real, G, 0)
        X, y = self._gather(self.Xz, G), self._gather(self.yz, G)
        if real is None:
            return X, y, None
        if self.numpy:
            pad = ~real
            X[pad] = 0
            y[pad] = 0
            mask = real.astype(X.dtype)
        else:
            xp = self.xp
            r = to_device_like(real, X)
            X = xp.where(r[..., None], X, xp.zeros((), dtype=X.dtype))
            y = xp.where(r, y, xp.zeros((), dtype=y.dtype))
            mask = xp.astype(to_device_like(real.astype(np.float64), X), X.dtype)
        return X, y, mask

    def client_full(self, i: int) -> tuple[Any, Any]:
        """Client i's own (unpadded) training rows."""
        o, m = int(self.off[i]), int(self.m[i])
        return self.Xz[o:o + m, ...], self.yz[o:o + m, ...]


def _check_rows(ix: np.ndarray, m: int, client: int) -> None:
    """Refuse batch row indices of a replayed job outside the client's rows 0..m−1 (they would
    read another client's rows, or be clamped by the gathers' ``mode="clip"``)."""
    if ix.size and (int(ix.min()) < 0 or int(ix.max()) >= m):
        raise ValueError(f"batches: client {client} has {m} training rows, its batch indices "
                         f"must lie in 0..{m - 1}, got {int(ix.min())}..{int(ix.max())}")


def _add(acc: Any, v: Any) -> Any:
    """Counter accumulation: Python ints while every step's cost is the same for all rows."""
    if isinstance(v, np.ndarray):
        return acc + v.astype(np.int64)
    return acc + v


def local_update_many(
    oracle: Any, kern: Kernels, data: CohortData, clients: np.ndarray, U: Any,
    samplers: list[BatchSampler], Q: int, eta: float, batch_size: int | None, rho: float,
    warm: Any, record: bool = False, width: int | None = None,
) -> CohortUpdate:
    """Q local steps of the jobs of ``clients`` from ``U`` (C, p), eq. (LOC-C).

    All rows of one call must be in the same *layout group*: either every client has
    m_c > b (mini-batches of exactly b rows) or every client uses its full batch
    (b = None or b ≥ m_c); the engine splits a cohort accordingly. ``samplers[c]`` is client
    ``clients[c]``'s :class:`BatchSampler`; batches are drawn in job order, Q·k at once,
    k = ``oracle.batches_per_step(b)`` (law (SIM-BATCH), theory/simulator.md §1.1).
    ``warm``: (C, p) warm starts (Moreau) or None. ``record``: also return each job's
    (Q·k, b) local batch indices (None for full-batch jobs). ``width``: the padded width of
    full-batch work (≥ every client's m; default the run's largest m), :meth:`CohortData.full`.
    """
    C = len(clients)
    xp = data.xp
    k = oracle.batches_per_step(batch_size)
    full = k == 0 or batch_size is None or bool(np.all(data.m[clients] <= batch_size))
    sigma = float(getattr(oracle, "sigma", 0.0)) if getattr(oracle, "adds_noise", False) else 0.0
    idx_list: list | None = [] if record else None
    per_step = False
    if full:
        G = None
        if record:
            idx_list.extend([None] * C)
    else:
        # one (Q·k, b) draw per job, in job order within each client's own stream, laid side
        # by side into a (Q·k, C, b) index array of global rows (one concatenate and one
        # broadcast add of the clients' offsets: 2x faster than C strided adds), so that the
        # gathers below lay the rows out (Q·k, C, b, d): every step's batch is a C-contiguous
        # (C, b, d) block (the kernels' grouping guarantee needs it)
        mc = data.m[clients].tolist()
        idx = [samplers[c].take(mc[c], batch_size, Q * k) for c in range(C)]
        for c in range(C):
            if not isinstance(samplers[c], BatchSampler):
                _check_rows(idx[c], mc[c], int(clients[c]))  # replayed: not drawn by the law
        if record:
            idx_list.extend(idx)
        G = np.concatenate(idx, axis=1, dtype=np.int64).reshape(Q * k, C, batch_size)
        G += data.off[clients][None, :, None]
        per_step = data.numpy and k > 1
        if per_step:
            # k ≥ 2 batches per step (MAML): one step's batches at a time, into two buffers
            # reused by every step (measured 3-9 % faster for exact MAML in float64 at 13
            # jobs; for k = 1 the single gather below is as fast or faster)
            XB = np.empty((k, C, batch_size, data.d), dtype=data.Xz.dtype)
            YB = np.empty((k, C, batch_size), dtype=data.yz.dtype)
        else:
            XB, YB = data.rows(G)
    noise = None
    p = int(U.shape[1])
    if sigma > 0.0:
        # (NOISE-1): ξ_q = standard_normal(p)·σ/√p per step, drawn per job as one (Q, p) block
        scale = sigma / math.sqrt(p)
        nz = np.stack([samplers[c].normal((Q, p)) for c in range(C)]) * scale   # (C, Q, p)
        noise = xp.astype(to_device_like(nz, U), U.dtype)
    n_grad: Any = 0
    n_hvp: Any = 0
    n_inner: Any = 0
    resid: Any = 0.0  # a (C,) array once a step reports a residual
    Y = U
    on_numpy = type(U) is np.ndarray
    step = oracle.step_many
    if full:
        # D = D′ = D″ = all rows (any oracle), gathered on first use
        batches = FullBatches(load=partial(data.full, clients, width))
    elif per_step:
        batches = [(XB[j], YB[j], None) for j in range(k)]  # views of the reused buffers
    for q in range(Q):
        if per_step:
            data.rows_into(G[q * k:(q + 1) * k], XB, YB)
        elif not full:
            batches = [(XB[q * k + j, ...], YB[q * k + j, ...], None) for j in range(k)]
        s = step(kern, Y, batches, warm)
        g = s.g if noise is None else s.g + noise[:, q, :]
        if rho:
            Y = Y - eta * (g + rho * (Y - U))
        elif on_numpy:
            # Y − ηg into the fresh temporary ηg (same two roundings, one allocation fewer)
            t = np.multiply(g, eta)
            Y = np.subtract(Y, t, out=t)
        else:
            Y = Y - eta * g
        # the costs of a step are Python ints unless they differ by row (Moreau's tolerance)
        v = s.n_grad
        n_grad = n_grad + v if type(v) is int else _add(n_grad, v)
        v = s.n_hvp
        n_hvp = n_hvp + v if type(v) is int else _add(n_hvp, v)
        v = s.n_inner
        n_inner = n_inner + v if type(v) is int else _add(n_inner, v)
        r = s.resid
        if isinstance(r, np.ndarray) or r > 0:
            if type(resid) is float:
                resid = np.zeros(C, dtype=np.float64)
            # same as max(resid, r) with NaN kept where it came first (as the single path)
            resid = np.where(r > resid, r, resid) if isinstance(r, np.ndarray) else \
                np.maximum(resid, r)
        warm = s.warm
    return CohortUpdate(U - Y, n_grad, n_hvp, n_inner, resid, warm, idx_list)
