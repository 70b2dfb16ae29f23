"""Real-kill resume check: SIGKILL ``persafl run --checkpoint-every`` at random instants and at
every injected point between two checkpoint writes, ``persafl resume`` each time, and compare the
final files byte for byte with an uninterrupted run (persafl_np/sim/checkpoint.py).

Usage::

    python benchmarks/kill_resume.py [--random 12] [--kinds persafl_event,local_theorem,...]

Prints one line per run kind and a total: kills, unrecoverable runs, byte-identical runs.
The test tests/test_checkpoint_kill.py runs a bounded form of the same harness.

Compared files: trace.csv, jobs.csv, history.csv, final.npz, config.toml, fingerprint.json
byte for byte, and summary.json without the wall-clock counters (``wall_seconds``,
``eval_seconds``: they differ by nature). Injected kills use the documented hook
``PERSAFL_CHECKPOINT_KILL_AT=k`` (the k-th injection point of the process calls
``os._exit(86)``); random kills are ``SIGKILL`` after a uniform delay in [0, 1.2 × the
uninterrupted run's wall time].
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from persafl_np.results import WALL_CLOCK_COUNTERS  # noqa: E402
from persafl_np.sim.checkpoint import KILL_ENV, KILL_EXIT_CODE, POINTS_PER_SAVE  # noqa: E402

_COMMON = """seed = 3
T = {T}
eval_every = 10
[data]
n_clients = 6
n_features = 3
n_samples = 12
"""
#: Run kinds: (config text, checkpoint_every). Each has >= 20 checkpoints.
KINDS: dict[str, tuple[str, int]] = {
    "persafl_event": (_COMMON + """[algorithm]
name = "persafl"
Q = 2
eta = 0.05
batch_size = 4
[arrivals]
mode = "event"
dropout = 0.1
staleness = "drop"
tau_max = 3
[arrivals.job_time]
law = "lognormal"
sigma = 1.0
""", 10),
    "fedbuff_event": (_COMMON + """[algorithm]
name = "fedbuff"
K = 3
Q = 2
eta = 0.05
[arrivals]
mode = "event"
staleness = "block"
tau_max = 4
concurrency = 4
[arrivals.job_time]
law = "exponential"
""", 10),
    "sync_event": (_COMMON + """[algorithm]
name = "fedavg"
clients_per_round = 3
Q = 2
eta = 0.05
batch_size = 4
[arrivals]
mode = "event"
[arrivals.job_time]
law = "exponential"
""", 5),
    "local_theorem": (_COMMON + """[algorithm]
name = "local"
Q = 1
eta = 0.05
batch_size = 4
[arrivals]
mode = "theorem"
tau = 3
""", 10),
    "persafl_theorem_maml": (_COMMON + """[oracle]
name = "maml"
alpha = 0.01
[algorithm]
name = "persafl"
Q = 2
eta = 0.05
[arrivals]
mode = "theorem"
tau = 4
policy = "max"
""", 10),
}
COMPARED = ("trace.csv", "jobs.csv", "history.csv", "final.npz", "config.toml",
            "fingerprint.json")


def outputs(d: Path) -> dict[str, bytes]:
    """The compared files of a run folder (summary.json without its wall-clock counters)."""
    out = {f: (d / f).read_bytes() for f in COMPARED}
    s = json.loads((d / "summary.json").read_text())
    for k in WALL_CLOCK_COUNTERS:
        s["counters"].pop(k, None)
    out["summary.json"] = json.dumps(s, sort_keys=True).encode()
    return out


def _cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    e = dict(os.environ)
    e.pop(KILL_ENV, None)
    e.update(env or {})
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-m", "persafl_np.cli", *args, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=e)


@dataclass
class Tally:
    """What one kind's trials did."""

    kills: int = 0
    kills_after_checkpoint: int = 0
    trials: int = 0
    unrecoverable: int = 0
    identical: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.kills += other.kills
        self.kills_after_checkpoint += other.kills_after_checkpoint
        self.trials += other.trials
        self.unrecoverable += other.unrecoverable
        self.identical += other.identical
        self.errors += other.errors


def _finish_chain(cfg: Path, out: Path, steps: list[tuple[str, float]], ref: dict[str, bytes],
                  tally: Tally, label: str) -> None:
    """Run ``steps`` (("inject", k) or ("random", seconds)), first `run` then `resume`, then a
    final uninterrupted resume; compare with ``ref``."""
    first = True
    for kind, x in steps:
        args = (("run", str(cfg), "--out", str(out), "--checkpoint-every", str(_every[label]))
                if first else ("resume", str(out)))
        env = {KILL_ENV: str(int(x))} if kind == "inject" else None
        p = _cli(*args, env=env)
        if kind == "random":
            try:
                p.wait(timeout=x)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
        _, err = p.communicate()
        rc = p.returncode
        if rc in (-signal.SIGKILL, KILL_EXIT_CODE):
            tally.kills += 1
            tally.kills_after_checkpoint += (out / "checkpoint" / "MANIFEST.json").exists()
            first = first and not (out / "checkpoint" / "cli.json").exists()
        elif rc == 0:
            first = False
        else:
            tally.errors.append(f"{label} {kind}={x}: exit {rc}: {err.decode()[-300:]}")
            tally.unrecoverable += 1
            return
    p = _cli(*(("run", str(cfg), "--out", str(out), "--checkpoint-every", str(_every[label]))
               if first else ("resume", str(out))))
    _, err = p.communicate()
    tally.trials += 1
    if p.returncode != 0:
        tally.unrecoverable += 1
        tally.errors.append(f"{label}: final resume exit {p.returncode}: {err.decode()[-300:]}")
        return
    got = outputs(out)
    if got == ref:
        tally.identical += 1
    else:
        diff = sorted(k for k in ref if got.get(k) != ref[k])
        tally.errors.append(f"{label} {steps}: files differ: {diff}")


_every: dict[str, int] = {}


def check_kind(label: str, work: Path, *, T: int, inject: list[int], n_random: int,
               rng: random.Random, chain: int = 4) -> Tally:
    """Reference run, then the injected kills as one chain (each resumed process dies at the
    next point), then ``n_random`` SIGKILLs in chains of ``chain`` kills."""
    text, every = KINDS[label]
    _every[label] = every
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cfg = work / f"{label}.toml"
    cfg.write_text(text.format(T=T))
    ref_dir = work / f"{label}-ref"
    t0 = time.perf_counter()
    p = _cli("run", str(cfg), "--out", str(ref_dir))
    _, err = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{label}: reference run failed: {err.decode()}")
    ref = outputs(ref_dir)
    tally = Tally()
    if inject:
        _finish_chain(cfg, work / f"{label}-inject", [("inject", k) for k in inject], ref,
                      tally, label)
    n_chains = (n_random + chain - 1) // chain
    for c in range(n_chains):
        m = min(chain, n_random - c * chain)
        steps = [("random", rng.uniform(0.0, 1.2 * wall)) for _ in range(m)]
        _finish_chain(cfg, work / f"{label}-random{c}", steps, ref, tally, label)
    return tally


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--random", type=int, default=12, help="random SIGKILLs per kind")
    ap.add_argument("--T", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    a = ap.parse_args(argv)
    import tempfile

    work = Path(a.work or tempfile.mkdtemp(prefix="kill_resume_"))
    rng = random.Random(a.seed)
    total = Tally()
    # every point of the first save and of a later save, each in its own process of one chain
    inject = list(range(1, 2 * POINTS_PER_SAVE + 1))
    print(f"{'kind':<22} {'kills':>5} {'(after 1st ckpt)':>16} {'trials':>6} "
          f"{'unrecoverable':>13} {'identical':>9}")
    for label in a.kinds.split(","):
        t = check_kind(label, work / label, T=a.T, inject=inject, n_random=a.random, rng=rng)
        total.add(t)
        print(f"{label:<22} {t.kills:>5} {t.kills_after_checkpoint:>16} {t.trials:>6} "
              f"{t.unrecoverable:>13} {t.identical:>9}")
        for e in t.errors:
            print("   ", e)
    print(f"{'total':<22} {total.kills:>5} {total.kills_after_checkpoint:>16} "
          f"{total.trials:>6} {total.unrecoverable:>13} {total.identical:>9}")
    ok = total.unrecoverable == 0 and total.identical == total.trials
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
