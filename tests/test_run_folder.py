"""Reused output folders: `run --out` refuses another run's files unless --force; resume
refuses a checkpoint whose fingerprint differs from the folder's config (issue-10 scenarios)."""

from __future__ import annotations

import json

import pytest
from run_configs import SMALL_EVENT

from persafl_np import fingerprint
from persafl_np.cli import main
from persafl_np.run_folder import read_cli_json

A = SMALL_EVENT
B = A.replace("eta = 0.05", "eta = 0.02")


def _cfgs(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(A)
    b.write_text(B)
    return a, b


def test_run_refuses_a_folder_of_another_config_unless_force(tmp_path, capsys):
    a, b = _cfgs(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(a), "--out", str(out), "--quiet"]) == 0
    fa = fingerprint.read(out / fingerprint.FILE)
    stray = out / ".trace.csv.k1ll3d.tmp"  # a write killed before its rename
    stray.write_text("torn")
    assert main(["run", str(a), "--out", str(out), "--quiet"]) == 0  # same config: allowed
    assert not stray.exists()
    assert main(["run", str(b), "--out", str(out), "--quiet"]) == 2
    assert "holds another run's files" in capsys.readouterr().err
    assert fingerprint.read(out / fingerprint.FILE) == fa  # untouched
    (out / "notes.txt").write_text("mine")
    assert main(["run", str(b), "--out", str(out), "--quiet", "--force"]) == 0
    fb = fingerprint.read(out / fingerprint.FILE)
    assert fb["fingerprint"] != fa["fingerprint"]
    assert (out / "notes.txt").read_text() == "mine"  # --force deletes run files only
    assert "eta = 0.02" in (out / "config.toml").read_text()


def test_stale_checkpoint_under_a_new_config_is_never_resumed(tmp_path, capsys):
    """Run A with checkpoints, then put B's config in the folder (by hand): resume refuses."""
    from persafl_np.config import load_config, simulate

    a, b = _cfgs(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(a), "--out", str(out), "--checkpoint-every", "7", "--quiet"]) == 0
    simulate(load_config(a), checkpoint_dir=out / "checkpoint", checkpoint_every=7, stop_after=14)
    (out / "config.toml").write_text(load_config(b).to_toml())
    assert main(["resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "fingerprint" in err and "MANIFEST.json" in err
    # run B into it: refused (A's files), --force clears A's checkpoint too
    (out / "config.toml").write_text(load_config(a).to_toml())
    assert main(["run", str(b), "--out", str(out), "--quiet"]) == 2
    assert main(["run", str(b), "--out", str(out), "--quiet", "--force"]) == 0
    assert not (out / "checkpoint").exists()


def test_resume_before_the_first_checkpoint_starts_over(tmp_path, capsys):
    a, _ = _cfgs(tmp_path)
    full = tmp_path / "full"
    assert main(["run", str(a), "--out", str(full), "--quiet"]) == 0
    out = tmp_path / "out"
    assert main(["run", str(a), "--out", str(out), "--checkpoint-every", "7", "--quiet"]) == 0
    for p in (out / "checkpoint").iterdir():  # as if killed before the first checkpoint
        if p.name != "cli.json":
            p.unlink()
    assert main(["resume", str(out), "--quiet"]) == 0
    assert "starting it from step 0" in capsys.readouterr().err
    for f in ("trace.csv", "history.csv", "jobs.csv", "final.npz", "fingerprint.json"):
        assert (out / f).read_bytes() == (full / f).read_bytes(), f


@pytest.mark.parametrize("doc,field", [
    ({"checkpoint_every": 0, "replay": None}, "checkpoint_every"),
    ({"checkpoint_every": "7", "replay": None}, "checkpoint_every"),
    ({"checkpoint_every": 7, "replay": 3}, "replay"),
    ([1], "JSON object"),
])
def test_cli_json_validated(tmp_path, doc, field):
    p = tmp_path / "cli.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=field):
        read_cli_json(p)
