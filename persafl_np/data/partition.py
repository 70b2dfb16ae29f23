"""Split a pooled data set among n clients, and per client into train/test.

Every partitioner returns ``list[np.ndarray]``: one sorted int64 index array per client,
which together cover every sample ``0..N-1`` exactly once and are all non-empty (an
empty client has no f_i). Randomness comes only from ``seed`` (see
:mod:`persafl_np.data.rng`); the same seed gives the same partition.

* :func:`partition_iid` — a uniformly random permutation cut into n near-equal blocks.
* :func:`partition_label_skew` — "k classes per client" (McMahan et al. 2017 shards;
  Per-FedAvg / pFedMe style): each client holds exactly ``classes_per_client`` distinct
  labels and each label's samples are shared evenly among the clients that hold it.
* :func:`partition_dirichlet` — for each class c, proportions p_c ~ Dir(α·1_n) over clients
  (Hsu, Qi & Brown 2019; NIID-Bench): α → ∞ is iid, α → 0 gives each class to few clients.

:func:`federate` turns ``(X, y, parts)`` into a :class:`~persafl_np.data.federated.FederatedDataset`
with a random per-client train/test split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from persafl_np.data.arguments import check_int, check_test_fraction
from persafl_np.data.federated import ClientData, FederatedDataset
from persafl_np.data.rng import SeedLike, as_generator

__all__ = [
    "federate",
    "partition_dirichlet",
    "partition_iid",
    "partition_label_skew",
    "split_train_test",
]


# --------------------------------------------------------------------------- validation
def _labels(y: Any, name: str = "y") -> np.ndarray:
    """1-D integer labels as int64 (float labels only if they are exact integers)."""
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {a.shape}")
    if a.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one label")
    if a.dtype.kind in "iub":
        return a.astype(np.int64)
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        return a.astype(np.int64)
    raise ValueError(f"{name} must hold integer class labels, got dtype {a.dtype}")


def _members_by_class(inverse: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """Sample indices of each class, ascending (one stable sort instead of C scans)."""
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=n_classes)
    return np.split(order.astype(np.int64), np.cumsum(counts)[:-1])


def _finish(parts: list[np.ndarray], n_samples: int, what: str) -> list[np.ndarray]:
    out = [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    # Internal invariant, cheap to check: a partition, no client empty.
    assert sum(p.size for p in out) == n_samples, what
    empty = [i for i, p in enumerate(out) if p.size == 0]
    if empty:
        raise ValueError(
            f"{what}: clients {empty[:5]} would receive no samples; use fewer clients "
            "or more data"
        )
    return out


# --------------------------------------------------------------------------- partitioners
def partition_iid(n_samples: int, n_clients: int, seed: SeedLike = None) -> list[np.ndarray]:
    """IID partition: a random permutation of ``0..n_samples-1`` cut into ``n_clients`` blocks.

    Block sizes differ by at most one (``numpy.array_split``). Requires
    ``1 <= n_clients <= n_samples`` so that no client is empty.
    """
    n_samples = check_int(n_samples, "n_samples", 1)
    n_clients = check_int(n_clients, "n_clients", 1, n_samples)
    rng = as_generator(seed)
    return _finish(np.array_split(rng.permutation(n_samples), n_clients), n_samples, "iid")


def partition_label_skew(
    y: Any, n_clients: int, classes_per_client: int, seed: SeedLike = None
) -> list[np.ndarray]:
    """k-classes-per-client partition (k = ``classes_per_client``).

    Assignment: with the C distinct labels of ``y`` in a random order π and the clients in a
    random order, client slot s ∈ {0..n·k−1} receives label π[s mod C]; client j takes the k
    consecutive slots j·k..j·k+k−1, which are distinct labels because k ≤ C. Every label is
    held by ⌊nk/C⌋ or ⌈nk/C⌉ clients, and by at least one when n·k ≥ C (needed so that every
    sample is assigned). Each label's samples are shuffled and split evenly (sizes differ by
    ≤ 1) among its holders, so every client has ≤ k labels (< k only if a label has fewer
    samples than holders).

    Raises ``ValueError`` if ``classes_per_client`` is outside 1..C, if ``n_clients ·
    classes_per_client < C``, or if a client would end up empty.
    """
    labels = _labels(y)
    n_clients = check_int(n_clients, "n_clients", 1)
    classes, inverse = np.unique(labels, return_inverse=True)
    C = classes.size
    k = check_int(classes_per_client, "classes_per_client", 1, C)
    if n_clients * k < C:
        raise ValueError(
            f"classes_per_client={k} with n_clients={n_clients} covers only {n_clients * k} "
            f"label slots but y has {C} distinct labels; need n_clients * classes_per_client >= {C}"
        )
    rng = as_generator(seed)
    class_order = rng.permutation(C)
    client_order = rng.permutation(n_clients)
    slots = class_order[np.arange(n_clients * k) % C].reshape(n_clients, k)
    # holders[c] = clients holding label c, in slot order (deterministic given the seed).
    holder_of_slot = np.repeat(client_order, k)
    parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
    by_class = _members_by_class(inverse, C)
    for c in range(C):
        holders = holder_of_slot[slots.ravel() == c]
        members = rng.permutation(by_class[c])
        for h, chunk in zip(holders, np.array_split(members, holders.size), strict=True):
            parts[h].append(chunk)
    return _finish(
        [np.concatenate(p) if p else np.empty(0, np.int64) for p in parts],
        labels.size,
        "partition_label_skew",
    )


def partition_dirichlet(
    y: Any,
    n_clients: int,
    alpha: float,
    seed: SeedLike = None,
    *,
    min_size: int = 1,
    max_tries: int = 1000,
) -> list[np.ndarray]:
    """Dirichlet(α) label-distribution partition (Hsu et al. 2019, arXiv 1909.06335).

    For each class c independently: draw p_c ~ Dir(α·1_n) over the n clients, then the
    class's N_c shuffled samples are dealt out in counts ~ Multinomial(N_c, p_c) (each sample
    goes to client j with probability p_cj). Counts are multinomial rather than cuts at
    ⌊N_c·(p_c1 + … + p_cj)⌋ because the floor rule starves the first client: with large α and
    few samples per class, ⌊N_c p_c1⌋ is 0 for every class. If some client
    gets fewer than ``min_size`` samples in total, all proportions are redrawn, at most
    ``max_tries`` times; then ``ValueError`` (raise ``alpha``, lower ``n_clients`` or
    ``min_size``). ``min_size`` ≥ 1 because an empty client has no local loss.

    Large α gives every client ≈ the global label proportions; small α concentrates each
    class on a few clients.
    """
    labels = _labels(y)
    N = labels.size
    n_clients = check_int(n_clients, "n_clients", 1, N)
    a = float(alpha)
    if not (math.isfinite(a) and a > 0.0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    min_size = check_int(min_size, "min_size", 1, N // n_clients)
    max_tries = check_int(max_tries, "max_tries", 1)
    rng = as_generator(seed)
    classes, inverse = np.unique(labels, return_inverse=True)
    members = _members_by_class(inverse, classes.size)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for idx in members:
            p = rng.dirichlet(np.full(n_clients, a))
            cuts = np.cumsum(rng.multinomial(idx.size, p))[:-1]
            for j, chunk in enumerate(np.split(rng.permutation(idx), cuts)):
                parts[j].append(chunk)
        sizes = np.array([sum(ch.size for ch in p) for p in parts])
        if sizes.min() >= min_size:
            return _finish([np.concatenate(p) for p in parts], N, "partition_dirichlet")
    raise ValueError(
        f"partition_dirichlet: no draw in max_tries={max_tries} gave every one of the "
        f"{n_clients} clients >= min_size={min_size} samples with alpha={a}; raise alpha, "
        "lower n_clients or min_size, or raise max_tries"
    )


# --------------------------------------------------------------------------- train/test
def split_train_test(
    idx: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random split of one client's indices into sorted (train, test).

    n_test = round(test_fraction · m), clipped to 1..m−1 when m ≥ 2 so that both sides are
    non-empty; a one-sample client keeps its sample for training and gets an empty test set.
    """
    m = idx.size
    n_test = min(max(int(round(test_fraction * m)), 1), m - 1) if m >= 2 else 0
    perm = rng.permutation(idx)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def federate(
    X: Any,
    y: Any,
    parts: Sequence[Any],
    *,
    test_fraction: float = 0.2,
    seed: SeedLike = None,
    n_classes: int | None = None,
    name: str = "custom",
) -> FederatedDataset:
    """Build a :class:`FederatedDataset` from pooled arrays and a client partition.

    Parameters
    ----------
    X: ``(N, d)`` real features (copied as float64).
    y: ``(N,)`` targets. Classification when ``n_classes`` is given, or when ``y`` has an
        integer/bool dtype (then ``n_classes = max(y) + 1``, at least 2); regression (float64
        targets, ``n_classes=None``) when ``y`` is floating and ``n_classes`` is None.
    parts: one non-empty integer index array per client, pairwise disjoint, in ``0..N-1``
        (for example the output of a ``partition_*`` function; full coverage not required).
    test_fraction: in (0, 1); per client n_test = round(test_fraction · m_i), clipped so that
        every client keeps ≥ 1 training row (see :func:`split_train_test`). Not stratified.
    seed: int / Generator / SeedSequence / None, for the train/test shuffles.
    """
    Xa = np.asarray(X)
    ya = np.asarray(y)
    if Xa.ndim != 2:
        raise ValueError(f"X must be 2-D (N samples, d features), got shape {Xa.shape}")
    if ya.ndim != 1 or ya.shape[0] != Xa.shape[0]:
        raise ValueError(
            f"y must be 1-D with one entry per row of X ({Xa.shape[0]}), got shape {ya.shape}"
        )
    N = Xa.shape[0]
    tf = check_test_fraction(test_fraction)
    if n_classes is None and ya.dtype.kind in "iub":
        ya = _labels(ya)
        n_classes = max(int(ya.max()) + 1, 2)
    elif n_classes is not None:
        n_classes = check_int(n_classes, "n_classes", 2)
        ya = _labels(ya)
    if len(parts) < 1:
        raise ValueError("parts must hold at least one client index array, got 0")
    owner = np.full(N, -1, dtype=np.int64)
    idx_list = []
    for j, p in enumerate(parts):
        pa = np.asarray(p)
        if pa.ndim != 1 or pa.size < 1 or pa.dtype.kind not in "iu":
            raise ValueError(
                f"parts[{j}] must be a non-empty 1-D integer index array, got dtype {pa.dtype} "
                f"shape {pa.shape}"
            )
        if pa.min() < 0 or pa.max() >= N:
            raise ValueError(
                f"parts[{j}] indices must lie in 0..{N - 1}, got {pa.min()}..{pa.max()}"
            )
        if np.unique(pa).size != pa.size or np.any(owner[pa] >= 0):
            raise ValueError(f"parts[{j}] repeats a sample (parts must be pairwise disjoint)")
        owner[pa] = j
        idx_list.append(pa.astype(np.int64))
    rng = as_generator(seed)
    clients = []
    for pa in idx_list:
        tr, te = split_train_test(pa, tf, rng)
        clients.append(ClientData(Xa[tr], ya[tr], Xa[te], ya[te]))
    return FederatedDataset(
        clients=tuple(clients), n_features=Xa.shape[1], n_classes=n_classes, name=name
    )
