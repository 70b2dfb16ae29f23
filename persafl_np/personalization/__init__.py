"""Personalization frameworks (oracles for F_i) and the client's local update."""

from persafl_np.personalization.base import Oracle, OracleStep, PersonalizedConstants
from persafl_np.personalization.local import LocalUpdate, local_update
from persafl_np.personalization.plain import Plain

__all__ = ["LocalUpdate", "Oracle", "OracleStep", "PersonalizedConstants", "Plain", "local_update"]
