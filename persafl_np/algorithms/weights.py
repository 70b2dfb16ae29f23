"""Staleness weights s(τ) (theory/brief_results.md (B3), (B4); theory/simulator.md §5).

    constant:    s(τ) = 1
    polynomial:  s(τ) = (1 + τ)^(−a),                         a > 0      (FedAsync; FedBuff a = 1/2)
    hinge:       s(τ) = 1 if τ ≤ b else 1/(a(τ − b) + 1),      a > 0, b ≥ 0 (FedAsync)
    normalized:  s̃(τ) = s(τ)/s(τ̄)  so that s̃(τ̄) = 1          (FLSim, τ̄ = mean staleness)

Each weight is a frozen dataclass whose ``__call__`` is a pure function of τ, so a config can
name it and a run can be re-created from the saved config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from persafl_np.parameters import Param, validate_fields

__all__ = ["WEIGHT_KINDS", "StalenessWeight", "constant", "hinge", "polynomial"]

WEIGHT_KINDS = ("constant", "polynomial", "hinge")


@dataclass(frozen=True)
class StalenessWeight:
    """s(τ) of one of :data:`WEIGHT_KINDS`; ``normalize_at`` = τ̄ applies FLSim's s(τ)/s(τ̄)."""

    kind: str = "constant"
    a: float = 0.5
    b: float = 0.0
    normalize_at: float | None = None

    params: ClassVar[tuple[Param, ...]] = (
        Param("kind", "str", "constant", "staleness weight s(tau)", choices=WEIGHT_KINDS),
        Param("a", "float", 0.5, "exponent (polynomial) or slope (hinge) a", lo=0.0,
              lo_open=True, when=("kind", ("polynomial", "hinge"))),
        Param("b", "float", 0.0, "hinge threshold b", lo=0.0, when=("kind", ("hinge",))),
        Param("normalize_at", "float", None, "FLSim normalization s(tau)/s(normalize_at)",
              lo=0.0, optional=True),
    )

    def __post_init__(self) -> None:
        validate_fields(self, "weight ")

    def raw(self, tau: float) -> float:
        """s(τ) before normalization."""
        if self.kind == "constant":
            return 1.0
        if self.kind == "polynomial":
            return (1.0 + tau) ** (-self.a)
        return 1.0 if tau <= self.b else 1.0 / (self.a * (tau - self.b) + 1.0)

    def __call__(self, tau: float) -> float:
        if tau < 0:
            raise ValueError(f"staleness tau must be >= 0, got {tau}")
        s = self.raw(tau)
        if self.normalize_at is not None:
            s /= self.raw(self.normalize_at)
        return s


def constant() -> StalenessWeight:
    """s ≡ 1."""
    return StalenessWeight("constant")


def polynomial(a: float = 0.5, normalize_at: float | None = None) -> StalenessWeight:
    """s(τ) = (1+τ)^(−a); FedBuff uses a = 1/2, FLSim normalizes at the mean staleness."""
    return StalenessWeight("polynomial", a=a, normalize_at=normalize_at)


def hinge(a: float, b: float) -> StalenessWeight:
    """FedAsync's hinge: 1 for τ ≤ b, then 1/(a(τ−b)+1)."""
    return StalenessWeight("hinge", a=a, b=b)
