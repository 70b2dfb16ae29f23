"""Random streams of a run: one ``seed`` → independent, addressable streams.

theory/simulator.md §1.

Every stream is a child of ``numpy.random.SeedSequence(seed, spawn_key=(purpose, ...))``; the
spawn key names *what the stream is for* and, for per-client streams, *which client*, so adding a
client never changes the streams of the others, and a stream used for one purpose is never shared
with another.

Job times and dropout coins are drawn **counter-based**: the j-th draw of client i is
``u = H(k_i, j)`` with k_i = SeedSequence(seed, spawn_key=(purpose, i)) material and H the
SplitMix64 finaliser. No generator object is kept per client (100 000 clients cost two uint64
keys each), the state to checkpoint is one job counter per client, and any draw can be recomputed.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PURPOSE_AVAIL",
    "PURPOSE_BATCH",
    "PURPOSE_DATA",
    "PURPOSE_DROPOUT",
    "PURPOSE_INIT",
    "PURPOSE_JOBS",
    "PURPOSE_SERVER",
    "client_rng",
    "client_keys",
    "U_MAX",
    "counter_uniform",
    "counter_uniforms",
    "unit_float",
    "unit_floats",
    "data_rng",
    "init_rng",
    "server_rng",
]

#: spawn_key[0] values; fixed forever (changing one changes every published run).
PURPOSE_SERVER = 0
PURPOSE_BATCH = 1
PURPOSE_JOBS = 2
PURPOSE_DROPOUT = 3
PURPOSE_DATA = 4
PURPOSE_INIT = 5
PURPOSE_AVAIL = 6

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def server_rng(seed: int) -> np.random.Generator:
    """Server stream: theorem-mode arrivals, client sampling (spawn_key=(PURPOSE_SERVER,))."""
    ss = np.random.SeedSequence(_check_seed(seed), spawn_key=(PURPOSE_SERVER,))
    return np.random.default_rng(ss)


def client_rng(seed: int, i: int) -> np.random.Generator:
    """Client i's mini-batch stream (spawn_key=(PURPOSE_BATCH, i))."""
    return np.random.default_rng(
        np.random.SeedSequence(_check_seed(seed), spawn_key=(PURPOSE_BATCH, int(i)))
    )


def data_rng(seed: int) -> np.random.Generator:
    """Stream for building the data set (spawn_key=(PURPOSE_DATA,))."""
    ss = np.random.SeedSequence(_check_seed(seed), spawn_key=(PURPOSE_DATA,))
    return np.random.default_rng(ss)


def init_rng(seed: int) -> np.random.Generator:
    """Stream for the initial model w⁰ (spawn_key=(PURPOSE_INIT,))."""
    ss = np.random.SeedSequence(_check_seed(seed), spawn_key=(PURPOSE_INIT,))
    return np.random.default_rng(ss)


def _mix(z: int) -> int:
    """SplitMix64 finaliser (Steele, Lea, Flood 2014) on a Python int."""
    z = (z + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _mix_np(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = z + np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def client_keys(seed: int, purpose: int, n: int) -> np.ndarray:
    """Per-client 64-bit keys k_i, i = 0..n−1, for the counter-based streams of ``purpose``.

    k_i = H(b ⊕ H(i + c)) with (b, c) = SeedSequence(seed, spawn_key=(purpose,)) state words:
    k_i depends only on (seed, purpose, i), so clients are added without changing others.
    """
    b, c = np.random.SeedSequence(_check_seed(seed), spawn_key=(int(purpose),)).generate_state(
        2, np.uint64
    )
    with np.errstate(over="ignore"):
        idx = np.arange(n, dtype=np.uint64) + c
    return _mix_np(b ^ _mix_np(idx))


#: The largest uniform: (2⁵³ − 1 + ½)/2⁵³ rounds to 1.0 in float64 (once in 2⁵³ draws), which
#: would make an infinite log-normal or half-normal duration; that one value is 1 − 2⁻⁵³.
U_MAX = 1.0 - 2.0**-53


def unit_float(t: int) -> float:
    """(t + ½)/2⁵³ for a 53-bit integer t, in the open interval (0, 1) (see :data:`U_MAX`)."""
    u = (t + 0.5) * (1.0 / 9007199254740992.0)
    return u if u < 1.0 else U_MAX


def unit_floats(t: np.ndarray) -> np.ndarray:
    """Elementwise :func:`unit_float` of a uint64 array of 53-bit integers."""
    u = (t.astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
    return np.minimum(u, U_MAX, out=u)


def counter_uniform(key: int, j: int) -> float:
    """The j-th uniform draw of the stream with key ``key``: a float in the open interval (0, 1).

    u = (⌊H(k + (j+1)·γ) / 2¹¹⌋ + ½) / 2⁵³ with H = :func:`_mix` (:func:`unit_float`), the
    hash written out here because it runs once per job on the simulator's hot path.
    """
    z = (int(key) + (int(j) + 2) * _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z ^= z >> 31
    return unit_float(z >> 11)


def counter_uniforms(keys: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Vectorised :func:`counter_uniform` (same values, elementwise)."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) + (j.astype(np.uint64) + np.uint64(1)) * np.uint64(_GOLDEN)
    return unit_floats(_mix_np(z) >> np.uint64(11))
