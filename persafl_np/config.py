"""Validated, frozen run configuration; TOML in and out (theory/simulator.md §7, (CFG-1)–(CFG-4)).

A :class:`SimConfig` has scalar fields ``seed, T, eval_every, max_arrivals, dtype, cohort_size,
record_batches`` and five tables: ``[model]``, ``[oracle]``, ``[data]``, ``[algorithm]``,
``[arrivals]`` (with sub-tables ``[arrivals.job_time]``, ``[arrivals.download]``,
``[arrivals.upload]``). Each table chooses a component by its selector key (``name``;
``mode`` for arrivals, ``law`` for a job-time law) and holds that component's parameters.

Nothing here declares a parameter: every table is built from the components' own declarations
(``params`` next to each constructor, checked by :mod:`persafl_np.parameters`), through the
table name → {component name → component} map :data:`TABLES`. So:

* every key is checked with a ValueError naming its full dotted key and the allowed range;
* a key that does not apply to the chosen component (``lam`` for MAML, ``K`` for persafl, a
  Pareto ``shape`` for an exponential law, ``speeds`` in theorem mode) is an error when set
  and absent from the resolved config;
* every check knowable before a run is made here: the component is constructed once (its own
  cross-field checks), and :meth:`SimConfig.__post_init__` checks what spans tables (block
  staleness vs concurrency, speeds and shares vs n_clients, synchronous-only options).

``to_toml()`` writes the resolved config (applicable keys only, defaults included), which
:func:`load_config` reads back to an equal object. TOML has no null: ``None`` is omitted.
:func:`describe` prints every table and key (``persafl config --list``; the README's table).

Example::

    seed = 0
    T = 200
    [model]
    name = "softmax"
    [oracle]
    name = "maml"
    alpha = 0.01
    [data]
    name = "fedprox_synthetic"
    n_clients = 20
    [algorithm]
    name = "persafl"
    Q = 5
    eta = 0.05
    [arrivals]
    mode = "event"
    [arrivals.job_time]
    law = "exponential"
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from persafl_np.parameters import Param, check, declarations, resolve, validate_fields
from persafl_np.sim.timing import JobTime

__all__ = [
    "ALGORITHMS",
    "TABLES",
    "AlgorithmConfig",
    "ArrivalsConfig",
    "DataConfig",
    "ModelConfig",
    "OracleConfig",
    "SimConfig",
    "check_imported",
    "describe",
    "load_config",
    "simulate",
]


@dataclass(frozen=True)
class Entry:
    """One component of a table: its declared ``params`` (resolved from TOML) and ``build``,
    which turns the resolved values into the component. ``doc``: one line for ``describe``."""

    params: tuple[Param, ...]
    build: Callable[..., Any]
    doc: str = ""


def _cls(cls: type, doc: str = "") -> Entry:
    return Entry(tuple(p for p in declarations(cls) if p.toml), cls, doc or
                 (cls.__doc__ or "").strip().splitlines()[0])


# -- the component map: table name -> {component name -> Entry} -------------------------------
def _models() -> dict[str, Entry]:
    from persafl_np import models as M

    return {"least_squares": _cls(M.LeastSquares), "logistic": _cls(M.LogisticRegression),
            "softmax": _cls(M.SoftmaxRegression), "robust": _cls(M.RobustRegression),
            "mlp": _cls(M.MLP)}


def _oracles() -> dict[str, Entry]:
    from persafl_np import personalization as P

    return {"plain": _cls(P.Plain, "full-batch gradient of f_i (no personalization)"),
            "maml": _cls(P.MAML), "moreau": _cls(P.MoreauEnvelope)}


def _noise_params() -> tuple[Param, ...]:
    from persafl_np.personalization import AdditiveNoise

    sigma = declarations(AdditiveNoise)[0]
    return (replace(sigma, name="noise_sigma", doc=sigma.doc + " (AdditiveNoise; 0 = off)"),)


def _datasets() -> dict[str, Entry]:
    from persafl_np import data as D
    from persafl_np.data.npz_file import load_npz

    def shifted(**kw: Any) -> Any:
        return D.shifted_least_squares(**kw).dataset

    return {
        "fedprox_synthetic": Entry(declarations(D.fedprox_synthetic), D.fedprox_synthetic,
                                   "FedProx Synthetic(alpha, beta) softmax clients"),
        "shifted_least_squares": Entry(declarations(D.shifted_least_squares), shifted,
                                       "least-squares clients with shifted optima"),
        "robust_family": Entry(declarations(D.robust_family), D.robust_family,
                               "robust-regression clients with shifted optima"),
        "digits": Entry(declarations(D.load_digits_federated), D.load_digits_federated,
                        "scikit-learn's digits, federated"),
        "npz": Entry(declarations(load_npz), load_npz,
                     "your own FederatedDataset .npz file (persafl_np.data.npz_file)"),
    }


#: Algorithm names: the rule, whether it is synchronous, staleness-weighted, proximal.
_ALGS: dict[str, tuple[str, bool, bool, bool, str]] = {
    "persafl": ("persafl", False, False, False, "PersA-FL: w <- w - beta*Delta (B2)"),
    "fedasync": ("fedasync", False, True, True, "FedAsync mixing (B4)"),
    "fedbuff": ("fedbuff", False, True, False, "FedBuff: buffer K updates (B3)"),
    "fedavg": ("sync_average", True, False, False, "synchronous rounds, plain clients"),
    "perfedavg": ("sync_average", True, False, False, "Per-FedAvg: rounds of MAML clients"),
    "pfedme": ("sync_average", True, False, False, "pFedMe: rounds of Moreau clients"),
    "local": ("local_only", False, False, False, "every client trains alone"),
}
ALGORITHMS = tuple(_ALGS)
#: Synchronous algorithms and the oracle they need.
_SYNC = tuple(k for k, v in _ALGS.items() if v[1])
_NEEDS_ORACLE = {"perfedavg": "maml", "pfedme": "moreau"}
#: Data sets of regression clients (no class count for a classifier).
_REGRESSION_DATA = ("shifted_least_squares", "robust_family")
#: The config's default client step (the first release's; ``Algorithm`` itself defaults to 0.1).
_CONFIG_ETA = 0.05


def _algorithm_params() -> tuple[tuple[Param, ...], tuple[Param, ...], tuple[Param, ...]]:
    """(client params of Algorithm, staleness-weight params, option params), all derived
    from the components' declarations."""
    from persafl_np.algorithms import Algorithm, ClientReweight, DelayAdaptive, StalenessWeight

    Q, eta, batch, _prox = declarations(Algorithm)
    client = (Q, replace(eta, default=_CONFIG_ETA), batch)
    ren = {"kind": "weight"}
    weight = tuple(replace(p, name=ren.get(p.name, "weight_" + p.name),
                           when=None if p.when is None else (ren[p.when[0]], p.when[1]))
                   for p in declarations(StalenessWeight))
    shares, prior = declarations(ClientReweight)
    (thr,) = declarations(DelayAdaptive)
    options = (
        Param("reweight", "str", None, "scale client i's step by 1/(n p_i) (TA-5): p given "
              "(shares) or estimated online", choices=("shares", "online"), optional=True),
        replace(shares, name="reweight_shares", when=("reweight", ("shares",))),
        replace(prior, name="reweight_prior", when=("reweight", ("online",))),
        replace(thr, name="delay_adaptive", default=None, optional=True,
                doc="tau-bar: step 0 when tau > tau-bar (TB-4); omit: off"),
    )
    return client, weight, options


def _algorithms() -> dict[str, Entry]:
    from persafl_np import algorithms as A
    from persafl_np.algorithms.algorithm import PROX

    client, weight, options = _algorithm_params()
    out = {}
    for name, (rule, sync, weighted, prox, doc) in _ALGS.items():
        factory = getattr(A, rule)
        ps = client + declarations(factory) + (weight if weighted else ()) + \
            ((PROX,) if prox else ()) + options
        out[name] = Entry(ps, _build_algorithm(name, factory, sync, weighted), doc)
    return out


def _build_algorithm(name: str, factory: Callable, sync: bool, weighted: bool) -> Callable:
    def build(**v: Any) -> Any:
        from persafl_np import algorithms as A

        names = {p.name for p in declarations(factory)}
        kw = {k: v[k] for k in names}
        if weighted:
            kw["weight"] = A.StalenessWeight(v["weight"], v.get("weight_a", 0.5),
                                             v.get("weight_b", 0.0), v["weight_normalize_at"])
        rw = v["reweight"]
        reweight = None if rw is None else (
            A.ClientReweight(v["reweight_shares"]) if rw == "shares"
            else A.ClientReweight(prior=v["reweight_prior"]))
        da = v["delay_adaptive"]
        return A.Algorithm(factory(**kw), Q=v["Q"], eta=v["eta"], batch_size=v["batch_size"],
                           synchronous=sync, prox=v.get("prox", 0.0), reweight=reweight,
                           delay_adaptive=None if da is None else A.DelayAdaptive(da))

    return build


def _arrivals() -> dict[str, Entry]:
    from persafl_np.sim.arrivals import EventDriven, TheoremMode

    trace = Param("job_trace", "path", None, "CSV of job times (client,start,end), relative "
                  "to the config file; replaces job_time", optional=True)

    def event(job_trace: str | None = None, **v: Any) -> Any:
        return EventDriven(**{**v, "job_time": job_trace if job_trace else v["job_time"]})

    return {"theorem": _cls(TheoremMode, "the analysis model (C5): no clock"),
            "event": Entry(declarations(EventDriven) + (trace,), event,
                           "virtual-clock arrivals: job-time laws, speeds, latencies")}


def _laws() -> dict[str, Entry]:
    from persafl_np.sim.timing import LAWS

    ps = tuple(p for p in declarations(JobTime) if p.name != "law")
    return {law: Entry(tuple(replace(p, when=None) for p in ps
                             if p.when is None or law in p.when[1]), JobTime,
                       f"law {law!r} (persafl_np.sim.timing)") for law in LAWS}


#: table name -> (selector key, default component, component map); plus the job-time law
#: sub-tables of [arrivals] (selector ``law``).
TABLES: dict[str, tuple[str, str, Callable[[], dict[str, Entry]]]] = {
    "model": ("name", "least_squares", _models),
    "oracle": ("name", "plain", _oracles),
    "data": ("name", "shifted_least_squares", _datasets),
    "algorithm": ("name", "persafl", _algorithms),
    "arrivals": ("mode", "theorem", _arrivals),
    "job_time": ("law", "exponential", _laws),
}


def _plugin(name: str, key: str) -> Entry:
    """A user component by import path ``"pkg.module:Class"`` (its own ``params`` if it
    declares them, else any extra keys, passed to the constructor)."""
    mod, _, attr = name.partition(":")
    try:
        obj = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"{key}: cannot import {name!r} ({type(exc).__name__}: {exc})") from None
    if not callable(obj):
        raise ValueError(f"{key}: {name!r} is not a class or factory")
    return Entry(tuple(p for p in declarations(obj) if p.toml), obj,
                 (getattr(obj, "__doc__", "") or "").strip().split("\n")[0])


_PLUGIN_TABLES = ("model", "oracle")
_CHECK = Param("check", "bool", True, "run persafl_np.checks on the imported component when "
               "the run starts (false: skip)")


class Table:
    """A resolved config table: the chosen component (``selector``) and its applicable
    parameters, defaults filled in. Frozen, hashable, comparable; attribute access
    (``config.algorithm.eta``) for the applicable keys, :meth:`get` for any."""

    table: ClassVar[str]
    __slots__ = ("_values", "_entry")

    def __init__(self, **given: Any) -> None:
        self._init(given, f"{self.table}.", None)

    def _init(self, given: Mapping[str, Any], prefix: str, base: Path | None) -> None:
        sel, default, comps = TABLES[self.table]
        name = given.get(sel, default)
        plugin = self.table in _PLUGIN_TABLES and isinstance(name, str) and ":" in name
        if plugin:
            entry = _plugin(name, prefix + sel)
        else:
            table = comps()
            check(Param(sel, "str", default, choices=tuple(table)), name, prefix + sel)
            entry = table[name]
        rest = {k: v for k, v in given.items() if k != sel}
        if not plugin:  # per-component sub-tables: [oracle.maml] alpha = ... (for sweeps)
            rest = _component_tables(rest, name, table, prefix)
        about = f"{sel}={name!r}"
        if not plugin:
            _check_applies(rest, entry, table, self._common(), prefix, about)
        common = self._common()
        cnames = tuple(p.name for p in common)
        values = resolve(common, {k: v for k, v in rest.items() if k in cnames}, prefix, about)
        rest = {k: v for k, v in rest.items() if k not in cnames}
        if plugin and not entry.params:  # undeclared: any keys, for its constructor
            values.update({k: v for k, v in rest.items() if k != "check"})
        else:
            values.update(resolve(entry.params, rest, prefix, about,
                                  skip=("check",) if plugin else ()))
        if plugin:
            values["check"] = check(_CHECK, rest.get("check", True), prefix + "check")
        for p in entry.params:
            if p.kind == "table" and p.name in values:
                values[p.name] = _law(values[p.name], f"{prefix}{p.name}.")
            if p.kind == "path" and values.get(p.name) is not None and base is not None:
                values[p.name] = str((base / values[p.name]).resolve())
        values = {sel: name, **values}
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_entry", entry)
        self._extra(prefix, base)
        try:
            self._probe()
        except ValueError as exc:
            raise ValueError(f"{prefix}{exc}") from None

    def _common(self) -> tuple[Param, ...]:
        """Keys of every component of this table, not passed to its constructor."""
        return ()

    def _extra(self, prefix: str, base: Path | None) -> None:
        """Table-specific checks (subclasses)."""

    def _probe(self) -> None:
        """Construct what can be constructed cheaply, so its own cross-field checks run now."""

    @classmethod
    def from_dict(cls, d: Any, prefix: str, base: Path | None = None) -> Table:
        if not isinstance(d, dict):
            raise ValueError(f"{prefix.rstrip('.')} must be a table, got {type(d).__name__}")
        obj = cls.__new__(cls)
        obj._init(d, prefix, base)
        return obj

    @property
    def entry(self) -> Entry:
        return self._entry

    def kwargs(self) -> dict[str, Any]:
        """The component's constructor arguments (selector and ``check`` left out)."""
        skip = (TABLES[self.table][0], "check", *(p.name for p in self._common()))
        return {k: v for k, v in self._values.items() if k not in skip}

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            sel = TABLES[self.table][0]
            raise AttributeError(f"{self.table}.{key} does not apply to "
                                 f"{sel}={self._values.get(sel)!r}") from None

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def __setattr__(self, key: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {key!r}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values == self._values  # type: ignore

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self._values.items())))

    def __reduce__(self) -> tuple:
        """Pickled as its resolved dict (for worker processes), rebuilt by validation."""
        return (_rebuild, (type(self), self.to_dict()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({inner})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self._values.items():
            if v is None:
                continue
            out[k] = _law_dict(v) if isinstance(v, JobTime) else v
        return out


def _rebuild(cls: type[Table], d: dict) -> Table:
    return cls.from_dict(d, f"{cls.table}.")


def _component_tables(given: dict[str, Any], name: str, table: dict[str, Entry],
                      prefix: str) -> dict[str, Any]:
    """Merge the sub-table named after the chosen component (``[oracle.moreau] lam = 15``)
    into the table and drop the other components' sub-tables: a sweep over ``oracle.name``
    can give each oracle its own parameters. A flat key wins over the sub-table's (a sweep's
    grid value over its base)."""
    out = {k: v for k, v in given.items() if not (k in table and isinstance(v, dict))}
    own = given.get(name)
    return {**own, **out} if isinstance(own, dict) else out


def _check_applies(given: Mapping[str, Any], entry: Entry, table: dict[str, Entry],
                   common: tuple[Param, ...], prefix: str, about: str) -> None:
    """A key of another component of this table: say so (not "unknown")."""
    own = {p.name for p in entry.params + common}
    for k in given:
        if k in own:
            continue
        users = [n for n, e in table.items() if any(p.name == k for p in e.params)]
        if users:
            sel = about.split("=")[0]
            which = f"={users[0]!r}" if len(users) == 1 else f" in {users}"
            raise ValueError(f"{prefix}{k} applies to {prefix}{sel}{which} only, not {about}; "
                             "remove it")


def _law(v: Any, prefix: str) -> JobTime:
    """A job-time law sub-table (``law`` required) or a JobTime, checked with full keys."""
    if isinstance(v, JobTime):
        return v
    if not isinstance(v, dict):
        raise ValueError(f"{prefix.rstrip('.')} must be a table with a 'law' key, got "
                         f"{type(v).__name__}")
    if "law" not in v:
        raise ValueError(f"{prefix}law is required in the {prefix.rstrip('.')} table "
                         "(one of persafl_np.sim.timing.LAWS)")
    table = _laws()
    law = check(Param("law", "str", choices=tuple(table)), v["law"], prefix + "law")
    rest = {k: x for k, x in v.items() if k != "law"}
    _check_applies(rest, table[law], table, (), prefix, f"law={law!r}")
    values = resolve(table[law].params, rest, prefix, f"law={law!r}")
    try:
        return JobTime(law, **values)
    except ValueError as exc:
        raise ValueError(f"{prefix}{exc}") from None


def _law_dict(jt: JobTime) -> dict[str, Any]:
    return {"law": jt.law, **{p.name: getattr(jt, p.name) for p in _laws()[jt.law].params}}


class ModelConfig(Table):
    """``[model]``: name ∈ least_squares, logistic, softmax, robust, mlp, or "pkg.mod:Class"."""

    table = "model"

    def build(self, n_classes: int | None) -> Any:
        kw = self.kwargs()
        takes = {p.name for p in declarations(self._entry.build)}
        if "n_classes" in takes:
            if n_classes is None:
                raise ValueError(f"model.name={self.name!r} needs a classification data set")
            kw["n_classes"] = n_classes
        return self._entry.build(**kw)


class OracleConfig(Table):
    """``[oracle]``: name ∈ plain, maml, moreau, or "pkg.mod:Class"; noise_sigma > 0 wraps
    it in AdditiveNoise."""

    table = "oracle"

    def _common(self) -> tuple[Param, ...]:
        return _noise_params()

    def _probe(self) -> None:
        self.build()

    def build(self) -> Any:
        from persafl_np import personalization as P

        o = self._entry.build(**self.kwargs())
        return P.AdditiveNoise(o, self.noise_sigma) if self.noise_sigma > 0 else o


class DataConfig(Table):
    """``[data]``: name ∈ fedprox_synthetic, shifted_least_squares, robust_family, digits, npz.

    For ``npz`` the file is read and validated here (its path resolved against the config
    file, its SHA-256 recorded or checked), and its sizes answer ``n_clients``, ``n_features``
    and ``n_classes`` (:meth:`get`) without being keys of the table."""

    table = "data"
    __slots__ = ("_info",)

    def _extra(self, prefix: str, base: Path | None) -> None:
        info: dict[str, Any] = {}
        if self._values["name"] == "npz":
            from persafl_np.data.federated import FederatedDataset
            from persafl_np.data.npz_file import check_sha256

            path = self._values["path"]
            try:
                self._values["sha256"] = check_sha256(path, self._values["sha256"])
                ds = FederatedDataset.load(path)
            except ValueError as exc:
                raise ValueError(f"{prefix}path: {exc}") from None
            info = {"n_clients": ds.n_clients, "n_features": ds.n_features,
                    "n_classes": ds.n_classes}
        object.__setattr__(self, "_info", info)

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, self._info.get(key, default))

    def __getattr__(self, key: str) -> Any:
        if not key.startswith("_") and key in self._info:
            return self._info[key]
        return super().__getattr__(key)

    def build(self, seed: int) -> Any:
        """The data set, from the data stream of ``seed`` (spawn_key=(PURPOSE_DATA,))."""
        from persafl_np.sim import streams

        return self._entry.build(seed=streams.data_rng(seed), **self.kwargs())


class AlgorithmConfig(Table):
    """``[algorithm]``: name ∈ ALGORITHMS with its rule's, the clients' and the options' keys."""

    table = "algorithm"

    def _extra(self, prefix: str, base: Path | None) -> None:
        if (self.get("reweight") == "shares") != (self.get("reweight_shares") is not None):
            raise ValueError(f"{prefix}reweight_shares must be given exactly when "
                             f"{prefix}reweight = 'shares'")

    def _probe(self) -> None:
        self.build()

    def build(self) -> Any:
        return self._entry.build(**self.kwargs())


class ArrivalsConfig(Table):
    """``[arrivals]``: mode ∈ theorem, event."""

    table = "arrivals"

    def _extra(self, prefix: str, base: Path | None) -> None:
        if self.get("job_trace") is not None and "job_time" in self._given_keys:
            raise ValueError(f"{prefix}job_time does not apply with {prefix}job_trace (the "
                             "trace replaces the law); remove one")
        if self.get("job_trace") is not None:
            self._values.pop("job_time", None)

    def _init(self, given: Mapping[str, Any], prefix: str, base: Path | None) -> None:
        object.__setattr__(self, "_given", tuple(given))
        super()._init(given, prefix, base)

    __slots__ = ("_given",)

    @property
    def _given_keys(self) -> tuple[str, ...]:
        return self._given

    def _probe(self) -> None:
        self._entry.build(**self.kwargs())

    def build(self, n_clients: int) -> Any:
        return self._entry.build(**self.kwargs())


def _from_dict(cls: type, d: Any, prefix: str, base: Path | None) -> Any:
    if not isinstance(d, dict):
        raise ValueError(f"{prefix or 'config'} must be a table, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(d) - names)
    if unknown:
        raise ValueError(f"unknown key {prefix}{unknown[0]!s} (allowed: {sorted(names)})")
    kw = {}
    for k, v in d.items():
        if k in _SUBTABLES:
            kw[k] = _SUBTABLES[k].from_dict(v, f"{prefix}{k}.", base)
        else:
            kw[k] = v
    return cls(**kw)


def _to_dict(obj: Any) -> dict:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if v is None:
            continue
        out[f.name] = v.to_dict() if isinstance(v, Table) else v
    return out


_SUBTABLES: dict[str, type[Table]] = {
    "model": ModelConfig, "oracle": OracleConfig, "data": DataConfig,
    "algorithm": AlgorithmConfig, "arrivals": ArrivalsConfig,
}


@dataclass(frozen=True)
class SimConfig:
    """A whole run: the scalar keys of :attr:`params` and the five tables (module docstring).

    dtype: the clients' arithmetic (evaluation, checks and bounds stay float64); cohort_size:
    jobs computed together (default sim.engine.DEFAULT_COHORT_SIZE; results do not depend on
    it); record_batches: save every arrival's batch rows (batches.npz) for a replay that needs
    no RNG."""

    seed: int = 0
    T: int = 100
    eval_every: int = 1
    max_arrivals: int | None = None
    dtype: str = "float64"
    cohort_size: int | None = None
    record_batches: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    data: DataConfig = field(default_factory=DataConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    arrivals: ArrivalsConfig = field(default_factory=ArrivalsConfig)

    params: ClassVar[tuple[Param, ...]] = (
        Param("seed", "int", 0, "seed of every random stream (SeedSequence)", lo=0),
        Param("T", "int", 100, "server steps", lo=1),
        Param("eval_every", "int", 1, "evaluate every this many server steps", lo=1),
        Param("max_arrivals", "int", None, "stop after this many arrivals", lo=1, optional=True),
        Param("dtype", "str", "float64", "the clients' arithmetic",
              choices=("float64", "float32")),
        Param("cohort_size", "int", None, "jobs computed together (results do not depend on it)",
              lo=1, optional=True),
        Param("record_batches", "bool", False, "save every arrival's batch rows (batches.npz)"),
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        for k, cls in _SUBTABLES.items():
            if not isinstance(getattr(self, k), cls):
                raise ValueError(f"{k} must be a {cls.__name__}")
        alg, arr = self.algorithm, self.arrivals
        need = _NEEDS_ORACLE.get(alg.name)
        if need is not None and self.oracle.name != need:
            raise ValueError(
                f"algorithm.name={alg.name!r} needs oracle.name={need!r} "
                f"(got {self.oracle.name!r}); use fedavg for plain clients"
            )
        self._check_model_data()
        n = self.data.get("n_clients")
        sync = alg.name in _SYNC
        if sync and alg.clients_per_round > (n if n is not None else alg.clients_per_round):
            raise ValueError(f"algorithm.clients_per_round must be <= data.n_clients={n}, "
                             f"got {alg.clients_per_round}")
        shares = alg.get("reweight_shares")
        if shares is not None and n is not None and len(shares) != n:
            raise ValueError(f"algorithm.reweight_shares must have data.n_clients={n} entries, "
                             f"got {len(shares)}")
        if arr.mode == "event":
            self._check_event(n, sync)

    def _check_model_data(self) -> None:
        """The model fits the data's targets (what Problem.build would refuse)."""
        model, data = self.model, self.data
        classifier = getattr(model.entry.build, "is_classifier", None)
        classes = {"digits": 10, "fedprox_synthetic": data.get("n_classes")}.get(data.name)
        if classifier and data.name in _REGRESSION_DATA:
            raise ValueError(f"model.name={model.name!r} needs a classification data set, "
                             f"not data.name={data.name!r}")
        if self.oracle.name == "moreau":  # what MoreauEnvelope checks per step, where known
            built = model.build(classes if classifier else 2)
            if self.oracle.inner == "nesterov" and not built.is_convex():
                raise ValueError(f"oracle.inner='nesterov' needs a convex model, and "
                                 f"model.name={model.name!r} is not (is_convex() is False); "
                                 "use oracle.inner = 'gd'")
            if self.oracle.smoothness is None:  # a model without any global L (the MLP)
                d = 64 if data.name == "digits" else int(data.get("n_features", 1))
                y0 = np.zeros(1, dtype=np.int64 if classifier else np.float64)
                if not math.isfinite(float(built.smoothness(np.ones((1, d)), y0))):
                    raise ValueError(f"model.name={model.name!r} has no finite smoothness L on "
                                     "any data: oracle.name='moreau' needs oracle.smoothness "
                                     "(an L valid for every batch)")
            else:
                try:
                    self.oracle.build().strong_convexity(built, self.oracle.smoothness)
                except ValueError as exc:
                    raise ValueError(f"oracle.lam with oracle.smoothness: {exc}") from None
        if classes is None:
            return
        if model.name == "logistic" and classes != 2:
            raise ValueError(f"model.name='logistic' needs 2 classes, data.name={data.name!r} "
                             f"has {classes} (use softmax, or data.n_classes = 2)")
        if model.get("allow_int_targets") is False:
            raise ValueError(f"model.name={model.name!r} is a regression model and "
                             f"data.name={data.name!r} has class labels; use a classifier or "
                             "set model.allow_int_targets = true")
        if data.name == "digits" and data.partition == "label_skew" and \
                data.n_clients * data.classes_per_client < 10:
            raise ValueError(f"data.partition='label_skew' needs data.n_clients * "
                             f"data.classes_per_client >= 10 (the digits' classes), got "
                             f"{data.n_clients} * {data.classes_per_client}")

    def _check_event(self, n: int | None, sync: bool) -> None:
        """Combinations the engine would refuse only after building the data (fuzz-found)."""
        arr, name = self.arrivals, self.algorithm.name
        if sync and arr.staleness != "none":
            raise ValueError(f"arrivals.staleness={arr.staleness!r} (staleness control) applies "
                             f"to asynchronous algorithms only, not algorithm.name={name!r}")
        if sync and arr.availability_period is not None:
            raise ValueError("arrivals.availability_period (availability windows) applies to "
                             f"asynchronous algorithms only, not algorithm.name={name!r}")
        if n is None:
            return
        trace = arr.get("job_trace")
        if trace is not None:  # read and validate it now, not when the run starts
            from persafl_np.sim.timing import load_job_trace

            try:
                load_job_trace(trace, n)
            except OSError as exc:
                raise ValueError(f"arrivals.job_trace {trace!r}: cannot read "
                                 f"({exc.strerror or exc})") from None
            except ValueError as exc:
                raise ValueError(f"arrivals.job_trace: {exc}") from None
        if arr.speeds is not None and len(arr.speeds) != n:
            raise ValueError(f"arrivals.speeds must have data.n_clients={n} entries, "
                             f"got {len(arr.speeds)}")
        C = n if arr.concurrency is None else min(arr.concurrency, n)
        if arr.staleness == "block" and C > arr.tau_max + 1:
            raise ValueError(
                f"arrivals.staleness='block' needs arrivals.concurrency <= arrivals.tau_max + 1 "
                f"(here concurrency={C} with {n} clients, tau_max={arr.tau_max}): "
                "C jobs pulled at version 0 need C versions <= tau_max"
            )

    # -- dict / TOML
    @classmethod
    def from_dict(cls, d: dict, base_dir: str | Path | None = None) -> SimConfig:
        """Build and validate from a (TOML-shaped) dict; unknown keys raise ValueError.
        ``base_dir``: the folder relative paths (``arrivals.job_trace``, ``data.path``) are
        resolved against (the config file's; None: the current directory, kept as given)."""
        base = None if base_dir is None else Path(base_dir)
        return _from_dict(cls, d, "", base)

    def to_dict(self) -> dict:
        return _to_dict(self)

    def to_toml(self) -> str:
        """The fully resolved config as TOML (None fields omitted)."""
        return _toml(self.to_dict())

    def replace(self, **changes: Any) -> SimConfig:
        return dataclasses.replace(self, **changes)


def _fmt(v: Any) -> str:
    if isinstance(v, np.integer):
        v = int(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    raise ValueError(f"cannot write {type(v).__name__} to TOML")


def _toml(d: dict, prefix: str = "") -> str:
    lines = [f"{k} = {_fmt(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append("")
            lines.append(f"[{prefix}{k}]")
            lines.append(_toml(v, f"{prefix}{k}.").rstrip("\n"))
    return "\n".join(lines).strip("\n") + "\n"


def load_config(path: str | Path) -> SimConfig:
    """Read a TOML file into a validated :class:`SimConfig`; relative paths in it resolve
    against the file's folder."""
    p = Path(path)
    with p.open("rb") as fh:
        try:
            d = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc})") from None
    return SimConfig.from_dict(d, base_dir=p.parent)


def describe(markdown: bool = False) -> str:
    """Every table and key, generated from the declarations: key, type, allowed values,
    default and doc, per component (``persafl config --list``; ``markdown=True``: the
    README's table)."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    for p in SimConfig.params:
        rows.append(("", p.name, p.kind, p.range_text(), _dflt(p), p.doc))
    for table, (sel, default, comps) in TABLES.items():
        where = "arrivals." + table if table == "job_time" else table
        entries = comps()
        rows.append((where, sel, "str", "one of " + ", ".join(entries) + (
            ' or "pkg.module:Class"' if table in _PLUGIN_TABLES else ""),
            repr(default), "the component of this table"))
        if table == "oracle":
            rows.extend((where, p.name, p.kind, p.range_text(), _dflt(p), p.doc)
                        for p in _noise_params())
        for name, e in entries.items():
            if not e.params:
                rows.append((f"{where} {sel}={name}", "(no keys)", "-", "-", "-", e.doc))
            for p in e.params:
                doc = p.doc + (f" (only with {p.when[0]} in {list(p.when[1])})" if p.when
                               else "")
                rows.append((f"{where} {sel}={name}", p.name, p.kind, p.range_text(),
                             _dflt(p), doc))
        if table == "job_time":
            rows.append(("arrivals.download / arrivals.upload", "law", "str",
                         "the job_time laws", "'constant' (mean 0)", "latency laws, same keys"))
        if table in _PLUGIN_TABLES:
            rows.append((f'{where} {sel}="pkg.module:Class"', _CHECK.name, _CHECK.kind,
                         _CHECK.range_text(), _dflt(_CHECK), _CHECK.doc))
    if markdown:
        out = ["| table | key | type | allowed | default | meaning |",
               "|---|---|---|---|---|---|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(out) + "\n"
    out, last = [], None
    for r in rows:
        if r[0] != last:
            out.append(f"[{r[0]}]" if r[0] else "(top level)")
            last = r[0]
        out.append(f"  {r[1]} ({r[2]}; {r[3]}; default {r[4]}): {r[5]}")
    return "\n".join(out) + "\n"


def _dflt(p: Param) -> str:
    if isinstance(p.default, JobTime):
        return f"law {p.default.law!r}"
    return "omitted" if p.default is None else repr(p.default)


def simulate(
    config: SimConfig,
    arrivals: Any = None,
    dataset: Any = None,
    **run_kwargs: Any,
) -> Any:
    """Run ``config`` and return a :class:`~persafl_np.results.RunResult`.

    arrivals: None (use ``config.arrivals``), or a recorded schedule to *replay* — a
        :class:`~persafl_np.results.Trace`, a :class:`~persafl_np.results.RunResult`, a
        :class:`~persafl_np.sim.arrivals.Replay` or a path to a ``trace.csv``: the run then
        follows the recorded (client, pulled_version, accepted) sequence exactly.
    dataset: a data set to use instead of building ``config.data`` (then the saved config.toml
        does not describe the data).
    run_kwargs: passed to :func:`persafl_np.sim.engine.run` (checkpoint_dir, checkpoint_every,
        resume, stop_after, batches — a recorded ``batches.npz`` to replay; cohort_size and
        record_batches default to the config's).
    """
    from persafl_np.results import RunResult, Trace
    from persafl_np.sim.arrivals import Replay
    from persafl_np.sim.engine import Problem, run

    if not isinstance(config, SimConfig):
        raise ValueError(f"config must be a SimConfig, got {type(config).__name__}")
    from persafl_np.memory import check_fits

    check_fits(config, data_built=dataset is not None)  # refuse before allocating (issue 10)
    data = dataset if dataset is not None else config.data.build(config.seed)
    n_classes = getattr(data, "n_classes", None)
    model, oracle = config.model.build(n_classes), config.oracle.build()
    check_imported(config, model, oracle, data)
    problem = Problem.build(model, oracle, data, seed=config.seed, dtype=config.dtype)
    n = problem.n_clients
    if arrivals is None:
        arr = config.arrivals.build(n)
    elif isinstance(arrivals, RunResult):
        arr = Replay.from_trace(arrivals.trace)
    elif isinstance(arrivals, Trace):
        arr = Replay.from_trace(arrivals)
    elif isinstance(arrivals, Replay):
        arr = arrivals
    elif isinstance(arrivals, (str, Path)):
        arr = Replay.from_csv(str(arrivals), n)
    else:
        raise ValueError(
            "arrivals must be None, a Trace, a RunResult, a Replay or a trace.csv path"
        )
    run_kwargs.setdefault("cohort_size", config.cohort_size)
    run_kwargs.setdefault("record_batches", config.record_batches)
    return run(problem, config.algorithm.build(), arr, T=config.T, seed=config.seed,
               eval_every=config.eval_every, max_arrivals=config.max_arrivals, config=config,
               **run_kwargs)


def check_imported(config: SimConfig, model: Any, oracle: Any, data: Any) -> None:
    """A model or oracle imported by path (``model.name = "pkg.mod:Class"``) is checked when
    the run starts, on client 0's training rows: :func:`persafl_np.checks.check_model`
    (gradient, HVP, Hessian against finite differences) and
    :func:`persafl_np.checks.check_oracle` (conformance, theory/personalization.md (LOC-C)).
    ``check = false`` in its table skips it. ValueError naming the table when a check fails."""
    from persafl_np import checks

    X, y = data.clients[0].X_train, data.clients[0].y_train
    if config.model.get("check"):
        res = checks.check_model(model, X, y, rng=config.seed)
        if not res.ok:
            bad = [f.name for f in dataclasses.fields(res)
                   if getattr(res, f.name) is not None and not getattr(res, f.name).ok]
            raise ValueError(f"model.name={config.model.name!r} fails persafl_np.checks."
                             f"check_model on client 0's data (failed: {', '.join(bad)}); fix "
                             "the model or set model.check = false")
    if config.oracle.get("check"):
        ores = checks.check_oracle(oracle, model, X, y, rng=config.seed)
        if not ores.ok:
            raise ValueError(f"oracle.name={config.oracle.name!r} fails persafl_np.checks."
                             f"check_oracle on client 0's data (worst: {ores.worst}, relative "
                             f"error {ores.max_rel_error:.3g}, grad ok: {ores.grad.ok}); fix "
                             "the oracle or set oracle.check = false")
