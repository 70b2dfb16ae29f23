"""persafl_np: personalized asynchronous federated learning in pure NumPy.

See README.md for the package map; the mathematics the code cites lives in ``theory/``.
Entry points: :func:`simulate` (a :class:`SimConfig` → :class:`RunResult`) and the lower-level
:func:`persafl_np.sim.run` on objects.
"""

from persafl_np.config import SimConfig, load_config, simulate
from persafl_np.results import RunResult

__version__ = "0.1.0"

__all__ = ["RunResult", "SimConfig", "__version__", "load_config", "simulate"]
