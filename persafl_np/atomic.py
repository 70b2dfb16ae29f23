"""Atomic file writes: a temporary file in the target's directory, fsync, then ``os.replace``.

A reader (or a run killed mid-write) therefore sees either the old file or the new one,
never a torn one. Files get mode 0644 (``mkstemp`` would leave 0600), so figures and
results written by one user stay readable by others.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = [
    "TMP_SUFFIX",
    "atomic_write_bytes",
    "atomic_write_npz",
    "atomic_write_text",
    "fsync_dir",
    "npz_bytes",
    "remove_stale_tmp",
]

#: Suffix of the temporary files; a write killed before its rename leaves ``.NAME.XXXX.tmp``.
TMP_SUFFIX = ".tmp"


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory, so the renames inside it survive a power loss (no-op where the OS
    cannot open directories, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    durable: bool = False,
    before_replace: Callable[[], None] | None = None,
) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path.

    durable: also fsync the directory after the rename (the new name is then on disk).
    before_replace: called after the temporary file is complete and fsynced, just before the
        rename (a test hook: the kill-injection points of :mod:`persafl_np.sim.checkpoint`).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def remove_stale_tmp(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files (``.NAME.XXXX.tmp``) that killed writes left in
    ``directory``; returns what was removed. Only call it where no other process is writing."""
    d = Path(directory)
    removed = []
    if not d.is_dir():
        return removed
    for p in d.iterdir():
        if p.name.startswith(".") and p.name.endswith(TMP_SUFFIX) and p.is_file():
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """The bytes of an (uncompressed) ``.npz`` holding ``arrays``."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def atomic_write_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> Path:
    """Write arrays as one ``.npz`` atomically.

    Callers pass numeric arrays or string scalars only, so nothing is pickled; readers load
    with ``allow_pickle=False``.
    """
    return atomic_write_bytes(path, npz_bytes(**arrays))
