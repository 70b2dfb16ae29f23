"""Server rules ((init, update) pairs), staleness weights, and the algorithm bundle."""

from persafl_np.algorithms.algorithm import Algorithm
from persafl_np.algorithms.delay_adaptive import DelayAdaptive
from persafl_np.algorithms.reweight import ClientReweight
from persafl_np.algorithms.rules import (
    Contribution,
    ServerRule,
    ServerState,
    fedasync,
    fedbuff,
    local_only,
    persafl,
    sync_average,
)
from persafl_np.algorithms.weights import StalenessWeight, constant, hinge, polynomial

__all__ = [
    "Algorithm",
    "ClientReweight",
    "DelayAdaptive",
    "Contribution",
    "ServerRule",
    "ServerState",
    "StalenessWeight",
    "constant",
    "fedasync",
    "fedbuff",
    "hinge",
    "local_only",
    "persafl",
    "polynomial",
    "sync_average",
]
