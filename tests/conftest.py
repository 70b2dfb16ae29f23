"""Test-suite configuration: hypothesis profiles and shared fixtures.

Fixtures: ``ls_problem`` and the factory ``make_problem`` build small heterogeneous
least-squares problems for the simulator and server-rule tests (inline data: fast, exact,
independent of ``persafl_np.data``).

Profiles
--------
``dev`` (default): randomized, 50 examples per property.
``ci`` (selected when the environment variable ``CI=true``): derandomized, so CI is
reproducible, with a bounded number of examples and no deadline (2 shared cores).
"""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from persafl_np.models import LeastSquares
from persafl_np.personalization import Plain
from persafl_np.sim import Problem

matplotlib.use("Agg")

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")


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
