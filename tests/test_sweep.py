"""Sweeps: expansion, up-front validation, resumability, failure isolation, Dask parity.

The run function here is a small deterministic stand-in that writes a history.csv from
its config, so these tests exercise the sweep machinery alone; tests/sim covers the
simulator that the default run function calls.
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest

from persafl_np.sweep import DONE, expand, load_sweep, parse_sweep, run_sweep, summarize


def _accept(cfg):
    allowed = {"seed", "client", "algorithm"}
    unknown = set(cfg) - allowed
    if unknown:
        raise ValueError(f"unknown config field(s) {sorted(unknown)}")
    if cfg["client"]["eta"] <= 0:
        raise ValueError("client.eta must be > 0")
    return cfg


def fake_run(config, run_dir):
    """Deterministic stand-in for simulate+save: 3 eval points of a made-up metric."""
    if config["algorithm"]["name"] == "boom":
        raise RuntimeError("deliberate failure")
    eta, seed = config["client"]["eta"], config["seed"]
    with open(Path(run_dir) / "history.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "grad_norm2"])
        for step in range(3):
            w.writerow([step, eta * (step + 1) + 0.01 * seed])


BASE = {"client": {"eta": 0.1, "Q": 1}, "algorithm": {"name": "persafl"}}


def _spec(grid, seeds=(0, 1)):
    return parse_sweep({"base": BASE, "grid": grid, "seeds": list(seeds)})


def test_expand_is_cartesian_product_times_seeds():
    spec = _spec({"client.eta": [0.1, 0.2], "algorithm.name": ["persafl", "fedasync"]})
    runs = expand(spec, validate=_accept)
    assert len(runs) == 2 * 2 * 2
    assert len({r.name for r in runs}) == len(runs)
    etas = sorted({r.config["client"]["eta"] for r in runs})
    assert etas == [0.1, 0.2]
    assert all(r.config["client"]["Q"] == 1 for r in runs)  # base values kept
    assert BASE["client"]["eta"] == 0.1  # base not mutated


@pytest.mark.parametrize(
    "doc, match",
    [
        ({"base": BASE, "grid": {"client.eta": []}}, "non-empty list"),
        ({"base": BASE, "grid": {"client.eta": [0.1, "x"]}}, "mixes value types"),
        ({"base": BASE, "grid": {}, "seeds": []}, "seeds"),
        ({"grid": {}}, r"\[base\]"),
        ({"base": BASE, "grdi": {}}, "unknown top-level"),
        ({"base": {**BASE, "seed": 3}, "grid": {}}, "base.seed is replaced"),
    ],
)
def test_bad_sweep_structure_rejected(doc, match):
    with pytest.raises(ValueError, match=match):
        parse_sweep(doc)


def test_unknown_field_and_bad_value_rejected_before_any_run(tmp_path):
    calls = []
    with pytest.raises(ValueError, match="unknown config field"):
        expand(_spec({"clinet.eta": [0.1]}), validate=_accept)
    with pytest.raises(ValueError, match="client.eta must be > 0"):
        runs = expand(_spec({"client.eta": [0.1, -1.0]}), validate=_accept)
        run_sweep(runs, tmp_path, workers=1, run_fn=lambda c, d: calls.append(c), progress=False)
    assert calls == []


def test_load_sweep_toml(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(
        textwrap.dedent(
            """
            name = "t"
            seeds = [3]
            [base.client]
            eta = 0.5
            [base.algorithm]
            name = "persafl"
            [grid]
            "client.eta" = [0.5, 1.0]
            """
        )
    )
    spec = load_sweep(p)
    assert spec.seeds == [3] and spec.grid == {"client.eta": [0.5, 1.0]}


def test_failure_isolated_and_resume_skips_finished(tmp_path):
    spec = _spec({"algorithm.name": ["persafl", "boom"]}, seeds=(0,))
    runs = expand(spec, validate=_accept)
    rep = run_sweep(runs, tmp_path, workers=1, run_fn=fake_run, progress=False)
    assert rep.total == 2 and rep.completed == 1 and len(rep.failed) == 1
    (bad,) = rep.failed
    assert "boom" in bad and "deliberate failure" in rep.failed[bad]
    assert (tmp_path / bad / "ERROR.txt").exists()
    # Rerun: the finished run is skipped, the failed one is tried again.
    seen = []

    def counting(config, run_dir):
        seen.append(config["algorithm"]["name"])
        fake_run(config, run_dir)

    rep2 = run_sweep(runs, tmp_path, workers=1, run_fn=counting, progress=False)
    assert rep2.skipped == 1 and seen == ["boom"]


def test_interrupted_sweep_completes_on_rerun(tmp_path):
    """Simulate a kill after two runs: rerunning finishes the rest and touches nothing done."""
    runs = expand(_spec({"client.eta": [0.1, 0.2, 0.3]}, seeds=(0, 1)), validate=_accept)
    run_sweep(runs[:2], tmp_path, workers=1, run_fn=fake_run, progress=False)
    stamps = {r.name: (tmp_path / r.name / DONE).stat().st_mtime_ns for r in runs[:2]}
    # A half-written run (no DONE marker) must be redone.
    (tmp_path / runs[2].name).mkdir()
    (tmp_path / runs[2].name / "history.csv").write_text("garbage")
    rep = run_sweep(runs, tmp_path, workers=1, run_fn=fake_run, progress=False)
    assert rep.skipped == 2 and rep.completed == len(runs) - 2
    for name, ns in stamps.items():
        assert (tmp_path / name / DONE).stat().st_mtime_ns == ns
    assert all((tmp_path / r.name / DONE).exists() for r in runs)


def test_summarize_tidy_and_mean_std(tmp_path):
    runs = expand(_spec({"client.eta": [0.1, 0.2]}, seeds=(0, 1)), validate=_accept)
    run_sweep(runs, tmp_path, workers=1, run_fn=fake_run, progress=False)
    path = summarize(tmp_path)
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 * 3
    with open(path.with_name("summary_mean.csv")) as fh:
        mean_rows = list(csv.DictReader(fh))
    assert len(mean_rows) == 2 * 3
    r = next(r for r in mean_rows if json.loads(r["client.eta"]) == 0.2 and r["step"] == "2")
    # values 0.2*3 + 0.00 and 0.2*3 + 0.01 -> mean 0.605, sample std 0.01/sqrt(2)
    assert float(r["grad_norm2_mean"]) == pytest.approx(0.605)
    assert float(r["grad_norm2_std"]) == pytest.approx(0.01 / 2**0.5)


def _collect(root):
    out = {}
    for p in sorted(Path(root).iterdir()):
        if (p / DONE).exists():
            out[p.name] = (p / "history.csv").read_bytes()
    return out


def test_processes_and_dask_give_identical_results(tmp_path):
    pytest.importorskip(
        "dask.distributed", reason="dask[distributed] (the `dist` extra) not installed"
    )
    runs = expand(
        _spec({"client.eta": [0.1, 0.2], "algorithm.name": ["persafl", "fedasync"]}),
        validate=_accept,
    )
    a, b = tmp_path / "proc", tmp_path / "dask"
    rep_a = run_sweep(runs, a, workers=2, run_fn=fake_run, progress=False)
    rep_b = run_sweep(runs, b, workers=2, dask="local", run_fn=fake_run, progress=False)
    assert rep_a.completed == rep_b.completed == 8
    assert _collect(a) == _collect(b) and len(_collect(a)) == 8


# ----------------------------------------------------------------------------- honest sweeps
def test_changed_base_reruns_runs_finished_under_the_old_config(tmp_path):
    runs = expand(_spec({"client.eta": [0.1, 0.2]}, seeds=(0,)), validate=_accept)
    run_sweep(runs, tmp_path, workers=1, run_fn=fake_run, progress=False)
    base2 = {"client": {"eta": 0.1, "Q": 3}, "algorithm": {"name": "persafl"}}
    runs2 = expand(parse_sweep({"base": base2, "grid": {"client.eta": [0.1, 0.2]},
                                "seeds": [0]}), validate=_accept)
    assert [r.name for r in runs2] == [r.name for r in runs]  # same folders, other configs
    seen = []

    def counting(config, run_dir):
        seen.append(config["client"]["Q"])
        fake_run(config, run_dir)

    rep = run_sweep(runs2, tmp_path, workers=1, run_fn=counting, progress=False)
    assert rep.skipped == 0 and rep.stale == 2 and seen == [3, 3]
    for r in runs2:
        assert json.loads((tmp_path / r.name / DONE).read_text())["config_digest"] == r.digest
    rep = run_sweep(runs2, tmp_path, workers=1, run_fn=counting, progress=False)
    assert rep.skipped == 2 and rep.stale == 0 and seen == [3, 3]


def _status_run(config, run_dir):
    """history with a finite / overflowing / non-finite loss depending on eta."""
    eta = config["client"]["eta"]
    loss = {0.1: [1.0, 0.5, 0.25], 0.2: [1.0, 50.0, 1e200], 0.3: [1.0, float("inf"), 2.0]}[eta]
    with open(Path(run_dir) / "history.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "loss", "grad_norm2"])
        for step, v in enumerate(loss):
            w.writerow([step, v, 0.1 * (step + 1) + config["seed"]])


def test_statuses_recorded_counted_and_summarized_without_crashing(tmp_path):
    from persafl_np.sweep import STATUS

    spec = parse_sweep({"base": BASE, "grid": {"client.eta": [0.1, 0.2, 0.3]}, "seeds": [0, 1],
                        "diverge_factor": 10.0})
    runs = expand(spec, validate=_accept)
    rep = run_sweep(runs, tmp_path, workers=1, run_fn=_status_run, progress=False,
                    diverge_factor=spec.diverge_factor)
    assert rep.counts() == {"ok": 2, "diverged": 4, "stalled": 0, "failed": 0}
    assert rep.success and not rep.all_ok
    for r in runs:
        done = json.loads((tmp_path / r.name / DONE).read_text())
        assert done["status"] == ("ok" if r.values["client.eta"] == 0.1 else "diverged")
        assert json.loads((tmp_path / r.name / STATUS).read_text())["status"] == done["status"]
    # without the factor the growing (finite) run is ok, the non-finite one still diverged
    rep = run_sweep(runs, tmp_path / "nofactor", workers=1, run_fn=_status_run, progress=False)
    assert rep.counts() == {"ok": 4, "diverged": 2, "stalled": 0, "failed": 0}
    path = summarize(tmp_path)
    rows = list(csv.DictReader(open(path)))
    assert {r["status"] for r in rows} == {"ok", "diverged"}
    mean = list(csv.DictReader(open(path.with_name("summary_mean.csv"))))
    r2 = next(r for r in mean if json.loads(r["client.eta"]) == 0.2 and r["step"] == "2")
    assert r2["n_seeds"] == "2" and r2["loss_n"] == "2"
    assert float(r2["loss_mean"]) == 1e200 and float(r2["loss_std"]) == 0.0
    r3 = next(r for r in mean if json.loads(r["client.eta"]) == 0.3 and r["step"] == "1")
    assert r3["loss_n"] == "0" and r3["loss_mean"] == "" and r3["grad_norm2_n"] == "2"


def test_failed_run_listed_in_summary(tmp_path):
    runs = expand(_spec({"algorithm.name": ["persafl", "boom"]}, seeds=(0,)), validate=_accept)
    rep = run_sweep(runs, tmp_path, workers=1, run_fn=fake_run, progress=False)
    assert rep.counts()["failed"] == 1
    rows = list(csv.DictReader(open(summarize(tmp_path))))
    assert [r["status"] for r in rows if "boom" in r["run"]] == ["failed"]


@pytest.mark.parametrize("factor", [1.0, -3, float("nan"), "big", True])
def test_bad_diverge_factor_rejected(factor):
    with pytest.raises(ValueError, match="diverge_factor"):
        parse_sweep({"base": BASE, "diverge_factor": factor})


_REAL = """seeds = [0]
diverge_factor = 1e6
[base]
T = 40
eval_every = 10
[base.data]
n_clients = 3
n_features = 3
n_samples = 8
[base.algorithm]
name = "persafl"
[grid]
"algorithm.eta" = [0.05, 40.0]
"""


def test_cli_sweep_counts_statuses_and_strict_exit(tmp_path, capsys):
    from persafl_np.cli import main

    sw = tmp_path / "s.toml"
    sw.write_text(_REAL)
    out = tmp_path / "out"
    assert main(["sweep", str(sw), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "status: ok 1, diverged 1, stalled 0, failed 0" in text
    assert main(["sweep", str(sw), "--out", str(out), "--workers", "1", "--quiet",
                 "--strict"]) == 1
    assert "2 already finished" in capsys.readouterr().out
    assert main(["summarize", str(out)]) == 0


def _proc_parents() -> dict[int, int]:
    """pid → parent pid of every live (not zombie) process, from /proc."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                st = (d / "stat").read_text()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            if fields[0] not in "ZX":
                out[int(d.name)] = int(fields[1])
    return out


def _descendants(pid: int) -> set[int]:
    pp = _proc_parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, q in pp.items() if q in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return st[st.rindex(")") + 2] not in "ZX"


def _kill_sweep_and_check(tmp_path, flags: list[str], n_procs: int, what: str) -> None:
    """Start a long real sweep with ``flags``, wait for ``n_procs`` descendant processes,
    SIGKILL the sweep and assert that none of them outlives it (10 s)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    sw = tmp_path / "s.toml"
    sw.write_text(_REAL.replace("T = 40", "T = 200000").replace("[0.05, 40.0]", "[0.05, 0.06]"))
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    p = subprocess.Popen([sys.executable, "-m", "persafl_np.cli", "sweep", str(sw), "--out",
                          str(tmp_path / "out"), *flags, "--quiet"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        procs: set[int] = set()
        while time.monotonic() < deadline and len(procs) < n_procs:
            time.sleep(0.3)
            procs = _descendants(p.pid)
        assert len(procs) >= n_procs, f"the sweep did not start its {what}"
        time.sleep(2.0)  # let the runs start
        procs = _descendants(p.pid)
        p.send_signal(signal.SIGKILL)
        p.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(w) for w in procs):
            time.sleep(0.1)
        left = [w for w in procs if _alive(w)]
        for w in left:
            os.kill(w, signal.SIGKILL)
        assert not left, f"orphaned {what} {left} outlived the killed sweep"
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_exit_when_the_sweep_is_killed(tmp_path):
    _kill_sweep_and_check(tmp_path, ["--workers", "2"], 2, "workers")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_dask_local_workers_exit_when_the_sweep_is_killed(tmp_path):
    """``--dask local``: the workers (spawned processes of the sweep; the nannies run inside
    it) exit with the killed sweep — distributed's AsyncProcess exits a child when its
    parent-alive pipe closes, so the sweep needs no watchdog of its own there."""
    pytest.importorskip("dask.distributed", reason="dask[distributed] not installed")
    _kill_sweep_and_check(tmp_path, ["--dask", "local"], 3, "Dask workers")
