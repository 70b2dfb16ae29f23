"""Personalization frameworks (oracles for F_i) and the client's local update.

Plain (AL, F_i = f_i), MAML (F_i(w) = f_i(w − α∇f_i(w))), the Moreau envelope
(F_i(w) = min_θ f_i(θ) + (λ/2)‖θ − w‖²), an additive-noise wrapper, and ``local_update``
(Q client steps → Δ). Mathematics: theory/personalization.md.
"""

from persafl_np.personalization.base import Oracle, OracleStep, PersonalizedConstants
from persafl_np.personalization.local import LocalUpdate, local_update
from persafl_np.personalization.maml import MAML, central_hvp
from persafl_np.personalization.moreau import MoreauEnvelope, MoreauValue, ProxResult, solve_prox
from persafl_np.personalization.noise import AdditiveNoise
from persafl_np.personalization.plain import Plain

__all__ = [
    "MAML",
    "AdditiveNoise",
    "LocalUpdate",
    "MoreauEnvelope",
    "MoreauValue",
    "Oracle",
    "OracleStep",
    "PersonalizedConstants",
    "Plain",
    "ProxResult",
    "central_hvp",
    "local_update",
    "solve_prox",
]
