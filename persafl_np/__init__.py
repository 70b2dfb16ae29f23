"""persafl_np: personalized asynchronous federated learning in pure NumPy.

See README.md for the package map; the mathematics the code cites lives in ``theory/``.
Entry points: :func:`simulate` (a :class:`SimConfig` → :class:`RunResult`) and the lower-level
:func:`persafl_np.sim.run` on objects.

The top-level names are imported lazily, so ``import persafl_np.models`` loads the models
alone and does not pull in the simulator (the layers import only downward).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "RunResult": "persafl_np.results",
    "SimConfig": "persafl_np.config",
    "load_config": "persafl_np.config",
    "simulate": "persafl_np.config",
}

__all__ = ["RunResult", "SimConfig", "__version__", "load_config", "simulate"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'persafl_np' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
