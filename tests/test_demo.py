"""persafl_np.demo: the files line lists every file the demo writes, the table headers have no
spaces (the table reads back with split()), and each printed block names its problem."""

from __future__ import annotations

from persafl_np.demo import RUN_FILES, demo_report, run_demo


def test_demo_lists_every_file_and_names_each_problem(tmp_path):
    out = tmp_path / "demo"
    demo = run_demo(out)
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert sorted(demo.files) == written
    assert {p.name for p in (out / "run").iterdir()} == set(RUN_FILES)
    text = demo_report(demo, 1.0)
    files_line = [ln for ln in text.splitlines() if ln.startswith("files: ")]
    assert len(files_line) == 1
    assert files_line[0][len("files: "):].split(", ") == [str(p) for p in demo.files]
    part1, part2 = text.split("part 2")
    assert "FedProx Synthetic" in part1 and "MAML" in part1
    assert "DIFFERENT problem" in part2 and "shifted least squares" in part2
    header = next(ln for ln in part1.splitlines() if ln.split()[:1] == ["step"])
    cols = header.split()
    assert cols == ["step", "time", "F(w)", "gradF_norm2", "weighted_grad_norm2", "acc_global",
                    "acc_pers_mean", "acc_pers_min"]
    rows = [ln.split() for ln in part1.splitlines() if ln.split()[:1] and
            ln.split()[0].isdigit()]
    assert len(rows) == len(demo.run.history) and all(len(r) == len(cols) for r in rows)
