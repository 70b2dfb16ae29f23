"""Command line: ``persafl demo | run | resume``. Nothing in the package imports this module.

* ``persafl demo [--seed S] [--out DIR]`` — the built-in main job (:mod:`persafl_np.demo`): an
  asynchronous PersA-FL run with MAML clients, its timeline figure, and the (T1) bound against
  measured stationarity (bound_vs_T.png); finishes in seconds.
* ``persafl run CONFIG.toml --out DIR [--checkpoint-every N] [--replay TRACE.csv]``
* ``persafl resume DIR`` — continue a run started with ``--checkpoint-every``; the result is
  bit-identical to an uninterrupted run.
* ``persafl bound CONFIG.toml [--run] [--seeds N]`` — constants, step-size conditions (T2) and the
  terms of the stationarity bound (T1) of theory/async_theorem.md; with ``--run`` the measured
  (1/T)Σ‖∇F(w^t)‖² next to the bound and their ratio.
* ``persafl sweep SWEEP.toml --out DIR [--workers N] [--dask local|tcp://host:port] [--quiet]`` —
  a grid of runs (resumable: finished runs are skipped on rerun).
* ``persafl summarize DIR`` — one tidy CSV of every finished run's history, and mean ± std over
  seeds.
* ``persafl figures [--quick] [--dir figures]`` — regenerate every committed figure (PNG + the CSV
  behind it) from ``figures/configs/*.toml``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["main"]

def _summary(res, wall: float) -> str:
    h = res.history
    lines = [f"status: {res.status}" + (f" ({res.message})" if res.message else ""),
             f"{'step':>6} {'time':>9} {'F(w)':>9} {'|gradF|^2':>10} {'|grad sum p_i F_i|^2':>21}"
             f" {'acc global':>10} {'acc pers mean':>13} {'acc pers min':>12}"]
    for r in range(len(h)):
        lines.append(
            f"{int(h.step[r]):>6} {h.time[r]:>9.3f} {h.loss[r]:>9.4f} {h.grad_norm2[r]:>10.4g} "
            f"{h.weighted_grad_norm2[r]:>21.4g} {h.acc_global[r]:>10.3f} "
            f"{h.acc_pers_mean[r]:>13.3f} {h.acc_pers_min[r]:>12.3f}"
        )
    c = res.counters
    tr = res.trace
    lines.append(
        f"arrivals {c['arrivals']}, applied {c['applied']}, dropped {c['dropped']}, failed "
        f"{c['failed']}; staleness mean {tr.staleness.mean():.2f} max {c['max_staleness']}; "
        f"gradient evaluations {c['n_grad']} (+{c['n_hvp']} Hessian-vector products)"
    )
    p = res.shares
    lines.append(f"arrival shares p_i: min {p.min():.3f} max {p.max():.3f} (uniform "
                 f"{1 / len(p):.3f}); virtual time {c['time']:.2f}; wall {wall:.2f} s")
    return "\n".join(lines)


def _finish(res, out: str | None, wall: float) -> int:
    print(_summary(res, wall))
    if out:
        res.save(out)
        print(f"results written to {out}")
    return 0 if res.ok else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from persafl_np.demo import demo_report, run_demo

    t0 = time.perf_counter()
    demo = run_demo(args.out, seed=args.seed)
    print(demo_report(demo, time.perf_counter() - t0))
    return 0 if demo.run.ok and demo.bound_ratio <= 1.0 else 1


class _StepBar:
    """A tqdm bar of server steps, fed by the engine's ``progress(version, T)`` callback."""

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        self.enabled = enabled

    def __call__(self, version: int, T: int) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=T, unit="step", desc="server steps", leave=False)
        self.bar.update(version - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def kwargs(self) -> dict:
        return {"progress": self} if self.enabled else {}


def _cmd_run(args: argparse.Namespace) -> int:
    from persafl_np.config import load_config, simulate

    cfg = load_config(args.config)
    out = Path(args.out)
    kw = {}
    if args.checkpoint_every is not None:
        out.mkdir(parents=True, exist_ok=True)
        ck = out / "checkpoint"
        ck.mkdir(exist_ok=True)
        from persafl_np.atomic import atomic_write_text

        atomic_write_text(out / "config.toml", cfg.to_toml())
        atomic_write_text(ck / "cli.json", json.dumps(
            {"checkpoint_every": args.checkpoint_every, "replay": args.replay}))
        kw = {"checkpoint_dir": ck, "checkpoint_every": args.checkpoint_every}
    t0 = time.perf_counter()
    bar = _StepBar(not args.quiet)
    try:
        res = simulate(cfg, arrivals=args.replay, **kw, **bar.kwargs())
    finally:
        bar.close()
    return _finish(res, str(out), time.perf_counter() - t0)


def _cmd_resume(args: argparse.Namespace) -> int:
    from persafl_np.config import load_config, simulate

    d = Path(args.dir)
    ck = d / "checkpoint"
    if not (ck / "cli.json").exists() or not (d / "config.toml").exists():
        print(f"persafl resume: {d} has no checkpoint (run with --checkpoint-every N first)",
              file=sys.stderr)
        return 2
    meta = json.loads((ck / "cli.json").read_text())
    t0 = time.perf_counter()
    bar = _StepBar(not args.quiet)
    try:
        res = simulate(load_config(d / "config.toml"), arrivals=meta.get("replay"),
                       checkpoint_dir=ck, checkpoint_every=int(meta["checkpoint_every"]),
                       resume=True, **bar.kwargs())
    finally:
        bar.close()
    return _finish(res, str(d), time.perf_counter() - t0)


def _cmd_bound(args: argparse.Namespace) -> int:
    from persafl_np.bounds.report import bound_report

    print(bound_report(args.config, run=args.run, n_seeds=args.seeds))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from persafl_np.sweep import expand, load_sweep, run_sweep

    runs = expand(load_sweep(args.sweep))  # every config validated before any run starts
    if not args.quiet:
        print(f"persafl sweep: {len(runs)} runs -> {args.out}")
    rep = run_sweep(runs, args.out, workers=args.workers, dask=args.dask, progress=not args.quiet)
    print(f"sweep: {rep.total} runs, {rep.skipped} already finished, {rep.completed} completed, "
          f"{len(rep.failed)} failed")
    for name, err in rep.failed.items():
        print(f"  FAILED {name}: {err} (traceback in {Path(args.out) / name / 'ERROR.txt'})")
    return 0 if rep.success else 1


def _cmd_summarize(args: argparse.Namespace) -> int:
    from persafl_np.sweep import summarize

    path = summarize(args.dir)
    print(f"wrote {path} and {path.with_name(path.stem + '_mean.csv')}")
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
    from persafl_np.plots.regenerate import figures_command

    return figures_command(args.quick, args.dir, args.workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="persafl", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the built-in main job and print a summary")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="persafl_demo",
                   help="directory for the run's files and figures (default: ./persafl_demo)")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("run", help="run a TOML config")
    p.add_argument("config")
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="N")
    p.add_argument("--replay", default=None, metavar="TRACE.csv",
                   help="force the (client, pulled_version) schedule of a recorded trace.csv")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("resume", help="continue a checkpointed run in DIR")
    p.add_argument("dir")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_resume)
    p = sub.add_parser("bound", help="constants, step-size conditions and the (T1) bound")
    p.add_argument("config")
    p.add_argument("--run", action="store_true", help="also simulate and report measured/bound")
    p.add_argument("--seeds", type=int, default=4, help="seeds averaged with --run (default 4)")
    p.set_defaults(func=_cmd_bound)
    p = sub.add_parser("sweep", help="run a grid of configurations (resumable)")
    p.add_argument("sweep", metavar="SWEEP.toml")
    p.add_argument("--out", required=True)
    p.add_argument("--workers", type=int, default=None, help="local processes (default: cores)")
    p.add_argument("--dask", default=None, metavar="local|tcp://host:port",
                   help="run on a dask.distributed LocalCluster or an existing scheduler")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_sweep)
    p = sub.add_parser("summarize", help="tidy CSV of a sweep directory, mean ± std over seeds")
    p.add_argument("dir")
    p.set_defaults(func=_cmd_summarize)
    p = sub.add_parser("figures", help="regenerate every figure from figures/configs (PNG + CSV)")
    p.add_argument("--quick", action="store_true",
                   help="fewer seeds, shorter runs; skips the bound figures")
    p.add_argument("--dir", default="figures", help="the figures directory (default: figures)")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=_cmd_figures)
    from persafl_np.animate_cli import add_animate_parser

    add_animate_parser(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as exc:
        print(f"persafl {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
