"""BlockedIntegers.draw(n) is Generator.integers(n): the same values and the same generator
state after every draw (persafl_np/sim/bounded.py, (BND-1)); its state() resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persafl_np.sim.bounded import BlockedIntegers


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1),
       ns=st.lists(st.one_of(st.integers(1, 300), st.integers(1, 2**31),
                             st.sampled_from([1, 2, 3, 2**31 - 1, 2**31, 3 * 2**30])),
                   min_size=1, max_size=3000))
def test_values_and_state_are_numpys(seed, ns):
    ref, rng = np.random.default_rng(seed), np.random.default_rng(seed)
    b = BlockedIntegers(rng)
    for k, n in enumerate(ns):
        assert b.draw(n) == int(ref.integers(n))
        if k % 997 == 0:
            assert b.state() == ref.bit_generator.state
    assert b.state() == ref.bit_generator.state


def test_ranges_beyond_2_31_fall_back_in_step():
    ref, rng = np.random.default_rng(7), np.random.default_rng(7)
    b = BlockedIntegers(rng)
    for n in [5, 2**33, 17, 2**40, 3, 3]:
        assert b.draw(n) == int(ref.integers(n))
    assert b.state() == ref.bit_generator.state


@pytest.mark.parametrize("cut", [0, 1, 1023, 1024, 1500])
def test_load_state_resumes(cut):
    ns = (np.random.default_rng(1).integers(1, 1000, size=3000) + 1).tolist()
    a = BlockedIntegers(np.random.default_rng(3))
    full = [a.draw(n) for n in ns]
    b = BlockedIntegers(np.random.default_rng(3))
    head = [b.draw(n) for n in ns[:cut]]
    c = BlockedIntegers(np.random.default_rng(99))
    c.load_state(b.state())
    assert head + [c.draw(n) for n in ns[cut:]] == full
