"""Federated data: containers, partitioners, synthetic generators and the digits data set.

See the README section "Data sets" for an overview. Every generator takes ``seed``
(int / ``numpy.random.Generator`` / ``SeedSequence`` / None) and is deterministic given it.
"""

from persafl_np.data.digits import load_digits_federated
from persafl_np.data.federated import ClientData, FederatedDataset
from persafl_np.data.partition import (
    federate,
    partition_dirichlet,
    partition_iid,
    partition_label_skew,
    split_train_test,
)
from persafl_np.data.rng import as_generator
from persafl_np.data.synthetic import (
    ShiftedLeastSquares,
    fedprox_client_sizes,
    fedprox_synthetic,
    robust_family,
    shifted_least_squares,
)

__all__ = [
    "ClientData",
    "FederatedDataset",
    "ShiftedLeastSquares",
    "as_generator",
    "federate",
    "fedprox_client_sizes",
    "fedprox_synthetic",
    "load_digits_federated",
    "partition_dirichlet",
    "partition_iid",
    "partition_label_skew",
    "robust_family",
    "shifted_least_squares",
    "split_train_test",
]
