"""Small run configurations (TOML text) shared by the command-line tests."""

#: 4 clients, 30 server steps, event-driven with lognormal job times and drop staleness control
#: (a run of well under a second; ``eval_every = 10`` gives four history rows).
SMALL_EVENT = """seed = 1
T = 30
eval_every = 10
[data]
n_clients = 4
n_features = 3
n_samples = 10
[algorithm]
name = "persafl"
Q = 2
eta = 0.05
batch_size = 4
[arrivals]
mode = "event"
staleness = "drop"
tau_max = 2
[arrivals.job_time]
law = "lognormal"
sigma = 1.0
"""
