"""Test support for (TA), theory/arrival_bias.md: i.i.d.-p schedules and exact LS iterates.

* :func:`iid_schedule` — a :class:`~persafl_np.sim.Replay` whose clients are drawn i.i.d. from
  p (so C5_p holds given the past) and whose staleness is the restart rule's, capped at τ̄
  (so C4 holds with τ̄; the staleness depends on the client: ρ = 2). This is the setting
  (TA-1)/(TA-5) are proved for (theory/arrival_bias.md §1, setting S2).
* :func:`ls_iterates` — the server iterates w^0..w^T of a run on a shared-Hessian quadratic
  with an exact oracle (σ = 0), recomputed from its trace. The run's history only records
  ‖∇F(w^t)‖²; F_p needs w^t. The recomputation is checked against the history.
"""

from __future__ import annotations

import numpy as np

from persafl_np.sim import Replay


def iid_schedule(p, T: int, tau_cap: int, seed: int) -> Replay:
    """T arrivals, client i_t ~ p i.i.d., pulled version max(v_i, t − tau_cap).

    v_i is the version client i pulled under the restart rule (the step after its previous
    arrival, 0 before its first), so τ_t = min(t − v_{i_t}, tau_cap).
    """
    p = np.asarray(p, dtype=np.float64)
    rng = np.random.default_rng(np.random.SeedSequence([20261201, seed]))
    clients = rng.choice(p.size, size=T, p=p / p.sum())
    last = np.zeros(p.size, dtype=np.int64)
    pulled = []
    for t, i in enumerate(clients.tolist()):
        pulled.append(int(max(last[i], t - tau_cap)))
        last[i] = t + 1
    return Replay(
        time=tuple(float(t) for t in range(T)),
        step=tuple(range(T)),
        client=tuple(int(i) for i in clients.tolist()),
        pulled=tuple(pulled),
        accepted=(True,) * T,
    )


def ls_iterates(H, centers, w0, trace, Q: int, eta: float, beta: float, omega=None):
    """w^0..w^T for F_i(w) = ½(w − c_i)ᵀH(w − c_i), exact gradients, K = 1.

    omega: per-client server-step factors (the 1/(n p_i) reweighting), None = all 1.
    """
    H = np.asarray(H, dtype=np.float64)
    C = np.asarray(centers, dtype=np.float64)
    ws = [np.asarray(w0, dtype=np.float64)]
    for i, v, acc in zip(np.asarray(trace.client).tolist(),
                         np.asarray(trace.pulled_version).tolist(),
                         np.asarray(trace.accepted).tolist(), strict=True):
        if not acc:
            continue
        y = ws[v].copy()
        for _ in range(Q):
            y = y - eta * (H @ (y - C[i]))
        step = beta * (1.0 if omega is None else float(omega[i]))
        ws.append(ws[-1] - step * (ws[v] - y))
    return np.stack(ws)


def mean_sq_grad(H, target, ws, T: int) -> float:
    """(1/T) Σ_{t<T} ‖H(w^t − target)‖² (‖∇F_q(w^t)‖² with target = c_q = Σ q_i c_i)."""
    G = (np.asarray(ws[:T]) - np.asarray(target)[None, :]) @ np.asarray(H).T
    return float(np.mean(np.sum(G * G, axis=1)))
