"""Real kills: SIGKILL `persafl run --checkpoint-every` at random instants and at every injected
point between two checkpoint writes, resume each time, and require the final files to be
byte-identical to an uninterrupted run (harness: benchmarks/kill_resume.py).

Bounded: about 40 short subprocesses (~30 s on 2 shared cores), the same under CI=true.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from persafl_np.sim.checkpoint import POINTS_PER_SAVE

_spec = importlib.util.spec_from_file_location(
    "kill_resume", Path(__file__).resolve().parents[1] / "benchmarks" / "kill_resume.py")
kill_resume = importlib.util.module_from_spec(_spec)
sys.modules["kill_resume"] = kill_resume  # dataclasses look their module up there
_spec.loader.exec_module(kill_resume)


@pytest.mark.slow
def test_real_kills_resume_byte_identical(tmp_path):
    rng = random.Random(20261201)
    total = kill_resume.Tally()
    for j, label in enumerate(kill_resume.KINDS):
        # every injection point of the first and of a later save, in one chain (persafl_event);
        # four random SIGKILLs per kind (20 in all), in one chain each
        inject = list(range(1, 2 * POINTS_PER_SAVE + 1)) if j == 0 else []
        total.add(kill_resume.check_kind(label, tmp_path / label, T=200, inject=inject,
                                         n_random=4, rng=rng))
    assert not total.errors, "\n".join(total.errors)
    assert total.unrecoverable == 0
    assert total.trials == len(kill_resume.KINDS) + 1 and total.identical == total.trials
    assert total.kills >= 2 * POINTS_PER_SAVE + 10  # most random kills land before the end
