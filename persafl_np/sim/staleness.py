"""Staleness control for event-driven runs: none, drop, block (theory/simulator.md §4).

Notation: v = current server version (t), a job pulled at version p has staleness v − p when
applied, τ_max the bound. ``cnt[p]`` = number of *outstanding* jobs (in flight, or arrived and
held) that pulled version p.

* ``none``: apply every arrival.
* ``drop``: apply iff v − p ≤ τ_max; otherwise discard it (the work is counted as wasted) and the
  client restarts from the current model.
* ``block``: an arrival is applied only if it is *safe*; otherwise it is held (its client waits,
  still occupying its concurrency slot); held updates are re-examined after every event and
  released earliest-pull-first as soon as the earliest one is safe. Give every outstanding job
  the deadline d_j = p_j + τ_max (the last version at which it may be applied). Applying job
  a at version v is safe iff

      for every P with v − τ_max ≤ P ≤ p_a − 1:  Σ_{q=v−τ_max}^{P} cnt[q] ≤ P + τ_max − v   (BLK)

  i.e. the other outstanding jobs with deadline ≤ D = P + τ_max still fit, one per version, into
  the D − v versions v+1..D that remain after a uses version v (EDF feasibility). It requires
  concurrency C ≤ τ_max + 1 (n jobs pulled at version 0 need n distinct versions ≤ τ_max).

  Invariant (proved in theory/simulator.md, Prop. 4.1): for all D ≥ v − 1,
  #{outstanding j : d_j ≤ D} ≤ D − v + 1. At D = v − 1 it says every outstanding job has
  v − p_j ≤ τ_max, so **no applied update ever has τ > τ_max**; and the earliest held job is
  always safe when nothing is in flight, so block never deadlocks.

The check costs O(p_a − (v − τ_max)) ≤ O(τ_max) per attempt.
"""

from __future__ import annotations

__all__ = ["CONTROLS", "block_safe"]

CONTROLS = ("none", "drop", "block")


def block_safe(cnt: dict[int, int], pulled: int, version: int, tau_max: int) -> bool:
    """Rule (BLK) of the module docstring: may the job that pulled ``pulled`` be applied now?"""
    lo = version - tau_max
    cum = 0
    for P in range(lo, pulled):
        cum += cnt.get(P, 0)
        if cum > P + tau_max - version:
            return False
    return True
