"""SimConfig: validation naming the field, TOML round trip, simulate()."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from persafl_np import RunResult, SimConfig, load_config, simulate

SMALL = {"T": 12, "eval_every": 4, "data": {"n_clients": 4, "n_features": 3, "n_samples": 10}}


@pytest.mark.parametrize("d,msg", [
    ({"T": 0}, "T must be an integer >= 1"),
    ({"seed": -1}, "seed must"),
    ({"seed": 1.5}, "seed must"),
    ({"model": {"name": "svm"}}, "model.name must be one of"),
    ({"algorithm": {"Q": 0}}, "algorithm.Q must be an integer >= 1"),
    ({"algorithm": {"eta": -0.1}}, "algorithm.eta must be > 0"),
    ({"algorithm": {"name": "fedasync", "alpha": 1.5}}, "algorithm.alpha must be <= 1"),
    ({"algorithm": {"batch_size": 0}}, "algorithm.batch_size"),
    ({"algorithm": {"name": "fedbuff", "weight": "exp"}}, "algorithm.weight must be one of"),
    ({"arrivals": {"mode": "realtime"}}, "arrivals.mode"),
    ({"arrivals": {"mode": "event", "dropout": 1.0}}, "arrivals.dropout must be < 1"),
    ({"arrivals": {"mode": "event", "staleness": "drop"}}, "arrivals.tau_max"),
    ({"arrivals": {"tau": 2, "policy": [3]}}, "arrivals.policy list entry"),
    ({"arrivals": {"mode": "event", "job_time": {"law": "exponential", "mean": 0}}},
     "arrivals.job_time.mean"),
    ({"arrivals": {"mode": "event", "job_time": {"law": "weibull"}}}, "arrivals.job_time.law"),
    ({"oracle": {"name": "moreau", "lam": 0}}, "oracle.lam must be > 0"),
    ({"oracle": {"name": "moreau", "smoothness": 0.0}}, "oracle.smoothness must be > 0"),
    ({"data": {"n_clients": 0}}, "data.n_clients"),
    ({"colour": "red"}, "unknown key colour"),
    ({"arrivals": {"mode": "event", "job_time": {"law": "constant", "speed": 2}}},
     "unknown key arrivals.job_time.speed"),
    ({"algorithm": {"name": "fedavg", "clients_per_round": 20}}, "clients_per_round must be <="),
    ({"algorithm": {"name": "pfedme"}}, "needs oracle.name='moreau'"),
    ({"algorithm": {"name": "perfedavg"}, "oracle": {"name": "moreau"}},
     "needs oracle.name='maml'"),
])
def test_bad_config_names_the_field(d, msg):
    with pytest.raises(ValueError, match=msg):
        SimConfig.from_dict(d)


def test_toml_round_trip(tmp_path):
    cfg = SimConfig.from_dict({
        "seed": 3, "T": 7,
        "data": {"n_clients": 2},
        "arrivals": {"mode": "event", "speeds": [1.0, 2.5],
                     "staleness": "block", "tau_max": 4,
                     "job_time": {"law": "pareto", "shape": 2.5}},
        "algorithm": {"name": "fedbuff", "K": 3, "batch_size": 5, "weight_normalize_at": 1.5},
    })
    text = cfg.to_toml()
    assert SimConfig.from_dict(tomllib.loads(text)) == cfg
    p = tmp_path / "c.toml"
    p.write_text(text)
    assert load_config(p) == cfg


def test_invalid_toml_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("T = = 3\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(p)


@pytest.mark.parametrize(
    "alg", ["persafl", "fedasync", "fedbuff", "fedavg", "perfedavg", "pfedme", "local"]
)
def test_simulate_every_algorithm(alg):
    d = dict(SMALL)
    d["algorithm"] = {"name": alg, "Q": 2, **({"K": 2} if alg == "fedbuff" else {}),
                      **({"clients_per_round": 2} if alg in ("fedavg", "perfedavg", "pfedme")
                         else {})}
    if alg == "pfedme":
        d["oracle"] = {"name": "moreau", "lam": 20.0, "inner_steps": 5}
    if alg == "perfedavg":
        d["oracle"] = {"name": "maml", "alpha": 0.01}
    d["arrivals"] = {"mode": "event"}
    res = simulate(SimConfig.from_dict(d))
    assert isinstance(res, RunResult) and res.ok
    assert res.counters["steps"] == 12
    assert res.history.loss[-1] < res.history.loss[0]


def test_simulate_replay_and_saved_config_reruns(tmp_path):
    cfg = SimConfig.from_dict({**SMALL, "arrivals": {"mode": "event", "staleness": "drop",
                                                     "tau_max": 1}})
    a = simulate(cfg)
    a.save(tmp_path)
    again = simulate(load_config(tmp_path / "config.toml"))
    assert again.digest() == a.digest()
    assert simulate(cfg, arrivals=a).digest() == a.digest()
    assert simulate(cfg, arrivals=str(tmp_path / "trace.csv")).digest() == a.digest()


def test_simulate_classifier_records_accuracies():
    cfg = SimConfig.from_dict({
        "T": 10, "eval_every": 5, "model": {"name": "softmax"},
        "oracle": {"name": "maml", "alpha": 0.01},
        "data": {"name": "fedprox_synthetic", "n_clients": 5, "n_features": 5, "n_classes": 3},
        "algorithm": {"Q": 2, "eta": 0.05},
    })
    res = simulate(cfg)
    h = res.history
    for k in ("acc_global", "acc_pers_mean", "acc_pers_min"):
        v = getattr(h, k)
        assert np.all((v >= 0) & (v <= 1)), k
    assert np.all(h.acc_pers_min <= h.acc_pers_mean)


def test_moreau_smoothness_reaches_the_oracle_and_round_trips():
    cfg = SimConfig.from_dict({**SMALL, "oracle": {"name": "moreau", "lam": 30.0,
                                                   "smoothness": 4.0}})
    assert cfg.oracle.build().smoothness == 4.0
    assert SimConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg


def test_n_features_default_follows_the_generator():
    """fedprox_synthetic is a 60-feature recipe; leaving n_features out must not silently
    give 10 features (an easier-to-underfit problem with a very different optimum)."""
    fed = SimConfig.from_dict({"model": {"name": "softmax"}, "data": {"name": "fedprox_synthetic"}})
    assert fed.data.n_features == 60
    assert SimConfig().data.n_features == 10
    assert "n_features = 60" in fed.to_toml()
    assert SimConfig.from_dict(tomllib.loads(fed.to_toml())) == fed
