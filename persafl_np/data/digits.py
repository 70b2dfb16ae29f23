"""scikit-learn's bundled digits (1797 images, 8×8 = 64 features, 10 classes), federated.

The data ship inside scikit-learn (``sklearn.datasets.load_digits``), so nothing is
downloaded; scikit-learn is an optional dependency (the ``data`` extra) and is imported only
when :func:`load_digits_federated` is called.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from persafl_np.data.arguments import N_CLIENTS, TEST_FRACTION
from persafl_np.data.federated import FederatedDataset
from persafl_np.data.partition import (
    federate,
    partition_dirichlet,
    partition_iid,
    partition_label_skew,
)
from persafl_np.data.rng import SeedLike, as_generator
from persafl_np.parameters import Param, check_args, declares

__all__ = ["PARTITIONS", "load_digits_federated"]

#: Values accepted by ``load_digits_federated(partition=...)``.
PARTITIONS = ("label_skew", "dirichlet", "iid")


@declares(
    replace(N_CLIENTS, hi=1797),
    Param("partition", "str", "label_skew", "how the 1797 images are split", choices=PARTITIONS),
    Param("classes_per_client", "int", 2, "labels per client (label_skew)", lo=1, hi=10,
          when=("partition", ("label_skew",))),
    Param("dirichlet_alpha", "float", 0.5, "Dirichlet concentration (dirichlet)", lo=0.0,
          lo_open=True, when=("partition", ("dirichlet",))),
    TEST_FRACTION,
    Param("standardize", "bool", True, "center and scale each pixel over all images"),
)
def load_digits_federated(
    n_clients: int = 20,
    *,
    partition: str = "label_skew",
    classes_per_client: int = 2,
    dirichlet_alpha: float = 0.5,
    test_fraction: float = 0.2,
    seed: SeedLike = None,
    standardize: bool = True,
) -> FederatedDataset:
    """The digits data split among ``n_clients`` clients, each with a train/test split.

    ``partition``: ``"label_skew"`` (:func:`~persafl_np.data.partition.partition_label_skew`
    with ``classes_per_client``), ``"dirichlet"`` (``partition_dirichlet`` with
    ``dirichlet_alpha``) or ``"iid"``. ``standardize``: center each pixel and divide by its
    standard deviation over all 1797 images (pixels that are constant are only centered) —
    a fixed, label-free transformation of the pooled data, applied before the split. Without
    it the features are the raw counts 0..16. ``seed`` drives the partition and then the
    train/test shuffles (one generator, in that order).

    Raises ``ImportError`` (with the install command) when scikit-learn is missing.
    """
    n_clients, partition = check_args(load_digits_federated, n_clients=n_clients,
                                      partition=partition)
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "load_digits_federated needs scikit-learn (only for its bundled digits data): "
            "pip install 'persafl_np[data]'"
        ) from exc
    X, y = load_digits(return_X_y=True)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if standardize:
        sd = X.std(axis=0)
        X = (X - X.mean(axis=0)) / np.where(sd > 0.0, sd, 1.0)
    rng = as_generator(seed)
    if partition == "label_skew":
        parts = partition_label_skew(y, n_clients, classes_per_client, rng)
        tag = f"label_skew(k={classes_per_client})"
    elif partition == "dirichlet":
        parts = partition_dirichlet(y, n_clients, dirichlet_alpha, rng)
        tag = f"dirichlet(alpha={float(dirichlet_alpha):g})"
    else:
        parts = partition_iid(y.size, n_clients, rng)
        tag = "iid"
    return federate(
        X,
        y,
        parts,
        test_fraction=test_fraction,
        seed=rng,
        n_classes=10,
        name=f"digits({tag},standardize={bool(standardize)})",
    )
