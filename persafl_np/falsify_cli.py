"""``persafl falsify SPEC.toml``: search for the instance that comes closest to breaking a bound.

Spec format (every key optional except where noted; ``examples/falsify_t1.toml`` is a
committed example)::

    seed = 0                  # the search is deterministic in it
    budget = 400              # evaluations in all (Sobol exploration + Nelder-Mead)
    workers = 1               # local processes
    [bound]
    name = "T1"               # "T1" (constants, scale), "T3" (corollary) or "python"
    constants = "d4"          # T1: "d4" or "sharp"
    scale = 1.0               # T1: multiply the bound (0.05 = a deliberately wrong bound)
    function = "mine.py:bound"    # python: FILE.py:NAME or module:NAME; called as
                                  # NAME(inputs) with inputs a persafl_np.bounds.BoundInputs
    [family]                  # persafl_np.bounds.families: QuadraticFamily / RobustFamily
    name = "quadratic"        # or "robust"
    Q = [1, 2, 5, 20]         # ... any field of the family (lists of choices, period, ...)
    [search]
    global_fraction = 0.75    # share of the budget for the Sobol exploration
    starts = 4                # Nelder-Mead starts
    batch = 256               # instances per vectorized evaluation

Writes into ``--out DIR``: ``state.json`` (resumable: rerun the same command after a kill),
``result.json`` (worst ratio, instance, history), ``worst_instance.json`` (runnable:
``persafl falsify SPEC.toml --rerun DIR/worst_instance.json``), for the robust family also
``worst_instance.toml`` (``persafl bound FILE --run``), and ``history.png`` + ``.csv`` (ratio
vs evaluations). Exit status 0 when no violation was found, 1 when one was.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_falsify_parser", "build_bound", "cmd_falsify", "load_falsify_spec"]

_TOP = {"seed", "budget", "workers", "bound", "family", "search"}
_SEARCH = {"global_fraction", "starts", "batch"}


def build_bound(doc: dict, base: Path) -> Any:
    """The bound of a spec's ``[bound]`` table (see the module docstring)."""
    from persafl_np.bounds.falsify import T1Bound, T3Bound

    doc = dict(doc)
    name = doc.pop("name", "T1")
    if name == "T1":
        extra = set(doc) - {"constants", "scale"}
        if extra:
            raise ValueError(f"bound: unknown key {sorted(extra)[0]!r} for T1 (allowed: "
                             "constants, scale)")
        scale = doc.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
            raise ValueError(f"bound.scale must be a number > 0, got {scale!r}")
        consts = doc.get("constants", "d4")
        if consts not in ("d4", "sharp"):
            raise ValueError(f"bound.constants must be 'd4' or 'sharp', got {consts!r}")
        return T1Bound(consts, float(scale))
    if name == "T3":
        if doc:
            raise ValueError(f"bound: T3 takes no options, got {sorted(doc)}")
        return T3Bound()
    if name == "python":
        ref = doc.get("function")
        if not isinstance(ref, str) or ":" not in ref:
            raise ValueError(f"bound.function must be 'FILE.py:NAME' or 'module:NAME', got "
                             f"{ref!r}")
        where, attr = ref.rsplit(":", 1)
        if where.endswith(".py"):
            path = (base / where).resolve()
            if not path.exists():
                raise ValueError(f"bound.function: file {str(path)!r} not found")
            spec = importlib.util.spec_from_file_location(f"_persafl_user_bound_{path.stem}",
                                                          path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = mod  # so worker processes (fork) can unpickle it
            spec.loader.exec_module(mod)
        else:
            try:
                mod = importlib.import_module(where)
            except ImportError as exc:
                raise ValueError(f"bound.function: cannot import {where!r} ({exc})") from None
        fn = getattr(mod, attr, None)
        if not callable(fn):
            raise ValueError(f"bound.function: {attr!r} in {where!r} is not a callable")
        return fn
    raise ValueError(f"bound.name must be 'T1', 'T3' or 'python', got {name!r}")


def load_falsify_spec(path: str | Path) -> dict:
    """Read and validate a spec; returns the keyword arguments of ``falsify`` plus ``bound``
    and ``family`` objects."""
    from persafl_np.bounds.falsify import family_from_dict

    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ValueError(f"spec {str(p)!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p}: not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - _TOP)
    if unknown:
        raise ValueError(f"{p}: unknown key {unknown[0]!r} (allowed: {sorted(_TOP)})")
    search = doc.get("search", {})
    if not isinstance(search, dict) or set(search) - _SEARCH:
        raise ValueError(f"{p}: [search] may only hold {sorted(_SEARCH)}")
    fam = doc.get("family", {})
    bnd = doc.get("bound", {})
    if not isinstance(fam, dict) or not isinstance(bnd, dict):
        raise ValueError(f"{p}: [family] and [bound] must be tables")
    try:
        family = family_from_dict(fam)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None
    return {"bound": build_bound(bnd, p.parent), "family": family,
            "budget": doc.get("budget", 400), "seed": doc.get("seed", 0),
            "workers": doc.get("workers", 1), **search}


def add_falsify_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser] = (), *,
                       file_type: Callable[[str], Any] = str,
                       count_type: Callable[[str], int] = int) -> None:
    """Register ``persafl falsify`` on an ``argparse`` subparsers object.

    ``parents``, ``file_type`` (an existing readable file) and ``count_type`` (an integer >= 1)
    let the ``persafl`` command line share its common flags and its flag checks."""
    p = subparsers.add_parser("falsify", parents=list(parents),
                              help="search for the instance closest to breaking a bound "
                                   "(measured/bound)",
                              description="Maximize measured/bound over the instances a "
                              "falsify spec allows (format: persafl_np/falsify_cli.py); exit 1 "
                              "when an instance violates the bound.")
    p.add_argument("spec", type=file_type, metavar="SPEC.toml")
    p.add_argument("--out", default=None,
                   help="output directory (default: ./<spec name>_falsify)")
    p.add_argument("--workers", type=count_type, default=None,
                   help="local processes (overrides spec)")
    p.add_argument("--budget", type=count_type, default=None,
                   help="evaluations (overrides spec)")
    p.add_argument("--dask", default=None, metavar="local|tcp://host:port",
                   help="evaluate on a dask.distributed LocalCluster or an existing scheduler")
    p.add_argument("--rerun", type=file_type, default=None, metavar="INSTANCE.json",
                   help="only measure a saved instance against the spec's bound")
    p.set_defaults(func=cmd_falsify)


def cmd_falsify(args: argparse.Namespace) -> int:
    """Run the search of ``args.spec`` (or ``--rerun`` one instance); print the summary."""
    from persafl_np.atomic import atomic_write_text
    from persafl_np.bounds.falsify import falsify, rerun_instance, robust_instance_toml

    kw = load_falsify_spec(args.spec)
    if args.rerun:
        inst = json.loads(Path(args.rerun).read_text())
        ratio, measured, inputs = rerun_instance(inst, kw["bound"])
        print(f"instance {args.rerun}: measured {measured:.6g}, bound "
              f"{measured / ratio if ratio else float('inf'):.6g}, ratio {ratio:.6g}")
        return 1 if ratio > 1 else 0
    if args.workers is not None:
        kw["workers"] = args.workers
    if args.budget is not None:
        kw["budget"] = args.budget
    out = Path(args.out) if args.out else Path(f"{Path(args.spec).stem}_falsify")
    out.mkdir(parents=True, exist_ok=True)
    client = None
    if args.dask:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("--dask needs dask.distributed: pip install 'persafl_np[dist]'"
                             ) from None
        client = Client(LocalCluster(n_workers=kw["workers"], threads_per_worker=1,
                                     processes=True)) if args.dask == "local" else Client(
            args.dask)
        kw["executor"] = client.get_executor()
        kw["workers"] = max(kw["workers"], len(client.scheduler_info()["workers"]))
    try:
        res = falsify(state=out / "state.json", **kw)
    finally:
        if client is not None:
            client.close()
    atomic_write_text(out / "result.json", res.to_json())
    atomic_write_text(out / "worst_instance.json", json.dumps(res.instance, indent=1))
    if res.instance.get("family") == "robust":
        atomic_write_text(out / "worst_instance.toml", robust_instance_toml(res.instance))
    res.plot(out / "history.png")
    i = res.inputs
    print(f"bound {res.bound_name} on family {res.family['name']}: {res.n_evals} evaluations "
          f"({res.resumed} resumed) in {res.seconds:.1f} s")
    print(f"worst ratio measured/bound = {res.worst_ratio:.6g} "
          f"({'VIOLATED' if res.violated else 'no violation'})")
    print(f"  measured {res.measured:.6g}, bound {res.bound_value:.6g}; L={i.L:.4g} "
          f"sigma2={i.sigma2:.4g} gamma2={i.gamma2:.4g} Delta_F={i.delta_f:.4g} T={i.T} "
          f"tau={i.tau} Q={i.Q} eta={i.eta:.4g} beta={i.beta:.4g} K={i.K}")
    print(f"written to {out}: result.json, worst_instance.json, history.png, state.json")
    return 1 if res.violated else 0
