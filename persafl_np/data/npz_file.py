"""A user's own data set from a ``.npz`` file: ``[data] name = "npz"`` (theory/simulator.md §7).

The file is the format :meth:`~persafl_np.data.federated.FederatedDataset.save` writes (and
:meth:`~persafl_np.data.federated.FederatedDataset.load` validates as untrusted input: no
pickle, every field checked before an array is read). ``path`` is resolved relative to the
config file; the resolved config records the absolute path and the file's SHA-256, which is
checked again whenever the data are built, so a saved ``config.toml`` describes its data and a
changed file is refused by name instead of silently giving another run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from persafl_np.data.federated import FederatedDataset
from persafl_np.parameters import Param, declares

__all__ = ["PATH", "SHA256", "file_sha256", "load_npz"]

PATH = Param("path", "path", None, "the .npz file (FederatedDataset.save format), relative to "
             "the config file")
SHA256 = Param("sha256", "str", None, "SHA-256 of the file (filled in when omitted; checked "
               "when the data are built)", optional=True)


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes; ValueError naming the file when it cannot be read."""
    h = hashlib.sha256()
    try:
        with Path(path).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise ValueError(f"data file {str(path)!r}: cannot read ({exc.strerror or exc})") from None
    return h.hexdigest()


def check_sha256(path: str | Path, sha256: str | None) -> str:
    """The file's SHA-256; ValueError naming the file when it differs from ``sha256``."""
    digest = file_sha256(path)
    if sha256 is not None and digest != sha256.lower():
        raise ValueError(f"data file {str(path)!r} has SHA-256 {digest}, the config records "
                         f"{sha256}: the file changed since the config was written")
    return digest


@declares(PATH, SHA256)
def load_npz(path: str, sha256: str | None = None, seed: Any = None) -> FederatedDataset:
    """The data set in ``path`` after its hash check (``seed`` is unused: the data are fixed)."""
    check_sha256(path, sha256)
    return FederatedDataset.load(path)
