"""PersA-FL (AL, τ = 0, full batches) on FedProx Synthetic(0.5, 0.5) vs F* from L-BFGS, d × n grid.

Usage::

    python experiments/fair_personalization/dimension_check.py   # about 1 min, one core

Prints the table of experiments/README.md, Investigation (B): for d ∈ {10, 60} features and
n ∈ {20, 100} clients, F(w⁰) → F(w^T) of a PersA-FL run (theorem mode τ = 0, Q = 5, η = 0.05,
full batches, T = 2000, seed 0) and the minimum F* of the same F = (1/n)Σ f_i
(theory/brief_results.md
§A) found by scipy's L-BFGS, with the client-mean test accuracy of both models.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from persafl_np.config import SimConfig, simulate


def config(n: int, d: int, eta: float = 0.05, seed: int = 0) -> SimConfig:
    return SimConfig.from_dict({
        "T": 2000, "eval_every": 2000, "seed": seed, "model": {"name": "softmax"},
        "oracle": {"name": "plain"},
        "data": {"name": "fedprox_synthetic", "n_clients": n, "n_features": d,
                 "n_classes": 10, "alpha": 0.5, "beta": 0.5},
        "algorithm": {"name": "persafl", "Q": 5, "eta": eta},
        "arrivals": {"mode": "theorem", "tau": 0}})


def f_star(cfg: SimConfig) -> tuple[float, float, float]:
    """(F*, ‖∇F(w*)‖², client-mean test accuracy at w*) by L-BFGS from 0."""
    data = cfg.data.build(cfg.seed)
    model = cfg.model.build(data.n_classes)
    cl = data.clients

    def fg(w: np.ndarray) -> tuple[float, np.ndarray]:
        return (float(np.mean([model.loss(w, c.X_train, c.y_train) for c in cl])),
                np.mean([model.grad(w, c.X_train, c.y_train) for c in cl], axis=0))

    r = minimize(fg, np.zeros(model.num_params(data.n_features)), jac=True,
                 method="L-BFGS-B", options={"maxiter": 3000})
    acc = np.mean([np.mean(model.predict(r.x, c.X_test) == c.y_test) for c in cl])
    return float(r.fun), float(r.jac @ r.jac), float(acc)


def main() -> None:
    print("| d | n | F(w⁰) → F(w^T) | F* (L-BFGS) | ‖∇F(w*)‖² | client-mean acc. of w^T | "
          "client-mean acc. at F* |")
    print("|---|---|---|---|---|---|---|")
    for d in (10, 60):
        for n in (20, 100):
            cfg = config(n, d)
            h = simulate(cfg).history.columns
            Fs, g2, acc = f_star(cfg)
            print(f"| {d} | {n} | {h['loss'][0]:.2f} → {h['loss'][-1]:.2f} | {Fs:.3f} | "
                  f"{g2:.1e} | {h['acc_pers_mean'][-1]:.3f} | {acc:.3f} |", flush=True)
    for eta in (0.01, 0.002):
        h = simulate(config(100, 10, eta)).history.columns
        print(f"d = 10, n = 100, eta = {eta}: F(w^T) = {h['loss'][-1]:.3f}, client-mean acc. "
              f"{h['acc_pers_mean'][-1]:.3f}")


if __name__ == "__main__":
    main()
