"""persafl_np.plots.animate and ``persafl animate``: frames, determinism, the recomputed iterate
path, client selection and the input checks (tiny runs, few frames, low dpi)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from persafl_np.cli import main
from persafl_np.config import SimConfig, simulate
from persafl_np.plots.animate import (
    animate_contour,
    animate_timeline,
    iterate_path,
    load_run,
    select_clients,
    version_times,
    w_version,
)


def _run(tmp_path, name="run", n_features=3, T=12, **over):
    d = {"seed": 3, "T": T, "eval_every": 4,
         "data": {"name": "shifted_least_squares", "n_clients": 3, "n_features": n_features,
                  "n_samples": 6},
         "algorithm": {"name": "persafl", "Q": 1, "eta": 0.05, "beta": 0.7},
         "arrivals": {"mode": "event", "speeds": [1.0, 2.0, 4.0],
                      "job_time": {"law": "exponential", "mean": 1.0}}}
    d.update(over)
    res = simulate(SimConfig.from_dict(d))
    res.save(tmp_path / name)
    return res, tmp_path / name


def test_timeline_gif_has_the_frames_and_is_byte_identical_on_rerun(tmp_path):
    _, run_dir = _run(tmp_path)
    run = load_run(run_dir)
    a = animate_timeline(run, tmp_path / "a.gif", frames=3, seconds=1.5, dpi=30)
    b = animate_timeline(load_run(run_dir), tmp_path / "b.gif", frames=3, seconds=1.5, dpi=30)
    assert a.read_bytes() == b.read_bytes()
    with Image.open(a) as im:
        assert im.n_frames == 3
        assert im.size == (int(12.8 * 30), int(7.2 * 30))  # landscape
        assert im.info["duration"] == 500  # 3 frames in 1.5 s
    c = animate_timeline(run, tmp_path / "c.gif", frames=4, seconds=1.5, dpi=30)
    assert c.read_bytes() != a.read_bytes()
    assert not list(tmp_path.glob(".*.gif"))  # no temporary file left behind


def test_version_times_follow_the_applied_arrivals(tmp_path):
    res, run_dir = _run(tmp_path)
    run = load_run(run_dir)
    made = version_times(run.trace, 12)
    acc = res.trace.accepted
    np.testing.assert_array_equal(made[1:], res.trace.time[acc])
    assert made[0] == 0.0 and np.all(np.diff(made) >= 0)


def test_iterate_path_reproduces_the_run_and_its_step_lengths(tmp_path):
    res, run_dir = _run(tmp_path, n_features=2, T=10)
    path, cfg, _ = iterate_path(run_dir)
    assert path.shape == (11, 2)
    np.testing.assert_array_equal(path[-1], res.params)
    # PersA-FL: w^{t+1} − w^t = −βΔ, and trace.update_norm = ‖Δ‖
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    np.testing.assert_allclose(steps, 0.7 * res.trace.update_norm[res.trace.accepted],
                               rtol=1e-12, atol=1e-15)
    gif = animate_contour(run_dir, tmp_path / "two.gif", frames=2, dpi=30, n_grid=12)
    with Image.open(gif) as im:
        assert im.n_frames == 2


def test_contour_view_needs_two_parameters(tmp_path):
    _, run_dir = _run(tmp_path, n_features=3)
    with pytest.raises(ValueError, match="2 parameters"):
        iterate_path(run_dir)


def test_select_clients_keeps_the_busiest_and_the_idlest():
    counts = np.arange(25)[::-1] * 3  # client 0 busiest, client 24 idlest
    shown = select_clients(25, counts, 10)
    assert len(shown) == 10 and np.all(np.diff(shown) > 0)
    assert 0 in shown and 24 in shown
    np.testing.assert_array_equal(select_clients(5, np.ones(5), 10), np.arange(5))
    with pytest.raises(ValueError, match="max_rows"):
        select_clients(5, np.ones(5), 0)


def test_many_clients_are_subsampled_in_the_animation(tmp_path):
    _, run_dir = _run(tmp_path, data={"name": "shifted_least_squares", "n_clients": 24,
                                      "n_features": 3, "n_samples": 6},
                      arrivals={"mode": "event", "job_time": {"law": "exponential"}}, T=30)
    gif = animate_timeline(load_run(run_dir), tmp_path / "many.gif", frames=2, dpi=30,
                           max_rows=8)
    assert gif.stat().st_size > 1000


def test_w_version_superscripts():
    assert w_version(305) == "w³⁰⁵"


@pytest.mark.parametrize("kw, match", [({"frames": 0}, "frames"), ({"seconds": 0.0}, "seconds"),
                                       ({"dpi": 5}, "dpi"), ({"window": -1.0}, "window")])
def test_bad_options_are_rejected_naming_them(tmp_path, kw, match):
    _, run_dir = _run(tmp_path)
    with pytest.raises(ValueError, match=match):
        animate_timeline(load_run(run_dir), tmp_path / "x.gif", **{"dpi": 30, **kw})


def test_cli_animate(tmp_path, capsys):
    _, run_dir = _run(tmp_path)
    out = tmp_path / "cli.gif"
    assert main(["animate", str(run_dir), "--out", str(out), "--frames", "2", "--dpi", "30",
                 "--seconds", "1"]) == 0
    assert out.exists() and "wrote" in capsys.readouterr().out
    assert main(["animate", str(run_dir), "--out", str(tmp_path / "x.mp4")]) == 2
    assert ".gif" in capsys.readouterr().err
    assert main(["animate", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "RUN_DIR" in capsys.readouterr().err
