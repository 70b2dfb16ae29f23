"""A user's own bound, checked by ``persafl falsify experiments/falsify/my_bound.toml``.

It claims (T1) with the leading constant 8 replaced by 1/2 (and the D4 rest): false, the
falsifier finds ratio ~2.1 > 1 within a few hundred evaluations.
"""

from persafl_np.bounds import BoundInputs, stationarity_bound


def bound(c: BoundInputs) -> float:
    b = stationarity_bound(c.L, c.sigma2, c.gamma2, c.delta_f, c.T, c.tau, c.Q, c.eta, c.beta,
                           c.K)
    return b.total - b.init + 0.5 * c.delta_f / (c.a * c.Q * c.T)
