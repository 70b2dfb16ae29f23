"""Fuzzing the boundary: bad and edge-case configurations, crafted dataset and checkpoint files.

Configurations start from a valid one and get 1–3 mutations (wrong types, signs, NaN/inf, huge
values, unknown keys and tables, wrong enum names, lists of the wrong length) or one of the
incompatible combinations below. The target builds everything a run builds before it allocates
(SimConfig.from_dict, the arrival spec, algorithm, oracle and model, the memory estimate).
Required: a known-bad value is rejected with a ValueError whose message names the field (its
dotted path or its last component); an edge-case value is accepted (and round-trips through
TOML) or rejected the same way; nothing raises OverflowError/MemoryError/TypeError/KeyError.

Example counts (CI profile: derandomized, bounded): 700 single/multi bad mutations + 250 edge
cases + 32 combinations + 60 crafted dataset files + 60 crafted checkpoints + 60 crafted
trace.csv files = 1,162 examples.
"""

from __future__ import annotations

import copy
import math
import tomllib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persafl_np.config import SimConfig
from persafl_np.memory import check_fits

VALID = {
    "seed": 1, "T": 20, "eval_every": 5, "max_arrivals": 1000,
    "model": {"name": "softmax", "l2": 0.01},
    "oracle": {"name": "maml", "alpha": 0.01, "hessian": "exact", "noise_sigma": 0.0},
    "data": {"name": "fedprox_synthetic", "n_clients": 4, "n_features": 3, "n_classes": 3,
             "alpha": 0.5, "beta": 0.5, "test_fraction": 0.2},
    "algorithm": {"name": "persafl", "Q": 2, "eta": 0.05, "batch_size": 4, "beta": 1.0},
    "arrivals": {"mode": "event",
                 "job_time": {"law": "lognormal", "mu": 0.0, "sigma": 1.0, "minimum": 0.0},
                 "download": {"law": "constant", "mean": 0.0},
                 "upload": {"law": "exponential", "mean": 0.5},
                 "speeds": [1.0, 2.0, 1.0, 0.5], "concurrency": 3, "dropout": 0.1,
                 "staleness": "drop", "tau_max": 3, "availability_period": 10.0,
                 "availability_on": 0.8},
}
# Other components of a table, with every key of theirs set: a mutated key that belongs to one
# of them switches its table to it first (a key that does not apply is an error of its own).
VARIANTS: dict[str, list[dict]] = {
    "model": [{"name": "mlp", "l2": 0.01, "n_hidden": 4, "activation": "tanh"},
              {"name": "logistic", "l2": 0.0, "nonconvex": 0.0}],
    "oracle": [{"name": "moreau", "lam": 15.0, "inner_steps": 5, "inner_tol": 1e-6,
                "smoothness": 2.0, "noise_sigma": 0.0}],
    "data": [{"name": "shifted_least_squares", "n_clients": 4, "n_features": 3,
              "n_samples": 10, "spread": 1.0},
             {"name": "robust_family", "n_clients": 4, "n_features": 3, "n_samples": 10,
              "shift": 1.0, "noise": 0.1},
             {"name": "digits", "n_clients": 4, "partition": "label_skew",
              "classes_per_client": 2, "test_fraction": 0.2}],
    "algorithm": [{"name": "fedasync", "Q": 2, "eta": 0.05, "alpha": 0.5, "weight": "hinge",
                   "weight_a": 0.5, "weight_b": 0.0, "weight_normalize_at": 1.0,
                   "prox": 0.0},
                  {"name": "fedbuff", "Q": 2, "eta": 0.05, "K": 2, "eta_g": 1.0},
                  {"name": "fedavg", "Q": 2, "eta": 0.05, "clients_per_round": 2}],
    "arrivals": [{"mode": "theorem", "tau": 2, "policy": "uniform"}],
}
#: a regression data set needs a regression model
_REGRESSION = {"shifted_least_squares": "least_squares", "robust_family": "robust"}


def _switch(d: dict, path: str) -> bool:
    """Switch the table of ``path`` to a component that has its key; False when the key's
    component conflicts with one chosen before (or the key is unknown to every component)."""
    table, _, key = path.partition(".")
    if table not in VARIANTS or not isinstance(d.get(table), dict) or \
            key.split(".")[0] in d[table]:
        return True
    for v in VARIANTS[table]:
        if key.split(".")[0] in v:
            if d[table].get("_fixed") or (table == "model" and d["data"].get("_fixed")):
                return False
            d[table] = {**copy.deepcopy(v), "_fixed": True}
            if table == "data" and v["name"] in _REGRESSION:
                if d["model"].get("_fixed"):
                    return False
                d["model"] = {"name": _REGRESSION[v["name"]], "_fixed": True}
            if table == "model" and v["name"] == "logistic":  # binary labels
                d["data"]["n_classes"] = 2
            if table == "algorithm" and v["name"] == "fedavg":
                d["arrivals"] = {"mode": "event", "_fixed": True}
            return True
    return not d[table].get("_fixed")


def _clean(d: dict) -> dict:
    for t in VARIANTS:
        if isinstance(d.get(t), dict):
            d[t].pop("_fixed", None)
    return d


# field path -> (kind, lo, hi, strict-lo): the rule each field's validator enforces
INT, FLOAT, ENUM = "int", "float", "enum"
FIELDS: dict[str, tuple] = {
    "seed": (INT, 0), "T": (INT, 1), "eval_every": (INT, 1), "max_arrivals": (INT, 1),
    "model.name": (ENUM,), "model.l2": (FLOAT, 0.0), "model.n_hidden": (INT, 1),
    "model.activation": (ENUM,), "model.nonconvex": (FLOAT, 0.0),
    "oracle.name": (ENUM,), "oracle.alpha": (FLOAT, 0.0), "oracle.hessian": (ENUM,),
    "oracle.lam": (FLOAT, 0.0, None, True), "oracle.inner_steps": (INT, 1),
    "oracle.inner_tol": (FLOAT, 0.0, None, True), "oracle.smoothness": (FLOAT, 0.0, None, True),
    "oracle.noise_sigma": (FLOAT, 0.0),
    "data.name": (ENUM,), "data.n_clients": (INT, 1), "data.n_features": (INT, 1),
    "data.n_samples": (INT, 1), "data.n_classes": (INT, 2), "data.alpha": (FLOAT, 0.0),
    "data.beta": (FLOAT, 0.0), "data.spread": (FLOAT, 0.0), "data.shift": (FLOAT, 0.0),
    "data.noise": (FLOAT, 0.0), "data.partition": (ENUM,), "data.classes_per_client": (INT, 1),
    "data.test_fraction": (FLOAT, 0.0, 1.0, True),
    "algorithm.name": (ENUM,), "algorithm.Q": (INT, 1),
    "algorithm.eta": (FLOAT, 0.0, None, True), "algorithm.batch_size": (INT, 1),
    "algorithm.beta": (FLOAT, 0.0, None, True), "algorithm.alpha": (FLOAT, 0.0, 1.0, True),
    "algorithm.K": (INT, 1), "algorithm.eta_g": (FLOAT, 0.0, None, True),
    "algorithm.clients_per_round": (INT, 1), "algorithm.weight": (ENUM,),
    "algorithm.weight_a": (FLOAT, 0.0, None, True), "algorithm.weight_b": (FLOAT, 0.0),
    "algorithm.weight_normalize_at": (FLOAT, 0.0), "algorithm.prox": (FLOAT, 0.0),
    "arrivals.mode": (ENUM,), "arrivals.tau": (INT, 0), "arrivals.concurrency": (INT, 1),
    "arrivals.dropout": (FLOAT, 0.0, 1.0), "arrivals.staleness": (ENUM,),
    "arrivals.tau_max": (INT, 0), "arrivals.availability_period": (FLOAT, 0.0, None, True),
    "arrivals.availability_on": (FLOAT, 0.0, 1.0, True),
    "arrivals.job_time.law": (ENUM,), "arrivals.job_time.mu": (FLOAT, None),
    "arrivals.job_time.sigma": (FLOAT, 0.0, None, True),
    "arrivals.job_time.minimum": (FLOAT, 0.0), "arrivals.upload.mean": (FLOAT, 0.0, None, True),
}
# (no None: for optional fields None means "omitted", which is valid)
JUNK = st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
HUGE = st.sampled_from([10**20, -(10**20), 10**400, -(10**400), 10**5000, 2**63, -(2**63) - 1])


def _bad_values(path: str) -> st.SearchStrategy:
    kind, *rule = FIELDS[path]
    if kind == ENUM:
        return st.one_of(st.sampled_from(["", "PERSAFL", "none ", "Exponential", "x" * 50]),
                         st.integers(), st.booleans(), JUNK)
    lo = rule[0]
    hi = rule[1] if len(rule) > 1 else None
    strict = len(rule) > 2 and rule[2]
    nonfinite = st.sampled_from([math.nan, math.inf, -math.inf])
    if kind == INT:
        out = [st.booleans(), st.floats(allow_nan=True), JUNK, st.sampled_from([1.0, 2.5]),
               st.integers(max_value=lo - 1), st.sampled_from([-(10**400), -(10**5000)])]
        return st.one_of(*out)
    out = [st.booleans(), JUNK, nonfinite, st.sampled_from([10**400, -(10**400), 10**5000])]
    if lo is not None:
        below = st.floats(max_value=lo, allow_nan=False, allow_infinity=False,
                          exclude_max=not strict)
        out.append(below.filter(lambda x: x < lo or (strict and x == lo)))
    if hi is not None:
        out.append(st.floats(min_value=hi, exclude_min=True, allow_nan=False,
                             allow_infinity=False))
    return st.one_of(*out)


def _edge_values(path: str) -> st.SearchStrategy:
    kind, *rule = FIELDS[path]
    if kind == ENUM:
        return st.sampled_from(["", "x"])
    lo = rule[0]
    hi = rule[1] if len(rule) > 1 else None
    if kind == INT:
        return st.one_of(st.sampled_from([lo, lo + 1, 2**31, 2**62, 10**18, 10**30]),
                         HUGE, st.integers(min_value=lo, max_value=lo + 10),
                         st.just(np.int64(lo + 1)))
    vals = [0.0, 1e-300, 5e-324, 1e300, 1.7976931348623157e308, 1, 2**60, 10**30]
    if hi is not None:
        vals += [hi, float(np.nextafter(hi, -1))]
    if lo is not None:
        vals += [lo, float(np.nextafter(lo, 1))]
    return st.one_of(st.sampled_from(vals), HUGE)


def _set(d: dict, path: str, value) -> None:
    *head, leaf = path.split(".")
    for k in head:
        d = d.setdefault(k, {})
    d[leaf] = value


def _names(path: str) -> tuple[str, ...]:
    return (path, path.split(".")[-1])


def build_all(d: dict) -> SimConfig:
    """Everything a run builds from a config before it allocates data."""
    cfg = SimConfig.from_dict(copy.deepcopy(d))
    n = cfg.data.n_clients
    check_fits(cfg, available=10**13)
    cfg.arrivals.build(n)
    cfg.algorithm.build()
    cfg.oracle.build()
    classes = cfg.data.get("n_classes") if cfg.data.name == "fedprox_synthetic" else None
    cfg.model.build(10 if cfg.data.name == "digits" else classes)
    return cfg


def _expect_named_rejection(d: dict, names: tuple[str, ...]) -> None:
    try:
        build_all(d)
    except ValueError as exc:
        msg = str(exc)
        assert any(nm in msg for nm in names), f"{msg!r} names none of {names}"
        return
    raise AssertionError(f"accepted an invalid config (bad: {names})")


def _valid(**tweaks) -> dict:
    d = copy.deepcopy(VALID)
    for k, v in tweaks.items():
        assert _switch(d, k), k
        _set(d, k, v)
    return _clean(d)


def test_base_config_is_valid():
    build_all(VALID)


@st.composite
def bad_configs(draw):
    d = copy.deepcopy(VALID)
    k = draw(st.integers(1, 3))
    paths = draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=k, max_size=k, unique=True))
    names: tuple[str, ...] = ()
    for p in paths:
        if not _switch(d, p):
            continue
        _set(d, p, draw(_bad_values(p)))
        names += _names(p)
    _clean(d)
    if not names:  # every drawn key conflicted with the first: mutate the first alone
        d = _valid()
        _set(d, paths[0], draw(_bad_values(paths[0])))
        names = _names(paths[0])
    if draw(st.booleans()):  # plus an unknown key somewhere
        table = draw(st.sampled_from(["", "model", "oracle", "data", "algorithm", "arrivals",
                                      "arrivals.job_time"]))
        if table == "arrivals.job_time" and d["arrivals"].get("mode") != "event":
            table = "arrivals"  # theorem mode has no job_time table
        key = draw(st.sampled_from(["foo", "Q ", "eta2", "extra_table", "name\n"]))
        _set(d, f"{table}.{key}" if table else key, draw(st.one_of(st.integers(), JUNK)))
        names += (key.strip(),)
    return d, names


@settings(max_examples=700)
@given(bad_configs())
def test_bad_configs_rejected_naming_a_field(case):
    d, names = case
    _expect_named_rejection(d, names)


@settings(max_examples=250)
@given(st.sampled_from(sorted(p for p in FIELDS if FIELDS[p][0] != ENUM)), st.data())
def test_edge_values_accepted_or_rejected_naming_the_field(path, data):
    value = data.draw(_edge_values(path))
    d = _valid(**{path: value})
    try:
        cfg = build_all(d)
    except ValueError as exc:
        assert any(nm in str(exc) for nm in _names(path)), str(exc)
        return
    # accepted: the resolved config round-trips through TOML exactly
    assert SimConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg


COMBINATIONS = [
    ({"algorithm.name": "perfedavg", "oracle": {"name": "plain"}}, "oracle.name"),
    ({"algorithm.name": "pfedme", "oracle.name": "maml"}, "oracle.name"),
    ({"algorithm.prox": 0.5}, "algorithm.prox"),
    ({"algorithm.name": "fedavg", "algorithm.clients_per_round": 9}, "clients_per_round must be"),
    ({"arrivals.speeds": [1.0, 2.0]}, "speeds"),
    ({"arrivals.speeds": []}, "speeds"),
    ({"arrivals.speeds": [1.0, 2.0, 1.0, 0.5, 1.0]}, "speeds"),
    ({"arrivals.speeds": [1.0, -2.0, 1.0, 0.5]}, "speeds"),
    ({"arrivals.speeds": [1.0, math.nan, 1.0, 0.5]}, "speeds"),
    ({"arrivals.speeds": "fast"}, "speeds"),
    ({"arrivals.speeds": [1.0, "x", 1.0, 0.5]}, "speeds"),
    ({"arrivals.mode": "theorem", "arrivals.policy": [0, 5]}, "policy"),
    ({"arrivals.mode": "theorem", "arrivals.policy": []}, "policy"),
    ({"arrivals.mode": "theorem", "arrivals.policy": [0, "1"]}, "policy"),
    ({"arrivals.mode": "theorem", "arrivals.policy": [[0]]}, "policy"),
    ({"arrivals.policy": "max "}, "policy"),
    ({"arrivals.staleness": "block", "arrivals.tau_max": 1}, "concurrency"),
    ({"arrivals.job_time": "exponential"}, "job_time"),
    ({"arrivals.job_time": {"law": "pareto", "shape": -1.0}}, "shape"),
    ({"arrivals.job_time": {"law": "uniform", "low": 2.0, "high": 1.0}}, "high"),
    ({"arrivals.job_time": {"law": "lognormal", "sigma": 1.0, "bogus": 2}}, "bogus"),
    ({"arrivals.job_time": {"law": "exponential", "mean": 0.0}}, "mean"),
    ({"arrivals.download": []}, "download"),
    ({"model.name": "softmax", "data": {"name": "shifted_least_squares", "n_clients": 4}},
     "model.name"),
    ({"model": {"name": "mlp"}, "data": {"name": "robust_family", "n_clients": 4}},
     "model.name"),
    ({"model": "softmax"}, "model"),
    ({"arrivals": []}, "arrivals"),
    ({"data": {"name": "digits", "bogus": 1}}, "bogus"),
    ({"extra": {"a": 1}}, "extra"),
    ({"algorithm.clients_per_round": 2, "arrivals.staleness": "drop", "arrivals.tau_max": 1},
     "staleness"),
    ({"algorithm.clients_per_round": 2, "arrivals.availability_period": 3.0}, "availability"),
    ({"algorithm.prox": 0.5}, "algorithm.prox applies to algorithm.name='fedasync' only"),
    ({"oracle.lam": 2.0}, "oracle.lam applies to oracle.name='moreau' only"),
    ({"arrivals.job_time": {"mean": 2.0}}, "arrivals.job_time.law is required"),
    ({"arrivals.job_time": {"law": "lognormal", "mu": 1000.0}}, "overflow"),
    ({"arrivals.job_time": {"law": "pareto", "shape": 0.001}}, "overflow"),
    ({"arrivals.job_time": {"law": "exponential", "mean": "2.5"}},
     "arrivals.job_time.mean must be a finite number"),
    ({"arrivals.job_time": {"law": "exponential", "mean": True}}, "arrivals.job_time.mean"),
    ({"arrivals.staleness": "block", "arrivals.tau_max": 2, "arrivals.concurrency": None},
     "concurrency"),
    ({"arrivals.job_time": {"law": "exponential", "shape": 2.0}},
     "arrivals.job_time.shape applies to arrivals.job_time.law='pareto' only"),
    ({"arrivals.staleness": "drop", "arrivals.tau_max": None}, "tau_max"),
]


@pytest.mark.parametrize("tweaks,name", COMBINATIONS)
def test_incompatible_combinations_rejected_naming_a_field(tweaks, name):
    d = copy.deepcopy(VALID)
    for k, v in tweaks.items():
        if v is None:
            *head, leaf = k.split(".")
            node = d
            for h in head:
                node = node[h]
            node.pop(leaf, None)
        elif k not in ("algorithm.prox", "oracle.lam"):  # these two: on purpose, no switch
            _switch(d, k)
            _set(d, k, v)
        else:
            _set(d, k, v)
    _expect_named_rejection(_clean(d), (name,))


# ------------------------------------------------------------------ crafted files
def _dataset_bytes(tmp_path_factory):
    from persafl_np.data import ClientData, FederatedDataset

    rng = np.random.default_rng(0)
    cl = [ClientData(rng.normal(size=(3, 2)), rng.integers(0, 3, 3), rng.normal(size=(1, 2)),
                     rng.integers(0, 3, 1)) for _ in range(2)]
    p = tmp_path_factory.mktemp("ds") / "d.npz"
    FederatedDataset(tuple(cl), 2, 3, "t").save(p)
    return p.read_bytes()


@st.composite
def damaged(draw, data: bytes):
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "zero"]))
        i = draw(st.integers(0, max(0, len(b) - 1)))
        if op == "flip" and b:
            b[i] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del b[i:]
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif b:
            b[i:i + 8] = bytes(min(8, len(b) - i))
    return bytes(b)


@pytest.fixture(scope="module")
def dataset_bytes(tmp_path_factory):
    return _dataset_bytes(tmp_path_factory)


@settings(max_examples=60)
@given(st.data())
def test_crafted_dataset_files_raise_only_valueerror(dataset_bytes, tmp_path_factory, data):
    from persafl_np.data import FederatedDataset

    body = data.draw(damaged(dataset_bytes))
    p = tmp_path_factory.mktemp("bad") / "bad.npz"
    p.write_bytes(body)
    try:
        FederatedDataset.load(p)
    except ValueError as exc:
        assert "bad.npz" in str(exc)


@pytest.fixture(scope="module")
def checkpoint_case(tmp_path_factory):
    from persafl_np.algorithms import Algorithm, persafl
    from persafl_np.models import LeastSquares
    from persafl_np.personalization import Plain
    from persafl_np.sim import EventDriven, Problem, run

    rng = np.random.default_rng(0)
    prob = Problem.build(LeastSquares(), Plain(),
                         [(rng.normal(size=(4, 2)), rng.normal(size=4)) for _ in range(3)])
    alg = Algorithm(persafl(0.5), Q=1, eta=0.05, batch_size=2)
    kw = dict(T=20, seed=1, eval_every=5)
    full = run(prob, alg, EventDriven(dropout=0.1), **kw)
    d = tmp_path_factory.mktemp("ck")
    run(prob, alg, EventDriven(dropout=0.1), checkpoint_dir=d, checkpoint_every=4,
        stop_after=12, **kw)
    files = {p.name: p.read_bytes() for p in d.iterdir()}

    def resume(target):
        return run(prob, alg, EventDriven(dropout=0.1), checkpoint_dir=target,
                   checkpoint_every=4, resume=True, **kw)

    return files, full.digest(), resume


@settings(max_examples=60)
@given(st.data())
def test_crafted_checkpoints_are_refused_or_resume_exactly(checkpoint_case, tmp_path_factory,
                                                           data):
    files, digest, resume = checkpoint_case
    name = data.draw(st.sampled_from(sorted(files)))
    d = tmp_path_factory.mktemp("ckbad")
    for k, v in files.items():
        (d / k).write_bytes(v)
    (d / name).write_bytes(data.draw(damaged(files[name])))
    try:
        res = resume(d)
    except ValueError as exc:
        assert str(d) in str(exc)
        return
    assert res.digest() == digest  # an accepted change was a no-op (e.g. JSON whitespace)


@pytest.fixture(scope="module")
def trace_text(tmp_path_factory):
    from persafl_np.algorithms import Algorithm, persafl
    from persafl_np.models import LeastSquares
    from persafl_np.personalization import Plain
    from persafl_np.sim import EventDriven, Problem, run

    rng = np.random.default_rng(0)
    prob = Problem.build(LeastSquares(), Plain(),
                         [(rng.normal(size=(4, 2)), rng.normal(size=4)) for _ in range(3)])
    res = run(prob, Algorithm(persafl(0.5), Q=1, eta=0.05), EventDriven(dropout=0.1), T=15)
    d = tmp_path_factory.mktemp("tr")
    res.save(d)
    return (d / "trace.csv").read_bytes()


@settings(max_examples=60)
@given(st.data())
def test_crafted_trace_csv_raises_only_valueerror(trace_text, tmp_path_factory, data):
    from persafl_np.results import read_trace_csv

    p = tmp_path_factory.mktemp("trbad") / "trace.csv"
    p.write_bytes(data.draw(damaged(trace_text)))
    try:
        read_trace_csv(p, 3)
    except ValueError as exc:
        assert "trace.csv" in str(exc)
