"""Declarations of the data generators' shared parameters (persafl_np.parameters).

``check_int`` and ``check_nonneg`` are the package-wide checks (:mod:`persafl_np.arguments`),
re-exported for the data modules; :data:`TEST_FRACTION`, :data:`N_CLIENTS`,
:data:`N_FEATURES` and :data:`N_SAMPLES` are declared once here and used by every generator's
``params`` (and so by the ``[data]`` table of a config).
"""

from __future__ import annotations

from typing import Any

from persafl_np.arguments import check_int, check_nonneg
from persafl_np.parameters import Param, check

__all__ = ["N_CLIENTS", "N_FEATURES", "N_SAMPLES", "TEST_FRACTION", "check_int",
           "check_nonneg", "check_test_fraction"]

N_CLIENTS = Param("n_clients", "int", 10, "number of clients n", lo=1)
N_FEATURES = Param("n_features", "int", 10, "features d", lo=1)
N_SAMPLES = Param("n_samples", "int", 50, "training rows per client", lo=1)
TEST_FRACTION = Param("test_fraction", "float", 0.2, "share of each client's rows held out",
                      lo=0.0, hi=1.0, lo_open=True, hi_open=True)


def check_test_fraction(test_fraction: Any) -> float:
    """``test_fraction`` in the open interval (0, 1)."""
    return check(TEST_FRACTION, test_fraction)
