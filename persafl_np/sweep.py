"""Parameter sweeps: expand a grid of run configurations, run them, resume, summarize.

A sweep file (TOML) has three parts::

    name = "step_sizes"           # optional
    seeds = [0, 1, 2]             # optional (default [0]): distinct integers >= 0
    diverge_factor = 100.0        # optional (default off): "diverged" when loss > factor × start
    [base]                        # a full run configuration (same tables as `persafl run`)
    ...
    [grid]                        # dotted config paths -> lists of values (Cartesian product)
    "algorithm.eta" = [0.01, 0.05]
    "algorithm.name" = ["persafl", "fedasync"]

The top-level keys come before the first table (TOML puts a key written after ``[grid]`` into
the grid). ``tests/test_cli.py`` runs this example with a small ``[base]``.

Each grid point × seed becomes one run with its own directory under the output
directory, named from the varied values (``run-0003__algorithm.name=fedasync__seed=1``).
A run is finished when its directory holds the marker file ``DONE`` (JSON: varied values,
seed, status, message, the run's config digest and fingerprint — :mod:`persafl_np.fingerprint`).
A rerun of the sweep skips finished runs whose DONE marker has the current config digest
(resumable sweeps) and reruns, from a cleared directory, those finished under another
configuration or package version: a finished run is never reported for a config it did not run.

Every run gets a status (:data:`STATUSES`): ``ok``; ``diverged`` (the engine stopped on a
non-finite model, the history holds a non-finite loss or ‖∇F‖², or — when the sweep sets
``diverge_factor`` > 1 — some evaluated loss exceeds ``diverge_factor`` × the loss at the first
evaluation); ``stalled`` (the arrival source ran dry or ``max_arrivals`` was hit); ``failed``
(the run raised: traceback in ``ERROR.txt``, no DONE marker, retried on rerun). The status is
in DONE (or ERROR.txt) and in ``summary.csv``; the sweep's report counts each.

Worker processes watch their parent: each checks every :data:`WATCHDOG_SECONDS` whether the sweep
process is still its parent and exits when it is not (the sweep was killed), so no orphaned
worker outlives a ``kill -9`` of the sweep.

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
import shutil
import threading
import time
import tomllib
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np import fingerprint
from persafl_np.atomic import atomic_write_text, remove_stale_tmp
from persafl_np.json_object import read_json_object

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
STATUS = "status.json"
#: Run statuses, in report order.
STATUSES = ("ok", "diverged", "stalled", "failed")
#: How often a worker checks that the sweep process is still alive.
WATCHDOG_SECONDS = 0.5
_MAX_MARKER_BYTES = 1 << 20


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: base config, grid (dotted path → values), seeds."""

    name: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    seeds: list[int]
    diverge_factor: float | None = None


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its directory name, varied values and full config dict."""

    name: str
    values: dict[str, Any]
    seed: int
    config: dict[str, Any]
    digest: str = ""


@dataclass(frozen=True)
class SweepReport:
    """What a call to :func:`run_sweep` did."""

    total: int
    skipped: int
    completed: int
    failed: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    stale: int = 0

    @property
    def success(self) -> bool:
        """No run raised."""
        return not self.failed

    @property
    def all_ok(self) -> bool:
        """Every run has status ``ok`` (``persafl sweep --strict``)."""
        return not self.failed and all(v == "ok" for v in self.statuses.values())

    def counts(self) -> dict[str, int]:
        """Runs per status (:data:`STATUSES`), finished-before runs included."""
        out = dict.fromkeys(STATUSES, 0)
        for v in self.statuses.values():
            out[v] += 1
        return out


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
    if not isinstance(doc, Mapping):
        raise ValueError("sweep file: must be a table")
    unknown = set(doc) - {"name", "seeds", "base", "grid", "diverge_factor"}
    if unknown:
        raise ValueError(
            f"sweep file: unknown top-level key(s) {sorted(unknown)}; "
            "allowed: name, seeds, base, grid, diverge_factor"
        )
    factor = doc.get("diverge_factor")
    if factor is not None and (isinstance(factor, bool) or not isinstance(factor, (int, float))
                               or not math.isfinite(factor) or factor <= 1):
        raise ValueError(f"sweep file: diverge_factor must be a finite number > 1 (or left out: "
                         f"off), got {factor!r}")
    base = doc.get("base")
    if not isinstance(base, dict):
        raise ValueError("sweep file: [base] table (the run configuration) is required")
    if "seed" in base:  # each run's seed replaces it: a base seed would be silently ignored
        raise ValueError("sweep file: base.seed is replaced by each run's seed; list the seeds "
                         "in the top-level `seeds = [...]` (default [0])")
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
    return SweepSpec(name=name, base=deepcopy(base), grid=grid, seeds=list(seeds),
                     diverge_factor=None if factor is None else float(factor))


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
                checked = validate(deepcopy(cfg))
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"sweep run {name}: invalid configuration: {exc}") from exc
            digest = fingerprint.config_digest(checked if hasattr(checked, "to_dict") else cfg)
            runs.append(RunSpec(name=name, values=values, seed=seed, config=cfg, digest=digest))
    return runs


def _run_one_default(config: dict[str, Any], run_dir: str) -> None:
    from persafl_np.config import SimConfig, simulate

    result = simulate(SimConfig.from_dict(config))
    result.save(run_dir)


def read_done(path: str | os.PathLike[str], statuses: tuple[str, ...] = STATUSES[:3]
              ) -> dict[str, Any]:
    """Read and validate a DONE marker or a ``status.json`` (same fields; ``statuses``: the
    allowed values of ``status``). ValueError naming the file and the field."""
    p = Path(path)
    doc = read_json_object(p, "a DONE marker", _MAX_MARKER_BYTES)
    if not isinstance(doc.get("values"), dict):
        raise ValueError(f"{p}: field 'values' must be an object")
    seed = doc.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{p}: field 'seed' must be an integer >= 0, got {seed!r}")
    status = doc.setdefault("status", "ok")
    if status not in statuses:
        raise ValueError(f"{p}: field 'status' must be one of {statuses}, got {status!r}")
    for k in ("message", "config_digest", "fingerprint"):
        if not isinstance(doc.setdefault(k, ""), str):
            raise ValueError(f"{p}: field {k!r} must be a string")
    return doc


def _done_digest(path: Path) -> str | None:
    try:
        return read_done(path)["config_digest"]
    except (ValueError, OSError):
        return None


def run_status(run_dir: str | os.PathLike[str],
               diverge_factor: float | None = None) -> tuple[str, str]:
    """(status, message) of a finished run from its ``summary.json`` and ``history.csv``
    (module docstring; a run_fn that writes neither is ``ok``)."""
    from persafl_np.results import read_history_csv, read_summary_json

    d = Path(run_dir)
    status, message = "ok", ""
    if (d / "summary.json").exists():
        summ = read_summary_json(d / "summary.json")
        status, message = summ["status"], summ["message"]
    if status != "ok" or not (d / "history.csv").exists():
        return status, message
    cols = read_history_csv(d / "history.csv")
    for c in ("loss", "grad_norm2"):
        v = cols.get(c)
        if v is not None and not np.all(np.isfinite(v)):
            return "diverged", f"non-finite {c} in history.csv"
    loss = cols.get("loss")
    if diverge_factor is not None and loss is not None and len(loss):
        top = int(np.argmax(loss))
        if loss[top] > diverge_factor * abs(loss[0]):
            return "diverged", (f"loss {loss[top]:.6g} at evaluation {top} exceeds diverge_factor"
                                f"={diverge_factor:g} x the first loss {loss[0]:.6g}")
    return status, message


def _clear_run_dir(run_dir: Path) -> None:
    from persafl_np.run_folder import RUN_FILES

    remove_stale_tmp(run_dir)
    for name in (DONE, ERROR, STATUS, *RUN_FILES):
        q = run_dir / name
        if q.is_dir() and not q.is_symlink():
            shutil.rmtree(q)
        elif q.exists() or q.is_symlink():
            q.unlink()


def _execute(
    run_fn: Callable[[dict[str, Any], str], None], run: RunSpec, out: str,
    diverge_factor: float | None = None,
) -> tuple[str, str | None, str]:
    """Run one configuration in a cleared directory; never raises.

    Returns (name, error or None, status)."""
    run_dir = Path(out) / run.name
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        _clear_run_dir(run_dir)  # DONE first: a kill now leaves an unfinished run, not a stale one
        run_fn(run.config, str(run_dir))
        status, message = run_status(run_dir, diverge_factor)
        fp = ""
        if (run_dir / fingerprint.FILE).exists():
            fp = fingerprint.read(run_dir / fingerprint.FILE)["fingerprint"]
    except Exception:  # noqa: BLE001 - one failed run must not kill the sweep
        msg = traceback.format_exc()
        try:
            atomic_write_text(run_dir / ERROR, msg)
            atomic_write_text(run_dir / STATUS, json.dumps(
                {"values": run.values, "seed": run.seed, "status": "failed",
                 "message": msg.strip().splitlines()[-1], "config_digest": run.digest}))
        except OSError:
            pass
        return run.name, msg, "failed"
    doc = {"values": run.values, "seed": run.seed, "status": status, "message": message,
           "config_digest": run.digest, "fingerprint": fp}
    atomic_write_text(run_dir / STATUS, json.dumps(doc))
    atomic_write_text(run_dir / DONE, json.dumps(doc) + "\n")
    return run.name, None, status


def run_sweep(
    runs: Sequence[RunSpec],
    out: str | os.PathLike[str],
    *,
    workers: int | None = None,
    dask: str | None = None,
    run_fn: Callable[[dict[str, Any], str], None] | None = None,
    progress: bool = True,
    diverge_factor: float | None = None,
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
    diverge_factor: the sweep file's ``diverge_factor`` (None: off; module docstring).

    A run counts as finished when its DONE marker holds the run's config digest; one whose
    marker has another digest (base or grid changed, other package version) is rerun.
    """
    out = str(out)
    Path(out).mkdir(parents=True, exist_ok=True)
    fn = run_fn or _run_one_default
    todo, statuses, stale = [], {}, 0
    for r in runs:
        marker = Path(out) / r.name / DONE
        if marker.exists():
            if _done_digest(marker) == r.digest:
                statuses[r.name] = read_done(marker)["status"]
                continue
            stale += 1
        todo.append(r)
    skipped = len(runs) - len(todo)
    failed: dict[str, str] = {}
    bar = _progress(len(runs), skipped, progress)
    try:
        for name, err, status in _dispatch(fn, todo, out, workers, dask, diverge_factor):
            statuses[name] = status
            if err is not None:
                failed[name] = err.strip().splitlines()[-1]
            bar.update(1)
    finally:
        bar.close()
    return SweepReport(
        total=len(runs), skipped=skipped, completed=len(todo) - len(failed), failed=failed,
        statuses=statuses, stale=stale,
    )


def _parent_gone(parent: int, direct: bool) -> bool:
    if direct:  # forked by the sweep: re-parented once it dies
        return os.getppid() != parent
    try:  # started by a fork server (Python >= 3.14 default): ask about the sweep's pid
        os.kill(parent, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    try:  # killed but not yet reaped by its own parent: a zombie
        stat = Path(f"/proc/{parent}/stat").read_text()
        return stat[stat.rindex(")") + 2] in "ZX"
    except (OSError, ValueError, IndexError):
        return False


def _watch_parent(parent: int) -> None:
    """Pool-worker initializer: exit as soon as the sweep process (``parent``) is gone."""
    direct = os.getppid() == parent

    def watch() -> None:
        while not _parent_gone(parent, direct):
            time.sleep(WATCHDOG_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="persafl-sweep-watchdog", daemon=True).start()


def _dispatch(
    fn: Callable[[dict[str, Any], str], None],
    todo: Sequence[RunSpec],
    out: str,
    workers: int | None,
    dask: str | None,
    diverge_factor: float | None = None,
) -> Iterable[tuple[str, str | None, str]]:
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
            # No watchdog needed here (tests/test_sweep.py kills the sweep and checks): the
            # LocalCluster's workers are spawned by distributed's AsyncProcess, which exits a
            # child as soon as its parent-alive pipe closes; a remote cluster's workers are
            # meant to outlive the sweep.
            client = Client(cluster)
        else:
            client = Client(dask)
        try:
            futures = [client.submit(_execute, fn, r, out, diverge_factor, pure=False)
                       for r in todo]
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
            yield _execute(fn, r, out, diverge_factor)
        return
    with ProcessPoolExecutor(max_workers=n, initializer=_watch_parent,
                             initargs=(os.getpid(),)) as pool:
        futs = [pool.submit(_execute, fn, r, out, diverge_factor) for r in todo]
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
    """Collect every run's ``history.csv`` into one tidy CSV, plus mean ± std over seeds.

    Writes ``summary.csv`` (a row per run × eval point: run, seed, status, the varied values
    and the history columns; a failed run or one without history gets one row with its status)
    and ``summary_mean.csv`` (grouped by varied values and eval step: ``n_seeds`` runs, and for
    each numeric column the mean and sample std over its *finite* values with ``{col}_n``, how
    many there were; empty when none). inf/NaN never stop it. Returns the path of summary.csv.
    """
    from persafl_np.results import read_history_csv

    root = Path(out)
    if not root.is_dir():
        raise ValueError(f"summarize: {root} is not a directory")
    rows: list[dict[str, Any]] = []
    varied: list[str] = []
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if (run_dir / DONE).exists():
            meta = read_done(run_dir / DONE)
        elif (run_dir / STATUS).exists():
            meta = read_done(run_dir / STATUS, STATUSES)
        else:
            continue
        for k in meta["values"]:
            if k not in varied:
                varied.append(k)
        head = {"run": run_dir.name, "seed": meta["seed"], "status": meta["status"],
                **meta["values"]}
        hist = run_dir / "history.csv"
        if meta["status"] == "failed" or not hist.exists():
            rows.append(head)
            continue
        cols = read_history_csv(hist, as_text=True)
        n = len(next(iter(cols.values()))) if cols else 0
        if n == 0:
            rows.append(head)
        for j in range(n):
            rows.append({**head, **{c: v[j] for c, v in cols.items()}})
    if not rows:
        raise ValueError(f"summarize: no finished or failed runs under {root}")
    cols_all: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols_all:
                cols_all.append(k)
    target = Path(csv_path) if csv_path else root / "summary.csv"
    _write_csv(target, cols_all, rows)
    metric_cols = [c for c in cols_all if c not in {"run", "seed", "status", *varied, "step"}]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        if "step" not in r:
            continue
        key = tuple(json.dumps(r.get(k)) for k in varied) + (r.get("step"),)
        groups.setdefault(key, []).append(r)
    mean_rows = []
    for key, members in groups.items():
        out_row: dict[str, Any] = {k: json.loads(v) for k, v in zip(varied, key[:-1], strict=True)}
        out_row["step"] = key[-1]
        out_row["n_seeds"] = len(members)
        for c in metric_cols:
            vals = np.array([v for v in (_as_float(m.get(c)) for m in members) if v is not None])
            out_row[f"{c}_n"] = len(vals)
            if not len(vals):
                continue
            with np.errstate(over="ignore", invalid="ignore"):
                mu = float(np.mean(vals))
                sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
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
