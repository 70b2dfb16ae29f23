"""One declaration per parameter (issue 11 items 1 and 3): the validator's messages, keys that
do not apply, per-component sub-tables, config-time cross-field checks, every constructor
option settable from TOML, your own data (.npz) and model (import path), and a fuzz test:
a config that passes validation runs (tiny data) without a ValueError at run start."""

from __future__ import annotations

import math
import pickle
import tomllib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persafl_np.config import TABLES, SimConfig, load_config, simulate
from persafl_np.parameters import Param, applies, check
from persafl_np.sim.timing import MAX_DRAW, U_MIN, JobTime

SMALL = {"T": 4, "eval_every": 2, "data": {"n_clients": 3, "n_features": 2, "n_samples": 6}}
EVENT = {"mode": "event"}


# ------------------------------------------------------------------ the validator
@pytest.mark.parametrize("value", ["2.5", True, False, None, math.nan, math.inf, 10**400, [1.0]])
def test_numbers_refuse_strings_bools_and_nonfinite(value):
    p = Param("mean", "float", 1.0, lo=0.0, lo_open=True)
    with pytest.raises(ValueError, match=r"^arrivals\.job_time\.mean must be a finite number > 0"):
        check(p, value, "arrivals.job_time.mean")


def test_messages_name_the_dotted_key_and_the_range():
    with pytest.raises(ValueError, match=r"arrivals\.job_time\.mean must be a finite number "
                                         r">= 0, got '2\.5'"):
        SimConfig.from_dict({"arrivals": {**EVENT, "job_time": {"law": "constant",
                                                                "mean": "2.5"}}})
    with pytest.raises(ValueError, match=r"algorithm\.Q must be an integer >= 1 \(and < 2\^63\), "
                                         r"got True"):
        SimConfig.from_dict({"algorithm": {"Q": True}})
    with pytest.raises(ValueError, match=r"oracle\.hessian must be one of 'exact', "
                                         r"'hessian_free', 'first_order', got 'full'"):
        SimConfig.from_dict({"oracle": {"name": "maml", "hessian": "full"}})


# ------------------------------------------------------------------ keys that do not apply
@pytest.mark.parametrize("d,msg", [
    ({"oracle": {"name": "maml", "lam": 15.0}}, r"oracle\.lam applies to oracle\.name='moreau'"),
    ({"algorithm": {"name": "persafl", "K": 3}}, r"algorithm\.K applies to algorithm\.name="
                                                 r"'fedbuff' only, not name='persafl'"),
    ({"arrivals": {"tau": 2, "speeds": [1.0, 2.0, 3.0]}},
     r"arrivals\.speeds applies to arrivals\.mode='event' only, not mode='theorem'"),
    ({"arrivals": {**EVENT, "job_time": {"law": "exponential", "shape": 2.0}}},
     r"arrivals\.job_time\.shape applies to arrivals\.job_time\.law='pareto'"),
    ({"arrivals": {**EVENT, "tau_max": 3}}, r"arrivals\.tau_max does not apply .*staleness"),
    ({"oracle": {"name": "maml", "hf_delta": 1e-4}}, r"oracle\.hf_delta does not apply"),
    ({"algorithm": {"name": "fedbuff", "weight_b": 1.0}}, r"algorithm\.weight_b does not apply"),
    ({"arrivals": {**EVENT, "job_time": {"mean": 2.0}}}, r"arrivals\.job_time\.law is required"),
])
def test_a_key_that_does_not_apply_is_an_error(d, msg):
    with pytest.raises(ValueError, match=msg):
        SimConfig.from_dict(d)


def test_the_saved_config_lists_only_the_keys_that_apply():
    cfg = SimConfig.from_dict({"oracle": {"name": "maml"}, "arrivals": EVENT})
    doc = tomllib.loads(cfg.to_toml())
    assert set(doc["oracle"]) == {"name", "alpha", "hessian", "noise_sigma"}
    assert set(doc["algorithm"]) == {"name", "Q", "eta", "beta"}
    assert set(doc["arrivals"]["job_time"]) == {"law", "mean", "minimum"}
    assert "tau" not in doc["arrivals"] and "tau_max" not in doc["arrivals"]
    theorem = tomllib.loads(SimConfig().to_toml())["arrivals"]
    assert set(theorem) == {"mode", "tau", "policy"}


def test_component_subtables_for_a_sweep_over_components():
    base = {"oracle": {"maml": {"alpha": 0.1}, "moreau": {"lam": 3.0, "inner_steps": 4}}}
    for name, expect in (("plain", {}), ("maml", {"alpha": 0.1}),
                         ("moreau", {"lam": 3.0, "inner_steps": 4})):
        o = SimConfig.from_dict({"oracle": {**base["oracle"], "name": name}}).oracle
        assert {k: o.get(k) for k in expect} == expect
        assert o.get("lam") is None or name == "moreau"
    flat = SimConfig.from_dict({"oracle": {**base["oracle"], "name": "maml", "alpha": 0.3}})
    assert flat.oracle.alpha == 0.3  # a flat key (a sweep's grid value) wins


# ------------------------------------------------------------------ settable options
def test_every_constructor_option_reaches_the_component():
    o = SimConfig.from_dict({"oracle": {"name": "moreau", "lam": 20.0, "inner": "nesterov",
                                        "warm_start": False, "inner_steps": 7}}).oracle.build()
    assert (o.inner, o.warm_start, o.inner_steps, o.lam) == ("nesterov", False, 7, 20.0)
    m = SimConfig.from_dict({"oracle": {"name": "maml", "hessian": "hessian_free",
                                        "hf_delta": 1e-4}}).oracle.build()
    assert (m.hessian, m.hf_delta) == ("hessian_free", 1e-4)
    a = SimConfig.from_dict({"algorithm": {"name": "fedasync", "weight": "hinge",
                                           "weight_a": 2.0, "weight_b": 3.0, "prox": 0.5,
                                           "reweight": "online", "reweight_prior": 4.0}})
    alg = a.algorithm.build()
    assert alg.prox == 0.5 and alg.reweight.prior == 4.0
    assert alg.rule.params[1][1].kind == "hinge" and alg.rule.params[1][1].b == 3.0
    d = SimConfig.from_dict({"model": {"name": "softmax"},
                             "data": {"name": "digits", "partition": "dirichlet",
                                      "dirichlet_alpha": 2.0, "n_clients": 3}})
    assert d.data.dirichlet_alpha == 2.0


def test_config_is_frozen_hashable_and_round_trips(tmp_path):
    cfg = SimConfig.from_dict({**SMALL, "oracle": {"name": "moreau", "inner": "nesterov"},
                               "algorithm": {"name": "fedbuff", "K": 2, "weight": "polynomial"},
                               "arrivals": {**EVENT, "job_time": {"law": "pareto",
                                                                  "shape": 1.5}}})
    again = SimConfig.from_dict(tomllib.loads(cfg.to_toml()))
    assert again == cfg and hash(again) == hash(cfg)
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    with pytest.raises(AttributeError):
        cfg.oracle.lam = 3.0  # type: ignore[misc]
    assert {cfg, again} == {cfg}


# ------------------------------------------------------------------ config-time checks
def test_cross_field_checks_are_made_when_the_config_is_read():
    with pytest.raises(ValueError, match=r"arrivals\.staleness='block' needs "
                                         r"arrivals\.concurrency <= arrivals\.tau_max \+ 1"):
        SimConfig.from_dict({"data": {"n_clients": 10},
                             "arrivals": {**EVENT, "staleness": "block", "tau_max": 2}})
    with pytest.raises(ValueError, match=r"arrivals\.speeds must have data\.n_clients=3"):
        SimConfig.from_dict({**SMALL, "arrivals": {**EVENT, "speeds": [1.0, 2.0]}})
    with pytest.raises(ValueError, match=r"model\.name='softmax' needs a classification"):
        SimConfig.from_dict({"model": {"name": "softmax"}})


@pytest.mark.parametrize("law", [{"law": "lognormal", "mu": 1000.0},
                                 {"law": "pareto", "shape": 0.001},
                                 {"law": "lognormal", "mu": 0.0, "sigma": 30.0},
                                 {"law": "exponential", "mean": 1e99}])
def test_overflow_prone_laws_are_refused(law):
    with pytest.raises(ValueError, match="overflow"):
        SimConfig.from_dict({"arrivals": {**EVENT, "job_time": law}})


@pytest.mark.parametrize("law", ["exponential", "halfnormal", "lognormal", "pareto"])
def test_largest_draw_is_the_quantile_at_the_extreme_uniforms(law):
    jt = JobTime(law, mean=2.0, sd=3.0, mu=1.0, sigma=2.0, shape=0.5, scale=2.0, minimum=0.5)
    # the counter uniforms' extremes below 1 (streams.counter_uniform)
    us = [U_MIN, 3 * U_MIN, 0.5, 1.0 - 2.0**-52, 1.0 - 2.0**-51]
    top = max(jt.quantile(u) for u in us)
    assert top <= jt.largest() <= top * (1.0 + 1e-9 if law in ("exponential", "pareto")
                                         else math.exp(0.5 * 2.0))
    # just inside the safe range still draws finite durations at both extremes
    if law == "pareto":
        edge = JobTime("pareto", shape=-math.log(U_MIN) / math.log(MAX_DRAW) * 1.0001)
        assert edge.largest() <= MAX_DRAW and math.isfinite(edge.quantile(U_MIN))


# ------------------------------------------------------------------ your own data and model
def _npz(tmp_path):
    from persafl_np.data import shifted_least_squares

    p = tmp_path / "mine.npz"
    shifted_least_squares(3, 2, 6, 0).dataset.save(p)
    (tmp_path / "jobs.csv").write_text("client,start,end\n0,0,1\n1,0,2\n2,0,0.5\n")
    cfg = tmp_path / "conf" / "c.toml"
    cfg.parent.mkdir()
    cfg.write_text('T = 4\n[data]\nname = "npz"\npath = "../mine.npz"\n'
                   '[arrivals]\nmode = "event"\njob_trace = "../jobs.csv"\n')
    return p, cfg


def test_npz_data_and_job_trace_resolve_against_the_config_file(tmp_path, monkeypatch):
    p, cfg_path = _npz(tmp_path)
    monkeypatch.chdir(tmp_path / "conf")  # not the folder the paths are relative to ...
    monkeypatch.chdir("/")  # ... nor any other
    cfg = load_config(cfg_path)
    assert cfg.data.path == str(p.resolve()) and len(cfg.data.sha256) == 64
    assert cfg.data.n_clients == 3 and cfg.arrivals.job_trace == str(tmp_path / "jobs.csv")
    res = simulate(cfg)
    assert res.ok and res.counters["steps"] == 4
    saved = tomllib.loads(cfg.to_toml())
    assert saved["data"] == {"name": "npz", "path": str(p.resolve()), "sha256": cfg.data.sha256}
    assert SimConfig.from_dict(saved) == cfg
    p.write_bytes(p.read_bytes() + b"\0")  # the file changes after the config was written
    with pytest.raises(ValueError, match="has SHA-256 .* the config records"):
        simulate(cfg)
    with pytest.raises(ValueError, match=r"data\.path: .*the file changed"):
        SimConfig.from_dict(saved)


def test_missing_npz_or_trace_is_a_config_error(tmp_path):
    with pytest.raises(ValueError, match=r"data\.path: data file .*cannot read"):
        SimConfig.from_dict({"data": {"name": "npz", "path": str(tmp_path / "no.npz")}})
    with pytest.raises(ValueError, match=r"arrivals\.job_trace .*cannot read"):
        SimConfig.from_dict({"arrivals": {**EVENT, "job_trace": str(tmp_path / "no.csv")}})
    with pytest.raises(ValueError, match=r"data\.path is required for name=.npz. \(a file path"):
        SimConfig.from_dict({"data": {"name": "npz"}})


PLUGIN = "tests.plugins.my_model"


def test_model_and_oracle_by_import_path():
    cfg = SimConfig.from_dict({**SMALL, "model": {"name": f"{PLUGIN}:MyModel", "l2": 0.5},
                               "oracle": {"name": f"{PLUGIN}:MyPlain"}})
    assert cfg.model.build(None).l2 == 0.5 and simulate(cfg).ok
    assert SimConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg
    with pytest.raises(ValueError, match=r"model\.l2 must be <= 10"):  # its own declarations
        SimConfig.from_dict({"model": {"name": f"{PLUGIN}:MyModel", "l2": 50.0}})
    with pytest.raises(ValueError, match=r"unknown key model\.scale"):
        SimConfig.from_dict({"model": {"name": f"{PLUGIN}:MyModel", "scale": 2.0}})
    undeclared = SimConfig.from_dict({**SMALL, "model": {"name": f"{PLUGIN}:UndeclaredModel",
                                                         "l2": 0.25}})
    assert undeclared.model.build(None).l2 == 0.25
    with pytest.raises(ValueError, match=r"model\.name: cannot import 'tests\.plugins\.nope:X'"):
        SimConfig.from_dict({"model": {"name": "tests.plugins.nope:X"}})


def test_an_imported_model_is_checked_when_the_run_starts():
    broken = {**SMALL, "model": {"name": f"{PLUGIN}:BrokenGradient"}}
    with pytest.raises(ValueError, match=r"fails persafl_np\.checks\.check_model .*failed: "
                                         r"grad.*model\.check = false"):
        simulate(SimConfig.from_dict(broken))
    skipped = {**broken, "model": {**broken["model"], "check": False}}
    assert simulate(SimConfig.from_dict(skipped)).status in ("ok", "diverged")


# ------------------------------------------------------------------ fuzz: valid => runs
_TINY = {"n_clients": (1, 4), "n_features": (1, 3), "n_samples": (1, 6), "n_classes": (2, 3),
         "min_samples": (1, 4), "n_hidden": (1, 3), "inner_steps": (1, 3), "T": (1, 3),
         "eval_every": (1, 3), "max_arrivals": (1, 20), "cohort_size": (1, 4), "K": (1, 3),
         "clients_per_round": (1, 3), "tau": (0, 3), "tau_max": (0, 4), "concurrency": (1, 4),
         "classes_per_client": (1, 3), "n_test": (0, 3), "delay_adaptive": (0, 3)}


#: float ranges that keep a run short (tiny windows or heavy dropout stall it for 10^5 events)
_TINY_FLOAT = {"availability_period": (0.5, 5.0), "availability_on": (0.3, 1.0),
               "dropout": (0.0, 0.5), "mean": (0.01, 2.0), "sd": (0.01, 2.0),
               "sigma": (0.01, 2.0), "low": (0.0, 1.0), "high": (1.0, 2.0)}


def _value(p: Param, draw) -> object:
    if p.choices:
        return draw(st.sampled_from(p.choices))
    if p.kind == "bool":
        return draw(st.booleans())
    if p.kind == "int":
        lo, hi = _TINY.get(p.name, (int(p.lo or 0), int(p.lo or 0) + 3))
        return draw(st.integers(lo, hi if p.hi is None else min(hi, int(p.hi))))
    if p.kind == "float" and p.name in _TINY_FLOAT:
        return draw(st.floats(*_TINY_FLOAT[p.name], exclude_min=p.lo_open))
    if p.kind in ("float", "floats"):
        lo = 0.0 if p.lo is None else p.lo
        hi = lo + draw(st.sampled_from([1e-3, 1.0, 10.0])) if p.hi is None else p.hi
        x = st.floats(lo, hi, exclude_min=p.lo_open, exclude_max=p.hi_open, allow_nan=False)
        if p.kind == "float":
            return draw(x)
        return draw(st.lists(x, min_size=1, max_size=4))
    return None  # tables, paths, free values: left at their defaults here


@st.composite
def configs(draw) -> dict:
    d: dict = {k: v for p in SimConfig.params
               if draw(st.booleans()) and (v := _value(p, draw)) is not None
               for k in (p.name,)}
    d.pop("record_batches", None)
    for table, (sel, _default, comps) in TABLES.items():
        if table == "job_time":
            continue
        entries = comps()
        name = draw(st.sampled_from(sorted(entries)))
        t: dict = {sel: name}
        seen: dict = {}
        for p in entries[name].params:
            if not applies(p, seen):  # drawn only where it applies (else: an error of its own)
                continue
            seen[p.name] = p.default
            if draw(st.booleans()) and (v := _value(p, draw)) is not None:
                t[p.name] = seen[p.name] = v
        if table == "arrivals" and name == "event" and draw(st.booleans()):
            laws = TABLES["job_time"][2]()
            law = draw(st.sampled_from(sorted(laws)))
            t["job_time"] = {"law": law, **{p.name: v for p in laws[law].params
                                            if draw(st.booleans())
                                            and (v := _value(p, draw)) is not None}}
        d[table] = t
    if d["data"]["name"] == "npz":
        d["data"] = {"name": "shifted_least_squares"}
    # mostly compatible tables (the incompatible rest must be rejected, which is checked too)
    if draw(st.integers(0, 9)) > 0:
        regression = d["data"]["name"] in ("shifted_least_squares", "robust_family")
        if regression and d["model"]["name"] not in ("least_squares", "robust"):
            d["model"] = {"name": draw(st.sampled_from(["least_squares", "robust"]))}
        if not regression and d["model"]["name"] in ("least_squares", "robust", "logistic"):
            d["model"] = {"name": draw(st.sampled_from(["softmax", "mlp"]))}
        need = {"perfedavg": "maml", "pfedme": "moreau"}.get(d["algorithm"]["name"])
        if need and d["oracle"]["name"] != need:
            d["oracle"] = {"name": need}
        alg = d["algorithm"]
        if alg.get("reweight") == "shares":
            n = d["data"].get("n_clients", 3)
            alg["reweight_shares"] = [1.0 / n] * n
        arr = d["arrivals"]
        if arr.get("staleness", "none") != "none":
            arr.setdefault("tau_max", 3)
        if arr.get("speeds") is not None:
            arr["speeds"] = (arr["speeds"] * 4)[:d["data"].get("n_clients", 3)]
        if d["data"]["name"] == "digits":
            d["data"]["classes_per_client"] = 10
    d["data"].setdefault("n_clients", 3)
    for k in ("n_features", "n_samples"):
        if d["data"]["name"] in ("shifted_least_squares", "robust_family", "fedprox_synthetic"):
            d["data"].setdefault(k, 2)
    if d["data"]["name"] == "fedprox_synthetic":
        d["data"].pop("n_samples", None)
    d["T"] = min(d.get("T", 2), 3)
    d["max_arrivals"] = d.get("max_arrivals", 30)
    return d


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=list(HealthCheck))  # profile: 25 (CI), 50
@given(configs())
def test_a_config_that_passes_validation_runs(d):
    try:
        cfg = SimConfig.from_dict(d)
    except ValueError:
        return  # rejected at config time, as it should be if it cannot run
    try:
        with np.errstate(all="ignore"):
            res = simulate(cfg)  # must not raise: every knowable check was made above
    except ValueError as exc:
        # the one check that needs the data: lam > L of a nonconvex model when L is computed
        # from the (batch's) data, i.e. oracle.smoothness is not given
        assert cfg.oracle.name == "moreau" and cfg.oracle.smoothness is None, exc
        assert "for a non-convex model" in str(exc), exc
        return
    assert res.status in ("ok", "diverged", "stalled"), (res.status, res.message)
