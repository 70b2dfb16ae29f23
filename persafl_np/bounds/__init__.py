"""Runnable convergence theory: the stationarity bound of theory/async_theorem.md, the problem
constants (L, σ², γ², F*, Δ_F) it needs, and checks of the bound against simulator runs.

``theorem`` and ``constants`` never import the simulator; ``check`` and ``report`` do, lazily.
"""

from persafl_np.bounds.applicable import BoundEntry, applicable_bounds
from persafl_np.bounds.arrival import ArrivalBound, ReweightedBound, arrival_bound, reweighted_bound
from persafl_np.bounds.assumptions import ArrivalAssumptions, arrival_assumptions
from persafl_np.bounds.check import BoundCheck, average_stationarity, check_bound, problem_constants
from persafl_np.bounds.constants import (
    BoundOracle,
    Gamma2Probe,
    ProblemConstants,
    Sigma2Estimate,
    estimate_sigma2,
    personalized_hessian,
    probe_gamma2,
    robust_constants,
    shifted_ls_constants,
)
from persafl_np.bounds.falsify import (
    FalsifyResult,
    T1Bound,
    T3Bound,
    falsify,
    rerun_instance,
)
from persafl_np.bounds.families import BoundInputs, QuadraticFamily, RobustFamily
from persafl_np.bounds.generalized_smooth import (
    GDBound,
    gradient_level_bound,
    maml_l0_l1,
    sync_gd_bound,
)
from persafl_np.bounds.maml_batches import BatchStatistics, batch_statistics, disjoint_bias_bound
from persafl_np.bounds.pep import PEPResult, pep_worst_case
from persafl_np.bounds.report import BoundInstance, bound_report, instance_from_config
from persafl_np.bounds.shares import (
    WeightedConstants,
    chi2_uniform,
    shares_from_counts,
    shares_from_rates,
    weighted_ls_constants,
)
from persafl_np.bounds.staleness_linear import (
    MARTINGALE_CONSTANTS,
    MartingaleCorollary,
    delay_adaptive_bound,
    martingale_bound,
    martingale_corollary,
)
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
    "MARTINGALE_CONSTANTS",
    "ArrivalBound",
    "BoundEntry",
    "BoundOracle",
    "GDBound",
    "MartingaleCorollary",
    "ReweightedBound",
    "WeightedConstants",
    "applicable_bounds",
    "arrival_bound",
    "chi2_uniform",
    "delay_adaptive_bound",
    "gradient_level_bound",
    "maml_l0_l1",
    "martingale_bound",
    "martingale_corollary",
    "reweighted_bound",
    "shares_from_counts",
    "shares_from_rates",
    "sync_gd_bound",
    "weighted_ls_constants",
    "TERM_NAMES",
    "ArrivalAssumptions",
    "BatchStatistics",
    "BoundCheck",
    "BoundInputs",
    "BoundInstance",
    "BoundResult",
    "ConditionsResult",
    "CorollaryStepSizes",
    "FalsifyResult",
    "Gamma2Probe",
    "PEPResult",
    "ProblemConstants",
    "QuadraticFamily",
    "RobustFamily",
    "Sigma2Estimate",
    "T1Bound",
    "T3Bound",
    "arrival_assumptions",
    "average_stationarity",
    "batch_statistics",
    "bound_report",
    "check_bound",
    "disjoint_bias_bound",
    "corollary_step_sizes",
    "estimate_sigma2",
    "falsify",
    "instance_from_config",
    "pep_worst_case",
    "personalized_hessian",
    "probe_gamma2",
    "problem_constants",
    "quadratic_ratio_limit",
    "rerun_instance",
    "robust_constants",
    "shifted_ls_constants",
    "stationarity_bound",
    "step_size_conditions",
]
