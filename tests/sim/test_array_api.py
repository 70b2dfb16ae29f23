"""The engine runs on any array-API namespace (array_api_strict refuses non-standard calls)."""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.algorithms import Algorithm, fedbuff, persafl
from persafl_np.models import SoftmaxRegression
from persafl_np.personalization import MAML
from persafl_np.sim import EventDriven, Problem, run

xp = pytest.importorskip("array_api_strict")


def _clients(to):
    rng = np.random.default_rng(0)
    return [tuple(to(a) for a in (rng.normal(size=(10, 3)), rng.integers(0, 3, 10),
                                  rng.normal(size=(4, 3)), rng.integers(0, 3, 4)))
            for _ in range(4)]


@pytest.mark.parametrize("rule", [persafl(1.0), fedbuff(1.0, 2)])
def test_strict_namespace_gives_the_numpy_result(rule, tmp_path):
    alg = Algorithm(rule, Q=2, eta=0.1, batch_size=4)
    spec = EventDriven(staleness="drop", tau_max=2)
    ps = Problem.build(SoftmaxRegression(3), MAML(0.01), _clients(xp.asarray), seed=0)
    pn = Problem.build(SoftmaxRegression(3), MAML(0.01), _clients(np.asarray), seed=0)
    rs = run(ps, alg, spec, T=10, seed=0, eval_every=5)
    rn = run(pn, alg, spec, T=10, seed=0, eval_every=5)
    assert rs.ok
    np.testing.assert_allclose(rs.params, rn.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rs.history.loss, rn.history.loss, rtol=1e-12)
    # checkpoints move arrays through NumPy and back into the run's namespace
    ck = tmp_path / "ck"
    run(ps, alg, spec, T=10, seed=0, eval_every=5, checkpoint_dir=ck, checkpoint_every=3,
        stop_after=6)
    rr = run(ps, alg, spec, T=10, seed=0, eval_every=5, checkpoint_dir=ck, checkpoint_every=3,
             resume=True)
    assert rr.digest() == rs.digest()


@pytest.mark.parametrize("case", ["moreau_theorem", "sync_noise", "local_event"])
def test_strict_cohort_paths_give_the_numpy_result(case):
    """Stacked Moreau solver (rows leaving the stack), noise draws, sync rounds, local-only
    under array_api_strict: the NumPy result to 1e-12."""
    from persafl_np.algorithms import local_only, sync_average
    from persafl_np.personalization import AdditiveNoise, MoreauEnvelope, Plain
    from persafl_np.sim import TheoremMode

    oracle, alg, spec = {
        "moreau_theorem": (MoreauEnvelope(8.0, inner_tol=1e-9),
                           Algorithm(persafl(0.5), Q=2, eta=0.1, batch_size=4),
                           TheoremMode(tau=2, policy="max")),
        "sync_noise": (AdditiveNoise(Plain(), 0.2),
                       Algorithm(sync_average(1.0, 3), Q=2, eta=0.1, synchronous=True),
                       EventDriven()),
        "local_event": (Plain(), Algorithm(local_only(), Q=2, eta=0.1, batch_size=4),
                        EventDriven()),
    }[case]
    ps = Problem.build(SoftmaxRegression(3), oracle, _clients(xp.asarray), seed=0)
    pn = Problem.build(SoftmaxRegression(3), oracle, _clients(np.asarray), seed=0)
    rs = run(ps, alg, spec, T=8, seed=1, eval_every=4, cohort_size=3)
    rn = run(pn, alg, spec, T=8, seed=1, eval_every=4, cohort_size=3)
    assert rs.ok and rn.ok
    np.testing.assert_allclose(rs.params, rn.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rs.history.loss, rn.history.loss, rtol=1e-12)
    assert rs.counters["n_inner"] == rn.counters["n_inner"]


def test_strict_unequal_clients_padded_layout_and_float32_cast():
    """Unequal client sizes (zero padding written with xp.where, the mask) and the packed
    float32 cast under array_api_strict: the NumPy result."""
    from persafl_np.personalization import Plain

    def clients(to):
        rng = np.random.default_rng(1)
        return [tuple(to(a) for a in (rng.normal(size=(3 + 2 * k, 3)),
                                      rng.integers(0, 3, 3 + 2 * k),
                                      rng.normal(size=(2 + k, 3)), rng.integers(0, 3, 2 + k)))
                for k in range(4)]

    alg = Algorithm(persafl(0.5), Q=2, eta=0.1)  # full batches: the padded layout
    for dtype in (None, "float32"):
        ps = Problem.build(SoftmaxRegression(3), Plain(), clients(xp.asarray), seed=0,
                           dtype=dtype)
        pn = Problem.build(SoftmaxRegression(3), Plain(), clients(np.asarray), seed=0,
                           dtype=dtype)
        rs = run(ps, alg, EventDriven(), T=8, seed=1, eval_every=4)
        rn = run(pn, alg, EventDriven(), T=8, seed=1, eval_every=4)
        tol = 1e-12 if dtype is None else 1e-6
        np.testing.assert_allclose(rs.params, rn.params, rtol=tol, atol=tol)
        np.testing.assert_allclose(rs.history.loss, rn.history.loss, rtol=tol)
        np.testing.assert_allclose(rs.history.acc_pers_mean, rn.history.acc_pers_mean)
