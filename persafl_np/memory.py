"""Memory estimate of a run before anything is allocated; refuse runs that cannot fit.

:func:`estimate` adds up, for a :class:`~persafl_np.config.SimConfig`, in bytes:

* ``data``: every client's float64 rows (X and y, train and test) plus ~1 KiB of Python
  objects per client; the shifted-least-squares design is shared (stored once). Expected sizes:
  ``fedprox_synthetic`` m_i = ⌊LogNormal(4, 2)⌋ + 50 has mean e^6 + 50 ≈ 453 rows;
  ``robust_family`` n_samples + max(1, n_samples // 4) rows; digits 1,797 rows of 64 features.
* ``layout``: the cohort engine's concatenated copy of the training rows
  (:class:`~persafl_np.personalization.cohort.CohortData`); zero when the clients' arrays
  already lie back to back in one array (``data.federated.packed_rows``), which generated data
  sets do not do today, so :func:`estimate` counts it — for ``shifted_least_squares`` it holds
  the shared design once per client;
* ``store``: model versions kept (τ + 2 in theorem mode, 2 in event mode) and the models or
  results of the jobs in flight (≤ τ + 1, resp. C = concurrency), p parameters each, plus
  per-client models for ``local`` and Moreau warm starts (n·p each);
* ``streams``: one parked batch sampler per client when mini-batches are drawn (~1 KiB each
  with its permutation and dict entry, measured at 10⁵ clients; up to 10⁴ clients the samplers
  keep live generators instead, ~1.5 KiB each, at most ~15 MB: within the estimate's ±2×);
* ``cohort``: the buffers of one cohort of ``cohort_size`` jobs — the (Q·k, C, b, d + 1) gather of
  its mini-batch rows and ~8 (C, p) blocks (pulled models, iterates, gradients, results) — and of
  one evaluation call (up to EVAL_CHUNK clients of one padded width; estimated as EVAL_CHUNK
  clients of the mean size — each client's width is < 2× its size — and at most
  sim.evaluation.PADDED_BYTES, train and test);
* ``trace``: the per-arrival and per-job rows (structured arrays: trace + jobs row bytes, ×2 for
  the growing buffer's spare capacity and ×1 for the result's columns, made after the run
  state is released) for the expected number of
  arrivals (``max_arrivals``, else T × arrivals per server step / (1 − dropout));
* ``eval``: the gradients of one evaluation chunk and their running sums (3·min(n, 256)·p).

:func:`estimate_parts` is the same sum from explicit sizes (benchmarks/bench_scale.py compares it
with the measured peak RSS).

:func:`check_fits` compares the total with the memory available now (``MemAvailable`` of
/proc/meminfo, else the free physical pages; unknown → no check) and raises a ValueError with
the estimate when the run cannot fit. The estimate is deliberately coarse (±2×): it catches the
runs that would need tens of GB on a laptop, not the last 10 %.
"""

from __future__ import annotations

import math
import os
from typing import Any

__all__ = ["available_bytes", "check_fits", "estimate", "estimate_parts"]

_PER_CLIENT_OBJECTS = 1024
_PER_STREAM = 1024
#: trace row (49 B) + job row (40 B), ×2 spare capacity, ×1 result columns
_PER_ARRIVAL = 3 * (49 + 40)
_EVAL_CHUNK = 256
_PADDED_BYTES = 64 * 2**20  # sim.evaluation.PADDED_BYTES
_COHORT_BLOCKS = 8


def _get(table: Any, key: str, default: Any = None) -> Any:
    """A config table's key, or ``default`` where it does not apply to the component."""
    get = getattr(table, "get", None)
    return get(key, default) if get is not None else getattr(table, key, default)


def _num_params(config: Any) -> int:
    m, d = config.model, _get(config.data, "n_features", 10)
    if config.data.name == "digits":
        d = 64
    C = _get(config.data, "n_classes", 10) if config.data.name != "digits" else 10
    if m.name == "softmax":
        return (d + 1) * C
    if m.name == "mlp":
        return d * m.n_hidden + m.n_hidden + m.n_hidden * C + C
    return d + 1


def estimate(config: Any) -> dict[str, int]:
    """Bytes per part (module docstring) and ``total``; arbitrary-precision ints, no overflow."""
    dc, n = config.data, _get(config.data, "n_clients", 1)
    d = 64 if dc.name == "digits" else _get(dc, "n_features", 10)
    if dc.name == "fedprox_synthetic":
        rows = n * (math.floor(math.exp(4.0 + 2.0 ** 2 / 2)) + 50)
        data = train = rows * (d + 1) * 8
    elif dc.name == "shifted_least_squares":
        data = dc.n_samples * d * 8 + n * dc.n_samples * 8
        train = n * dc.n_samples * (d + 1) * 8  # the engine's layout repeats the design
    elif dc.name == "robust_family":
        data = n * (dc.n_samples + max(1, dc.n_samples // 4)) * (d + 1) * 8
        train = n * dc.n_samples * (d + 1) * 8
    elif dc.name == "npz":  # the arrays as stored (float64 rows, uncompressed)
        data = train = os.path.getsize(dc.path)
    else:
        data = train = 1797 * 65 * 8
    arr, alg = config.arrivals, config.algorithm
    conc = _get(arr, "concurrency")
    if arr.mode == "theorem":  # the τ + 1 window; jobs computed at arrival (look-ahead ≤ τ + 1)
        versions, in_flight = arr.tau + 2, min(n, arr.tau + 1)
    else:  # the current version; every in-flight job holds its pulled model or its result
        versions, in_flight = 2, n if conc is None else min(n, conc)
    per_step = alg.K if alg.name == "fedbuff" else 1
    if alg.name in ("fedavg", "perfedavg", "pfedme"):
        per_step = alg.clients_per_round
    if config.max_arrivals is not None:
        arrivals = config.max_arrivals
    else:
        # integer arithmetic: T may be any size (no float overflow)
        dropout = _get(arr, "dropout", 0.0)
        arrivals = config.T * per_step * 1024 // max(1, math.floor((1.0 - dropout) * 1024))
    k = 1
    if config.oracle.name == "maml":
        k = 2 if _get(config.oracle, "hessian") == "first_order" else 3
    cohort = config.cohort_size if config.cohort_size is not None else 128
    parts = estimate_parts(
        n_clients=n, rows=0, test_rows=0, d=d, p=_num_params(config), in_flight=in_flight,
        versions=versions, arrivals=arrivals, batch_size=alg.batch_size, cohort_size=cohort,
        Q=alg.Q, k=k, per_client_models=alg.name == "local" or config.oracle.name == "moreau",
        packed=False, data_bytes=data, train_bytes=train)
    return parts


def estimate_parts(*, n_clients: int, rows: int, test_rows: int, d: int, p: int,
                   in_flight: int, versions: int, arrivals: int, batch_size: int | None,
                   cohort_size: int, Q: int = 1, k: int = 1, per_client_models: bool = False,
                   packed: bool = True, data_bytes: int | None = None,
                   train_bytes: int | None = None) -> dict[str, int]:
    """The parts of the module docstring from explicit sizes (float64): ``rows``/``test_rows``
    training/test rows of d features (+ one target column), p parameters, ``versions`` model
    versions plus ``in_flight`` jobs' models, ``packed``: the clients already lie back to back
    (no ``layout`` copy). ``data_bytes``/``train_bytes`` override the row counts."""
    n = n_clients
    train = (rows * (d + 1) * 8) if train_bytes is None else train_bytes
    data = (train + test_rows * (d + 1) * 8) if data_bytes is None else data_bytes
    data += n * _PER_CLIENT_OBJECTS
    layout = 0 if packed else train
    store = (versions + in_flight) * p * 8
    if per_client_models:
        store += n * p * 8
    streams = n * _PER_STREAM if batch_size is not None else 0
    C = min(cohort_size, max(1, in_flight))
    mean_rows = -(-train // max(1, n * (d + 1) * 8))
    # a job's Q·k mini-batches are gathered at once; b ≥ m is the full batch (no gather)
    mini = batch_size is not None and batch_size < mean_rows
    gather = Q * k * batch_size * (d + 1) * 8 if mini else 0
    padded = min(_PADDED_BYTES, min(n, _EVAL_CHUNK) * mean_rows * (d + 1) * 8)
    cohort = C * (gather + _COHORT_BLOCKS * p * 8) + 2 * padded
    trace = arrivals * _PER_ARRIVAL
    ev = 3 * min(n, _EVAL_CHUNK) * p * 8
    parts = {"data": data, "layout": layout, "store": store, "streams": streams,
             "cohort": cohort, "trace": trace, "eval": ev}
    parts["total"] = sum(parts.values())
    return parts


def available_bytes() -> int | None:
    """Memory available to a new allocation now (None when the OS does not say)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _fmt(b: int) -> str:
    if b >= 10**15:
        return f"~10^{len(str(b)) - 13} TB"  # beyond float range for absurd T: digits only
    for unit, k in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if b >= k:
            return f"{b / k:.3g} {unit}"
    return f"{b / 1e3:.3g} kB"


def check_fits(config: Any, available: int | None = None, *, data_built: bool = False) -> None:
    """ValueError with the estimate when the run of ``config`` cannot fit in ``available``
    bytes (default: :func:`available_bytes`). ``data_built``: the data set already exists
    (passed to simulate), so it is not counted again."""
    est = estimate(config)
    total = est["total"] - (est["data"] if data_built else 0)
    avail = available_bytes() if available is None else available
    if avail is None or total <= avail:
        return
    parts = ", ".join(f"{k} {_fmt(v)}" for k, v in est.items()
                      if k != "total" and not (data_built and k == "data"))
    keys = [("data", "n_clients"), ("data", "n_samples"), ("data", "n_features"),
            ("data", "n_classes"), ("model", "n_hidden"), ("arrivals", "tau"),
            ("arrivals", "concurrency")]
    sizes = ", ".join(f"{t}.{k}={_get(getattr(config, t), k)}" for t, k in keys
                      if _get(getattr(config, t), k) is not None)
    sizes += (f", T={config.T}, max_arrivals={config.max_arrivals}, "
              f"algorithm.Q={config.algorithm.Q}, "
              f"algorithm.batch_size={config.algorithm.batch_size}, "
              f"cohort_size={config.cohort_size}")
    raise ValueError(
        f"this run needs about {_fmt(total)} of memory ({parts}) but only {_fmt(avail)} is "
        f"available; reduce the sizes ({sizes})"
    )
