"""Validated, frozen run configuration; TOML in and out (theory/simulator.md §7).

A :class:`SimConfig` has scalar fields ``seed, T, eval_every, max_arrivals`` and five tables:
``[model]``, ``[oracle]``, ``[data]``, ``[algorithm]``, ``[arrivals]`` (with sub-tables
``[arrivals.job_time]``, ``[arrivals.download]``, ``[arrivals.upload]``). Every field is
validated in ``__post_init__`` with a ``ValueError`` naming the field and its allowed range;
unknown TOML keys are rejected naming the key. ``to_toml()`` writes the fully resolved config
(every field, defaults included), which :func:`load_config` reads back to an equal object.
TOML has no null: optional fields that are ``None`` are simply omitted.

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
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np.arguments import check_int, shown
from persafl_np.sim.timing import JobTime

__all__ = [
    "ALGORITHMS",
    "simulate",
    "AlgorithmConfig",
    "ArrivalsConfig",
    "DataConfig",
    "ModelConfig",
    "OracleConfig",
    "SimConfig",
    "load_config",
]

MODELS = ("least_squares", "logistic", "softmax", "robust", "mlp")
ORACLES = ("plain", "maml", "moreau")
DATASETS = ("fedprox_synthetic", "shifted_least_squares", "robust_family", "digits")
ALGORITHMS = ("persafl", "fedasync", "fedbuff", "fedavg", "perfedavg", "pfedme", "local")


def _float(v: Any, name: str, lo: float | None = None, strict: bool = False,
           hi: float | None = None) -> float:
    try:  # an int beyond float range overflows: not a finite number either
        ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
    except OverflowError:
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a finite number, got {shown(v)}")
    x = float(v)
    if lo is not None and (x <= lo if strict else x < lo):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {lo}, got {shown(v)}")
    if hi is not None and x > hi:
        raise ValueError(f"{name} must be <= {hi}, got {shown(v)}")
    return x


def _choice(v: Any, name: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(v, str) or v not in allowed:  # unhashable values: not a name either
        raise ValueError(f"{name} must be one of {allowed}, got {shown(v)}")
    return v


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class ModelConfig:
    """name ∈ MODELS; l2 ≥ 0; n_hidden ≥ 1 (mlp); activation (mlp); nonconvex ≥ 0 (logistic)."""

    name: str = "least_squares"
    l2: float = 0.0
    n_hidden: int = 16
    activation: str = "tanh"
    nonconvex: float = 0.0

    def __post_init__(self) -> None:
        _choice(self.name, "model.name", MODELS)
        _set(self, "l2", _float(self.l2, "model.l2", 0.0))
        check_int(self.n_hidden, "model.n_hidden", 1)
        _choice(self.activation, "model.activation", ("tanh", "softplus"))
        _set(self, "nonconvex", _float(self.nonconvex, "model.nonconvex", 0.0))

    def build(self, n_classes: int | None) -> Any:
        from persafl_np import models

        if self.name == "least_squares":
            return models.LeastSquares(l2=self.l2)
        if self.name == "robust":
            return models.RobustRegression(l2=self.l2)
        if self.name == "logistic":
            return models.LogisticRegression(l2=self.l2, nonconvex=self.nonconvex)
        if n_classes is None:
            raise ValueError(f"model.name={self.name!r} needs a classification data set")
        if self.name == "softmax":
            return models.SoftmaxRegression(n_classes=n_classes, l2=self.l2)
        return models.MLP(self.n_hidden, n_classes, activation=self.activation, l2=self.l2)


@dataclass(frozen=True)
class OracleConfig:
    """name ∈ ORACLES; alpha ≥ 0, hessian (maml); lam > 0, inner_steps ≥ 1, inner_tol > 0
    (moreau); smoothness > 0 (moreau, optional): the L used by every inner prox problem — set
    it to a bound valid for every mini-batch when f_i is nonconvex (a batch can be less smooth
    than the client's full data, see persafl_np/personalization/moreau.py); noise_sigma ≥ 0
    wraps the oracle in AdditiveNoise when > 0."""

    name: str = "plain"
    alpha: float = 0.01
    hessian: str = "exact"
    lam: float = 15.0
    inner_steps: int | None = None
    inner_tol: float | None = None
    smoothness: float | None = None
    noise_sigma: float = 0.0

    def __post_init__(self) -> None:
        _choice(self.name, "oracle.name", ORACLES)
        _set(self, "alpha", _float(self.alpha, "oracle.alpha", 0.0))
        _choice(self.hessian, "oracle.hessian", ("exact", "hessian_free", "first_order"))
        _set(self, "lam", _float(self.lam, "oracle.lam", 0.0, strict=True))
        if self.inner_steps is not None:
            check_int(self.inner_steps, "oracle.inner_steps", 1)
        if self.inner_tol is not None:
            _set(self, "inner_tol", _float(self.inner_tol, "oracle.inner_tol", 0.0, strict=True))
        if self.smoothness is not None:
            _set(self, "smoothness",
                 _float(self.smoothness, "oracle.smoothness", 0.0, strict=True))
        _set(self, "noise_sigma", _float(self.noise_sigma, "oracle.noise_sigma", 0.0))

    def build(self) -> Any:
        from persafl_np import personalization as P

        if self.name == "plain":
            o = P.Plain()
        elif self.name == "maml":
            o = P.MAML(self.alpha, hessian=self.hessian)
        else:
            o = P.MoreauEnvelope(self.lam, inner_steps=self.inner_steps, inner_tol=self.inner_tol,
                                 smoothness=self.smoothness)
        return P.AdditiveNoise(o, self.noise_sigma) if self.noise_sigma > 0 else o


@dataclass(frozen=True)
class DataConfig:
    """name ∈ DATASETS; n_clients ≥ 1; the generator's parameters (see persafl_np.data).

    ``n_features`` left out resolves to the generator's own default: 60 for
    ``fedprox_synthetic`` (the FedProx recipe), 10 for the synthetic regression families
    (digits always has 64). It is resolved here, so the saved config.toml states it.
    """

    name: str = "shifted_least_squares"
    n_clients: int = 10
    n_features: int | None = None
    n_samples: int = 50
    n_classes: int = 10
    alpha: float = 0.5
    beta: float = 0.5
    spread: float = 1.0
    shift: float = 1.0
    noise: float = 0.1
    partition: str = "label_skew"
    classes_per_client: int = 2
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        _choice(self.name, "data.name", DATASETS)
        check_int(self.n_clients, "data.n_clients", 1)
        if self.n_features is None:
            _set(self, "n_features", 60 if self.name == "fedprox_synthetic" else 10)
        check_int(self.n_features, "data.n_features", 1)
        check_int(self.n_samples, "data.n_samples", 1)
        check_int(self.n_classes, "data.n_classes", 2)
        for k in ("alpha", "beta", "spread", "shift", "noise"):
            _set(self, k, _float(getattr(self, k), f"data.{k}", 0.0))
        _choice(self.partition, "data.partition", ("label_skew", "dirichlet", "iid"))
        check_int(self.classes_per_client, "data.classes_per_client", 1)
        _set(self, "test_fraction", _float(self.test_fraction, "data.test_fraction", 0.0, hi=0.9))

    def build(self, seed: int) -> Any:
        """The data set, from the data stream of ``seed`` (spawn_key=(PURPOSE_DATA,))."""
        from persafl_np import data as D
        from persafl_np.sim import streams

        rng = streams.data_rng(seed)
        if self.name == "fedprox_synthetic":
            return D.fedprox_synthetic(self.alpha, self.beta, self.n_clients, rng,
                                       n_features=self.n_features, n_classes=self.n_classes,
                                       test_fraction=self.test_fraction)
        if self.name == "shifted_least_squares":
            return D.shifted_least_squares(self.n_clients, self.n_features, self.n_samples, rng,
                                           spread=self.spread).dataset
        if self.name == "robust_family":
            return D.robust_family(self.n_clients, self.n_features, self.n_samples, rng,
                                   shift=self.shift, noise=self.noise)
        return D.load_digits_federated(self.n_clients, partition=self.partition,
                                       classes_per_client=self.classes_per_client,
                                       test_fraction=self.test_fraction, seed=rng)


@dataclass(frozen=True)
class AlgorithmConfig:
    """name ∈ ALGORITHMS; Q ≥ 1; eta > 0; batch_size ≥ 1 (omit: full batch); beta > 0 (persafl,
    pfedme mixing; fedavg/perfedavg use beta = 1 unless set); alpha ∈ (0, 1] (fedasync mixing);
    K ≥ 1, eta_g > 0 (fedbuff); clients_per_round ≥ 1 (synchronous); weight ∈ constant,
    polynomial, hinge with weight_a > 0, weight_b ≥ 0, weight_normalize_at ≥ 0 (optional);
    prox ≥ 0 (fedasync only): ρ of the clients' proximal local objective f_i(y) + (ρ/2)‖y − u‖²
    (theory/personalization.md eq. (LOC-PROX)); 0 = plain local steps.
    reweight ∈ shares, online (optional): server step of client i × 1/(n p_i), p =
    reweight_shares (n numbers > 0 summing to 1) or estimated online (theory/arrival_bias.md
    (TA-5)); delay_adaptive = τ̄ ≥ 0 (optional): step 0 when τ > τ̄ (staleness_linear.md (TB-4))."""

    name: str = "persafl"
    Q: int = 1
    eta: float = 0.05
    batch_size: int | None = None
    beta: float = 1.0
    alpha: float = 0.5
    K: int = 10
    eta_g: float = 1.0
    clients_per_round: int = 10
    weight: str = "constant"
    weight_a: float = 0.5
    weight_b: float = 0.0
    weight_normalize_at: float | None = None
    prox: float = 0.0
    reweight: str | None = None
    reweight_shares: tuple[float, ...] | None = None
    delay_adaptive: int | None = None

    def __post_init__(self) -> None:
        _choice(self.name, "algorithm.name", ALGORITHMS)
        check_int(self.Q, "algorithm.Q", 1)
        _set(self, "eta", _float(self.eta, "algorithm.eta", 0.0, strict=True))
        if self.batch_size is not None:
            check_int(self.batch_size, "algorithm.batch_size", 1)
        _set(self, "beta", _float(self.beta, "algorithm.beta", 0.0, strict=True))
        _set(self, "alpha", _float(self.alpha, "algorithm.alpha", 0.0, strict=True, hi=1.0))
        check_int(self.K, "algorithm.K", 1)
        _set(self, "eta_g", _float(self.eta_g, "algorithm.eta_g", 0.0, strict=True))
        check_int(self.clients_per_round, "algorithm.clients_per_round", 1)
        _choice(self.weight, "algorithm.weight", ("constant", "polynomial", "hinge"))
        _set(self, "weight_a", _float(self.weight_a, "algorithm.weight_a", 0.0, strict=True))
        _set(self, "weight_b", _float(self.weight_b, "algorithm.weight_b", 0.0))
        if self.weight_normalize_at is not None:
            _set(self, "weight_normalize_at",
                 _float(self.weight_normalize_at, "algorithm.weight_normalize_at", 0.0))
        _set(self, "prox", _float(self.prox, "algorithm.prox", 0.0))
        if self.prox > 0 and self.name != "fedasync":
            raise ValueError(
                f"algorithm.prox applies to algorithm.name='fedasync' only (FedAsync's proximal "
                f"local objective), got prox={self.prox!r} with name={self.name!r}"
            )
        if self.reweight is not None:  # theory/arrival_bias.md (TA-5)
            _choice(self.reweight, "algorithm.reweight", ("shares", "online"))
            if (self.reweight == "shares") != (self.reweight_shares is not None):
                raise ValueError("algorithm.reweight_shares must be given exactly when "
                                 "algorithm.reweight = 'shares'")
            self._reweight()  # validates the shares
        if self.delay_adaptive is not None:
            check_int(self.delay_adaptive, "algorithm.delay_adaptive", 0)

    def _reweight(self) -> Any:
        from persafl_np.algorithms import ClientReweight

        if self.reweight is None:
            return None
        try:
            return ClientReweight(self.reweight_shares)
        except ValueError as exc:
            raise ValueError(f"algorithm.{exc}") from None

    def build(self) -> Any:
        from persafl_np import algorithms as A

        s = A.StalenessWeight(self.weight, self.weight_a, self.weight_b, self.weight_normalize_at)
        sync = self.name in ("fedavg", "perfedavg", "pfedme")
        if self.name == "persafl":
            rule = A.persafl(self.beta)
        elif self.name == "fedasync":
            rule = A.fedasync(self.alpha, s)
        elif self.name == "fedbuff":
            rule = A.fedbuff(self.eta_g, self.K, s)
        elif sync:
            rule = A.sync_average(self.beta, self.clients_per_round)
        else:
            rule = A.local_only()
        da = None if self.delay_adaptive is None else A.DelayAdaptive(self.delay_adaptive)
        return A.Algorithm(rule, Q=self.Q, eta=self.eta, batch_size=self.batch_size,
                           synchronous=sync, prox=self.prox, reweight=self._reweight(),
                           delay_adaptive=da)


@dataclass(frozen=True)
class ArrivalsConfig:
    """mode ∈ theorem, event. Theorem: tau ≥ 0, policy ∈ uniform, max, or a list of ints in
    0..tau. Event: job_time/download/upload laws, job_trace (CSV path, overrides job_time),
    speeds (n positive numbers), concurrency ≥ 1 (omit: all clients in flight), dropout ∈ [0, 1),
    staleness ∈ none, drop, block with tau_max ≥ 0, availability_period > 0 (optional) with
    availability_on ∈ (0, 1] (the online fraction of each period)."""

    mode: str = "theorem"
    tau: int = 0
    policy: str | tuple[int, ...] = "uniform"
    job_time: JobTime = field(default_factory=lambda: JobTime("exponential"))
    download: JobTime = field(default_factory=lambda: JobTime("constant", mean=0.0))
    upload: JobTime = field(default_factory=lambda: JobTime("constant", mean=0.0))
    job_trace: str | None = None
    speeds: tuple[float, ...] | None = None
    concurrency: int | None = None
    dropout: float = 0.0
    staleness: str = "none"
    tau_max: int | None = None
    availability_period: float | None = None
    availability_on: float = 1.0

    def __post_init__(self) -> None:
        _choice(self.mode, "arrivals.mode", ("theorem", "event"))
        if self.availability_period is not None:
            _set(self, "availability_period", _float(
                self.availability_period, "arrivals.availability_period", 0.0, strict=True))
        _set(self, "availability_on",
             _float(self.availability_on, "arrivals.availability_on", 0.0, strict=True, hi=1.0))
        check_int(self.tau, "arrivals.tau", 0)
        if isinstance(self.policy, str):
            _choice(self.policy, "arrivals.policy", ("uniform", "max"))
        else:
            pol = tuple(check_int(x, "arrivals.policy entry", 0, self.tau) for x in self.policy)
            if not pol:
                raise ValueError("arrivals.policy list must not be empty")
            _set(self, "policy", pol)
        for k in ("job_time", "download", "upload"):
            if not isinstance(getattr(self, k), JobTime):
                raise ValueError(f"arrivals.{k} must be a table with a 'law' key")
        if self.speeds is not None:
            sp = tuple(_float(s, "arrivals.speeds entry", 0.0, strict=True) for s in self.speeds)
            _set(self, "speeds", sp)
        if self.concurrency is not None:
            check_int(self.concurrency, "arrivals.concurrency", 1)
        _set(self, "dropout", _float(self.dropout, "arrivals.dropout", 0.0))
        if self.dropout >= 1.0:
            raise ValueError(f"arrivals.dropout must lie in [0, 1), got {self.dropout}")
        _choice(self.staleness, "arrivals.staleness", ("none", "drop", "block"))
        if self.staleness != "none":
            if self.tau_max is None:
                raise ValueError("arrivals.tau_max (integer >= 0) is required with "
                                 f"arrivals.staleness={self.staleness!r}")
        if self.tau_max is not None:
            check_int(self.tau_max, "arrivals.tau_max", 0)

    def build(self, n_clients: int) -> Any:
        from persafl_np.sim.arrivals import EventDriven, TheoremMode

        if self.mode == "theorem":
            return TheoremMode(self.tau, self.policy)
        if self.speeds is not None and len(self.speeds) != n_clients:
            raise ValueError(f"arrivals.speeds must have n_clients={n_clients} entries, "
                             f"got {len(self.speeds)}")
        C = n_clients if self.concurrency is None else min(self.concurrency, n_clients)
        if self.staleness == "block" and C > self.tau_max + 1:  # fuzz-found: say it by name
            raise ValueError(
                f"arrivals.staleness='block' needs arrivals.concurrency <= arrivals.tau_max + 1 "
                f"(here concurrency={C} with {n_clients} clients, tau_max={self.tau_max}): "
                "C jobs pulled at version 0 need C versions <= tau_max"
            )
        return EventDriven(
            job_time=self.job_trace if self.job_trace is not None else self.job_time,
            speeds=self.speeds, download=self.download, upload=self.upload,
            concurrency=self.concurrency, dropout=self.dropout, staleness=self.staleness,
            tau_max=self.tau_max, availability_period=self.availability_period,
            availability_on=self.availability_on,
        )


@dataclass(frozen=True)
class SimConfig:
    """A whole run: seed ≥ 0, T ≥ 1 server steps, eval_every ≥ 1, max_arrivals ≥ 1 (optional);
    dtype ∈ float64, float32 (the clients' arithmetic; evaluation, checks and bounds stay
    float64); cohort_size ≥ 1 (optional; jobs computed together, default
    sim.engine.DEFAULT_COHORT_SIZE; results do not depend on it); record_batches: save every
    arrival's batch rows (batches.npz) for a replay that needs no RNG."""

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

    def __post_init__(self) -> None:
        check_int(self.seed, "seed", 0)
        check_int(self.T, "T", 1)
        check_int(self.eval_every, "eval_every", 1)
        if self.max_arrivals is not None:
            check_int(self.max_arrivals, "max_arrivals", 1)
        _choice(self.dtype, "dtype", ("float64", "float32"))
        if self.cohort_size is not None:
            check_int(self.cohort_size, "cohort_size", 1)
        if not isinstance(self.record_batches, bool):
            raise ValueError(f"record_batches must be true or false, got {self.record_batches!r}")
        for k, cls in (("model", ModelConfig), ("oracle", OracleConfig), ("data", DataConfig),
                       ("algorithm", AlgorithmConfig), ("arrivals", ArrivalsConfig)):
            if not isinstance(getattr(self, k), cls):
                raise ValueError(f"{k} must be a {cls.__name__}")
        need = {"perfedavg": "maml", "pfedme": "moreau"}.get(self.algorithm.name)
        if need is not None and self.oracle.name != need:
            raise ValueError(
                f"algorithm.name={self.algorithm.name!r} needs oracle.name={need!r} "
                f"(got {self.oracle.name!r}); use fedavg for plain clients"
            )
        self._check_arrivals_fit()
        if self.algorithm.name in ("fedavg", "perfedavg", "pfedme") and \
                self.algorithm.clients_per_round > self.data.n_clients:
            raise ValueError(
                f"algorithm.clients_per_round must be <= data.n_clients={self.data.n_clients}, "
                f"got {self.algorithm.clients_per_round}"
            )

    def _check_arrivals_fit(self) -> None:
        """Combinations the engine would refuse only after building the data (fuzz-found)."""
        arr, sync = self.arrivals, self.algorithm.name in ("fedavg", "perfedavg", "pfedme")
        if arr.mode != "event":
            return
        if sync and arr.staleness != "none":
            raise ValueError(f"arrivals.staleness={arr.staleness!r} (staleness control) applies "
                             f"to asynchronous algorithms only, not algorithm.name="
                             f"{self.algorithm.name!r}")
        if sync and arr.availability_period is not None:
            raise ValueError("arrivals.availability_period (availability windows) applies to "
                             f"asynchronous algorithms only, not algorithm.name="
                             f"{self.algorithm.name!r}")

    # -- dict / TOML
    @classmethod
    def from_dict(cls, d: dict) -> SimConfig:
        """Build and validate from a (TOML-shaped) dict; unknown keys raise ValueError."""
        return _from_dict(cls, d, "")

    def to_dict(self) -> dict:
        return _to_dict(self)

    def to_toml(self) -> str:
        """The fully resolved config as TOML (None fields omitted)."""
        return _toml(self.to_dict())

    def replace(self, **changes: Any) -> SimConfig:
        return dataclasses.replace(self, **changes)


def _from_dict(cls: type, d: Any, prefix: str) -> Any:
    if not isinstance(d, dict):
        raise ValueError(f"{prefix or 'config'} must be a table, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown key {prefix}{unknown[0]!s} (allowed: {sorted(names)})")
    kw = {}
    for k, v in d.items():
        h = hints[k]
        if dataclasses.is_dataclass(h):
            kw[k] = _from_dict(h, v, f"{prefix}{k}.")
        elif isinstance(v, list):
            kw[k] = tuple(v)
        else:
            kw[k] = v
    try:
        return cls(**kw)
    except TypeError as exc:  # wrong types inside the dataclasses' own checks
        raise ValueError(f"{prefix or 'config'}: {exc}") from None
    except ValueError as exc:
        if cls is JobTime:  # JobTime names bare fields; say which table they are in
            raise ValueError(f"{prefix}{exc}") from None
        raise


def _to_dict(obj: Any) -> dict:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if v is None:
            continue
        out[f.name] = _to_dict(v) if dataclasses.is_dataclass(v) else v
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, np.integer):  # check_int accepts NumPy integers
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
            lines.append(_toml(v, f"{prefix}{k}."))
    return "\n".join(x for x in lines if x is not None).strip("\n") + "\n"


def load_config(path: str | Path) -> SimConfig:
    """Read a TOML file into a validated :class:`SimConfig`."""
    with Path(path).open("rb") as fh:
        try:
            d = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc})") from None
    return SimConfig.from_dict(d)


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
    problem = Problem.build(config.model.build(n_classes), config.oracle.build(), data,
                            seed=config.seed, dtype=config.dtype)
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
