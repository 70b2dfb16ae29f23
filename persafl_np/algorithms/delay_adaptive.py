"""Delay-adaptive server step a_t = a·1{τ_t ≤ τ̄} (Mishchenko et al. 2022), eq. (TB-4).

theory/staleness_linear.md §4. An update whose staleness exceeds ``threshold`` is applied with
step 0: the server version still advances (the skipped arrival counts as a step, as in the
analysis), the model does not move.
With C jobs in flight and ``threshold = 2C`` more than half of the steps are applied, pathwise
(eq. (TB-5)). The bound (TB-4) needs the skip decision to be independent of the client given
the past (condition (I)); with client-dependent staleness (exponential arrivals with unequal
rates) the rule re-introduces an arrival bias (theory/staleness_linear.md §4.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from persafl_np.parameters import Param, validate_fields

__all__ = ["DelayAdaptive"]


@dataclass(frozen=True)
class DelayAdaptive:
    """Server-step factor 1 if τ ≤ ``threshold`` else 0 (``threshold`` τ̄ ≥ 0, in server steps)."""

    threshold: int
    params: ClassVar[tuple[Param, ...]] = (
        Param("threshold", "int", None, "skip updates with staleness > threshold (TB-4)", lo=0),
    )

    def __post_init__(self) -> None:
        validate_fields(self, "delay_adaptive ")

    def factor(self, tau: int) -> float:
        """1.0 when the update is applied, 0.0 when it is skipped."""
        return 1.0 if tau <= self.threshold else 0.0
