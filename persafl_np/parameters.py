"""Parameter declarations and their one validator (theory/simulator.md §7, (CFG-1)–(CFG-2)).

Every configurable component declares its parameters once, next to its constructor, as a
class attribute ``params: tuple[Param, ...]`` (functions carry it through :func:`declares`), in
the spirit of scikit-learn's ``_parameter_constraints``. A :class:`Param` names the parameter,
its kind, allowed range or choices, default and a one-line doc. This module is the only place
that turns a declaration into a check:

* :func:`check` — one value against one declaration; the ``ValueError`` names the full dotted
  key and the allowed range (``arrivals.job_time.mean must be a finite number > 0, got '2.5'``).
  Booleans and strings never pass as numbers; integers beyond float range are not finite.
* :func:`resolve` — a table of given values against a component's declarations: unknown keys
  and keys that do not apply to the component (``when``) are errors naming the key and the
  component; defaults are filled in; only the applicable keys are returned.
* :func:`validate_fields` — a frozen dataclass checks and normalizes its own declared fields in
  ``__post_init__`` (the same checks, bare field names).

The config tables (:mod:`persafl_np.config`), ``persafl config --list`` and the README's table
are all generated from these declarations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from persafl_np.arguments import INT_MAX, shown

__all__ = [
    "KINDS",
    "Declared",
    "Param",
    "applies",
    "check",
    "check_args",
    "declarations",
    "declares",
    "resolve",
    "validate_fields",
]

#: int, float, str (a choice when ``choices``), bool, floats / ints (non-empty lists), path
#: (a file path string), table (a sub-table of ``component``'s declarations), any (passed as is).
KINDS = ("int", "float", "str", "bool", "floats", "ints", "path", "table", "any")


@dataclass(frozen=True)
class Param:
    """One parameter: ``name``, ``kind`` (:data:`KINDS`), ``default``, ``doc``.

    lo/hi: numeric bounds (inclusive unless ``lo_open``/``hi_open``); choices: allowed strings;
    optional: ``None`` is allowed (and means "omitted"); when: ``(other, values)`` — applies only
    when the sibling parameter ``other`` has one of ``values``; component: the declared class of
    a ``table`` parameter; toml: settable from a config file (False for values the program
    supplies, e.g. a model's ``n_classes`` taken from the data).
    """

    name: str
    kind: str
    default: Any = None
    doc: str = ""
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False
    when: tuple[str, tuple[Any, ...]] | None = None
    component: Any = None
    toml: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Param {self.name}: kind must be one of {KINDS}, got {self.kind!r}")

    def range_text(self) -> str:
        """The allowed values in words (used by every message and by ``describe``)."""
        k = self.kind
        if k == "str" and self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif k in ("int", "float", "ints", "floats"):
            what = {"int": "an integer", "float": "a finite number", "ints": "a list of integers",
                    "floats": "a list of finite numbers"}[k]
            parts = []
            if self.lo is not None:
                parts.append(f"{'>' if self.lo_open else '>='} {_num_text(self.lo)}")
            if self.hi is not None:
                parts.append(f"{'<' if self.hi_open else '<='} {_num_text(self.hi)}")
            text = what + (" " + " and ".join(parts) if parts else "")
            if k in ("ints", "floats") and parts:
                text = what + " each " + " and ".join(parts)
        elif k == "bool":
            text = "true or false"
        elif k == "path":
            text = "a file path (relative to the config file)"
        elif k == "table":
            text = "a table"
        elif k == "str":
            text = "a string"
        else:
            text = "any value"
        return text + (" (optional)" if self.optional else "")


def _num_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


@runtime_checkable
class Declared(Protocol):
    """A component whose parameters are declared (a class attribute ``params``)."""

    params: tuple[Param, ...]


F = TypeVar("F", bound=Callable[..., Any])


def declares(*params: Param) -> Callable[[F], F]:
    """Attach ``params`` to a factory function (rules, data generators)."""

    def deco(fn: F) -> F:
        fn.params = tuple(params)  # type: ignore[attr-defined]
        return fn

    return deco


def check_args(fn: Any, **values: Any) -> tuple[Any, ...]:
    """``values`` (keyword = a parameter declared by ``fn`` with :func:`declares`) checked
    against ``fn``'s own declarations and normalized, in the order given: a factory validates
    its arguments with the one declaration its config table is built from."""
    decl = {p.name: p for p in declarations(fn)}
    return tuple(check(decl[k], v) for k, v in values.items())


def declarations(component: Any) -> tuple[Param, ...]:
    """The declared parameters of a class or factory (empty when it declares none)."""
    return tuple(getattr(component, "params", ()) or ())


def _fail(p: Param, key: str, value: Any, x: float | None = None) -> ValueError:
    """The message: for a number of the right kind outside the range, the violated bound
    first (``eta must be > 0 (a finite number > 0), got -1``), else the allowed values."""
    text = p.range_text()
    if p.kind in ("int", "ints") and p.hi is None:
        text += " (and < 2^63)"
    if x is not None and p.kind in ("float", "floats"):
        if p.lo is not None and (x <= p.lo if p.lo_open else x < p.lo):
            text = f"{'>' if p.lo_open else '>='} {_num_text(p.lo)} ({text})"
        elif p.hi is not None:
            text = f"{'<' if p.hi_open else '<='} {_num_text(p.hi)} ({text})"
    return ValueError(f"{key} must be {text}, got {shown(value)}")


def _in_range(p: Param, x: float) -> bool:
    if p.lo is not None and (x <= p.lo if p.lo_open else x < p.lo):
        return False
    return not (p.hi is not None and (x >= p.hi if p.hi_open else x > p.hi))


def _real(v: Any) -> float | None:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                               np.floating)):
        return None
    try:
        x = float(v)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def _int(v: Any) -> int | None:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        return None
    i = int(v)
    return i if -INT_MAX - 1 <= i <= INT_MAX else None


def check(p: Param, value: Any, key: str | None = None) -> Any:
    """``value`` checked against ``p`` and normalized (float, int, tuple); ValueError names
    ``key`` (default: the bare name) and the allowed range."""
    key = p.name if key is None else key
    if value is None:
        if p.optional:
            return None
        raise _fail(p, key, value)
    k = p.kind
    if k in ("int", "float"):
        x = _int(value) if k == "int" else _real(value)
        if x is None or not _in_range(p, x):
            raise _fail(p, key, value, x)
        return x
    if k in ("ints", "floats"):
        if not isinstance(value, (list, tuple, np.ndarray)) or len(value) == 0:
            raise _fail(p, key, value)
        out = []
        for j, v in enumerate(value):
            x = _int(v) if k == "ints" else _real(v)
            if x is None or not _in_range(p, x):
                raise ValueError(f"{key} entry {j}: {_fail(p, key, v, x)}")
            out.append(x)
        return tuple(out)
    if k == "str":
        if not isinstance(value, str) or (p.choices and value not in p.choices):
            raise _fail(p, key, value)
        return value
    if k == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise _fail(p, key, value)
        return bool(value)
    if k == "path":
        if not isinstance(value, str) or not value or "\0" in value:
            raise _fail(p, key, value)
        return value
    return value  # table (checked by its component), any


def applies(p: Param, values: Mapping[str, Any]) -> bool:
    """Whether ``p`` applies given its siblings' ``values`` (its ``when`` clause)."""
    if p.when is None:
        return True
    other, allowed = p.when
    return values.get(other) in allowed


def resolve(params: tuple[Param, ...], given: Mapping[str, Any], prefix: str = "",
            component: str = "", skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check the ``given`` table against ``params``; return the applicable values, defaults
    filled in, in declaration order. ``prefix``: the table's dotted key (``"arrivals."``);
    ``component``: its name in messages; ``skip``: keys checked by the caller.

    Unknown keys and keys that do not apply (``when``, or ``toml=False``) raise ValueError
    naming the key, the component and the allowed keys.
    """
    settable = [p for p in params if p.toml]
    names = {p.name for p in settable}
    about = f" for {component}" if component else ""
    for k in given:
        if k in skip:
            continue
        if not isinstance(k, str) or k not in names:
            allowed = sorted(names | set(skip))
            raise ValueError(f"unknown key {prefix}{k!s}{about} (allowed: {allowed})")
    out: dict[str, Any] = {}
    for p in settable:
        key = prefix + p.name
        if not applies(p, out):
            if p.name in given:
                other, vals = p.when  # type: ignore[misc]
                raise ValueError(
                    f"{key} does not apply{about} with {prefix}{other}={out.get(other)!r} "
                    f"(only with {prefix}{other} in {list(vals)}); remove it"
                )
            continue
        if p.name not in given and p.default is None and not p.optional:
            raise ValueError(f"{key} is required{about} ({p.range_text()})")
        out[p.name] = check(p, given[p.name], key) if p.name in given else p.default
    return out


def validate_fields(obj: Any, prefix: str = "") -> None:
    """Check and normalize the declared fields of the frozen dataclass ``obj`` in place (every
    declared field, applicable or not: an inapplicable one keeps a valid default;
    ``table``/``any`` fields are left to the class)."""
    values = {p.name: getattr(obj, p.name) for p in obj.params if hasattr(obj, p.name)}
    for p in obj.params:
        if p.name not in values or p.kind in ("table", "any"):
            continue
        v = check(p, values[p.name], prefix + p.name)
        values[p.name] = v
        object.__setattr__(obj, p.name, v)
