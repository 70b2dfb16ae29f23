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

Safe range: the counter uniforms lie in [2⁻⁵⁴, 1 − 2⁻⁵⁴], so every law's largest draw is known
in advance (:meth:`JobTime.largest`); a law whose largest draw exceeds :data:`MAX_DRAW` = 1e100
is refused when it is built (lognormal mu + 8.3·sigma ≤ 230, Pareto 37.4/shape + ln(scale) ≤
230), instead of an OverflowError mid-run. The parameters are declared once in
``JobTime.params`` (:mod:`persafl_np.parameters`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy.special import ndtri

from persafl_np.arguments import shown
from persafl_np.parameters import Param, applies, validate_fields

__all__ = ["LAWS", "MAX_DRAW", "JobTime", "TraceJobTimes", "load_job_trace"]

LAWS = ("constant", "exponential", "halfnormal", "lognormal", "uniform", "pareto")


#: The largest duration one draw may take (module docstring, "Safe range"): a job time
#: beyond it overflows ``math.exp`` / ``u ** (-1/shape)`` or leaves the clock without resolution.
MAX_DRAW = 1e100
#: The smallest counter uniform (persafl_np.sim.streams.counter_uniform: (k + 1/2)/2^53).
U_MIN = 0.5 / 2.0**53

_MEAN_LAWS = ("constant", "exponential")


@dataclass(frozen=True)
class JobTime:
    """A duration law (see the module table); ``minimum`` ≥ 0 is added to every draw.

    Every law's largest possible draw (at the counter uniforms' extremes) must be at most
    :data:`MAX_DRAW`: lognormal mu + 8.3·sigma ≤ 230, Pareto 37.4/shape + ln(scale) ≤ 230.
    """

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

    params: ClassVar[tuple[Param, ...]] = (
        Param("law", "str", "constant", "the duration law (module table)", choices=LAWS),
        Param("mean", "float", 1.0, "the duration (constant) or its mean (exponential)",
              lo=0.0, when=("law", _MEAN_LAWS)),
        Param("sd", "float", 1.0, "scale of |N(0, sd^2)|", lo=0.0, lo_open=True,
              when=("law", ("halfnormal",))),
        Param("mu", "float", 0.0, "log-mean: exp(mu + sigma*N(0, 1))",
              when=("law", ("lognormal",))),
        Param("sigma", "float", 1.0, "log-sd: exp(mu + sigma*N(0, 1))", lo=0.0, lo_open=True,
              when=("law", ("lognormal",))),
        Param("low", "float", 0.0, "lower end of the uniform law", lo=0.0,
              when=("law", ("uniform",))),
        Param("high", "float", 1.0, "upper end of the uniform law (>= low)", lo=0.0,
              when=("law", ("uniform",))),
        Param("shape", "float", 2.0, "Pareto tail index: scale*u^(-1/shape)", lo=0.0,
              lo_open=True, when=("law", ("pareto",))),
        Param("scale", "float", 1.0, "Pareto minimum value", lo=0.0, lo_open=True,
              when=("law", ("pareto",))),
        Param("minimum", "float", 0.0, "added to every draw", lo=0.0),
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.law == "exponential" and self.mean <= 0.0:
            raise ValueError(f"mean must be > 0 for law 'exponential', got {shown(self.mean)}")
        if self.high < self.low:
            raise ValueError(f"high must be >= {self.low} (low), got {shown(self.high)}")
        top = self.largest()
        if not top <= MAX_DRAW:
            used = ", ".join(f"{p.name}={getattr(self, p.name)!r}" for p in self.params
                             if applies(p, {"law": self.law}) and p.name != "law")
            raise ValueError(
                f"law {self.law!r} with {used} can draw durations up to {top:.3g} > "
                f"{MAX_DRAW:.0e} (overflow; see persafl_np.sim.timing.MAX_DRAW for the safe "
                "range: lognormal mu + 8.3*sigma <= 230, pareto 37.4/shape + ln(scale) <= 230)"
            )

    def largest(self) -> float:
        """The largest draw the counter uniforms can produce (inf when it overflows)."""
        law = self.law
        try:
            if law == "lognormal":
                x = math.exp(self.mu - self.sigma * float(ndtri(U_MIN)))
            elif law == "pareto":
                x = math.exp(-math.log(U_MIN) / self.shape + math.log(self.scale))
            elif law == "halfnormal":
                x = -self.sd * float(ndtri(0.5 * U_MIN))
            elif law == "exponential":
                x = -self.mean * math.log(U_MIN)
            else:
                x = self.high if law == "uniform" else self.mean
        except OverflowError:
            return math.inf
        return self.minimum + x

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

    def quantile_fn(self) -> Callable[[float], float]:
        """:meth:`quantile` as a closure over this law's constants: the same operations in
        the same order (so the same floats), without the per-call dispatch on ``law`` — the
        event source calls it once per job."""
        lo, law, log = self.minimum, self.law, math.log
        if law == "exponential":
            nm = -self.mean

            def exponential(u: float) -> float:
                return lo + nm * log(u)

            return exponential
        if law == "uniform":
            a, w = self.low, self.high - self.low

            def uniform(u: float) -> float:
                return lo + (a + w * u)

            return uniform
        if law == "pareto":
            sc, e = self.scale, -1.0 / self.shape

            def pareto(u: float) -> float:
                return lo + sc * u ** e

            return pareto
        return self.quantile

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
