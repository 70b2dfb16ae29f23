"""The command line: demo, run, resume."""

from __future__ import annotations

import numpy as np

from persafl_np.cli import main

CONFIG = """seed = 1
T = 30
eval_every = 10
[data]
n_clients = 4
n_features = 3
n_samples = 10
[algorithm]
name = "persafl"
Q = 2
eta = 0.05
batch_size = 4
[arrivals]
mode = "event"
staleness = "drop"
tau_max = 2
[arrivals.job_time]
law = "lognormal"
sigma = 1.0
"""


def test_demo_runs_and_prints_a_summary(capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "status: ok" in out and "acc pers mean" in out and "arrival shares" in out
    rows = [ln.split() for ln in out.splitlines() if ln.strip().split(" ")[0].isdigit()]
    loss = [float(r[2]) for r in rows]
    assert len(loss) == 7 and loss[-1] < 0.5 * loss[0]
    assert (tmp_path / "demo" / "config.toml").exists()


def test_run_then_resume_matches_uninterrupted(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    assert main(["run", str(cfg), "--out", str(tmp_path / "full")]) == 0
    for f in ("config.toml", "trace.csv", "jobs.csv", "history.csv", "final.npz"):
        assert (tmp_path / "full" / f).exists(), f
    # an interrupted run: reproduce "killed after step 14" by running with stop_after, then resume
    from persafl_np.config import load_config, simulate

    part = tmp_path / "part"
    assert main(["run", str(cfg), "--out", str(part), "--checkpoint-every", "7"]) == 0
    ck = part / "checkpoint"
    simulate(load_config(cfg), checkpoint_dir=ck, checkpoint_every=7, stop_after=14)
    assert main(["resume", str(part)]) == 0
    for f in ("trace.csv", "history.csv", "jobs.csv"):
        assert (part / f).read_text() == (tmp_path / "full" / f).read_text(), f
    with np.load(part / "final.npz") as a, np.load(tmp_path / "full" / "final.npz") as b:
        np.testing.assert_array_equal(a["params"], b["params"])


def test_run_replay(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    assert main(["run", str(cfg), "--out", str(tmp_path / "a")]) == 0
    assert main(["run", str(cfg), "--out", str(tmp_path / "b"),
                 "--replay", str(tmp_path / "a" / "trace.csv")]) == 0
    assert (tmp_path / "a" / "trace.csv").read_text() == (tmp_path / "b" / "trace.csv").read_text()


def test_bad_config_exits_2_with_message(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("T = 0\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "x")]) == 2
    assert "T must be an integer >= 1" in capsys.readouterr().err
    assert main(["resume", str(tmp_path / "nothing")]) == 2
