"""Checkpoint storage (persafl_np/sim/checkpoint.py): integrity, fingerprint, segments, strays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.sim import EventDriven, JobTime, run
from persafl_np.sim.checkpoint import MANIFEST

SPEC = EventDriven(job_time=JobTime("lognormal", sigma=1.0), dropout=0.1, staleness="drop",
                   tau_max=3)
ALG = Algorithm(persafl(0.5), Q=2, eta=0.05, batch_size=4)


def _part(prob, ck, stop=20, seed=7):
    return run(prob, ALG, SPEC, T=40, seed=seed, eval_every=4, checkpoint_dir=ck,
               checkpoint_every=5, stop_after=stop)


def _resume(prob, ck, seed=7):
    return run(prob, ALG, SPEC, T=40, seed=seed, eval_every=4, checkpoint_dir=ck,
               checkpoint_every=5, resume=True)


def test_segments_are_appended_not_rewritten(make_problem, tmp_path):
    prob = make_problem(n=5)
    full = run(prob, ALG, SPEC, T=40, seed=7, eval_every=4)
    _part(prob, tmp_path, stop=20)
    doc = json.loads((tmp_path / MANIFEST).read_text())
    segs = doc["segments"]
    assert len(segs) == 4 and doc["seq"] == 4
    assert sum(s["rows"]["trace"] for s in segs) == doc["rows"]["trace"]
    # each segment holds only its own rows: sizes do not grow with the run
    assert max(s["bytes"] for s in segs) < 2 * min(s["bytes"] for s in segs)
    first = (tmp_path / segs[0]["file"]).read_bytes()
    res = _resume(prob, tmp_path)
    assert res.digest() == full.digest()
    doc2 = json.loads((tmp_path / MANIFEST).read_text())
    assert doc2["segments"][:4] == segs and len(doc2["segments"]) == 8
    assert (tmp_path / segs[0]["file"]).read_bytes() == first  # never rewritten
    states = sorted(p.name for p in tmp_path.glob("state-*.npz"))
    assert states == [doc2["state"]["file"]]  # older states deleted after the commit


def test_stray_files_of_killed_writes_are_ignored_and_removed(make_problem, tmp_path):
    prob = make_problem(n=5)
    full = run(prob, ALG, SPEC, T=40, seed=7, eval_every=4)
    _part(prob, tmp_path)
    strays = [tmp_path / ".MANIFEST.json.abc.tmp", tmp_path / "seg-000099.npz",
              tmp_path / "state-000005.npz", tmp_path / ".seg-000005.npz.x1.tmp"]
    for p in strays:
        p.write_bytes(b"torn")
    assert _resume(prob, tmp_path).digest() == full.digest()
    assert not any(p.exists() for p in strays)


@pytest.mark.parametrize("damage,msg", [
    (lambda d, m: (d / m["state"]["file"]).write_bytes(
        (d / m["state"]["file"]).read_bytes()[:-3] + b"xyz"), "sha256"),
    (lambda d, m: (d / m["segments"][1]["file"]).unlink(), "missing"),
    (lambda d, m: (d / m["segments"][0]["file"]).write_bytes(b"short"), "bytes"),
    (lambda d, m: (d / MANIFEST).write_text((d / MANIFEST).read_text()[:-40]), "not valid JSON"),
    (lambda d, m: (d / MANIFEST).write_text(
        (d / MANIFEST).read_text().replace('"version": 20', '"version": 25')), "checksum"),
    (lambda d, m: (d / MANIFEST).write_text("[1, 2]"), "JSON object"),
    (lambda d, m: (d / MANIFEST).write_text(json.dumps({**m, "format_version": 1})),
     "format_version"),
])
def test_damaged_checkpoint_is_refused_naming_the_file(make_problem, tmp_path, damage, msg):
    prob = make_problem(n=5)
    _part(prob, tmp_path)
    m = json.loads((tmp_path / MANIFEST).read_text())
    damage(tmp_path, m)
    with pytest.raises(ValueError, match=msg) as e:
        _resume(prob, tmp_path)
    assert str(tmp_path) in str(e.value)


def test_forged_manifest_with_consistent_checksum_is_still_validated(make_problem, tmp_path):
    from persafl_np.sim.checkpoint import _checksum

    prob = make_problem(n=5)
    _part(prob, tmp_path)
    m = json.loads((tmp_path / MANIFEST).read_text())
    for forged, msg in (({**m, "rows": {**m["rows"], "trace": 10**9}}, "sum of the segments"),
                        ({**m, "seq": -1}, "seq"),
                        ({**m, "segments": [{**m["segments"][0], "rows": {"trace": "x"}}]},
                         "rows"),
                        ({**m, "state": {**m["state"], "file": "../../etc/passwd"}}, "file")):
        forged = {**forged, "checksum": _checksum(forged)}
        (tmp_path / MANIFEST).write_text(json.dumps(forged))
        with pytest.raises(ValueError, match=msg):
            _resume(prob, tmp_path)


def test_checkpoint_of_another_run_is_refused(make_problem, tmp_path):
    prob = make_problem(n=5)
    _part(prob, tmp_path, seed=7)
    with pytest.raises(ValueError, match="fingerprint.*another run"):
        _resume(prob, tmp_path, seed=8)
    other = make_problem(n=5, seed=3)  # other data, same everything else
    with pytest.raises(ValueError, match="fingerprint"):
        _resume(other, tmp_path)


def test_fresh_run_over_an_old_checkpoint_replaces_it(make_problem, tmp_path):
    prob = make_problem(n=5)
    _part(prob, tmp_path, seed=8)
    full = run(prob, ALG, SPEC, T=40, seed=7, eval_every=4)
    _part(prob, tmp_path, seed=7)  # not a resume: starts over, names continue after the old
    assert _resume(prob, tmp_path).digest() == full.digest()
    with pytest.raises(ValueError, match="fingerprint"):
        _resume(prob, tmp_path, seed=8)


def test_result_carries_the_fingerprint_and_saves_it(make_problem, tmp_path):
    from persafl_np import fingerprint

    prob = make_problem(n=5)
    a = run(prob, ALG, SPEC, T=10, seed=7)
    b = run(prob, ALG, SPEC, T=10, seed=7)
    c = run(prob, ALG, SPEC, T=11, seed=7)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    other_beta = Algorithm(persafl(0.6), Q=2, eta=0.05, batch_size=4)
    assert run(prob, other_beta, SPEC, T=10, seed=7).fingerprint != a.fingerprint
    other_data = make_problem(n=5, seed=9)
    assert run(other_data, ALG, SPEC, T=10, seed=7).fingerprint != a.fingerprint
    a.save(tmp_path)
    assert fingerprint.read(tmp_path / fingerprint.FILE)["fingerprint"] == a.fingerprint
    np.testing.assert_array_equal(a.params, b.params)
