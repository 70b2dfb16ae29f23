"""Arrival reweighting of the server step: client i's update is scaled by ω_i = 1/(n p_i).

theory/arrival_bias.md §4, eq. (TA-5). With the conditional arrival law p (C5_p) the scaled
step is unbiased for F: E[ω_{i_t} ∇F_{i_t}(w) | F_t] = Σ_i p_i ∇F_i(w)/(n p_i) = ∇F(w).

* ``ClientReweight(shares=p)`` — p given and fixed: the setting (TA-5) covers.
* ``ClientReweight()`` — p estimated online from the applied counts c_i before this update,
  p̂_i = (c_i + prior)/(Σ_j c_j + n·prior). ω then depends on the past, so the scaled step is
  unbiased only asymptotically; (TA-5) does **not** cover it (theory/arrival_bias.md §4.3).

The factor is a pure function of (counts, client), so a checkpointed run (the engine saves its
counts) resumes bit-identically. ``None`` in :class:`~persafl_np.algorithms.Algorithm` (the
default) leaves every run bit-identical to one without this option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from persafl_np.parameters import Param, validate_fields

__all__ = ["ClientReweight"]


@dataclass(frozen=True)
class ClientReweight:
    """ω_i = 1/(n p_i) with p = ``shares`` (fixed), or with p̂ from the counts (online).

    shares: the arrival law p (every p_i > 0, Σ p_i = 1), or None for the online estimate.
    prior: pseudo-count of the online estimate (> 0); ignored when ``shares`` is given.
    """

    shares: tuple[float, ...] | None = None
    prior: float = 1.0
    params: ClassVar[tuple[Param, ...]] = (
        Param("shares", "floats", None, "the arrival law p (n_clients entries > 0, sum 1)",
              lo=0.0, lo_open=True, hi=1.0, optional=True),
        Param("prior", "float", 1.0, "pseudo-count of the online estimate (>= 1e-12: a smaller "
              "one underflows p_i to 0 for a client that has not arrived yet)", lo=1e-12),
    )

    def __post_init__(self) -> None:
        validate_fields(self, "reweight ")
        if self.shares is not None:
            s = math.fsum(self.shares)
            if abs(s - 1.0) > 1e-9:
                raise ValueError(f"reweight shares must sum to 1, got sum {s!r}")

    @property
    def online(self) -> bool:
        return self.shares is None

    def factor(self, counts: Any, i: int) -> float:
        """ω_i for the update of client ``i``; ``counts``: applied updates per client so far."""
        n = len(counts)
        if self.shares is not None:
            if len(self.shares) != n:
                raise ValueError(
                    f"reweight shares has {len(self.shares)} entries for {n} clients"
                )
            return 1.0 / (n * self.shares[i])
        c = np.asarray(counts, dtype=np.float64)
        p_i = (float(c[i]) + self.prior) / (float(c.sum()) + n * self.prior)
        return 1.0 / (n * p_i)
