"""How often does a CLI mistake show a Python traceback? (goal: never)

Samples N (default 320) everyday mistakes — missing / unreadable / wrong-kind paths, bad TOML,
out-of-range or mistyped config values, bad flag values, malformed ``--set``, interrupts (Ctrl-C
at the start of the work) and closed output pipes — runs each through ``persafl_np.cli.main`` in
this process (stdout/stderr captured), and counts:

* tracebacks: an exception escaping ``main`` or "Traceback" on stderr (the goal is 0);
* multi-line errors: more than one non-empty stderr line for a failing command;
* internal errors: the one-line "internal error" fallback (a bug reached the boundary);
* exit codes.

Also sampled: well-formed ``--set`` values that are wrong for their key, starter configs
(``persafl init``) over existing or unwritable paths, paths no one can read (dangling links,
link loops, paths through a file, names too long; unreadable permissions only when not root,
since root reads every file) and ``persafl config`` mistakes where that command exists.

Then a few real processes: ``persafl run ... | head -c 10``, ``bound | head``, ``run --dry-run |
head`` (closed pipes) and SIGINT sent to a running ``persafl run``, ``bound --run`` and
``sweep`` (real Ctrl-C). Deterministic in ``--seed``. Usage::

    python benchmarks/cli_mistakes.py [--n 320] [--seed 0] [--no-processes]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOOD = """seed = 0
T = 8
eval_every = 4
[data]
n_clients = 3
n_features = 2
n_samples = 8
[algorithm]
Q = 2
eta = 0.05
[arrivals]
mode = "event"
"""
SWEEP = ('seeds = [0]\n[grid]\n"algorithm.eta" = [0.01, 0.02]\n[base]\n'
         + GOOD.replace("[data]", "[base.data]").replace("[algorithm]", "[base.algorithm]")
         .replace("[arrivals]", "[base.arrivals]"))

BAD_TOML = ["T = = 1\n", "[data\nn_clients = 3\n", "T = 'unterminated\n", "seed = 0\nseed = 1\n",
            "T = 1_\n", "[a]\n[a]\n", "x = [1, 2\n", "= 3\n", "T = 01\n", "T = 1.2.3\n"]
BAD_VALUES = [("T", "0"), ("T", "-3"), ("T", '"ten"'), ("T", "1.5"), ("T", "true"),
              ("seed", "-1"), ("eval_every", "0"), ("algorithm.eta", "0"),
              ("algorithm.eta", '"0.1"'), ("algorithm.Q", "0"), ("algorithm.name", '"sgd"'),
              ("algorithm.etta", "0.1"), ("data.n_clients", "0"), ("data.name", '"mnist"'),
              ("model.name", '"cnn"'), ("oracle.name", '"maml2"'), ("oracle.alpha", "-1"),
              ("arrivals.mode", '"async"'), ("arrivals.tau", "-1"),
              ("arrivals.staleness", '"wait"'), ("arrivals.speeds", "[1.0]"),
              ("arrivals.speeds", "[1.0, -2.0, 1.0]"), ("arrivals.job_time.law", '"gamma"'),
              ("arrivals.job_time.mean", '"2.5"'), ("arrivals.job_time.mean", "-1.0"),
              ("arrivals.dropout", "1.5"), ("arrivals.concurrency", "0"),
              ("arrivals.job_trace", '"nowhere.csv"'), ("nonsense", "1"),
              ("algorithm", "3"), ("arrivals.job_time", '"exp"'),
              ("arrivals.job_time.law", '"lognormal"\n[arrivals.job_time]\nmu = 1000.0')]
BAD_INTS = ["-5", "0", "x", "1.5", "", "1e3", "-1", "two"]  # ("0" is valid only for --seed)
#: Values of existing keys that parse as TOML but are out of range or of the wrong type.
SET_VALUES = [("T", "1e400"), ("T", "9223372036854775808"), ("seed", "1.0"), ("T", "nan"),
              ("data.n_clients", "[4]"), ("data.n_clients", "{a = 1}"),
              ("arrivals.job_time.mean", "inf"), ("arrivals.job_time.mean", "-inf"),
              ("algorithm.eta", "1e-400"), ("algorithm.eta", "nan"), ("oracle.alpha", "inf"),
              ("algorithm.batch_size", "0"), ("algorithm.batch_size", "-4"),
              ("arrivals.staleness", '"block"'), ("arrivals.tau_max", "-2"),
              ("model.name", '"logistic"'), ("data.name", '""'), ("data.n_features", "0"),
              ("eval_every", "100000000000"), ("algorithm.Q", "true"),
              ("arrivals.speeds", '"fast"'), ("cohort_size", "0"), ("dtype", '"float16"'),
              ("record_batches", '"yes"'), ("T", '"\u00e9"')]


class Case:
    def __init__(self, kind: str, argv: list[str], patch: str | None = None) -> None:
        self.kind, self.argv, self.patch = kind, argv, patch


def sample_cases(rng: random.Random, n: int, d: Path) -> list[Case]:
    good, sweep = d / "good.toml", d / "sweep.toml"
    good.write_text(GOOD)
    sweep.write_text(SWEEP)
    (d / "folder").mkdir(exist_ok=True)
    (d / "notes.toml").write_text("These are my notes about the run.\n")
    (d / "binary.toml").write_bytes(bytes(range(256)))
    (d / "trace.csv").write_text("time,step\n1,2\n")
    (d / "existing.json").write_text("{}")
    out = str(d / "out")
    missing = str(d / "missing.toml")
    cmds_with_config = ["run", "bound", "sweep"]
    # paths that no one can read, root included: a dangling link, a link loop, a path through a
    # file, a name too long for the file system; and, when not root, a file without permissions
    (d / "dangling.toml").symlink_to(d / "nowhere.toml")
    (d / "loop.toml").symlink_to(d / "loop.toml")
    unreadable = [str(d / "dangling.toml"), str(d / "loop.toml"), str(good / "x.toml"),
                  str(d / ("n" * 300 + ".toml"))]
    if os.geteuid() != 0:
        (d / "secret.toml").write_text(GOOD)
        (d / "secret.toml").chmod(0)
        unreadable.append(str(d / "secret.toml"))

    def cfg_for(cmd: str) -> str:
        return str(sweep if cmd == "sweep" else good)

    def tail(cmd: str) -> list[str]:
        return {"run": ["--out", out, "--quiet"], "sweep": ["--out", out, "--quiet",
                                                            "--workers", "1"],
                "bound": ["--quiet"]}[cmd]

    makers = []

    def path_mistake() -> Case:
        cmd = rng.choice(cmds_with_config + ["summarize", "resume"])
        wrong = rng.choice([missing, str(d / "folder"), str(d / "notes.toml"),
                            str(d / "binary.toml"), str(good if cmd == "sweep" else sweep),
                            str(d / "trace.csv"), *unreadable])
        if cmd in ("summarize", "resume"):
            wrong = rng.choice([missing, str(good), str(d / "folder"), *unreadable[:2]])
            return Case("path", [cmd, wrong])
        return Case("path", [cmd, wrong] + tail(cmd))

    def set_value() -> Case:  # well-formed --set KEY=VALUE whose value is wrong for the key
        cmd = rng.choice(cmds_with_config)
        key, val = rng.choice(SET_VALUES)
        return Case("set-value", [cmd, cfg_for(cmd), "--set", f"{key}={val}"] + tail(cmd))

    def init_over() -> Case:  # a starter config written over something that exists
        target = rng.choice([str(good), str(sweep), str(d / "folder"), str(d / "binary.toml"),
                             str(d / "nofolder" / "x.toml"), str(good / "x.toml"),
                             "/proc/persafl.toml"])
        return Case("init", ["init", rng.choice(["maml", "theorem", "sweep"]), "--out", target])

    def bad_toml() -> Case:
        cmd = rng.choice(cmds_with_config)
        f = d / f"bad{rng.randrange(10**6)}.toml"
        f.write_text(rng.choice(BAD_TOML))
        return Case("toml", [cmd, str(f)] + tail(cmd))

    def bad_value() -> Case:
        cmd = rng.choice(["run", "bound", "run"])
        key, val = rng.choice(BAD_VALUES)
        f = d / f"val{rng.randrange(10**6)}.toml"
        lines = GOOD
        if "\n" in val:  # a table of its own
            lines += f"[arrivals.job_time]\nlaw = {val}\n"
        elif "." not in key:
            lines = f"{key} = {val}\n" + lines
        else:
            table, leaf = key.rsplit(".", 1)
            lines += f"\n[{table}]\n{leaf} = {val}\n"
        f.write_text(lines)
        return Case("value", [cmd, str(f)] + tail(cmd))

    def bad_set() -> Case:
        cmd = rng.choice(cmds_with_config)
        key, val = rng.choice(BAD_VALUES[:-1])
        s = rng.choice([f"{key}={val}", key, f"{key}=", f"={val}", f"{key}=[1,", f"{key}.=1",
                        f"{key}={{"])
        return Case("set", [cmd, cfg_for(cmd), "--set", s] + tail(cmd))

    def bad_flag() -> Case:
        cmd, flag = rng.choice([("run", "--checkpoint-every"), ("sweep", "--workers"),
                                ("bound", "--seeds"), ("bound", "--stride"), ("demo", "--seed"),
                                ("bound", "--workers"),
                                ("figures", "--workers"), ("sweep", "--dask"),
                                ("run", "--replay"), ("run", "--out"), ("bound", "--json"),
                                ("init", "--out"), ("figures", "--dir"), ("figures", "--out")])
        if flag in ("--replay",):
            v = rng.choice([missing, str(d / "folder"), str(d / "trace.csv"), str(good)])
        elif flag in ("--out",):
            v = rng.choice([str(good), str(d / "binary.toml"), ""])
        elif flag == "--json":
            v = rng.choice([str(d / "folder"), str(d / "existing.json"),
                            str(d / "nofolder" / "x.json")])
        elif flag == "--dir":
            v = rng.choice([missing, str(good)])
        elif flag == "--dask":
            v = rng.choice(["localhost", "", "tcp:/x", "8786"])
        else:
            v = rng.choice(BAD_INTS)
        argv = [cmd] + ([cfg_for(cmd)] if cmd in cmds_with_config else []) + [f"{flag}={v}"]
        if cmd in ("run", "sweep") and flag != "--out":
            argv += ["--out", out]
        if cmd == "figures" and flag != "--out":
            argv += ["--quick", "--out", out]
        if cmd == "demo":
            argv += ["--out", out]
        return Case("flag", argv)

    def usage() -> Case:
        return Case("usage", rng.choice([
            [], ["frobnicate"], ["run"], ["run", str(good)], ["sweep", str(sweep)],
            ["run", str(good), "--out", out, "--nope"], ["bound", str(good), "extra"],
            ["init", "nosuch"], ["init", "maml", "--out", str(good)],
            ["run", str(good), "--dry-run", "x"],
            ["resume"], ["summarize"], ["run", "--out", out], ["figures", "--quick"],
        ]))

    def interrupt() -> Case:
        cmd = rng.choice(["run", "sweep", "bound", "run"])
        extra = ["--checkpoint-every", "4"] if cmd == "run" and rng.random() < 0.5 else []
        return Case("interrupt", [cmd, cfg_for(cmd)] + tail(cmd) + extra
                    + (["--run"] if cmd == "bound" else []), patch="ctrl-c")

    def pipe() -> Case:
        cmd = rng.choice(["run", "bound", "init", "sweep"])
        if cmd == "init":
            return Case("pipe", ["init", rng.choice(["maml", "theorem", "sweep"])], patch="pipe")
        return Case("pipe", [cmd, cfg_for(cmd)] + tail(cmd), patch="pipe")

    def config_cmd() -> Case:  # `persafl config` (issue 11), sampled only where it exists
        return Case("config", rng.choice([
            ["config", "--list", "extra"], ["config", "--lits"], ["config", "--list=x"],
            ["config", "nosuch.table"], ["config", "--list", "--out", str(good)],
            ["config", str(d / "folder")], ["config", missing], ["config", "--list", "--debug"],
        ]))

    makers = [path_mistake] * 3 + [bad_toml] * 2 + [bad_value] * 3 + [bad_set] * 2 + \
        [bad_flag] * 3 + [usage] + [interrupt] + [pipe] + [set_value] * 2 + [init_over]
    if "config" in _commands():
        makers.append(config_cmd)
    return [rng.choice(makers)() for _ in range(n)]


def _commands() -> set[str]:
    """The subcommands the parser knows (so the sampler follows the CLI as it grows)."""
    from persafl_np.cli import build_parser

    parser = build_parser()
    for action in parser._actions:  # noqa: SLF001 — argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return set(action.choices)
    return set()


class _ClosedPipe(io.TextIOBase):
    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def run_case(case: Case) -> tuple[int | str, str, bool]:
    """(exit code or 'EXC', stderr, traceback seen)."""
    import persafl_np.config as config
    import persafl_np.sim as sim
    import persafl_np.sweep as sweep
    from persafl_np.cli import main

    err = io.StringIO()
    out: io.TextIOBase = _ClosedPipe() if case.patch == "pipe" else io.StringIO()
    saved = (config.simulate, sweep.run_sweep, sim.run)
    if case.patch == "ctrl-c":
        def ctrl_c(*a, **k):
            raise KeyboardInterrupt

        config.simulate = ctrl_c
        sweep.run_sweep = ctrl_c
        sim.run = ctrl_c
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code: int | str = main(case.argv)
    except SystemExit as exc:  # argparse's own exit (a usage message, not a traceback)
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException as exc:  # noqa: BLE001 — this is exactly what we count
        code = "EXC"
        err.write(f"Traceback (escaped main): {type(exc).__name__}: {exc}\n")
    finally:
        config.simulate, sweep.run_sweep, sim.run = saved
    text = err.getvalue()
    return code, text, code == "EXC" or "Traceback" in text


def real_processes(d: Path) -> list[tuple[str, int, bool]]:
    good = d / "proc.toml"
    good.write_text(GOOD.replace("T = 8", "T = 4000").replace("eval_every = 4",
                                                              "eval_every = 1000"))
    rows = []
    for k in range(3):  # closed pipe
        cmd = (f"{sys.executable} -m persafl_np run {good} --out {d / f'p{k}'} --quiet "
               "| head -c 10 > /dev/null")
        r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
        rows.append(("pipe: run | head -c 10", r.returncode, "Traceback" in r.stderr))
        cmd = f"{sys.executable} -m persafl_np init sweep | head -n 1 > /dev/null"
        r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
        rows.append(("pipe: init | head -n 1", r.returncode, "Traceback" in r.stderr))
    for label, cmd in (
            ("pipe: bound | head -n 1", f"{sys.executable} -m persafl_np bound {good} --quiet "
             "| head -n 1 > /dev/null"),
            ("pipe: run --dry-run | head -n 1", f"{sys.executable} -m persafl_np run {good} "
             "--dry-run | head -n 1 > /dev/null")):
        r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
        rows.append((label, r.returncode, "Traceback" in r.stderr))
    slow = d / "slow.toml"  # long enough that the signal always lands while working
    slow.write_text(GOOD.replace("T = 8", "T = 40000").replace("eval_every = 4",
                                                                "eval_every = 10000"))
    sweep = d / "slow_sweep.toml"
    sweep.write_text('seeds = [0, 1]\n[grid]\n"algorithm.eta" = [0.01, 0.02]\n[base]\n'
                     + slow.read_text().replace("[data]", "[base.data]")
                     .replace("[algorithm]", "[base.algorithm]")
                     .replace("[arrivals]", "[base.arrivals]"))
    for label, argv in (("SIGINT: bound --run", ["bound", str(slow), "--run", "--quiet"]),
                        ("SIGINT: sweep", ["sweep", str(sweep), "--out", str(d / "sw"),
                                           "--quiet", "--workers", "2"])):
        p = subprocess.Popen([sys.executable, "-m", "persafl_np", *argv], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3.0)
        p.send_signal(signal.SIGINT)
        _, stderr = p.communicate(timeout=300)
        rows.append((label, p.returncode, "Traceback" in stderr))
    for k, delay in enumerate((1.0, 2.0, 3.0)):  # a real SIGINT while working
        extra = ["--checkpoint-every", "500"] if k % 2 == 0 else []
        p = subprocess.Popen([sys.executable, "-m", "persafl_np", "run", str(good), "--out",
                              str(d / f"i{k}"), "--quiet", *extra], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        _, stderr = p.communicate(timeout=300)
        rows.append((f"SIGINT after {delay:.0f} s{' (checkpointing)' if extra else ''}",
                     p.returncode, "Traceback" in stderr))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=320)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-processes", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cases = sample_cases(rng, args.n, d)
        codes: Counter = Counter()
        kinds: Counter = Counter()
        tracebacks, multi, internal, accepted = [], [], [], []
        t0 = time.perf_counter()
        for c in cases:
            code, err, tb = run_case(c)
            codes[code] += 1
            kinds[c.kind] += 1
            lines = [ln for ln in err.splitlines() if ln.strip()]
            if tb:
                tracebacks.append((c.argv, err.strip().splitlines()[-1:]))
            elif code not in (0, 141) and len(lines) > 1:
                multi.append((c.argv, lines))
            if "internal error" in err:
                internal.append((c.argv, lines[-1:]))
            if code == 0:
                accepted.append(c.argv)
        wall = time.perf_counter() - t0
        print(f"{len(cases)} sampled CLI mistakes in {wall:.1f} s; by kind: {dict(kinds)}")
        print(f"exit codes: {dict(sorted(codes.items(), key=str))}")
        print(f"tracebacks: {len(tracebacks)}")
        for argv, last in tracebacks[:10]:
            print("  ", argv, last)
        print(f"errors longer than one line: {len(multi)}")
        for argv, lines in multi[:5]:
            print("  ", argv, lines[:3])
        print(f"accepted (exit 0: not a mistake after all, or one that slips through): "
              f"{len(accepted)}")
        for argv in accepted[:10]:
            print("  ", argv)
        print(f"internal errors (one line, no traceback): {len(internal)}")
        for argv, last in internal[:10]:
            print("  ", argv, last)
        if not args.no_processes:
            rows = real_processes(d)
            print("real processes (exit code, traceback?):")
            for name, rc, tb in rows:
                print(f"   {name:<40} rc={rc:<4} traceback={tb}")
            tracebacks += [r for r in rows if r[2]]
    return 1 if tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
