"""The command line never shows a traceback for a user error: one line on stderr naming the flag
or the file, documented exit codes, nothing written for a rejected flag; plus --version,
python -m persafl_np, --set, init, --dry-run, bound --json, RunResult.load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from persafl_np import cli
from persafl_np.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = """seed = 0
T = 12
eval_every = 4
[data]
n_clients = 3
n_features = 2
n_samples = 8
[arrivals]
mode = "event"
"""


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(SMALL)
    return p


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_version_and_help(capsys):
    from persafl_np import __version__

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes" in out and "Nothing in the package imports" not in out
    for name, _ in cli.COMMANDS:
        assert main([name, "--help"]) == 0, name
        assert f"usage: persafl {name}" in capsys.readouterr().out


def test_python_dash_m_is_the_command():
    r = subprocess.run([sys.executable, "-m", "persafl_np", "--version"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("persafl_np ")
    r = subprocess.run([sys.executable, "-m", "persafl_np", "run", "missing.toml", "--out", "x"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "missing.toml" in r.stderr


@pytest.mark.parametrize("argv, needles", [
    (["run", "{nope}", "--out", "{o}"], ["no such file", "nope.toml"]),
    (["run", "{tmp}", "--out", "{o}"], ["is a folder"]),
    (["bound", "{nope}"], ["no such file"]),
    (["sweep", "{nope}", "--out", "{o}"], ["no such file"]),
    (["summarize", "{nope}"], ["no such folder"]),
    (["resume", "{cfg}"], ["is a file, expected a folder"]),
    (["resume", "{tmp}"], ["has no checkpoint"]),
    (["run", "{cfg}", "--out", "{cfg}"], ["--out", "is a file"]),
    (["run", "{cfg}", "--out", "{o}", "--replay", "{nope}"], ["--replay", "no such file"]),
    (["run", "{cfg}", "--out", "{o}", "--replay", "{cfg}"], ["--replay", "not a trace.csv"]),
    (["run", "{cfg}", "--out", "{o}", "--checkpoint-every", "-5"], ["--checkpoint-every", ">= 1"]),
    (["run", "{cfg}", "--out", "{o}", "--checkpoint-every", "x"], ["--checkpoint-every"]),
    (["sweep", "{cfg}", "--out", "{o}", "--workers", "0"], ["--workers", ">= 1"]),
    (["sweep", "{cfg}", "--out", "{o}", "--dask", "localhost"], ["--dask"]),
    (["bound", "{cfg}", "--seeds", "0"], ["--seeds", ">= 1"]),
    (["bound", "{cfg}", "--stride", "0"], ["--stride"]),
    (["bound", "{cfg}", "--stride", "often"], ["--stride"]),
    (["bound", "{cfg}", "--json", "{tmp}"], ["--json", "is a folder"]),
    (["demo", "--seed", "-1"], ["--seed"]),
    (["figures", "--workers", "0"], ["--workers"]),
    (["run", "{cfg}", "--out", "{o}", "--set", "T"], ["--set", "KEY=VALUE"]),
    (["run", "{cfg}", "--out", "{o}", "--set", "T=[1,"], ["--set", "TOML"]),
    (["run", "{cfg}", "--out", "{o}", "--set", "T=0"], ["T must be an integer >= 1"]),
    (["run", "{cfg}", "--out", "{o}", "--set", "algorithm.etta=1"], ["etta"]),
    (["run", "{cfg}", "--out", "{o}", "--set", "T.x=1"], ["'T' is a value"]),
    (["run", "{cfg}"], ["--out"]),
    (["frobnicate"], ["invalid choice"]),
    (["init", "nosuch"], ["invalid choice"]),
    (["init", "maml", "--out", "{cfg}"], ["exists; not overwriting"]),
])
def test_user_errors_exit_2_with_one_line_and_write_nothing(argv, needles, tmp_path, cfg, capsys):
    fill = {"nope": str(tmp_path / "nope.toml"), "tmp": str(tmp_path), "o": str(tmp_path / "o"),
            "cfg": str(cfg)}
    before = sorted(tmp_path.rglob("*"))
    assert main([a.format(**fill) for a in argv]) == 2
    _one_line_error(capsys, *needles)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written (no --out folder either)


def test_bad_toml_and_binary_config(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("T = = 3\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "bad.toml", "not valid TOML")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00T = 1")
    assert main(["run", str(binary), "--dry-run"]) == 2
    _one_line_error(capsys, "bin.toml")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "sweep file", "bad.toml")
    assert not (tmp_path / "o").exists()


def test_unreadable_file(tmp_path, cfg, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    cfg.chmod(0)
    try:
        assert main(["run", str(cfg), "--dry-run"]) == 2
        _one_line_error(capsys, "permission denied")
    finally:
        cfg.chmod(0o644)


def test_debug_shows_the_traceback(tmp_path, capsys):
    bad = tmp_path / "c.toml"
    bad.write_text("T = 0\n")
    assert main(["run", str(bad), "--dry-run"]) == 2
    _one_line_error(capsys, "T must be an integer >= 1")
    # --debug lets the error propagate (the traceback), before or after the command name
    with pytest.raises(cli.UsageError, match="T must be an integer >= 1"):
        main(["--debug", "run", str(bad), "--dry-run"])
    with pytest.raises(cli.UsageError):
        main(["run", str(bad), "--dry-run", "--debug"])


def test_internal_error_is_one_line_not_a_traceback(monkeypatch, cfg, capsys):
    import persafl_np.config as config

    def boom(*a, **k):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(config, "simulate", boom)
    assert main(["run", str(cfg), "--out", str(cfg.parent / "o"), "--quiet"]) == 1
    _one_line_error(capsys, "internal error ZeroDivisionError", "--debug")
    with pytest.raises(ZeroDivisionError):
        main(["run", str(cfg), "--out", str(cfg.parent / "o"), "--quiet", "--debug"])


def test_ctrl_c_exits_130_and_keeps_checkpoints(monkeypatch, cfg, capsys):
    import persafl_np.config as config

    real = config.simulate

    def interrupted(c, **kw):  # run until the first checkpoint, then "press Ctrl-C"
        real(c, **{**kw, "stop_after": 4})
        raise KeyboardInterrupt

    monkeypatch.setattr(config, "simulate", interrupted)
    out = cfg.parent / "o"
    assert main(["run", str(cfg), "--out", str(out), "--checkpoint-every", "4", "--quiet"]) == 130
    assert "persafl resume" in _one_line_error(capsys, "interrupted")
    monkeypatch.setattr(config, "simulate", real)
    assert main(["resume", str(out), "--quiet"]) == 0  # what was recorded is usable
    full = cfg.parent / "full"
    assert main(["run", str(cfg), "--out", str(full), "--quiet"]) == 0
    assert (out / "trace.csv").read_text() == (full / "trace.csv").read_text()

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(config, "simulate", ctrl_c)
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(cfg.parent / "o2"), "--quiet"]) == 130
    _one_line_error(capsys, "interrupted", "nothing was saved")


def test_closed_pipe_is_quiet(monkeypatch, cfg, capsys):
    def broken(*a, **k):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_summary", broken)
    out = cfg.parent / "o"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == cli.EXIT_PIPE
    assert "Traceback" not in capsys.readouterr().err
    assert (out / "summary.json").exists()  # saved before printing


def test_closed_pipe_real_process(cfg):
    """`persafl run ... | head -1`: the reader closes the pipe; no traceback on stderr."""
    cmd = (f"{sys.executable} -m persafl_np run {cfg} --out {cfg.parent / 'o'} --quiet "
           "| head -c 10 > /dev/null")
    r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert "Traceback" not in r.stderr and "Error" not in r.stderr, r.stderr


def test_set_overrides_and_dry_run_writes_nothing(cfg, capsys, tmp_path):
    assert main(["run", str(cfg), "--dry-run", "--set", "T=7", "--set", "oracle.name=maml",
                 "--set", "arrivals.speeds=[1.0, 2.0, 3.0]", "--set", 'model.name="least_squares"']
                ) == 0
    out = capsys.readouterr().out
    assert "\nT = 7\n" in out and 'name = "maml"' in out and "speeds = [1.0, 2.0, 3.0]" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]
    import tomllib

    from persafl_np.config import SimConfig

    resolved = SimConfig.from_dict(tomllib.loads(out.split("\n", 1)[1]))  # it is a valid config
    assert resolved.T == 7 and resolved.oracle.name == "maml"


def test_set_on_sweep_sets_base(tmp_path, capsys):
    sweep = tmp_path / "s.toml"
    sweep.write_text('seeds = [0]\n[grid]\n"algorithm.eta" = [0.01, 0.02]\n[base]\n'
                     + SMALL.replace("seed = 0\n", "").replace("[data]", "[base.data]")
                     .replace("[arrivals]", "[base.arrivals]"))
    out = tmp_path / "o"
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1", "--quiet",
                 "--set", "T=4", "--set", "eval_every=2"]) == 0
    cfgs = sorted(out.glob("run-*/config.toml"))
    assert len(cfgs) == 2 and all("\nT = 4\n" in p.read_text() for p in cfgs)
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o2"), "--set", "T=0"]) == 2
    _one_line_error(capsys, "T must be an integer >= 1")
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o2"), "--set",
                 "algorithm.eta=0.5"]) == 2  # the grid varies it: the --set would be ignored
    _one_line_error(capsys, "--set algorithm.eta", "[grid]")
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o2"), "--set",
                 "seed=1.0"]) == 2  # each run's seed comes from `seeds`: it would be ignored
    _one_line_error(capsys, "--set seed", "seeds")
    assert not (tmp_path / "o2").exists()


@pytest.mark.parametrize("name", ["maml", "theorem", "sweep"])
def test_init_templates_load_and_validate(name, tmp_path, capsys):
    import tomllib

    from persafl_np.config import SimConfig
    from persafl_np.sweep import expand, load_sweep

    f = tmp_path / f"{name}.toml"
    assert main(["init", name, "--out", str(f)]) == 0
    text = f.read_text()
    assert text.count("\n#") + text.count("  #") >= 5  # commented
    if name == "sweep":
        runs = expand(load_sweep(f))
        assert len(runs) == 8
        assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--workers", "1", "--quiet",
                     "--set", "T=6", "--set", "eval_every=3"]) == 0
    else:
        cfg = SimConfig.from_dict(tomllib.loads(text))
        cfg.arrivals.build(cfg.data.n_clients)  # cross-field checks that run at start
        assert main(["run", str(f), "--out", str(tmp_path / "o"), "--quiet", "--set", "T=6",
                     "--set", "eval_every=3"]) == 0
    assert main(["init", name]) == 0 and capsys.readouterr().out.endswith(text)


def test_theorem_template_bound_holds_and_json(tmp_path, capsys):
    f = tmp_path / "t.toml"
    assert main(["init", "theorem", "--out", str(f)]) == 0
    j = tmp_path / "b.json"
    assert main(["bound", str(f), "--run", "--seeds", "2", "--quiet", "--set", "T=200",
                 "--json", str(j)]) == 0
    doc = json.loads(j.read_text())
    assert doc["verdict"] == "holds" and doc["reasons"] == []
    assert doc["conditions"]["eta_ok"] and doc["conditions"]["a_ok"]
    assert doc["family"].startswith("quadratics with a shared Hessian")
    assert doc["constants"]["exact"]
    assert doc["measured"]["stride"] == 1 and doc["measured"]["points_per_seed"] == 200
    assert len(doc["measured"]["per_seed"]) == 2
    assert 0 < doc["ratio"] < 1 and set(doc["terms"]["d4"]) >= {"init", "stale_noise", "total"}
    m = doc["measured"]["mean"]
    assert doc["ratio"] == pytest.approx(m / doc["terms"]["d4"]["total"], rel=1e-12)
    # (T2) violated: exit 3 and the JSON says which condition
    j2 = tmp_path / "b2.json"
    assert main(["bound", str(f), "--set", "algorithm.eta=0.1", "--json", str(j2)]) == 3
    doc = json.loads(j2.read_text())
    assert doc["verdict"] == "not_applicable" and not doc["conditions"]["eta_ok"]
    assert any(r.startswith("(T2) violated: eta") for r in doc["reasons"])


def test_bound_on_the_readme_config_is_not_applicable_and_says_why(tmp_path, capsys):
    import re

    text = (ROOT / "README.md").read_text()
    block = re.search(r"^```toml\n(seed = 0\nT = 600.*?)^```", text, re.M | re.S).group(1)
    f = tmp_path / "readme.toml"
    f.write_text(block)
    assert main(["bound", str(f)]) == 3
    out = capsys.readouterr().out
    assert "SoftmaxRegression" in out and "robust family" not in out
    assert "C4:" in out and "C2:" in out and "(T2) violated: eta" in out
    assert out.splitlines()[0].startswith("persafl bound ")  # first output before any work


def test_bound_with_infinite_bound_prints_no_ratio(tmp_path, capsys):
    f = tmp_path / "c.toml"
    f.write_text(SMALL.replace('mode = "event"', 'mode = "theorem"\ntau = 1')
                 + "[algorithm]\nbatch_size = 4\neta = 0.001\nbeta = 0.1\n")
    assert main(["bound", str(f), "--run", "--seeds", "1", "--quiet"]) == 3
    out = capsys.readouterr().out
    assert "ratio      : undefined (the bound is infinite)" in out
    assert "measured/bound = 0" not in out and "C2:" in out


def test_stride_measures_the_same_trajectory(tmp_path):
    """eval_every does not change the run (evaluation draws no randomness), so a strided
    measurement interpolates the same sequence ‖∇F(w^t)‖² (trapezoid over t = 0, 3, ..., 30)."""
    from persafl_np.bounds.check import average_stationarity
    from persafl_np.config import SimConfig, simulate

    base = {"T": 30, "data": {"n_clients": 3, "n_features": 2, "n_samples": 8},
            "oracle": {"noise_sigma": 0.3}, "arrivals": {"mode": "theorem", "tau": 2}}
    full = simulate(SimConfig.from_dict({**base, "eval_every": 1}))
    strided = simulate(SimConfig.from_dict({**base, "eval_every": 3}))
    np.testing.assert_array_equal(full.params, strided.params)
    np.testing.assert_array_equal(full.trace.pulled_version, strided.trace.pulled_version)
    g = full.history.grad_norm2
    assert average_stationarity(full.history, 30) == pytest.approx(np.mean(g[:30]), rel=1e-14)
    pts = g[0:31:3]  # t = 0, 3, ..., 30 (t = T is evaluated too)
    pairs = zip(pts[:-1], pts[1:], strict=True)
    trapezoid = sum(3 * a + (b - a) * (3 - 1) / 2 for a, b in pairs) / 30
    assert average_stationarity(strided.history, 30, stride=3) == pytest.approx(
        trapezoid, rel=1e-14)
    five = simulate(SimConfig.from_dict({**base, "eval_every": 5}))
    with pytest.raises(ValueError, match="eval_every=3"):
        average_stationarity(five.history, 30, stride=3)  # t = 3 was never evaluated


def test_run_result_load_round_trip_and_summary_final(tmp_path, cfg):
    from persafl_np import RunResult

    out = tmp_path / "o"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    res = RunResult.load(out)
    assert res.ok and res.config is not None and res.config.T == 12
    from persafl_np.config import load_config, simulate

    again = simulate(load_config(cfg))
    assert res.digest() == again.digest()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["final"]["step"] == 12
    assert summary["final"]["grad_norm2"] == pytest.approx(float(again.history.grad_norm2[-1]))
    with pytest.raises(ValueError, match="not a saved run"):
        RunResult.load(tmp_path)


def test_py_typed_and_templates_are_package_data():
    import tomllib

    assert (ROOT / "persafl_np" / "py.typed").exists()
    pkg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(pkg["package-data"]["persafl_np"]) >= {"py.typed", "templates/*.toml"}
    assert "ruff check ." in (ROOT / ".ci" / "run").read_text()


def test_real_ctrl_c_exits_130_without_traceback(tmp_path):
    import signal
    import time

    f = tmp_path / "t.toml"
    assert main(["init", "theorem", "--out", str(f)]) == 0
    p = subprocess.Popen([sys.executable, "-m", "persafl_np", "run", str(f), "--out",
                          str(tmp_path / "o"), "--quiet", "--set", "T=10000000"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "Traceback" not in err and "interrupted" in err, err


def test_strided_estimate_is_exact_on_affine_pieces_and_uses_t_equal_T():
    """The trapezoid estimate of average_stationarity: exact when ||grad F||^2 is affine in t
    between the evaluated steps (T not a multiple of the stride: a short last piece), where the
    plain mean over the evaluated steps is not; it needs the row at t = T."""
    from types import SimpleNamespace

    from persafl_np.bounds.check import average_stationarity

    T, k = 23, 5
    t = np.arange(T + 1, dtype=float)
    g = np.where(t < 10, 5.0 - 0.4 * t, 1.0 + 0.1 * (t - 10))  # affine on [0, 10] and [10, 23]
    pts = sorted(set(range(0, T, k)) | {T})
    hist = SimpleNamespace(step=np.asarray(pts, dtype=float), grad_norm2=g[pts])
    exact = float(np.mean(g[:T]))
    assert average_stationarity(hist, T, stride=k) == pytest.approx(exact, rel=1e-13)
    assert abs(float(np.mean(g[0:T:k])) - exact) > 0.05  # the systematic sample is off
    no_end = SimpleNamespace(step=np.asarray(pts[:-1], dtype=float), grad_norm2=g[pts[:-1]])
    with pytest.raises(ValueError, match="T = 23"):
        average_stationarity(no_end, T, stride=k)


def test_path_flags_report_os_errors_of_the_path_as_usage_errors(tmp_path, capsys):
    """A name too long for the file system raises OSError inside argparse's type check, which
    argparse passes through: it must be a one-line usage error naming the argument."""
    long = str(tmp_path / ("n" * 300 + ".toml"))
    good = tmp_path / "c.toml"
    good.write_text('T = 4\n[data]\nn_clients = 2\nn_features = 2\nn_samples = 4\n')
    for argv, flag in (([ "run", long, "--out", str(tmp_path / "o")], "CONFIG.toml"),
                       (["run", str(good), "--out", long], "--out"),
                       (["bound", str(good), "--json", long], "--json"),
                       (["resume", long], "DIR")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and flag in err[0] and "too long" in err[0], err
