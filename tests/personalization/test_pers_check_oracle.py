"""check_oracle: conformance of the stacked oracle methods with the single-client ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from persafl_np.checks import check_oracle
from persafl_np.models import MLP, LeastSquares, LogisticRegression, SoftmaxRegression
from persafl_np.personalization import MAML, AdditiveNoise, MoreauEnvelope, Plain
from persafl_np.personalization.cohort import ManyStep

RNG = np.random.default_rng(0)
X = RNG.normal(size=(11, 4))
Y3 = RNG.integers(0, 3, 11)
MODELS = [(SoftmaxRegression(3), Y3), (LogisticRegression(), Y3 % 2), (MLP(3, 3), Y3),
          (LeastSquares(), RNG.normal(size=11))]
ORACLES = [Plain(), MAML(0.05), MAML(0.05, "hessian_free"), MAML(0.05, "first_order"),
           MoreauEnvelope(30.0, smoothness=10.0), MoreauEnvelope(30.0, inner_steps=5,
                                                              smoothness=10.0),
           AdditiveNoise(Plain(), 0.3), AdditiveNoise(MAML(0.05), 0.3)]


@pytest.mark.parametrize("model,y", MODELS, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("oracle", ORACLES, ids=lambda o: f"{o.name}-{getattr(o, 'hessian', '')}")
def test_builtin_oracles_conform(model, y, oracle):
    r = check_oracle(oracle, model, X, y)
    assert r.ok, r
    assert r.max_rel_error <= 1e-12 and r.counters_equal and r.bit_identical
    assert r.grad_exact == (getattr(oracle, "hessian", "") != "first_order"
                            and getattr(oracle, "inner_steps", None) is None)


@dataclass(frozen=True)
class _Doubled(Plain):
    """A wrong stacked step: twice the gradient."""

    def step_many(self, kern, Y, batches, warm=None):
        return ManyStep(2.0 * kern.grad(Y, *batches[0]), 1)


@dataclass(frozen=True)
class _Pooled(Plain):
    """A grouping-dependent stacked step: adds a cohort mean (rows depend on other rows)."""

    def step_many(self, kern, Y, batches, warm=None):
        G = kern.grad(Y, *batches[0])
        return ManyStep(G + 1e-3 * (G.mean(axis=0) - G), 1)


@dataclass(frozen=True)
class _Miscounted(Plain):
    def step_many(self, kern, Y, batches, warm=None):
        return ManyStep(kern.grad(Y, *batches[0]), 2)


def test_check_oracle_catches_wrong_stacked_methods():
    M, y = MODELS[0]
    bad = check_oracle(_Doubled(), M, X, y)
    assert not bad.ok and bad.worst in ("step", "local_update") and bad.max_rel_error > 0.1
    pooled = check_oracle(_Pooled(), M, X, y)
    assert not pooled.ok and not pooled.bit_identical
    assert not check_oracle(_Miscounted(), M, X, y).counters_equal


def test_check_oracle_catches_a_wrong_gradient():
    @dataclass(frozen=True)
    class WrongGrad(Plain):
        def grad(self, model, w, X, y):
            return 1.01 * model.grad(w, X, y)

    r = check_oracle(WrongGrad(), *MODELS[0][:1], X, MODELS[0][1])
    assert not r.grad.ok and not r.ok
