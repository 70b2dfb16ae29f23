"""Per-client test accuracy of local-only, global and personalized models (box + strip plot).

For client i with data (X_i, y_i) the served model is θ_i: the client's own model for local-only
training; w for a global model (AL / FedAvg); θ_i = w − α∇f_i(w) for MAML; θ_i = θ̂_i(w), the prox
point argmin_θ f_i(θ) + (λ/2)‖θ − w‖², for ME (theory/brief_results.md (B1)).
:func:`client_accuracies`
computes these from a finished run's config and parameters (it rebuilds the data from the config,
never runs the engine).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from persafl_np.plots.output import new_figure, save_figure
from persafl_np.plots.style import series

__all__ = ["PERSONALIZATION_COLUMNS", "client_accuracies", "plot_personalization"]

PERSONALIZATION_COLUMNS = ("label", "client", "accuracy")


def client_accuracies(config: Any, params: Any, client_params: Any = None,
                      personalize: bool = True, data: Any = None) -> np.ndarray:
    """Test accuracy of each client's served model θ_i (see the module docstring).

    config: the run's :class:`~persafl_np.config.SimConfig`; params: w; client_params: the
    local-only clients' models (shape (n, p)), used instead of w when given; personalize: apply
    the config's oracle ``personalize`` (False: evaluate w itself, the global model); data: the
    data set (default: rebuilt from ``config.data`` and ``config.seed``).
    """
    data = data if data is not None else config.data.build(config.seed)
    n_classes = getattr(data, "n_classes", None)
    model = config.model.build(n_classes)
    oracle = config.oracle.build()
    w = np.asarray(params, dtype=np.float64)
    own = None if client_params is None else np.asarray(client_params, dtype=np.float64)
    if own is not None and own.shape != (data.n_clients, w.size):
        raise ValueError(f"client_params must have shape ({data.n_clients}, {w.size}), "
                         f"got {own.shape}")
    acc = np.full(data.n_clients, np.nan)
    for i, c in enumerate(data.clients):
        if c.X_test.shape[0] == 0:
            continue
        if own is not None:
            theta = own[i]
        elif personalize:
            theta = oracle.personalize(model, w, c.X_train, c.y_train)
        else:
            theta = w
        acc[i] = float(np.mean(np.asarray(model.predict(theta, c.X_test)) == c.y_test))
    return acc


def plot_personalization(accuracies: Mapping[str, Any],
                         path: str | os.PathLike[str] | None = None, *,
                         title: str | None = None) -> Any:
    """Box plot with the individual clients overlaid, one column per model kind.

    accuracies: label → per-client test accuracies (1-D, NaN for clients without test data).
    """
    if not accuracies:
        raise ValueError("accuracies must contain at least one label")
    labels = [str(k) for k in accuracies]
    vals = []
    for k, v in accuracies.items():
        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"accuracies[{k!r}] must be a non-empty 1-D array")
        vals.append(a)
    fig, (ax,) = new_figure(width=1.6 + 1.5 * len(labels), height=4.2)
    finite = [a[np.isfinite(a)] for a in vals]
    ax.boxplot(finite, showfliers=False, widths=0.5,
               medianprops={"color": "k"})
    rng = np.random.default_rng(0)  # fixed jitter: the picture must not change between reruns
    for k, a in enumerate(finite):
        x = k + 1 + rng.uniform(-0.15, 0.15, size=a.size)
        st = series(k)
        ax.plot(x, a, st["marker"], ms=3.5, color=st["color"], alpha=0.7, ls="none")
        ax.text(k + 1, 1.0, f"mean {a.mean():.3f}\n", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
    lo = min((float(a.min()) for a in finite if a.size), default=0.0)
    ax.set_ylim(max(0.0, lo - 0.05), 1.0 + 0.12 * (1.0 - max(0.0, lo - 0.05)) + 0.01)
    ax.set_xlabel("model served to the client")
    ax.set_ylabel("client test accuracy")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(title or "per-client test accuracy (one dot per client; box: quartiles, "
                 "whiskers: 1.5 IQR, line: median)", fontsize=9)
    rows = [[lab, i, float(x)] for lab, a in zip(labels, vals, strict=True)
            for i, x in enumerate(a)]
    save_figure(fig, path, PERSONALIZATION_COLUMNS, rows)
    return fig
