"""Job-time laws, per-client speeds and trace files (theory/simulator.md §2).

A job of client i pulled at time s ends at s + D + C/v_i + U, where D (download), C (compute)
and U (upload) are drawn from their laws by inverse transform of counter-based uniforms
(:mod:`persafl_np.sim.streams`: the j-th job of client i uses draws 3j, 3j+1, 3j+2 of its key),
and v_i > 0 is the client's speed multiplier. Every law is ``minimum + X`` with X:

==============  =====================================  =====================
law             X                                      parameters
==============  =====================================  =====================
constant        mean                                   mean ≥ 0
exponential     Exp(mean):  −mean·log u                mean > 0
halfnormal      |N(0, sd²)|: sd·Φ⁻¹((1+u)/2)           sd > 0   (FLSim)
lognormal       exp(mu + sigma·Φ⁻¹(u))                 sigma > 0
uniform         low + (high − low)u                    0 ≤ low ≤ high
pareto          scale·u^(−1/shape)  (≥ scale)          shape > 0, scale > 0
==============  =====================================  =====================
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtri

from persafl_np.arguments import shown

__all__ = ["LAWS", "JobTime", "TraceJobTimes", "load_job_trace"]

LAWS = ("constant", "exponential", "halfnormal", "lognormal", "uniform", "pareto")


def _num(v: float, name: str, lo: float | None = None, strict: bool = False) -> float:
    # a real number (not bool, not str); ints beyond float range are not finite either
    try:
        x = math.nan if isinstance(v, bool) or not isinstance(v, (int, float, np.floating,
                                                                   np.integer)) else float(v)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {shown(v)}")
    if lo is not None and (x <= lo if strict else x < lo):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {lo}, got {shown(v)}")
    return x


@dataclass(frozen=True)
class JobTime:
    """A duration law (see the module table); ``minimum`` ≥ 0 is added to every draw."""

    law: str = "constant"
    mean: float = 1.0
    sd: float = 1.0
    mu: float = 0.0
    sigma: float = 1.0
    low: float = 0.0
    high: float = 1.0
    shape: float = 2.0
    scale: float = 1.0
    minimum: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.law, str) or self.law not in LAWS:
            raise ValueError(f"law must be one of {LAWS}, got {shown(self.law)}")
        set_ = object.__setattr__
        set_(self, "minimum", _num(self.minimum, "minimum", 0.0))
        set_(self, "mean", _num(self.mean, "mean", 0.0, strict=self.law == "exponential"))
        set_(self, "sd", _num(self.sd, "sd", 0.0, strict=True))
        set_(self, "mu", _num(self.mu, "mu"))
        set_(self, "sigma", _num(self.sigma, "sigma", 0.0, strict=True))
        set_(self, "low", _num(self.low, "low", 0.0))
        set_(self, "high", _num(self.high, "high", self.low))
        set_(self, "shape", _num(self.shape, "shape", 0.0, strict=True))
        set_(self, "scale", _num(self.scale, "scale", 0.0, strict=True))

    @property
    def is_zero(self) -> bool:
        return self.law == "constant" and self.mean == 0.0 and self.minimum == 0.0

    def quantile(self, u: float) -> float:
        """The law's inverse CDF at u ∈ (0, 1) (module table)."""
        law = self.law
        if law == "constant":
            x = self.mean
        elif law == "exponential":
            x = -self.mean * math.log(u)
        elif law == "halfnormal":
            x = self.sd * float(ndtri(0.5 + 0.5 * u))
        elif law == "lognormal":
            x = math.exp(self.mu + self.sigma * float(ndtri(u)))
        elif law == "uniform":
            x = self.low + (self.high - self.low) * u
        else:
            x = self.scale * u ** (-1.0 / self.shape)
        return self.minimum + x

    def mean_value(self) -> float:
        """E[duration] (inf for Pareto with shape ≤ 1)."""
        law = self.law
        if law == "constant":
            x = self.mean
        elif law == "exponential":
            x = self.mean
        elif law == "halfnormal":
            x = self.sd * math.sqrt(2.0 / math.pi)
        elif law == "lognormal":
            x = math.exp(self.mu + 0.5 * self.sigma**2)
        elif law == "uniform":
            x = 0.5 * (self.low + self.high)
        else:
            x = math.inf if self.shape <= 1 else self.scale * self.shape / (self.shape - 1)
        return self.minimum + x


@dataclass(frozen=True)
class TraceJobTimes:
    """Compute durations read from a CSV (columns ``client,start,end``; others ignored).

    Client i's j-th job takes ``durations[i][j mod len]`` (cycled), then the speed multiplier
    and latencies apply as for a law. ``path`` is kept so the resolved config can name it.
    """

    path: str
    durations: tuple[tuple[float, ...], ...]


def load_job_trace(path: str | Path, n_clients: int) -> TraceJobTimes:
    """Read and validate a job trace; ValueError names the row (1 = first data row).

    Rejected: missing columns, unknown client ids (outside 0..n_clients−1), non-finite or
    negative times, end < start, start times that decrease for a client, clients without rows.
    """
    p = Path(path)
    per: list[list[float]] = [[] for _ in range(n_clients)]
    last = [-math.inf] * n_clients
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"client", "start", "end"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"job trace {p}: missing column(s) {sorted(missing)}")
        for row_no, row in enumerate(reader, start=1):
            try:
                c = int(row["client"])
                s, e = float(row["start"]), float(row["end"])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"job trace {p}, row {row_no}: unparsable value ({exc})") from None
            if not 0 <= c < n_clients:
                raise ValueError(
                    f"job trace {p}, row {row_no}: unknown client id {c} "
                    f"(allowed 0..{n_clients - 1})"
                )
            if not (math.isfinite(s) and math.isfinite(e)) or s < 0 or e < s:
                raise ValueError(
                    f"job trace {p}, row {row_no}: need finite 0 <= start <= end, got {s}, {e}"
                )
            if s < last[c]:
                raise ValueError(
                    f"job trace {p}, row {row_no}: start times of client {c} are not monotone "
                    f"({s} after {last[c]})"
                )
            last[c] = s
            per[c].append(e - s)
    empty = [i for i, d in enumerate(per) if not d]
    if empty:
        raise ValueError(f"job trace {p}: no rows for client(s) {empty[:10]} (need every client)")
    return TraceJobTimes(str(p), tuple(tuple(d) for d in per))


def speeds_array(speeds: tuple[float, ...] | np.ndarray | None, n: int) -> list[float] | None:
    """Validate per-client speed multipliers (length n, finite, > 0)."""
    if speeds is None:
        return None
    a = np.asarray(speeds, dtype=float)
    if a.shape != (n,):
        raise ValueError(f"speeds must have one entry per client ({n}), got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError("speeds must be finite numbers > 0")
    return a.tolist()
