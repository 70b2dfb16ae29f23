"""Small problems for the simulator tests (built inline: fast, exact, independent of data/)."""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.models import LeastSquares
from persafl_np.personalization import Plain
from persafl_np.sim import Problem


def make_ls_problem(n: int = 5, m: int = 12, d: int = 3, seed: int = 0, oracle=None) -> Problem:
    """n least-squares clients with different optima (heterogeneous), m rows each."""
    rng = np.random.default_rng(seed)
    clients = []
    for _ in range(n):
        X = rng.normal(size=(m, d))
        y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=m)
        clients.append((X, y))
    return Problem.build(LeastSquares(), oracle or Plain(), clients, seed=seed)


@pytest.fixture
def ls_problem() -> Problem:
    return make_ls_problem()


@pytest.fixture(scope="session")
def make_problem():
    """Factory fixture: ``make_problem(n=…, m=…, d=…, seed=…, oracle=…)``."""
    return make_ls_problem
