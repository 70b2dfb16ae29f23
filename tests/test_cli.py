"""The command line: demo, run, resume, bound, sweep, summarize, figures."""

from __future__ import annotations

import numpy as np
from run_configs import SMALL_EVENT

from persafl_np.cli import main

CONFIG = SMALL_EVENT


def test_demo_runs_and_prints_a_summary(capsys, tmp_path):
    out_dir = tmp_path / "demo"
    assert main(["demo", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "status: ok" in out and "acc_pers_mean" in out and "arrival shares" in out
    history, bound = out.split("part 2")
    rows = [ln.split() for ln in history.splitlines() if ln.strip().split(" ")[0].isdigit()]
    loss = [float(r[2]) for r in rows]
    assert len(loss) == 7 and loss[-1] < 0.5 * loss[0]
    brows = [ln.split() for ln in bound.splitlines() if ln.strip().split(" ")[0].isdigit()]
    assert [int(r[0]) for r in brows] == [25, 50, 100, 200, 400]
    assert all(0 < float(r[1]) <= float(r[2]) for r in brows)  # measured <= (T1) bound
    for f in ("run/config.toml", "run/trace.csv", "run/jobs.csv", "timeline.png",
              "bound_vs_T.png"):
        assert (out_dir / f).stat().st_size > 0, f


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


def test_bound_prints_conditions_and_terms(tmp_path, capsys):
    cfg = tmp_path / "b.toml"
    cfg.write_text(
        CONFIG.replace('mode = "event"\nstaleness = "drop"\ntau_max = 2\n', 'mode = "theorem"\n'
                       'tau = 2\n').replace('[arrivals.job_time]\nlaw = "lognormal"\nsigma = 1.0\n',
                                            "").replace("batch_size = 4\n", "")
    )
    # eta = 0.05 is far above the (T2) caps: the report says so and exits 3
    assert main(["bound", str(cfg), "--run", "--seeds", "2", "--quiet"]) == 3
    out = capsys.readouterr().out
    assert "conditions (T2)" in out and "init" in out and "stale_het" in out
    assert "NOT APPLICABLE" in out and "(T2) violated: eta = 0.05" in out
    # within the caps (a = beta*eta <= 1/(24 tau Q L)) the bound applies and holds: exit 0
    assert main(["bound", str(cfg), "--run", "--seeds", "2", "--quiet",
                 "--set", "algorithm.eta=0.002", "--set", "algorithm.beta=0.05"]) == 0
    out = capsys.readouterr().out
    ratio = float(out.split("measured/bound = ")[1].split()[0])
    assert 0.0 < ratio <= 1.0  # (T1) holds on this C5 instance
    assert "every step: the left-hand side of (T1)" in out  # small problem: stride 1
    # every theorem of theory/ is reported: its value where it applies, else the failing part
    lines = {ln.split()[0]: ln for ln in out.split("every bound of theory/")[1].splitlines()[1:]
             if ln.strip()}
    assert set(lines) == {"T1", "TB-1", "TA", "TA-5", "TB-4", "TC-4"}
    assert "applies: bound" in lines["T1"] and "applies: bound" in lines["TB-1"]
    assert "does not apply: algorithm has no reweight option" in lines["TA-5"]
    assert "does not apply" in lines["TC-4"]


def test_sweep_then_summarize(tmp_path, capsys):
    base = "\n".join(
        ("[base]" if ln == "seed = 1" else ln) if not ln.startswith("[") else "[base." + ln[1:]
        for ln in CONFIG.splitlines()
    )
    sweep = tmp_path / "s.toml"
    sweep.write_text('seeds = [0, 1]\n[grid]\n"algorithm.eta" = [0.02, 0.05]\n' + base + "\n")
    out_dir = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out_dir), "--workers", "1", "--quiet"]) == 0
    assert "4 completed" in capsys.readouterr().out
    # Rerun: everything is skipped.
    assert main(["sweep", str(sweep), "--out", str(out_dir), "--workers", "1", "--quiet"]) == 0
    assert "4 already finished, 0 completed" in capsys.readouterr().out
    assert main(["summarize", str(out_dir)]) == 0
    lines = (out_dir / "summary.csv").read_text().splitlines()
    assert len(lines) == 1 + 4 * 4  # header + 4 runs x eval points 0, 10, 20, 30
    mean = (out_dir / "summary_mean.csv").read_text().splitlines()
    assert len(mean) == 1 + 2 * 4 and "grad_norm2_mean" in mean[0]


def test_sweep_unknown_field_fails_before_running(tmp_path, capsys):
    sweep = tmp_path / "s.toml"
    sweep.write_text('seeds = [0]\n[grid]\n"algorithm.etta" = [0.1]\n[base]\nT = 5\n')
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "etta" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_figures_quick_renders_a_config_dir(tmp_path, capsys):
    """`persafl figures --quick --dir D` renders D/configs/*.toml; a dir without configs is an
    error naming the directory."""
    import shutil
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "figures" / "configs" / "timeline.toml"
    (tmp_path / "configs").mkdir()
    shutil.copy(src, tmp_path / "configs" / "timeline.toml")
    # --quick never writes into the figures folder: --out is required and must differ
    assert main(["figures", "--quick", "--dir", str(tmp_path), "--workers", "1"]) == 2
    assert "--out" in capsys.readouterr().err
    prev = tmp_path / "preview"
    assert main(["figures", "--quick", "--dir", str(tmp_path), "--out", str(prev),
                 "--workers", "1"]) == 0
    assert "timeline.png" in capsys.readouterr().out
    assert (prev / "timeline.png").stat().st_size > 0
    assert (prev / "timeline.csv").stat().st_size > 0
    assert not (tmp_path / "timeline.png").exists()
    assert main(["figures", "--quick", "--dir", str(tmp_path / "nothing"), "--out",
                 str(prev)]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["figures", "--quick", "--dir", str(tmp_path / "empty"), "--out",
                 str(prev)]) == 2
    assert "has no configs" in capsys.readouterr().err


def test_preview_titles_say_preview_with_real_sizes():
    from pathlib import Path

    from persafl_np.plots.regenerate import load_figure_spec, preview_title

    cfg = Path(__file__).resolve().parents[1] / "figures" / "configs" / "staleness_tolerance.toml"
    spec = load_figure_spec(cfg, quick=True)
    title = preview_title(spec)
    n_seeds = len({r[2] for r in spec.runs})
    Ts = {r[3].T for r in spec.runs}
    assert title.startswith("PREVIEW") and f"{n_seeds} seed" in title
    assert f"T = {min(Ts)}" in title and "2000" not in title  # the full run's size is not claimed
    assert max(Ts) < max(r[3].T for r in load_figure_spec(cfg).runs)


def test_run_summary_columns_are_summary_json_keys(tmp_path, capsys):
    import json

    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    assert main(["run", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[1].split()
    final = json.loads((tmp_path / "r" / "summary.json").read_text())["final"]
    assert all(k.isidentifier() and k in final for k in header)
    rows = [ln.split() for ln in lines[2:] if ln.strip().split(" ")[0].isdigit()]
    assert rows and all(len(r) == len(header) for r in rows)  # one token per column
    last = dict(zip(header, rows[-1], strict=True))
    assert int(last["step"]) == final["step"]
    assert float(last["loss"]) == float(f"{final['loss']:.4f}")
    counters = json.loads((tmp_path / "r" / "summary.json").read_text())["counters"]
    tail = next(ln for ln in lines if ln.startswith("counters: "))
    for part in tail.removeprefix("counters: ").split(";")[0].split(", "):
        key, value = part.split()
        assert counters[key] == int(value), key


def test_sweep_docstring_example_is_a_valid_sweep_file():
    """persafl_np.sweep's example, with this file's CONFIG as [base], parses and expands."""
    import re
    import tomllib

    import persafl_np.sweep as sweep
    from persafl_np.config import SimConfig

    doc = sweep.__doc__
    block = re.search(r"    name = .*?\n\n", doc, re.S).group(0)
    example = "\n".join(ln[4:].split("#")[0].rstrip() for ln in block.splitlines())
    base = "\n".join(("[base." + ln[1:]) if ln.startswith("[") else ln
                     for ln in CONFIG.splitlines() if not ln.startswith("seed ="))
    text = example.replace("[base]\n...", "[base]\n" + base)
    spec = sweep.parse_sweep(tomllib.loads(text))
    assert spec.seeds == [0, 1, 2] and spec.diverge_factor == 100.0
    runs = sweep.expand(spec, SimConfig.from_dict)
    assert len(runs) == 2 * 2 * 3
