"""Exact oracle plus controlled noise (theory/personalization.md eq. (NOISE-1)).

    g = g_base(y) + ξ,   ξ ~ N(0, (σ²/d) I_d),   so  E ξ = 0  and  E‖ξ‖² = σ² exactly,

where g_base is the wrapped oracle's *full-batch* step (``base.step(..., batch_size=None)``:
∇f_i for Plain, eq. (MAML-2) for MAML, λ(y − θ̃) with the configured inner solver and warm start
for the Moreau envelope). The mini-batch argument of :meth:`AdditiveNoise.step` is ignored: the
noise level σ replaces mini-batch sampling, which is what the theorem tests of
theory/async_theorem.md need ("exact oracles plus additive noise with E‖ξ‖² = σ²").
``value``/``grad``/``personalize``/``constants`` delegate to the base oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from persafl_np.backend import array_namespace, to_device_like
from persafl_np.models.base import Model
from persafl_np.parameters import Param, validate_fields
from persafl_np.personalization.base import Oracle, OracleStep, PersonalizedConstants

__all__ = ["AdditiveNoise"]


@dataclass(frozen=True)
class AdditiveNoise:
    """Wrap ``base`` so that each step returns its full-batch direction plus N(0, σ²/d I) noise.

    The noise is drawn on the host from ``rng.standard_normal(d)`` (one draw of d numbers per
    step; the base's full-batch step consumes no randomness), then moved to w's namespace.
    """

    base: Oracle
    sigma: float
    name: str = field(init=False)
    #: the cohort path adds ξ itself (one (Q, p) draw per job, law (SIM-BATCH))
    adds_noise = True

    params: ClassVar[tuple[Param, ...]] = (
        Param("sigma", "float", 0.0, "noise level: N(0, sigma^2/d I) added to every step",
              lo=0.0),
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        if not isinstance(self.base, Oracle):
            raise ValueError(
                f"base must be a personalization Oracle, got {type(self.base).__name__}"
            )
        object.__setattr__(self, "name", f"{self.base.name}+noise")

    def value(self, model: Model, w: Any, X: Any, y: Any) -> float:
        return self.base.value(model, w, X, y)

    def grad(self, model: Model, w: Any, X: Any, y: Any) -> Any:
        return self.base.grad(model, w, X, y)

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
        """eq. (NOISE-1); ``batch_size`` is ignored (see the module docstring)."""
        s = self.base.step(model, w, X, y, rng, None, warm)
        d = int(w.shape[0])
        xi = rng.standard_normal(d) * (self.sigma / math.sqrt(d))
        return OracleStep(
            g=s.g + array_namespace(w).astype(to_device_like(xi, w), w.dtype),
            n_grad=s.n_grad,
            n_hvp=s.n_hvp,
            n_inner=s.n_inner,
            inner_residual=s.inner_residual,
            warm=s.warm,
        )

    @property
    def exact_grad(self) -> bool:
        return bool(getattr(self.base, "exact_grad", True))

    def batches_per_step(self, batch_size: int | None) -> int:
        """No batch is drawn: the base oracle runs on the full batch (module docstring)."""
        return 0

    def step_many(self, kern: Any, Y: Any, batches: list, warm: Any = None) -> Any:
        """The base oracle's full-batch cohort step; the caller adds ξ (eq. (NOISE-1)) with the
        draws of :func:`~persafl_np.personalization.cohort.local_update_many`."""
        return self.base.step_many(kern, Y, batches, warm)

    def value_grad_many(self, kern: Any, W: Any, X: Any, y: Any, mask: Any,
                        L: Any = None) -> tuple[Any, Any]:
        return self.base.value_grad_many(kern, W, X, y, mask, L)

    def personalize_many(self, kern: Any, W: Any, X: Any, y: Any, mask: Any,
                         L: Any = None) -> Any:
        return self.base.personalize_many(kern, W, X, y, mask, L)

    def stochastic_grad(
        self, model: Model, w: Any, X: Any, y: Any, rng: np.random.Generator, batch_size: int | None
    ) -> Any:
        return self.step(model, w, X, y, rng, batch_size).g

    def personalize(self, model: Model, w: Any, X: Any, y: Any) -> Any:
        return self.base.personalize(model, w, X, y)

    def constants(self, L: float, rho: float, B: float, **kwargs: Any) -> PersonalizedConstants:
        """The base oracle's constants (full-batch: no mini-batch bias); σ_F² = σ² (NOISE-1)."""
        kwargs.pop("batch_size", None)
        kwargs.pop("sigma", None)
        c = self.base.constants(L, rho, B, **kwargs)
        return PersonalizedConstants(
            L_F=c.L_F, bias=c.bias, note=f"{c.note}; additive noise E||xi||^2 = {self.sigma:g}"
        )

    # -- per-variant bound constants (bounds/constants.py asks the oracle, never its class) --
    def bound_variant(self) -> str:
        return self.base.bound_variant()

    def personalized_hessian(self, A: Any) -> Any:
        return self.base.personalized_hessian(A)

    def gradient_bound_factor(self, L: float) -> float:
        return self.base.gradient_bound_factor(L)

    def noise_sigma2(self) -> float:
        """σ² of (C2): E‖ξ‖² = σ² exactly (NOISE-1)."""
        return float(self.sigma) ** 2

    def smoothness_l0_l1(self, L: float, rho: float) -> tuple[float, float]:
        return self.base.smoothness_l0_l1(L, rho)
