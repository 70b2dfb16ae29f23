"""Runnable convergence theory: the stationarity bound of theory/async_theorem.md, the problem
constants (L, σ², γ², F*, Δ_F) it needs, and checks of the bound against simulator runs.

``theorem`` and ``constants`` never import the simulator; ``check`` and ``report`` do, lazily.
"""

from persafl_np.bounds.assumptions import ArrivalAssumptions, arrival_assumptions
from persafl_np.bounds.check import BoundCheck, average_stationarity, check_bound, problem_constants
from persafl_np.bounds.constants import (
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
from persafl_np.bounds.pep import PEPResult, pep_worst_case
from persafl_np.bounds.report import BoundInstance, bound_report, instance_from_config
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
    "ArrivalAssumptions",
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
    "bound_report",
    "check_bound",
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
