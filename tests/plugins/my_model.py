"""A user's own model and oracle, imported by path from a config (issue 11 item 3).

``MyModel`` declares its parameters (so a config validates them by name: here a ridge weight
capped at 10); ``UndeclaredModel`` declares none (its table's extra keys go to the
constructor as they are); ``BrokenGradient`` has a wrong gradient, which the run-start check
(persafl_np.checks.check_model) must catch; ``MyPlain`` is an oracle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from persafl_np.models import LeastSquares
from persafl_np.parameters import Param
from persafl_np.personalization import Plain


@dataclass(frozen=True)
class MyModel(LeastSquares):
    """Least squares with a ridge weight in [0, 10]."""

    params: ClassVar[tuple[Param, ...]] = (
        Param("l2", "float", 0.0, "ridge weight", lo=0.0, hi=10.0),
    )


class UndeclaredModel(LeastSquares):
    """Least squares without declarations of its own (``l2`` passed through)."""

    params: ClassVar[tuple[Param, ...]] = ()


@dataclass(frozen=True)
class BrokenGradient(LeastSquares):
    """Least squares whose gradient is off by a factor 2 (caught by check_model)."""

    params: ClassVar[tuple[Param, ...]] = ()

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        return 2.0 * np.asarray(super().grad(w, X, y))


@dataclass(frozen=True)
class MyPlain(Plain):
    """The plain oracle under another name."""

    params: ClassVar[tuple[Param, ...]] = ()
