"""Which run a folder belongs to: refuse to mix two runs' files in one ``--out`` folder.

A *run folder* holds the files of :meth:`persafl_np.results.RunResult.save` (:data:`RUN_FILES`),
optionally ``checkpoint/`` and a sweep's markers. Its identity is the *config digest* of
:mod:`persafl_np.fingerprint`: taken from ``fingerprint.json`` when the run finished, else from
the ``config.toml`` a checkpointed run writes before it starts. :func:`prepare_run_folder`
accepts an empty or missing folder, or one whose identity equals the new run's (same config,
same package version: the run is deterministic, so its files are rewritten with the same
content); any other folder holding run files is refused unless ``force``, which deletes the
run files (and only those) first.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from persafl_np import fingerprint
from persafl_np.atomic import TMP_SUFFIX, remove_stale_tmp
from persafl_np.json_object import read_json_object

__all__ = ["RUN_FILES", "folder_identity", "prepare_run_folder", "read_cli_json"]

#: Files and folders a run (or a sweep run) writes into its folder.
RUN_FILES = ("config.toml", "trace.csv", "jobs.csv", "history.csv", "final.npz", "summary.json",
             fingerprint.FILE, "batches.npz", "checkpoint", "DONE", "ERROR.txt")


def _is_run_file(p: Path) -> bool:
    return p.name in RUN_FILES or (p.name.startswith(".") and p.name.endswith(TMP_SUFFIX))


def folder_identity(d: Path) -> str | None:
    """The config digest of the run whose files ``d`` holds (None: unknown or none)."""
    fp = d / fingerprint.FILE
    if fp.is_file():
        try:
            return fingerprint.read(fp)["config_digest"]
        except ValueError:
            return None
    cfg = d / "config.toml"
    if cfg.is_file():
        from persafl_np.config import load_config

        try:
            return fingerprint.config_digest(load_config(cfg))
        except (ValueError, OSError):
            return None
    return None


def prepare_run_folder(out: str | Path, config: Any, *, force: bool = False) -> Path:
    """Make ``out`` ready for a run of ``config`` (module docstring); returns the path."""
    d = Path(out)
    if d.exists() and not d.is_dir():
        raise ValueError(f"--out {d} exists and is not a directory")
    if not d.exists():
        d.mkdir(parents=True)
        return d
    present = sorted(p for p in d.iterdir() if _is_run_file(p))
    if not present:
        return d
    if not force and folder_identity(d) == fingerprint.config_digest(config):
        remove_stale_tmp(d)  # temporary files of a killed write of this same run
        return d
    if not force:
        raise ValueError(
            f"--out {d} holds another run's files ({', '.join(p.name for p in present[:4])}"
            f"{', ...' if len(present) > 4 else ''}; their config differs or is unknown); "
            "choose a new folder, or pass --force to delete those files first"
        )
    for p in present:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    return d


def read_cli_json(path: str | Path) -> dict[str, Any]:
    """Read and validate ``checkpoint/cli.json`` (checkpoint_every ≥ 1; replay, batches: a path
    or null)."""
    p = Path(path)
    doc = read_json_object(p, "a checkpoint/cli.json file", 1 << 16)
    every = doc.get("checkpoint_every")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"{p}: field 'checkpoint_every' must be an integer >= 1, got {every!r}")
    replay = doc.get("replay")
    if replay is not None and not isinstance(replay, str):
        raise ValueError(f"{p}: field 'replay' must be a trace.csv path or null, got {replay!r}")
    batches = doc.get("batches")
    if batches is not None and not isinstance(batches, str):
        raise ValueError(f"{p}: field 'batches' must be a batches.npz path or null, got "
                         f"{batches!r}")
    return {"checkpoint_every": every, "replay": replay, "batches": batches}
