"""Hand-written per-client objectives f_i (see :mod:`persafl_np.models.base`).

Every model's derivatives and constants (L, ρ, B) are proven in ``theory/models.md``. Every
model also evaluates a cohort of clients at once (``loss_many``/``grad_many``/``hvp_many``/
``predict_many``, contract in :mod:`persafl_np.models.cohort`, theory/models.md §CO).
"""

from persafl_np.models.base import MAX_DENSE_HESSIAN, Model
from persafl_np.models.least_squares import LeastSquares
from persafl_np.models.logistic import LogisticRegression
from persafl_np.models.mlp import MLP
from persafl_np.models.robust import RobustRegression
from persafl_np.models.softmax import SoftmaxRegression

__all__ = [
    "MAX_DENSE_HESSIAN",
    "MLP",
    "LeastSquares",
    "LogisticRegression",
    "Model",
    "RobustRegression",
    "SoftmaxRegression",
]
