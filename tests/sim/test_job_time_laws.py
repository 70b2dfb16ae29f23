"""JobTime.quantile_fn (the event source's per-job closure) is JobTime.quantile bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.sim import JobTime
from persafl_np.sim.timing import U_MIN

LAWS = [
    JobTime("constant", mean=2.5, minimum=0.5),
    JobTime("exponential", mean=3.0, minimum=0.25),
    JobTime("halfnormal", sd=2.0),
    JobTime("lognormal", mu=0.3, sigma=1.5, minimum=1.0),
    JobTime("uniform", low=0.5, high=4.0, minimum=0.125),
    JobTime("pareto", shape=1.5, scale=2.0, minimum=0.1),
]


@pytest.mark.parametrize("law", LAWS, ids=lambda j: j.law)
def test_quantile_fn_is_quantile_bit_for_bit(law: JobTime) -> None:
    u = np.random.default_rng(0).random(2000).tolist() + [U_MIN, 0.5, 1.0 - U_MIN]
    q = law.quantile_fn()
    got = [q(x) for x in u]
    want = [law.quantile(x) for x in u]
    assert got == want
    assert all(type(v) is float for v in got)
