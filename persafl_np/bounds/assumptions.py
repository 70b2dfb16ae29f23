"""Which arrival settings satisfy C4 (bounded staleness) and C5 (conditional uniformity).

The rules are those of theory/assumptions.md §3–§4; :func:`arrival_assumptions` applies them to
a simulator arrival spec (``TheoremMode``, ``EventDriven`` or ``Replay``) without running it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ArrivalAssumptions", "arrival_assumptions"]


@dataclass(frozen=True)
class ArrivalAssumptions:
    """c5: True (holds), False (broken). c4: True (τ bounded a priori), False, or None (only
    the realised maximum is known: valid for deterministic schedules). reasons: why."""

    c4: bool | None
    c5: bool
    reasons: tuple[str, ...]


def _is_zero(law: Any) -> bool:
    return getattr(law, "law", None) == "constant" and law.mean == 0.0 and law.minimum == 0.0


def arrival_assumptions(arrivals: Any, n_clients: int) -> ArrivalAssumptions:
    """Classify an arrival spec against C4/C5 (theory/assumptions.md §3–§4)."""
    from persafl_np.sim import EventDriven, JobTime, TheoremMode

    if isinstance(arrivals, TheoremMode):
        return ArrivalAssumptions(
            True, True, ("theorem mode: client uniform given the past, tau_t <= tau",)
        )
    if not isinstance(arrivals, EventDriven):
        return ArrivalAssumptions(
            None, False, ("replayed schedule: the client sequence is fixed in advance (no C5)",)
        )
    broken = []
    law = arrivals.job_time
    exp = isinstance(law, JobTime) and law.law == "exponential" and law.minimum == 0.0
    if not exp:
        broken.append("job times are not i.i.d. exponential: the restart rule makes the next "
                      "client depend on the past (round robin for constant times)")
    sp = arrivals.speeds
    if sp is not None and len(set(sp)) > 1:
        broken.append("unequal speeds: fast clients arrive more often (p_i ~ speed), the method "
                      "targets sum_i p_i F_i")
    if arrivals.concurrency is not None and arrivals.concurrency < n_clients:
        broken.append("concurrency < n: the finisher is uniform over the busy clients only")
    if arrivals.dropout > 0:
        broken.append("dropout: not analysed (theory/assumptions.md §4)")
    if arrivals.staleness == "drop":
        broken.append("drop: applied updates are biased towards recently restarted clients")
    if arrivals.staleness == "block":
        broken.append("block: held-back updates make the order depend on pull versions")
    if not (_is_zero(arrivals.download) and _is_zero(arrivals.upload)):
        broken.append("non-zero latencies: the job duration is no longer exponential")
    if arrivals.staleness in ("drop", "block"):
        c4: bool | None = True
        c4_reason = f"staleness control {arrivals.staleness!r} keeps tau_t <= tau_max"
    elif exp:
        c4 = False
        c4_reason = "exponential job times: staleness is unbounded (geometric tail), C4 fails"
    else:
        c4 = None
        c4_reason = "tau = largest staleness observed (a valid bound only for a deterministic " \
                    "schedule)"
    if broken:
        return ArrivalAssumptions(c4, False, tuple(broken) + (c4_reason,))
    return ArrivalAssumptions(
        c4, True,
        ("i.i.d. exponential, equal rates, all in flight: memoryless, so the next finisher is "
         "uniform given the past", c4_reason),
    )
