"""Reading a small JSON object from an untrusted file (run folders, checkpoints, sweep markers).

One rule for every such reader: the size is checked before the file is read (a crafted
multi-gigabyte "marker" is refused, not loaded), bytes that are not UTF-8 JSON, nesting deep
enough to exhaust the parser, and a document that is not an object all become a ``ValueError``
naming the file. The callers then validate their own fields.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["read_json_object"]


def read_json_object(path: str | os.PathLike[str], what: str, max_bytes: int,
                     where: str | None = None) -> dict[str, Any]:
    """The JSON object stored in ``path``, a file of kind ``what`` (e.g. "a DONE marker") of
    at most ``max_bytes`` bytes. ``where`` names the file in messages (default: the path).
    Raises ValueError for a missing, unreadable, oversized or malformed file."""
    p = Path(path)
    where = str(p) if where is None else where
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ValueError(f"{where}: cannot read {what} ({exc.strerror})") from None
    if size > max_bytes:
        raise ValueError(f"{where}: {size} bytes, more than the {max_bytes} of {what}")
    try:
        doc = json.loads(p.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ValueError(f"{where}: cannot read {what} ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{where}: not valid JSON for {what} ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: must hold a JSON object ({what})")
    return doc
