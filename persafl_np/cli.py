"""Command line: ``persafl demo | run | resume``. Nothing in the package imports this module.

* ``persafl demo [--seed S] [--out DIR]`` — the built-in main job: asynchronous PersA-FL with
  MAML clients (softmax regression on FedProx Synthetic(0.5, 0.5), 20 clients with unequal
  speeds, exponential job times), printed as a table; finishes in seconds.
* ``persafl run CONFIG.toml --out DIR [--checkpoint-every N] [--replay TRACE.csv]``
* ``persafl resume DIR`` — continue a run started with ``--checkpoint-every``; the result is
  bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["main"]

DEMO = {
    "seed": 0,
    "T": 600,
    "eval_every": 100,
    "model": {"name": "softmax"},
    "oracle": {"name": "maml", "alpha": 0.01},
    "data": {"name": "fedprox_synthetic", "n_clients": 20, "alpha": 0.5, "beta": 0.5,
             "n_features": 60, "n_classes": 10},
    "algorithm": {"name": "persafl", "Q": 5, "eta": 0.05, "beta": 1.0, "batch_size": 16},
    "arrivals": {"mode": "event", "job_time": {"law": "exponential", "mean": 1.0},
                 "speeds": [1.0 + 3.0 * (i % 4 == 0) for i in range(20)]},
}


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
    from persafl_np.config import SimConfig, simulate

    cfg = SimConfig.from_dict({**DEMO, "seed": args.seed})
    print("persafl demo: asynchronous PersA-FL, MAML clients (alpha=0.01), softmax regression, "
          "FedProx Synthetic(0.5,0.5), 20 clients (every 4th one 4x faster), Q=5, eta=0.05, "
          "beta=1, exponential job times, 600 server steps")
    t0 = time.perf_counter()
    res = simulate(cfg)
    return _finish(res, args.out, time.perf_counter() - t0)


def _cmd_run(args: argparse.Namespace) -> int:
    from persafl_np.config import load_config, simulate

    cfg = load_config(args.config)
    out = Path(args.out)
    kw = {}
    if args.checkpoint_every is not None:
        out.mkdir(parents=True, exist_ok=True)
        ck = out / "checkpoint"
        ck.mkdir(exist_ok=True)
        from persafl_np.results import atomic_write_text

        atomic_write_text(out / "config.toml", cfg.to_toml())
        atomic_write_text(ck / "cli.json", json.dumps(
            {"checkpoint_every": args.checkpoint_every, "replay": args.replay}))
        kw = {"checkpoint_dir": ck, "checkpoint_every": args.checkpoint_every}
    t0 = time.perf_counter()
    res = simulate(cfg, arrivals=args.replay, **kw)
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
    res = simulate(load_config(d / "config.toml"), arrivals=meta.get("replay"), checkpoint_dir=ck,
                   checkpoint_every=int(meta["checkpoint_every"]), resume=True)
    return _finish(res, str(d), time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="persafl", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the built-in main job and print a summary")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the run's files to this directory")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("run", help="run a TOML config")
    p.add_argument("config")
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="N")
    p.add_argument("--replay", default=None, metavar="TRACE.csv",
                   help="force the (client, pulled_version) schedule of a recorded trace.csv")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("resume", help="continue a checkpointed run in DIR")
    p.add_argument("dir")
    p.set_defaults(func=_cmd_resume)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as exc:
        print(f"persafl {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
