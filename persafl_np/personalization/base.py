"""The personalization-oracle protocol: what a client descends (F_i) and how.

Notation (theory/personalization.md, theory/brief_results.md §A, (B1)): the client's own loss
is f_i (a :class:`~persafl_np.models.base.Model` on the client's data), its
personalized objective is F_i (Plain: F_i = f_i; MAML: F_i(w) = f_i(w − α∇f_i(w));
Moreau envelope: F_i(w) = min_θ f_i(θ) + (λ/2)‖θ − w‖²), and the oracle returns
g_i(y) ≈ ∇F_i(y).

Oracles are immutable. State that must survive between calls (the Moreau
envelope's warm start) is passed in and out explicitly as ``warm`` so that a
simulator can checkpoint it and runs stay bit-reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from persafl_np.models.base import Model
from persafl_np.personalization.sampling import as_sampler

__all__ = ["Oracle", "OracleStep", "PersonalizedConstants", "sample_batch"]


class OracleStep(NamedTuple):
    """One oracle call: the direction ``g`` and what it cost.

    A NamedTuple rather than a frozen dataclass: it is built on every local step, and its
    construction was ~10% of a simulator event with a trivial oracle (benchmarks/bench_engine.py).

    Attributes
    ----------
    g: the estimate of ∇F_i(y) (same namespace/shape as y).
    n_grad: model gradient evaluations used.
    n_hvp: model Hessian-vector products used.
    n_inner: inner-solver iterations (Moreau envelope), else 0.
    inner_residual: achieved ‖∇h(θ̃)‖ of the inner problem (Moreau), else 0.0.
    warm: state to pass to the next call for the same client (Moreau: θ̃), else None.
    """

    g: Any
    n_grad: int
    n_hvp: int = 0
    n_inner: int = 0
    inner_residual: float = 0.0
    warm: Any = None


@dataclass(frozen=True)
class PersonalizedConstants:
    """Constants of F_i derived from the model's (L, ρ, B) — theory/personalization.md.

    Attributes
    ----------
    L_F: gradient-Lipschitz constant of F_i (``math.inf`` when none is known).
    bias: bound on ‖E g − ∇F_i‖ of the stochastic oracle (0 for unbiased oracles).
    note: which formula/proposition produced L_F, for reports.
    """

    L_F: float
    bias: float = 0.0
    note: str = ""


@runtime_checkable
class Oracle(Protocol):
    """A personalization framework (Plain/AL, MAML, Moreau envelope)."""

    name: str

    def value(self, model: Model, w: Any, X: Any, y: Any) -> float:
        """F_i(w) on (X, y)."""
        ...

    def grad(self, model: Model, w: Any, X: Any, y: Any) -> Any:
        """Full-batch ∇F_i(w)."""
        ...

    def stochastic_grad(
        self, model: Model, w: Any, X: Any, y: Any, rng: np.random.Generator, batch_size: int | None
    ) -> Any:
        """The stochastic estimator of theory/brief_results.md (B1) (``batch_size=None``: full
        batch)."""
        ...

    def step(
        self,
        model: Model,
        w: Any,
        X: Any,
        y: Any,
        rng: np.random.Generator,
        batch_size: int | None,
        warm: Any = None,
    ) -> OracleStep:
        """``stochastic_grad`` plus its cost counters and warm-start state."""
        ...

    def personalize(self, model: Model, w: Any, X: Any, y: Any) -> Any:
        """The client's personalized model θ_i given the global model w."""
        ...

    def batches_per_step(self, batch_size: int | None) -> int:
        """How many mini-batches one local step draws (law (SIM-BATCH)); 0: none."""
        ...

    def step_many(self, kern: Any, Y: Any, batches: list, warm: Any = None) -> Any:
        """``step`` for a cohort: Y (C, p), ``batches`` a list of stacked (X, y, mask) in draw
        order (a :class:`~persafl_np.personalization.cohort.FullBatches` for a full-batch
        step); returns a :class:`~persafl_np.personalization.cohort.ManyStep`. Row c must
        equal ``step`` of client c on the same batches (checked by ``check_oracle``)."""
        ...

    def constants(self, L: float, rho: float, B: float) -> PersonalizedConstants:
        """L_F (and oracle bias) of F_i from the model's L, ρ, B."""
        ...


def sample_batch(rng: Any, m: int, batch_size: int | None) -> np.ndarray | slice:
    """Indices of the next mini-batch of ``batch_size`` distinct samples out of ``m``.

    Law (SIM-BATCH) of theory/simulator.md §1.1 (:mod:`.sampling`): ``rng`` a
    :class:`~persafl_np.personalization.sampling.BatchSampler` continues its pass; a bare
    ``numpy.random.Generator`` starts a fresh pass (the first b entries of a new permutation).
    ``batch_size=None`` (or ≥ m) returns ``slice(None)``: the full batch, no randomness
    consumed, so full-batch runs are deterministic regardless of the stream.
    """
    if batch_size is None or batch_size >= m:
        return slice(None)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
    return as_sampler(rng).take(m, batch_size, 1)[0]
