"""Commented starter configurations for ``persafl init TEMPLATE`` (package data, TOML)."""

from __future__ import annotations

from importlib.resources import files

__all__ = ["TEMPLATES", "template_text"]

#: name -> one-line description; the file is ``<name>.toml`` beside this module.
TEMPLATES = {
    "maml": "asynchronous PersA-FL with MAML clients, event-driven arrivals (the README config)",
    "theorem": "theorem mode (the analysis model): a run the bound (T1) applies to",
    "sweep": "a sweep file: a grid over staleness control and algorithm, two seeds",
}


def template_text(name: str) -> str:
    """The text of template ``name`` (one of :data:`TEMPLATES`)."""
    if name not in TEMPLATES:
        raise ValueError(f"template must be one of {sorted(TEMPLATES)}, got {name!r}")
    return files(__package__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
