"""Memory estimate of a run before anything is allocated; refuse runs that cannot fit.

:func:`estimate` adds up, for a :class:`~persafl_np.config.SimConfig`, in bytes:

* ``data``: every client's float64 rows (X and y, train and test) plus ~1 KiB of Python
  objects per client; the shifted-least-squares design is shared (stored once). Expected sizes:
  ``fedprox_synthetic`` m_i = ⌊LogNormal(4, 2)⌋ + 50 has mean e^6 + 50 ≈ 453 rows;
  ``robust_family`` n_samples + max(1, n_samples // 4) rows; digits 1,797 rows of 64 features.
* ``store``: model versions kept (≤ min(τ, C) + 2 in theorem / event mode, C = in-flight jobs) of
  p parameters, plus per-client models for ``local`` and Moreau warm starts (n·p each);
* ``streams``: one batch generator per client when mini-batches are drawn (~2 KiB each);
* ``trace``: the per-arrival and per-job rows (~400 bytes per arrival while the run holds them
  as Python tuples, then as columns) for the expected number of arrivals
  (``max_arrivals``, else T × arrivals per server step / (1 − dropout));
* ``eval``: one gradient per client per evaluation (n·p).

:func:`check_fits` compares the total with the memory available now (``MemAvailable`` of
/proc/meminfo, else the free physical pages; unknown → no check) and raises a ValueError with
the estimate when the run cannot fit. The estimate is deliberately coarse (±2×): it catches the
runs that would need tens of GB on a laptop, not the last 10 %.
"""

from __future__ import annotations

import math
import os
from typing import Any

__all__ = ["available_bytes", "check_fits", "estimate"]

_PER_CLIENT_OBJECTS = 1024
_PER_STREAM = 2048
_PER_ARRIVAL = 400


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
        data = rows * (d + 1) * 8
    elif dc.name == "shifted_least_squares":
        data = dc.n_samples * d * 8 + n * dc.n_samples * 8
    elif dc.name == "robust_family":
        data = n * (dc.n_samples + max(1, dc.n_samples // 4)) * (d + 1) * 8
    elif dc.name == "npz":  # the arrays as stored (float64 rows, uncompressed)
        data = os.path.getsize(dc.path)
    else:
        data = 1797 * 65 * 8
    data += n * _PER_CLIENT_OBJECTS
    p = _num_params(config)
    arr, alg = config.arrivals, config.algorithm
    conc = _get(arr, "concurrency")
    in_flight = n if conc is None else min(n, conc)
    versions = (arr.tau + 2) if arr.mode == "theorem" else in_flight + 2
    store = versions * p * 8
    if alg.name == "local" or config.oracle.name == "moreau":
        store += n * p * 8
    streams = n * _PER_STREAM if alg.batch_size is not None else 0
    per_step = alg.K if alg.name == "fedbuff" else 1
    if alg.name in ("fedavg", "perfedavg", "pfedme"):
        per_step = alg.clients_per_round
    if config.max_arrivals is not None:
        arrivals = config.max_arrivals
    else:
        # integer arithmetic: T may be any size (no float overflow)
        dropout = _get(arr, "dropout", 0.0)
        arrivals = config.T * per_step * 1024 // max(1, math.floor((1.0 - dropout) * 1024))
    trace = arrivals * _PER_ARRIVAL
    ev = n * p * 8
    parts = {"data": data, "store": store, "streams": streams, "trace": trace, "eval": ev}
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
    sizes += f", T={config.T}, max_arrivals={config.max_arrivals}"
    raise ValueError(
        f"this run needs about {_fmt(total)} of memory ({parts}) but only {_fmt(avail)} is "
        f"available; reduce the sizes ({sizes})"
    )
