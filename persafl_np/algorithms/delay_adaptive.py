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

from persafl_np.arguments import check_int

__all__ = ["DelayAdaptive"]


@dataclass(frozen=True)
class DelayAdaptive:
    """Server-step factor 1 if τ ≤ ``threshold`` else 0 (``threshold`` τ̄ ≥ 0, in server steps)."""

    threshold: int

    def __post_init__(self) -> None:
        check_int(self.threshold, "delay_adaptive threshold", 0)

    def factor(self, tau: int) -> float:
        """1.0 when the update is applied, 0.0 when it is skipped."""
        return 1.0 if tau <= self.threshold else 0.0
