# %% [markdown]
# # Asynchronous personalized federated learning in 45 minutes
#
# A lecture with runnable cells (persafl_np). This file is the source: a *percent-format*
# script (`# %%` starts a cell), so it runs top to bottom with plain Python
# (`python docs/lecture.py`, which the test suite does) and opens as a notebook in Jupyter
# or VS Code; `docs/lecture.ipynb` is generated from it by `python docs/make_notebook.py`.
#
# Plan (minutes): 1. sync vs async under stragglers (8) · 2. staleness τ = t − p (8) ·
# 3. bounded-staleness policies (6) · 4. arrival bias (6) · 5. MAML vs Moreau personalization
# (9) · 6. the bound against a run (8). Each part ends with an exercise; its solution is the
# cell after it (it checks itself with `assert`).
#
# Notation (theory/, the same everywhere): n clients i with losses f_i, personalized
# objectives F_i and F = (1/n) Σ_i F_i; server model w^t after t applied updates (versions);
# a job pulls w^p, runs Q local steps of size η and returns Δ; the server applies
# w^{t+1} = w^t − βΔ (theory/async_theorem.md (T0b)); its staleness is τ = t − p.

# %%
import numpy as np

from persafl_np import SimConfig, simulate


def config(**over):
    """A small problem: shifted least squares f_i(w) = ½(w − c_i)ᵀA(w − c_i), 10 clients, d = 5."""
    d = {"seed": 0, "T": 300, "eval_every": 10,
         "model": {"name": "least_squares"}, "oracle": {"name": "plain"},
         "data": {"name": "shifted_least_squares", "n_clients": 10, "n_features": 5,
                  "n_samples": 20},
         "algorithm": {"name": "persafl", "Q": 5, "eta": 0.02, "beta": 1.0},
         "arrivals": {"mode": "event", "job_time": {"law": "exponential", "mean": 1.0}}}
    for key, value in over.items():
        node = d
        *path, leaf = key.split("__")
        for p in path:
            node = node[p]
        node[leaf] = value
    return SimConfig.from_dict(d)


# %% [markdown]
# ## 1. Synchronous vs asynchronous rounds under stragglers
#
# A synchronous round (FedAvg) waits for all of its clients, so one straggler stalls everyone.
# With heavy-tailed (Pareto, shape 1.5) job times the slowest of 10 clients is *very* slow.
# Asynchronous PersA-FL applies every update the moment it arrives. Same work: 30 FedAvg
# rounds of 10 clients = 300 asynchronous arrivals.

# %%
pareto = {"law": "pareto", "shape": 1.5, "scale": 1.0}
sync = simulate(config(T=30, eval_every=1, algorithm__name="fedavg",
                       algorithm__clients_per_round=10, arrivals__job_time=pareto))
asyn = simulate(config(arrivals__job_time=pareto))


def time_to(res, level):
    """First virtual time at which F(w) <= level (inf if never)."""
    h = res.history
    hit = np.flatnonzero(h.loss <= level)
    return float(h.time[hit[0]]) if hit.size else float("inf")


level = 1.05 * min(sync.history.loss.min(), asyn.history.loss.min())
print(f"F(w) after equal work: sync {sync.history.loss[-1]:.4f}, async {asyn.history.loss[-1]:.4f}")
print(f"virtual time to reach F <= {level:.4f}: sync {time_to(sync, level):.1f}, "
      f"async {time_to(asyn, level):.1f}")
print(f"virtual time of the whole run: sync {sync.history.time[-1]:.1f}, "
      f"async {asyn.history.time[-1]:.1f}")

# %% [markdown]
# **Exercise 1.** Replace the Pareto law by constant job times (`{"law": "constant",
# "mean": 1.0}`): every client is equally fast and no one straggles. Which method finishes its
# 300 client jobs first now, and why is the gap so much smaller?

# %%
# Solution 1: with constant times a round lasts exactly 1, so 30 rounds take 30 time units;
# asynchronously, 10 clients in flight return 10 jobs per time unit: the same 30. Without
# stragglers synchrony costs nothing in time (and has no staleness).
const = {"law": "constant", "mean": 1.0}
s1 = simulate(config(T=30, eval_every=30, algorithm__name="fedavg",
                     algorithm__clients_per_round=10, arrivals__job_time=const))
a1 = simulate(config(eval_every=300, arrivals__job_time=const))
print(f"constant job times: sync {s1.history.time[-1]:.1f}, async {a1.history.time[-1]:.1f}")
assert abs(s1.history.time[-1] - a1.history.time[-1]) <= 1.0

# %% [markdown]
# ## 2. Staleness: why is this update 25 versions stale?
#
# A job pulls w^p and computes for a while; meanwhile other clients' updates arrive and the
# server version moves on. When the job returns at version t its update is τ = t − p versions
# old: exactly the number of updates applied while it was computing. (`persafl animate RUN_DIR
# --out run.gif` shows this moving; `docs/animate_2d.toml` is a 2-D run for the contour view.)

# %%
tr = asyn.trace
k = int(np.argmax(tr.staleness >= 25))  # the first arrival at least 25 versions stale
t, p, i = int(tr.step[k]), int(tr.pulled_version[k]), int(tr.client[k])
jobs = asyn.jobs
j = int(np.flatnonzero((jobs["client"] == i) & (jobs["end"] == tr.time[k]))[0])
start, end = float(jobs["start"][j]), float(jobs["end"][j])
between = int(np.sum((tr.time > start) & (tr.time < end) & tr.accepted))
print(f"arrival {k}: client {i} pulled w^{p} at time {start:.2f}, returned at {end:.2f} "
      f"when the server was at version {t}")
print(f"tau = t - p = {t} - {p} = {t - p}; updates applied while it computed: {between}")
print(f"staleness over the run: mean {tr.staleness.mean():.1f}, max {tr.staleness.max()}")

# %% [markdown]
# **Exercise 2.** With every client always in flight and equal speeds, the mean staleness is
# close to n − 1 (each of the other n − 1 clients returns about once per job). Check it for
# n = 10 with exponential job times, and predict the mean for n = 20.

# %%
# Solution 2
e10 = simulate(config(eval_every=300)).trace.staleness.mean()
e20 = simulate(config(eval_every=300, data__n_clients=20)).trace.staleness.mean()
print(f"mean staleness: n = 10: {e10:.1f}, n = 20: {e20:.1f}")
assert 6 < e10 < 12 and 15 < e20 < 24

# %% [markdown]
# ## 3. Bounded-staleness policies
#
# The theorem needs τ_t ≤ τ. Two ways to enforce it (theory/simulator.md §4): **drop** an
# update older than τ_max (its work is wasted), or **block**: hold a fresh arrival back until
# applying it cannot make an outstanding job exceed τ_max (it *guarantees* τ ≤ τ_max).

# %%
# block needs at most tau_max + 1 jobs in flight (jobs pulled at one version need as many
# versions to be applied), so the block run keeps 6 of the 10 clients busy at a time
for policy in ("none", "drop", "block"):
    extra = {} if policy == "none" else {"arrivals__staleness": policy, "arrivals__tau_max": 5}
    if policy == "block":
        extra["arrivals__concurrency"] = 6
    r = simulate(config(eval_every=300, arrivals__job_time=pareto, **extra))
    c = r.counters
    print(f"{policy:>5}: max staleness {c['max_staleness']:>3}, dropped {c['dropped']:>3}, "
          f"virtual time {c['time']:.1f}, F(w^T) {r.history.loss[-1]:.4f}")

# %% [markdown]
# **Exercise 3.** Under `drop` with τ_max = 5, what fraction of the client work is wasted?
# (Hint: `counters["dropped"]` and `counters["arrivals"]`.)

# %%
# Solution 3
r = simulate(config(eval_every=300, arrivals__job_time=pareto, arrivals__staleness="drop",
                    arrivals__tau_max=5))
waste = r.counters["dropped"] / r.counters["arrivals"]
print(f"wasted fraction of jobs: {waste:.2f}")
assert 0.0 < waste < 1.0

# %% [markdown]
# ## 4. Arrival bias
#
# Fast clients return more often, so their updates are a larger share p_i of what the server
# applies. The server then descends Σ_i p_i F_i, not F = (1/n)Σ_i F_i: ‖∇F‖² stalls at a floor
# while ‖Σ_i p_i ∇F_i‖² keeps falling (theory/assumptions.md: the theorem assumes uniform
# arrivals, p_i = 1/n).

# %%
speeds = [1.0 + k for k in range(10)]
bias = simulate(config(T=1000, eval_every=10, arrivals__speeds=speeds))
print("shares p_i:", np.round(bias.shares, 3))
print("proportional prediction v_i / sum v:", np.round(np.array(speeds) / sum(speeds), 3))
h = bias.history
late = slice(len(h) // 2, None)  # the second half of the run: past the transient
g_F, g_p = h.grad_norm2[late].mean(), h.weighted_grad_norm2[late].mean()
print(f"second half of the run: mean ||grad F||^2 = {g_F:.3g}, "
      f"mean ||sum p_i grad F_i||^2 = {g_p:.3g}")

# %% [markdown]
# **Exercise 4.** Bounding staleness (part 3) does not remove the bias: fast clients still
# arrive more often. What does? Try theorem mode
# (`arrivals={"mode": "theorem", "tau": 5}`: clients chosen
# uniformly) and compare ‖∇F‖².

# %%
# Solution 4: theorem mode picks clients uniformly, so p_i -> 1/n and the floor disappears.
fair = simulate(config(T=1000, eval_every=10, arrivals={"mode": "theorem", "tau": 5}))
g_fair = fair.history.grad_norm2[late].mean()
print(f"theorem mode: shares from {fair.shares.min():.3f} to {fair.shares.max():.3f}, "
      f"second-half mean ||grad F||^2 = {g_fair:.3g}")
assert g_fair < g_F

# %% [markdown]
# ## 5. MAML vs Moreau-envelope personalization
#
# Both give each client its own model θ_i from the shared w (theory/personalization.md):
# **MAML** F_i(w) = f_i(w − α∇f_i(w)) serves θ_i = w − α∇f_i(w), one gradient step;
# **Moreau envelope (ME)** F_i(w) = min_θ f_i(θ) + (λ/2)‖θ − w‖² serves the prox point
# θ̂_i(w). Small λ (or large α) means more personal. On the shifted quadratics the clients'
# optima c_i differ, so a personalized θ_i can do better than the shared w on client i.

# %%
from persafl_np.models import LeastSquares  # noqa: E402
from persafl_np.personalization import MAML, MoreauEnvelope, Plain  # noqa: E402

cfg = config()
data = cfg.data.build(cfg.seed)
model = LeastSquares()
w = simulate(cfg).params
for name, oracle in (("global w (AL)", Plain()), ("MAML alpha=0.1", MAML(0.1)),
                     ("ME lambda=1", MoreauEnvelope(1.0)), ("ME lambda=0.1", MoreauEnvelope(0.1))):
    loss = np.mean([model.loss(oracle.personalize(model, w, c.X_train, c.y_train),
                                c.X_test, c.y_test) for c in data.clients])
    print(f"{name:>15}: mean client test loss of the served model {loss:.4f}")

# %% [markdown]
# **Exercise 5.** Personalization helps only when the clients differ. Set the spread of the
# client optima to zero (`data__spread=0.0`): what is left of the gain of ME (λ = 0.1) over w?

# %%
# Solution 5: with identical clients the shared w is already right for everyone; the prox
# point can only fit noise, so the gain vanishes (or turns into a small loss).
same = config(data__spread=0.0)
d0 = same.data.build(same.seed)
w0 = simulate(same).params


def served(oracle):
    return np.mean([model.loss(oracle.personalize(model, w0, c.X_train, c.y_train),
                                c.X_test, c.y_test) for c in d0.clients])


gain = served(Plain()) - served(MoreauEnvelope(0.1))
print(f"gain of ME over w with identical clients: {gain:+.4f}")
assert gain < 0.05

# %% [markdown]
# ## 6. The bound against a run
#
# theory/async_theorem.md (T1) bounds the average stationarity (1/T)Σ_{t<T}‖∇F(w^t)‖² by
# explicit constants (L, σ², γ², Δ_F, τ, Q, η, β) when the steps satisfy (T2). The demo's
# bound instance has exact constants; compare the bound with four real runs.

# %%
from persafl_np.demo import bound_demo  # noqa: E402

curve, c = bound_demo()
for T, m, b in zip(curve.x, curve.measured.mean(axis=0), curve.bound, strict=True):
    print(f"T = {int(T):>4}: measured {m:.4f}  bound {b:.4f}  ratio {m / b:.3f}")
print(f"constants: L = {c.L:.3f}, sigma^2 = {c.sigma2:.3f}, gamma^2 = {c.gamma2:.3f}")

# %% [markdown]
# **Exercise 6.** The ratio is far below 1: the bound is valid but loose. Which term shrinks
# as T grows, and at what rate? (Look at the bound column: doubling T …)

# %%
# Solution 6: the optimisation term Δ_F/(aQT) falls like 1/T, so the bound roughly halves
# when T doubles until the T-independent noise and staleness terms dominate.
ratios = curve.bound[1:] / curve.bound[:-1]
print("bound(2T)/bound(T):", np.round(ratios, 3))
assert np.all(ratios < 0.75)
