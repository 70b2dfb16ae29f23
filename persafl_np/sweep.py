"""Parameter sweeps: expand a grid of run configurations, run them, resume, summarize.

A sweep file (TOML) has three parts::

    name = "staleness"            # optional
    seeds = [0, 1, 2]             # required, at least one
    [base]                        # a full run configuration (same tables as `persafl run`)
    ...
    [grid]                        # dotted config paths -> lists of values (Cartesian product)
    "arrivals.tau_max" = [0, 2, 5]
    "algorithm.name" = ["persafl", "fedasync"]

Each grid point × seed becomes one run with its own directory under the output
directory, named from the varied values (``run-0003__algorithm.name=fedasync__seed=1``).
A run is finished when its directory holds the marker file ``DONE``; a rerun of the
sweep skips finished runs (resumable sweeps). A run that raises is recorded in
``ERROR.txt`` in its directory and in the sweep's report, and does not stop the others.

Every configuration is built and validated *before* any run starts, so a bad
sweep file (unknown field, empty grid, mixed value types, a value out of range)
fails at once with a message naming the offending key.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import tomllib
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persafl_np.atomic import atomic_write_text

__all__ = [
    "RunSpec",
    "SweepReport",
    "SweepSpec",
    "expand",
    "load_sweep",
    "run_sweep",
    "summarize",
]

DONE = "DONE"
ERROR = "ERROR.txt"


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: base config, grid (dotted path → values), seeds."""

    name: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    seeds: list[int]


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its directory name, varied values and full config dict."""

    name: str
    values: dict[str, Any]
    seed: int
    config: dict[str, Any]


@dataclass(frozen=True)
class SweepReport:
    """What a call to :func:`run_sweep` did."""

    total: int
    skipped: int
    completed: int
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return not self.failed


def _type_key(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "table"
    return type(v).__name__


def parse_sweep(doc: Mapping[str, Any]) -> SweepSpec:
    """Validate the structure of a sweep document (already parsed from TOML)."""
    unknown = set(doc) - {"name", "seeds", "base", "grid"}
    if unknown:
        raise ValueError(
            f"sweep file: unknown top-level key(s) {sorted(unknown)}; "
            "allowed: name, seeds, base, grid"
        )
    base = doc.get("base")
    if not isinstance(base, dict):
        raise ValueError("sweep file: [base] table (the run configuration) is required")
    grid = doc.get("grid", {})
    if not isinstance(grid, dict):
        raise ValueError("sweep file: [grid] must be a table of dotted keys -> lists")
    grid = _flatten_grid(grid)
    for key, values in grid.items():
        if not isinstance(values, list) or len(values) == 0:
            raise ValueError(f"sweep grid: {key!r} must be a non-empty list of values")
        kinds = {_type_key(v) for v in values}
        if len(kinds) > 1:
            raise ValueError(f"sweep grid: {key!r} mixes value types {sorted(kinds)}")
        if key == "seed":
            raise ValueError("sweep grid: vary seeds with the top-level `seeds = [...]` list")
    seeds = doc.get("seeds", [0])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise ValueError(
            f"sweep file: seeds must be a non-empty list of integers >= 0, got {seeds!r}"
        )
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"sweep file: seeds must be distinct, got {seeds!r}")
    name = str(doc.get("name", "sweep"))
    return SweepSpec(name=name, base=deepcopy(base), grid=grid, seeds=list(seeds))


def _flatten_grid(grid: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Accept both ``"a.b" = [...]`` and nested ``[grid.a] b = [...]`` spellings."""
    out: dict[str, Any] = {}
    for k, v in grid.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten_grid(v, key + "."))
        else:
            out[key] = v
    return out


def load_sweep(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and validate a sweep TOML file."""
    with open(path, "rb") as fh:
        try:
            doc = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"sweep file {path}: invalid TOML: {exc}") from exc
    return parse_sweep(doc)


def set_path(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``cfg["a"]["b"] = value`` for ``dotted = "a.b"``, creating tables as needed."""
    parts = dotted.split(".")
    node = cfg
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ValueError(f"sweep grid: {dotted!r}: {p!r} is a value, not a table")
        node = nxt
    node[parts[-1]] = value


def _fmt(v: Any) -> str:
    s = json.dumps(v) if not isinstance(v, str) else v
    return "".join(c if c.isalnum() or c in "-_.+" else "-" for c in s)[:40]


def expand(
    spec: SweepSpec, validate: Callable[[dict[str, Any]], Any] | None = None
) -> list[RunSpec]:
    """Cartesian product of the grid × seeds, each validated with ``validate(config)``.

    ``validate`` defaults to building the simulator's config (so unknown fields and
    out-of-range values are rejected before anything runs); errors are re-raised
    naming the run.
    """
    if validate is None:
        from persafl_np.config import SimConfig

        validate = SimConfig.from_dict
    keys = list(spec.grid)
    combos = list(itertools.product(*(spec.grid[k] for k in keys))) if keys else [()]
    runs: list[RunSpec] = []
    width = max(4, len(str(len(combos) * len(spec.seeds))))
    for combo in combos:
        values = dict(zip(keys, combo, strict=True))
        for seed in spec.seeds:
            cfg = deepcopy(spec.base)
            for k, v in values.items():
                set_path(cfg, k, v)
            cfg["seed"] = seed
            label = "__".join(f"{k}={_fmt(v)}" for k, v in values.items())
            name = f"run-{len(runs):0{width}d}" + (f"__{label}" if label else "") + f"__seed={seed}"
            try:
                validate(deepcopy(cfg))
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"sweep run {name}: invalid configuration: {exc}") from exc
            runs.append(RunSpec(name=name, values=values, seed=seed, config=cfg))
    return runs


def _run_one_default(config: dict[str, Any], run_dir: str) -> None:
    from persafl_np.config import SimConfig, simulate

    result = simulate(SimConfig.from_dict(config))
    result.save(run_dir)


def _execute(
    run_fn: Callable[[dict[str, Any], str], None], run: RunSpec, out: str
) -> tuple[str, str | None]:
    """Run one configuration in its directory; never raises (errors are returned)."""
    run_dir = Path(out) / run.name
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        run_fn(run.config, str(run_dir))
    except Exception:  # noqa: BLE001 - one failed run must not kill the sweep
        msg = traceback.format_exc()
        atomic_write_text(run_dir / ERROR, msg)
        return run.name, msg
    (run_dir / ERROR).unlink(missing_ok=True)
    atomic_write_text(run_dir / DONE, json.dumps({"values": run.values, "seed": run.seed}) + "\n")
    return run.name, None


def run_sweep(
    runs: Sequence[RunSpec],
    out: str | os.PathLike[str],
    *,
    workers: int | None = None,
    dask: str | None = None,
    run_fn: Callable[[dict[str, Any], str], None] | None = None,
    progress: bool = True,
) -> SweepReport:
    """Run every not-yet-finished run, in local processes or on a Dask cluster.

    Parameters
    ----------
    runs: from :func:`expand`.
    out: the sweep directory (one subdirectory per run).
    workers: local processes (default: ``os.cpu_count()``); 1 runs in this process.
    dask: ``None`` (local processes), ``"local"`` (a ``dask.distributed.LocalCluster``)
        or a scheduler address ``"tcp://host:port"``.
    run_fn: ``run_fn(config_dict, run_dir)`` — defaults to simulate + save.
    progress: a tqdm bar of runs done / total with ETA.
    """
    out = str(out)
    Path(out).mkdir(parents=True, exist_ok=True)
    fn = run_fn or _run_one_default
    todo = [r for r in runs if not (Path(out) / r.name / DONE).exists()]
    skipped = len(runs) - len(todo)
    failed: dict[str, str] = {}
    bar = _progress(len(runs), skipped, progress)
    try:
        for name, err in _dispatch(fn, todo, out, workers, dask):
            if err is not None:
                failed[name] = err.strip().splitlines()[-1]
            bar.update(1)
    finally:
        bar.close()
    return SweepReport(
        total=len(runs), skipped=skipped, completed=len(todo) - len(failed), failed=failed
    )


def _dispatch(
    fn: Callable[[dict[str, Any], str], None],
    todo: Sequence[RunSpec],
    out: str,
    workers: int | None,
    dask: str | None,
) -> Iterable[tuple[str, str | None]]:
    if not todo:
        return
    if dask is not None:
        try:
            from dask.distributed import Client, LocalCluster
            from dask.distributed import as_completed as dask_completed
        except ImportError as exc:
            raise ImportError(
                "--dask needs dask.distributed: pip install 'persafl_np[dist]'"
            ) from exc
        cluster = None
        if dask == "local":
            cluster = LocalCluster(
                n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        else:
            client = Client(dask)
        try:
            futures = [client.submit(_execute, fn, r, out, pure=False) for r in todo]
            for fut in dask_completed(futures):
                yield fut.result()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    n = workers or os.cpu_count() or 1
    if n <= 1:
        for r in todo:
            yield _execute(fn, r, out)
        return
    with ProcessPoolExecutor(max_workers=n) as pool:
        futs = [pool.submit(_execute, fn, r, out) for r in todo]
        for fut in as_completed(futs):
            yield fut.result()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="run", desc="sweep")


def summarize(out: str | os.PathLike[str], csv_path: str | os.PathLike[str] | None = None) -> Path:
    """Collect every finished run's ``history.csv`` into one tidy CSV, plus mean ± std over seeds.

    Writes ``summary.csv`` (a row per run × eval point: run, seed, the varied values, and
    the history columns) and ``summary_mean.csv`` (grouped by varied values and eval step:
    mean and std over seeds of each numeric column). Returns the path of ``summary.csv``.
    """
    root = Path(out)
    rows: list[dict[str, Any]] = []
    varied: list[str] = []
    for run_dir in sorted(p for p in root.iterdir() if (p / DONE).exists()):
        meta = json.loads((run_dir / DONE).read_text())
        for k in meta["values"]:
            if k not in varied:
                varied.append(k)
        hist = run_dir / "history.csv"
        if not hist.exists():
            continue
        with open(hist, newline="") as fh:
            for rec in csv.DictReader(fh):
                row = {"run": run_dir.name, "seed": meta["seed"], **meta["values"], **rec}
                rows.append(row)
    if not rows:
        raise ValueError(f"summarize: no finished runs with history.csv under {root}")
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    target = Path(csv_path) if csv_path else root / "summary.csv"
    _write_csv(target, cols, rows)
    metric_cols = [c for c in cols if c not in {"run", "seed", *varied, "step"}]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        key = tuple(json.dumps(r.get(k)) for k in varied) + (r.get("step"),)
        groups.setdefault(key, []).append(r)
    mean_rows = []
    for key, members in groups.items():
        out_row: dict[str, Any] = {k: json.loads(v) for k, v in zip(varied, key[:-1], strict=True)}
        out_row["step"] = key[-1]
        out_row["n_seeds"] = len(members)
        for c in metric_cols:
            vals = [_as_float(m.get(c)) for m in members]
            vals = [v for v in vals if v is not None]
            if not vals:
                continue
            mu = sum(vals) / len(vals)
            var = sum((v - mu) ** 2 for v in vals) / (len(vals) - 1) if len(vals) > 1 else 0.0
            sd = math.sqrt(var)
            out_row[f"{c}_mean"] = mu
            out_row[f"{c}_std"] = sd
        mean_rows.append(out_row)
    mcols: list[str] = []
    for r in mean_rows:
        for k in r:
            if k not in mcols:
                mcols.append(k)
    _write_csv(target.with_name(target.stem + "_mean.csv"), mcols, mean_rows)
    return target


def _as_float(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _write_csv(path: Path, cols: list[str], rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in cols})
    atomic_write_text(path, buf.getvalue())
