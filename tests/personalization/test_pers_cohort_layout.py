"""local_update_many's mini-batch layout (eq. (LOC-C)): the gathers and the index array are
copies of the clients' rows in the law's order, whatever path builds them."""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.models import SoftmaxRegression
from persafl_np.personalization import MAML, Plain
from persafl_np.personalization.cohort import CohortData, Kernels, local_update_many
from persafl_np.personalization.sampling import BatchSampler


def _data(dtype, sizes=(9, 12, 7, 15)):
    rng = np.random.default_rng(3)
    Xs = [rng.normal(size=(m, 4)).astype(dtype) for m in sizes]
    ys = [rng.integers(0, 3, m) for m in sizes]
    return CohortData(Xs, ys), Xs, ys


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_into_equals_rows(dtype):
    data, _, _ = _data(dtype)
    G = np.random.default_rng(0).integers(0, int(data.m.sum()), size=(3, 2, 5))
    X, y = data.rows(G)
    Xb = np.full(G.shape + (data.d,), np.nan, dtype=dtype)
    yb = np.full(G.shape, -1, dtype=data.yz.dtype)
    data.rows_into(G, Xb, yb)
    assert Xb.tobytes() == X.tobytes() and yb.tobytes() == y.tobytes()


@pytest.mark.parametrize("oracle", [Plain(), MAML(0.05), MAML(0.05, "first_order")],
                         ids=["plain", "maml", "maml_fo"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_local_update_many_is_the_per_step_recurrence(oracle, dtype):
    """Q steps of step_many on the batches each client's sampler yields, in job order
    (law (SIM-BATCH)), bit for bit; the recorded indices are those batches."""
    data, Xs, ys = _data(dtype)
    model, Q, eta, b = SoftmaxRegression(3), 3, 0.1, 3
    kern = Kernels(model)
    clients = np.array([2, 0, 3])
    U = np.random.default_rng(1).normal(size=(3, 12)).astype(dtype)

    def samplers():
        return [BatchSampler(np.random.default_rng(10 + int(i))) for i in clients]

    res = local_update_many(oracle, kern, data, clients, U, samplers(), Q, eta, b, 0.0, None,
                            record=True)
    k = oracle.batches_per_step(b)
    idx = [s.take(len(ys[i]), b, Q * k) for s, i in zip(samplers(), clients, strict=True)]
    Y = U
    for q in range(Q):
        batches = [(np.stack([Xs[i][idx[c][q * k + j]] for c, i in enumerate(clients)]),
                    np.stack([ys[i][idx[c][q * k + j]] for c, i in enumerate(clients)]), None)
                   for j in range(k)]
        Y = Y - eta * oracle.step_many(kern, Y, batches).g
    assert res.delta.tobytes() == (U - Y).tobytes()
    for c in range(len(clients)):
        np.testing.assert_array_equal(res.batches[c], idx[c])


class _Replayed:
    """A sampler that is no BatchSampler: hands out given (Q·k, b) index arrays."""

    def __init__(self, rows):
        self.rows = rows

    def take(self, m, b, k):
        return self.rows


@pytest.mark.parametrize("oracle", [Plain(), MAML(0.05)], ids=["plain", "maml"])
def test_replayed_rows_outside_the_client_are_refused(oracle):
    data, _, ys = _data(np.float64)
    kern, Q, b = Kernels(SoftmaxRegression(3)), 2, 3
    clients = np.array([1, 2])
    U = np.zeros((2, 12))
    k = oracle.batches_per_step(b)
    ok = [_Replayed(np.zeros((Q * k, b), dtype=np.int64)) for _ in clients]
    local_update_many(oracle, kern, data, clients, U, ok, Q, 0.1, b, 0.0, None)
    for bad in (len(ys[2]), -1):          # client 2 has 7 rows: 7 is the next client's first
        rows = np.zeros((Q * k, b), dtype=np.int64)
        rows[1, 2] = bad
        with pytest.raises(ValueError, match=r"client 2 has 7 training rows.*0\.\.6"):
            local_update_many(oracle, kern, data, clients, U, [ok[0], _Replayed(rows)], Q,
                              0.1, b, 0.0, None)


def test_full_batches_gather_on_first_use_only():
    """FullBatches(load=...) is the list [(X, y, mask)] * 3 of data.full, built by the first
    access (index, iteration or len) and only then; an oracle that reads no batch never
    gathers, and full-batch local updates are unchanged (the gather happens inside)."""
    from persafl_np.personalization.cohort import FullBatches

    data, _, _ = _data(np.float64)
    clients = np.array([2, 0, 3], dtype=np.int64)
    calls = []

    def load():
        calls.append(1)
        return data.full(clients)

    fb = FullBatches(load=load)
    assert calls == []
    X, y, mask = fb[0]
    assert calls == [1] and len(fb) == 3 and list(fb) == [fb[0]] * 3 and calls == [1]
    Xr, yr, mr = data.full(clients)
    assert X.tobytes() == Xr.tobytes() and y.tobytes() == yr.tobytes()
    assert (mask is None) == (mr is None) and (mask is None or mask.tobytes() == mr.tobytes())
    assert isinstance(fb, list) and list(FullBatches([(1, 2, 3)] * 3)) == [(1, 2, 3)] * 3
    t = (1, 2, 3)
    for probe in (lambda f: f == [t] * 3, lambda f: t in f, lambda f: "(1, 2, 3)" in repr(f),
                  lambda f: len(f) == 3, lambda f: f[1:] == [t] * 2, bool,
                  lambda f: [*f] == [t] * 3):
        assert probe(FullBatches(load=lambda: t))  # each first access sees the batches

    class Blind(Plain):
        def step_many(self, kern, Y, batches, warm=None):
            from persafl_np.personalization.cohort import ManyStep
            return ManyStep(np.zeros_like(Y), 1)

    full_calls = []
    orig = data.full
    data.full = lambda *a: full_calls.append(a) or orig(*a)
    model = SoftmaxRegression(3)
    U = np.zeros((3, model.num_params(4)))
    res = local_update_many(Blind(), Kernels(model), data, clients, U, None, 2, 0.1, None,
                            0.0, None)
    assert full_calls == [] and not res.delta.any()
    assert (res.n_grad, res.n_hvp, res.n_inner) == (2, 0, 0)
    assert [a.tolist() for a in res.row_counts()] == [[2] * 3, [0] * 3, [0] * 3]
    res = local_update_many(Plain(), Kernels(model), data, clients, U, None, 2, 0.1, None,
                            0.0, None)
    assert len(full_calls) == 1 and res.delta.any()
