"""Hand-written per-client objectives f_i (see :mod:`persafl_np.models.base`)."""

from persafl_np.models.base import MAX_DENSE_HESSIAN, Model
from persafl_np.models.least_squares import LeastSquares

__all__ = ["MAX_DENSE_HESSIAN", "LeastSquares", "Model"]
