"""Runnable convergence theory: the stationarity bound of theory/async_theorem.md and the
problem constants (L, σ², γ², F*, Δ_F) it needs."""

from persafl_np.bounds.theorem import (
    CONSTANT_SETS,
    TERM_NAMES,
    BoundResult,
    ConditionsResult,
    CorollaryStepSizes,
    corollary_step_sizes,
    quadratic_ratio_limit,
    stationarity_bound,
    step_size_conditions,
)

__all__ = [
    "CONSTANT_SETS",
    "TERM_NAMES",
    "BoundResult",
    "ConditionsResult",
    "CorollaryStepSizes",
    "corollary_step_sizes",
    "quadratic_ratio_limit",
    "stationarity_bound",
    "step_size_conditions",
]
