"""The ``persafl`` command (also ``python -m persafl_np``). Nothing in the package imports it.

Each subcommand is one ``_add_<name>(sub, common)`` function that declares its parser and its
``_cmd_<name>(args) -> int``, registered once in :data:`COMMANDS`. Flag values are checked by
argparse ``type=`` functions (so a bad value is rejected, naming the flag, before anything is
read or written); everything a command raises for a user error becomes one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["EXIT_BOUND", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0  #: success
EXIT_FAILED = 1  #: a run failed or diverged, a sweep had failed runs, or an internal error
EXIT_USAGE = 2  #: usage or configuration error (bad flag, missing file, bad TOML, bad value)
EXIT_BOUND = 3  #: `persafl bound`: the bound is violated or does not apply
EXIT_INTERRUPTED = 130  #: Ctrl-C (what was recorded is kept)
EXIT_PIPE = 141  #: stdout closed by the reader (e.g. `| head`): quiet, as other Unix tools

DESCRIPTION = """\
persafl_np: personalized asynchronous federated learning (PersA-FL) in pure NumPy.
Run `persafl COMMAND --help` for one command. Start with `persafl demo`, then
`persafl init maml --out run.toml` and `persafl run run.toml --out out/`."""

EPILOG = """\
exit codes: 0 ok; 1 run failed or diverged (or a sweep had failed runs); 2 usage or
configuration error; 3 `persafl bound`: bound violated or not applicable; 130 interrupted
(Ctrl-C; what was recorded is kept); 141 output pipe closed. --debug shows the traceback
of an error."""


class UsageError(Exception):
    """A user error found by the command line itself (exit 2, one line, no traceback)."""


# -- flag value types (argparse names the flag in their messages) ----------------------------

def _int_at_least(lo: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {v}")
        return v

    parse.__name__ = f"integer >= {lo}"
    return parse


positive_int = _int_at_least(1)
nonneg_int = _int_at_least(0)


def stride_arg(text: str) -> int | str:
    """``auto`` or an integer >= 1."""
    return "auto" if text == "auto" else positive_int(text)


def _os_safe(check: Callable[[str], Path]) -> Callable[[str], Path]:
    """A path flag's check that reports an OSError of the path itself (a name too long, a link
    loop) as a usage error naming the path: argparse passes OSError through as a traceback."""
    def parse(text: str) -> Path:
        try:
            return check(text)
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"{text}: {exc.strerror or exc}") from None

    parse.__name__ = check.__name__  # argparse names the type in its messages
    parse.__doc__ = check.__doc__
    return parse


@_os_safe
def existing_file(text: str) -> Path:
    """A path that names a readable file (not a folder)."""
    p = Path(text)
    if not p.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, expected a file")
    if not os.access(p, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read {text} (permission denied)")
    return p


@_os_safe
def existing_dir(text: str) -> Path:
    p = Path(text)
    if not p.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a file, expected a folder" if p.exists() else f"no such folder: {text}")
    return p


@_os_safe
def out_dir(text: str) -> Path:
    """An output folder: created later if missing; an existing file is refused."""
    if not text:
        raise argparse.ArgumentTypeError("must be a folder path, got ''")
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is a file, expected a folder")
    for parent in p.resolve().parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{parent} is a file, cannot create {text}")
            break
    return p


@_os_safe
def out_file(text: str) -> Path:
    """A new output file: its folder must exist; an existing file is not overwritten."""
    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, expected a file name")
    if p.exists():
        raise argparse.ArgumentTypeError(f"{text} exists; not overwriting it")
    if not p.resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {p.parent} does not exist")
    return p


def set_override(text: str) -> tuple[str, Any]:
    """``key=value``: a dotted config key and a TOML value (a bare word is a string)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part.strip() for part in key.split(".")):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with a dotted KEY, got {text!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if raw and all(c.isalnum() or c in "_-." for c in raw) and not raw[0].isdigit():
            value = raw  # oracle.name=maml: a bare word is the string "maml"
        else:
            raise argparse.ArgumentTypeError(
                f"{key}: {raw!r} is not a TOML value (strings in quotes, e.g. "
                f"{key}='\"text\"'; numbers, true/false, [lists])") from None
    return key, value


def apply_overrides(doc: dict, overrides: Sequence[tuple[str, Any]], flag: str = "--set") -> dict:
    """Set each dotted key of ``overrides`` in the (TOML-shaped) dict ``doc``, in order."""
    for key, value in overrides:
        node = doc
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UsageError(f"{flag} {key}: {p!r} is a value, not a table")
        node[parts[-1]] = value
    return doc


# -- reading the user's files ----------------------------------------------------------------

def read_toml(path: Path, what: str = "config") -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{what} {path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path}: not a text (UTF-8) file") from None


def load_run_config(path: Path, overrides: Sequence[tuple[str, Any]] = ()) -> Any:
    from persafl_np.config import SimConfig

    doc = apply_overrides(read_toml(path), overrides)
    try:
        return SimConfig.from_dict(doc)
    except ValueError as exc:
        raise UsageError(f"config {path}: {exc}") from None


# -- output ----------------------------------------------------------------------------------

#: The history columns `persafl run` prints, named as in history.csv and summary.json's
#: ``final``, with their number formats.
SUMMARY_COLUMNS = (("step", "d"), ("time", ".3f"), ("loss", ".4f"), ("grad_norm2", ".4g"),
                   ("weighted_grad_norm2", ".4g"), ("acc_global", ".3f"),
                   ("acc_pers_mean", ".3f"), ("acc_pers_min", ".3f"))


def _summary(res: Any, wall: float) -> str:
    h = res.history
    width = {k: max(len(k), 9) for k, _ in SUMMARY_COLUMNS}
    lines = [f"status: {res.status}" + (f" ({res.message})" if res.message else ""),
             " ".join(f"{k:>{width[k]}}" for k, _ in SUMMARY_COLUMNS)]
    for r in range(len(h)):
        lines.append(" ".join(
            f"{(int(h.columns[k][r]) if fmt == 'd' else float(h.columns[k][r])):>{width[k]}{fmt}}"
            for k, fmt in SUMMARY_COLUMNS))
    c = res.counters
    tr = res.trace
    st = f"{tr.staleness.mean():.2f}" if len(tr.staleness) else "n/a"
    lines.append(
        "counters: " + ", ".join(f"{k} {c[k]}" for k in ("arrivals", "applied", "dropped",
                                                          "failed", "max_staleness", "n_grad",
                                                          "n_hvp"))
        + f"; staleness mean {st}"
    )
    p = res.shares
    lines.append(f"arrival shares p_i: min {p.min():.3f} max {p.max():.3f} (uniform "
                 f"{1 / len(p):.3f}); virtual time {c['time']:.2f}; wall {wall:.2f} s")
    return "\n".join(lines)


def _finish(res: Any, out: Path | None, wall: float) -> int:
    if out is not None:  # save first: a closed pipe while printing must not lose the run
        res.save(out)
    print(_summary(res, wall))
    if out is not None:
        print(f"results written to {out}")
    return EXIT_OK if res.ok else EXIT_FAILED


class _StepBar:
    """A tqdm bar of server steps, fed by the engine's ``progress(version, T)`` callback."""

    def __init__(self, enabled: bool, desc: str = "server steps") -> None:
        self.bar = None
        self.enabled = enabled
        self.desc = desc

    def __call__(self, version: int, T: int) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=T, unit="step", desc=self.desc, leave=False)
        self.bar.update(version - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def kwargs(self) -> dict:
        return {"progress": self} if self.enabled else {}


# -- commands --------------------------------------------------------------------------------

def _cmd_demo(args: argparse.Namespace) -> int:
    from persafl_np.demo import demo_report, run_demo

    t0 = time.perf_counter()
    demo = run_demo(args.out, seed=args.seed)
    print(demo_report(demo, time.perf_counter() - t0))
    return EXIT_OK if demo.run.ok and demo.bound_ratio <= 1.0 else EXIT_FAILED


def _add_demo(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("demo", parents=[common], help="run the built-in main job (seconds)",
                       description="The built-in main job: an asynchronous PersA-FL run with MAML "
                       "clients on FedProx Synthetic (20 clients, unequal speeds), its timeline "
                       "figure, and the (T1) bound against measured runs (bound_vs_T.png).")
    p.add_argument("--seed", type=nonneg_int, default=0,
                   help="seed of the demo run (data, arrivals, batches; default 0)")
    p.add_argument("--out", type=out_dir, default=Path("persafl_demo"),
                   help="folder for the run's files and figures (default: ./persafl_demo)")
    p.set_defaults(func=_cmd_demo)


def _cmd_run(args: argparse.Namespace) -> int:
    from persafl_np.config import simulate

    cfg = load_run_config(args.config, args.set)
    if args.replay is not None:
        from persafl_np.results import read_trace_csv

        try:  # read the trace now: a bad file is a usage error before anything is written
            read_trace_csv(args.replay, cfg.data.n_clients)
        except (ValueError, KeyError, IndexError) as exc:
            raise UsageError(f"--replay {args.replay}: not a trace.csv of this config "
                             f"({exc})") from None
    if args.dry_run:
        print(f"# {args.config}: valid; resolved configuration (nothing was run or written)")
        print(cfg.to_toml(), end="")
        return EXIT_OK
    if args.out is None:
        raise UsageError("the following arguments are required: --out (or use --dry-run)")
    from persafl_np.run_folder import prepare_run_folder

    if args.record_batches:
        cfg = cfg.replace(record_batches=True)
    out = args.out
    prepare_run_folder(out, cfg, force=args.force)
    kw: dict[str, Any] = {}
    if args.checkpoint_every is not None:
        from persafl_np.atomic import atomic_write_text

        ck = out / "checkpoint"
        ck.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.toml", cfg.to_toml())
        atomic_write_text(ck / "cli.json", json.dumps(
            {"checkpoint_every": args.checkpoint_every,
             "replay": None if args.replay is None else str(args.replay),
             "batches": None if args.batches is None else str(args.batches)}))
        kw = {"checkpoint_dir": ck, "checkpoint_every": args.checkpoint_every}
    if args.batches is not None:
        kw["batches"] = str(args.batches)
    t0 = time.perf_counter()
    bar = _StepBar(not args.quiet)
    try:
        res = simulate(cfg, arrivals=None if args.replay is None else str(args.replay), **kw,
                       **bar.kwargs())
    except KeyboardInterrupt:
        bar.close()
        if kw:
            print(f"persafl run: interrupted; checkpoints are in {out / 'checkpoint'}: "
                  f"continue with `persafl resume {out}`", file=sys.stderr)
        else:
            print("persafl run: interrupted; nothing was saved (use --checkpoint-every N to "
                  "make a run resumable)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    return _finish(res, out, time.perf_counter() - t0)


def _add_run(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "run", parents=[common], help="run one TOML config",
        description="Run one configuration and write config.toml (fully resolved, rerunnable), "
        "trace.csv, jobs.csv, history.csv, final.npz, summary.json and fingerprint.json into "
        "--out; refuses an --out holding another configuration's run files unless --force.")
    p.add_argument("config", type=existing_file, metavar="CONFIG.toml")
    p.add_argument("--out", type=out_dir, default=None, metavar="DIR",
                   help="output folder (required unless --dry-run)")
    p.add_argument("--set", type=set_override, action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, TOML syntax, dotted key (repeatable), e.g. "
                   "--set algorithm.eta=0.02 --set oracle.name=maml")
    p.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="N",
                   help="write a checkpoint every N server steps (then `persafl resume DIR`)")
    p.add_argument("--replay", type=existing_file, default=None, metavar="TRACE.csv",
                   help="force the (client, pulled_version) schedule of a recorded trace.csv")
    p.add_argument("--record-batches", action="store_true",
                   help="save every arrival's mini-batch rows to OUT/batches.npz")
    p.add_argument("--batches", type=existing_file, default=None, metavar="BATCHES.npz",
                   help="use recorded mini-batches (with --replay: a replay without the RNG)")
    p.add_argument("--force", action="store_true",
                   help="clear the run files another configuration left in --out first")
    p.add_argument("--dry-run", action="store_true",
                   help="validate and print the resolved config; run and write nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)


def _cmd_resume(args: argparse.Namespace) -> int:
    from persafl_np.config import simulate

    d = args.dir
    ck = d / "checkpoint"
    from persafl_np.run_folder import read_cli_json
    from persafl_np.sim.checkpoint import has_checkpoint

    if not (ck / "cli.json").is_file() or not (d / "config.toml").is_file():
        raise UsageError(f"{d} has no checkpoint (run with --checkpoint-every N first)")
    try:
        meta = read_cli_json(ck / "cli.json")
    except ValueError as exc:
        raise UsageError(f"{exc} (not the file `persafl run` wrote)") from None
    cfg = load_run_config(d / "config.toml")
    started = has_checkpoint(ck)
    if not started:
        print(f"persafl resume: {d} was stopped before its first checkpoint; starting it from "
              "step 0", file=sys.stderr)
    t0 = time.perf_counter()
    bar = _StepBar(not args.quiet)
    try:
        res = simulate(cfg, arrivals=meta["replay"], checkpoint_dir=ck,
                       checkpoint_every=meta["checkpoint_every"], resume=started,
                       batches=meta["batches"], **bar.kwargs())
    except KeyboardInterrupt:
        print(f"persafl resume: interrupted; the checkpoints in {ck} are kept: run "
              f"`persafl resume {d}` again", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    return _finish(res, d, time.perf_counter() - t0)


def _add_resume(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("resume", parents=[common], help="continue a checkpointed run in DIR",
                       description="Continue a run started with --checkpoint-every; the result "
                       "is bit-identical to an uninterrupted run.")
    p.add_argument("dir", type=existing_dir, metavar="DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_resume)


def _cmd_bound(args: argparse.Namespace) -> int:
    print(f"persafl bound {args.config}: loading the config, building the problem and its "
          "constants ...", flush=True)  # first output at once, before the heavy imports
    from persafl_np.bounds.report import run_bound_report

    cfg = load_run_config(args.config, args.set)
    verdict = run_bound_report(cfg, run=args.run, n_seeds=args.seeds, stride=args.stride,
                               json_path=args.json, progress=not args.quiet,
                               emit=lambda line: print(line, flush=True), workers=args.workers)
    _print_applicable_bounds(cfg)
    return EXIT_OK if verdict == "holds" else EXIT_BOUND


def _print_applicable_bounds(cfg: Any) -> None:
    """Every theorem of theory/ for this config: its value, or which assumption fails
    (persafl_np.bounds.applicable_bounds; the exit code stays that of (T1) above)."""
    from persafl_np.bounds.applicable import applicable_bounds

    print("every bound of theory/ for this config (theory/assumptions.md §7):", flush=True)
    for e in applicable_bounds(cfg):
        head = f"  {e.name:<5} {e.source:<34}"
        print(f"{head} applies: bound {e.total:.6g}" if e.applies
              else f"{head} does not apply: {e.reason}", flush=True)


def _add_bound(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "bound", parents=[common], help="constants, step-size conditions (T2), the (T1) bound",
        description="Constants of the problem family, the step-size conditions (T2), the seven "
        "terms of the stationarity bound (T1) of theory/async_theorem.md and its assumptions; "
        "with --run, the measured (1/T) sum_t ||grad F(w^t)||^2 next to the bound. Exit 0 when "
        "the bound applies and holds, 3 when it is violated or does not apply (the reason is "
        "printed).")
    p.add_argument("config", type=existing_file, metavar="CONFIG.toml")
    p.add_argument("--set", type=set_override, action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (as for `persafl run`; repeatable)")
    p.add_argument("--run", action="store_true", help="also simulate and report measured/bound")
    p.add_argument("--seeds", type=positive_int, default=4, metavar="N",
                   help="seeds averaged with --run (seed, seed+1, ...; default 4)")
    p.add_argument("--stride", type=stride_arg, default="auto", metavar="K|auto",
                   help="with --run, evaluate ||grad F(w^t)||^2 at t = 0, K, 2K, ... and T and "
                   "interpolate linearly between them (trapezoid estimate); K = 1 measures the "
                   "exact left-hand side of (T1); auto (default): 1 on small problems, else "
                   "about 60 evaluations per seed (an estimate, said so)")
    p.add_argument("--json", type=out_file, default=None, metavar="FILE",
                   help="also write constants, conditions, terms, measured values and the ratio "
                   "as a JSON document")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="with --run, run up to N seeds at once (default: one per core, at most "
                   "one per seed; the measured values do not depend on it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_bound)


def _load_sweep_runs(path: Path, overrides: Sequence[tuple[str, Any]]) -> tuple[Any, list]:
    from persafl_np.sweep import expand, parse_sweep

    doc = read_toml(path, "sweep file")
    if overrides:
        if any(k == "seed" for k, _ in overrides):  # each run's seed would win over it
            raise UsageError("--set seed: a sweep's seeds come from its top-level "
                             "`seeds = [...]` list; change that list instead")
        if not isinstance(doc.get("base"), dict):
            raise UsageError(f"sweep file {path}: --set needs a [base] table")
        apply_overrides(doc["base"], overrides)
    try:
        spec = parse_sweep(doc)
        varied = sorted(k for k, _ in overrides if k in spec.grid)
        if varied:  # the grid would silently win over the --set value
            raise UsageError(f"--set {varied[0]}: this key is varied by the sweep's [grid]; "
                             "change the grid instead")
        return spec, expand(spec)  # every config validated before any run starts
    except ValueError as exc:
        raise UsageError(f"sweep file {path}: {exc}") from None


def _cmd_sweep(args: argparse.Namespace) -> int:
    from persafl_np.sweep import STATUSES, run_sweep

    spec, runs = _load_sweep_runs(args.sweep, args.set)
    if args.dask is not None and args.workers is not None:
        raise UsageError("--workers and --dask exclude each other")
    if not args.quiet:
        print(f"persafl sweep: {len(runs)} runs -> {args.out}")
    try:
        rep = run_sweep(runs, args.out, workers=args.workers, dask=args.dask,
                        progress=not args.quiet, diverge_factor=spec.diverge_factor)
    except KeyboardInterrupt:
        print(f"persafl sweep: interrupted; finished runs in {args.out} are kept and skipped "
              "when you rerun the same command", file=sys.stderr)
        return EXIT_INTERRUPTED
    counts = rep.counts()
    print(f"sweep: {rep.total} runs, {rep.skipped} already finished, {rep.completed} completed, "
          f"{len(rep.failed)} failed" + (f"; {rep.stale} finished under another configuration "
                                         "were rerun" if rep.stale else ""))
    print("status: " + ", ".join(f"{k} {counts[k]}" for k in STATUSES))
    for name, err in rep.failed.items():
        print(f"  FAILED {name}: {err} (traceback in {args.out / name / 'ERROR.txt'})")
    if not rep.success:
        return EXIT_FAILED
    if args.strict and not rep.all_ok:
        bad = [f"{n} ({s})" for n, s in sorted(rep.statuses.items()) if s != "ok"]
        print(f"--strict: {len(bad)} run(s) not ok: " + ", ".join(bad[:10])
              + (" ..." if len(bad) > 10 else ""), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _dask_address(text: str) -> str:
    if text != "local" and not text.startswith("tcp://"):
        raise argparse.ArgumentTypeError(f"must be 'local' or tcp://host:port, got {text!r}")
    return text


def _add_sweep(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "sweep", parents=[common], help="run a grid of configurations (resumable)",
        description="Run every grid point x seed of a sweep file (format: README, 'Sweep "
        "files'). Every configuration is validated before any run starts; finished runs are "
        "skipped on rerun; a failed run is reported (ERROR.txt), not fatal.")
    p.add_argument("sweep", type=existing_file, metavar="SWEEP.toml")
    p.add_argument("--out", type=out_dir, required=True, metavar="DIR")
    p.add_argument("--set", type=set_override, action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of the sweep's [base] config (repeatable)")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="local processes (default: the number of cores; 1 = this process)")
    p.add_argument("--dask", type=_dask_address, default=None, metavar="local|tcp://host:port",
                   help="run on a dask.distributed LocalCluster or an existing scheduler")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 unless every run's status is ok (not diverged/stalled/failed)")
    p.set_defaults(func=_cmd_sweep)


def _cmd_summarize(args: argparse.Namespace) -> int:
    from persafl_np.sweep import summarize

    path = summarize(args.dir)
    print(f"wrote {path} and {path.with_name(path.stem + '_mean.csv')}")
    return EXIT_OK


def _add_summarize(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("summarize", parents=[common],
                       help="tidy CSV of a sweep folder, mean ± std over seeds",
                       description="Write DIR/summary.csv (a row per finished run x evaluation "
                       "point) and DIR/summary_mean.csv (mean and std over seeds).")
    p.add_argument("dir", type=existing_dir, metavar="DIR")
    p.set_defaults(func=_cmd_summarize)


def _cmd_figures(args: argparse.Namespace) -> int:
    from persafl_np.plots.regenerate import figures_command

    return figures_command(args.quick, args.dir, args.workers, out=args.out)


def _add_figures(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "figures", parents=[common], help="regenerate every figure from figures/configs",
        description="Render every DIR/configs/*.toml (PNG + the CSV behind it). Without --quick "
        "this rebuilds the committed figures (and the bound figures; minutes). --quick is a "
        "preview (fewer seeds, shorter runs, titles say so) and needs --out outside DIR.")
    p.add_argument("--quick", action="store_true",
                   help="preview: each config's [quick] seeds and T scale; skips the bound figures")
    p.add_argument("--out", type=out_dir, default=None, metavar="OUT",
                   help="where to write (default: DIR; required with --quick, and not DIR)")
    p.add_argument("--dir", type=existing_dir, default=Path("figures"), metavar="DIR",
                   help="the figures folder holding configs/ (default: figures)")
    p.add_argument("--workers", type=positive_int, default=2, metavar="N",
                   help="local processes (default 2)")
    p.set_defaults(func=_cmd_figures)


def _cmd_init(args: argparse.Namespace) -> int:
    from persafl_np.templates import template_text

    text = template_text(args.template)
    if args.out is None:
        print(text, end="")
        return EXIT_OK
    from persafl_np.atomic import atomic_write_text

    atomic_write_text(args.out, text)
    kind = "sweep" if args.template == "sweep" else "run"
    print(f"wrote {args.out} (template {args.template!r}); next: persafl {kind} {args.out} "
          + ("--out results/" if kind == "sweep" else "--out run_out/"))
    return EXIT_OK


def _add_init(sub: Any, common: argparse.ArgumentParser) -> None:
    from persafl_np.templates import TEMPLATES

    lines = "; ".join(f"{k}: {v}" for k, v in TEMPLATES.items())
    p = sub.add_parser("init", parents=[common], help="write a commented starter config",
                       description=f"Write a commented starter configuration. Templates: "
                       f"{lines}.")
    p.add_argument("template", nargs="?", default="maml", choices=sorted(TEMPLATES),
                   metavar="TEMPLATE", help=f"one of {', '.join(TEMPLATES)} (default maml)")
    p.add_argument("--out", type=out_file, default=None, metavar="FILE",
                   help="file to write (never overwritten; default: print to stdout)")
    p.set_defaults(func=_cmd_init)


def _cmd_config(args: argparse.Namespace) -> int:
    from persafl_np.config import describe

    print(describe(markdown=args.markdown), end="")
    return EXIT_OK


def _add_config(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("config", parents=[common], help="list every config table and key",
                       description="List every table and key of a run config with its type, "
                       "allowed values, default and meaning, generated from the components' "
                       "declarations (persafl_np.config.describe).")
    p.add_argument("--list", action="store_true", help="list every table and key (the default)")
    p.add_argument("--markdown", action="store_true",
                   help="as a Markdown table (the README's configuration reference)")
    p.set_defaults(func=_cmd_config)


def _add_falsify(sub: Any, common: argparse.ArgumentParser) -> None:
    from persafl_np.falsify_cli import add_falsify_parser

    add_falsify_parser(sub, [common], file_type=existing_file, count_type=positive_int)


def _add_animate(sub: Any, common: argparse.ArgumentParser) -> None:
    from persafl_np.animate_cli import add_animate_parser

    add_animate_parser(sub, [common])


#: (name, registrar): the one place a subcommand is registered.
COMMANDS: tuple[tuple[str, Callable[[Any, argparse.ArgumentParser], None]], ...] = (
    ("demo", _add_demo),
    ("init", _add_init),
    ("config", _add_config),
    ("run", _add_run),
    ("resume", _add_resume),
    ("bound", _add_bound),
    ("sweep", _add_sweep),
    ("summarize", _add_summarize),
    ("figures", _add_figures),
    ("falsify", _add_falsify),
    ("animate", _add_animate),
)


# -- the parser and the error boundary -------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2) naming the command."""

    def error(self, message: str) -> Any:  # noqa: D401
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from persafl_np import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the Python traceback of an error")
    parser = _Parser(prog="persafl", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"persafl_np {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an "
                        "error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    for _, add in COMMANDS:
        add(sub, common)
    return parser


def _error(command: str, message: str) -> None:
    print(f"persafl {command}: error: {message}", file=sys.stderr)


def _describe_os_error(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else ""
    reason = {FileNotFoundError: "no such file or folder", IsADirectoryError: "is a folder",
              NotADirectoryError: "is not a folder", PermissionError: "permission denied",
              FileExistsError: "already exists"}.get(type(exc), exc.strerror or str(exc))
    return f"{name}: {reason}" if name else str(reason)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see :data:`EPILOG`)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # outside a command (while parsing, or while reporting an error)
        if "--debug" in (sys.argv[1:] if argv is None else argv):
            raise
        print("persafl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args))
    except UsageError as exc:
        if debug:
            raise
        _error(args.command, str(exc))
        return EXIT_USAGE
    except ValueError as exc:
        if debug:
            raise
        _error(args.command, str(exc))
        return EXIT_USAGE
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            return _closed_pipe()
        if debug:
            raise
        _error(args.command, _describe_os_error(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"persafl {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug, not a user error: say so, traceback with --debug
        if debug:
            raise
        _error(args.command, f"internal error {type(exc).__name__}: {exc} (rerun with --debug "
               "for the traceback, and please report it)")
        return EXIT_FAILED


def _closed_pipe() -> int:
    """The reader closed stdout: silence further writes (at exit too) and leave quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests); nothing to silence
        pass
    return EXIT_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
