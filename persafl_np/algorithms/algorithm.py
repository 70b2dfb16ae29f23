"""An algorithm = a server rule + the client settings of its jobs (theory/brief_results.md (B2);
theory/personalization.md eq. (LOC-1))."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from persafl_np.algorithms.delay_adaptive import DelayAdaptive
from persafl_np.algorithms.reweight import ClientReweight
from persafl_np.algorithms.rules import ServerRule
from persafl_np.parameters import Param, validate_fields
from persafl_np.personalization.local import PROX

__all__ = ["Algorithm"]


@dataclass(frozen=True)
class Algorithm:
    """Server rule plus client job settings.

    rule: the server's (init, update) pair.
    Q: local steps per job (≥ 1); eta: client step η (> 0); batch_size: mini-batch b (None = full).
    synchronous: rounds of ``rule.K`` clients sampled without replacement, all pulling the same
        model; the round ends when its slowest client has arrived (FedAvg, Per-FedAvg, pFedMe).
    prox: ρ ≥ 0, the proximal weight of the local objective f_i(y) + (ρ/2)‖y − u‖² around the
        pulled model u (FedAsync, theory/brief_results.md (B4); eq. (LOC-PROX) of
        theory/personalization.md);
        0 = plain (LOC-1).
    reweight: scale client i's update by 1/(n p_i) (theory/arrival_bias.md (TA-5)); None = off.
    delay_adaptive: step 0 for updates with τ > threshold (theory/staleness_linear.md (TB-4));
        None = off. Both off (the default) leaves every run bit-identical.
    """

    rule: ServerRule
    Q: int = 1
    eta: float = 0.1
    batch_size: int | None = None
    synchronous: bool = False
    prox: float = 0.0
    reweight: ClientReweight | None = None
    delay_adaptive: DelayAdaptive | None = None

    params: ClassVar[tuple[Param, ...]] = (
        Param("Q", "int", 1, "local steps per job", lo=1),
        Param("eta", "float", 0.1, "client step eta", lo=0.0, lo_open=True),
        Param("batch_size", "int", None, "mini-batch size b (omit: full batch)", lo=1,
              optional=True),
        PROX,
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.reweight is not None and not isinstance(self.reweight, ClientReweight):
            raise ValueError(f"reweight must be a ClientReweight or None, got {self.reweight!r}")
        da = self.delay_adaptive
        if da is not None and not isinstance(da, DelayAdaptive):
            raise ValueError(f"delay_adaptive must be a DelayAdaptive or None, got {da!r}")

    @property
    def step_scale(self) -> Callable[[Any, int, int], float] | None:
        """(counts, client, τ) → factor of this update's server step; None when no option is on."""
        rw, da = self.reweight, self.delay_adaptive
        if rw is None and da is None:
            return None

        def scale(counts: Any, i: int, tau: int) -> float:
            f = 1.0 if rw is None else rw.factor(counts, i)
            return f if da is None else f * da.factor(tau)

        return scale

    @property
    def local_only(self) -> bool:
        return self.rule.name == "local"
