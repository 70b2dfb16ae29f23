"""Turn the ``seed`` argument of every data generator into a NumPy ``Generator``.

All generators in :mod:`persafl_np.data` accept ``seed`` as an ``int`` (≥ 0), a
``numpy.random.SeedSequence``, a ``numpy.random.Generator`` or ``None``:

* ``int`` / ``SeedSequence``: a fresh ``Generator`` is built, so the same value
  always yields the same arrays (the reproducible choice).
* ``Generator``: used as is and *advanced*; two calls with the same generator
  object therefore give different (but still reproducible) data.
* ``None``: fresh OS entropy, i.e. deliberately **not** reproducible.

The global ``np.random`` state is never touched.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["SeedLike", "as_generator"]

SeedLike = int | np.random.Generator | np.random.SeedSequence | None


def as_generator(seed: SeedLike, name: str = "seed") -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``seed`` (see the module docstring).

    Raises ``ValueError`` naming ``name`` for negative integers, booleans, floats and
    any other type, instead of letting NumPy coerce them silently (``seed=1.5`` or
    ``seed=True`` are almost always mistakes).
    """
    if seed is None or isinstance(seed, np.random.Generator | np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(
            f"{name} must be an int >= 0, a numpy.random.Generator, a numpy.random.SeedSequence "
            f"or None, got {type(seed).__name__} {seed!r}"
        )
    if int(seed) < 0:
        raise ValueError(f"{name} must be an int >= 0, got {seed!r}")
    return np.random.default_rng(int(seed))
