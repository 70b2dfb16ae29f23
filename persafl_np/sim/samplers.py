"""The per-client batch samplers of a run (law (SIM-BATCH), theory/simulator.md §1.1).

* :class:`ParkedSampler` — a :class:`~persafl_np.personalization.sampling.BatchSampler` that keeps
  its generator *parked* between draws: the PCG64 state as four ints (~0.2 KiB) instead of a
  live ``numpy.random.Generator`` (~1 KiB each, measured; a parked sampler with its m = 20
  permutation measures ~0.7 KiB), loaded into one Generator shared by
  the run only while the client draws (a new permutation or the additive-noise oracle's noise).
  The draws are those of the client's own Generator, bit for bit; the cost is one state load
  and one state read (~2.5 µs) per pass over the client's data. At 10⁵ clients this is ~100 MB.
* :class:`RecordedSampler` — replays one client's recorded batches (``record_batches``)
  instead of its stream.

Both offer the sampler interface the cohort path uses: ``take(m, b, k)``, ``normal(shape)``,
``state()`` / ``load_state(s, perm)`` (the checkpoint format of ``BatchSampler.state``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from persafl_np.personalization.sampling import BatchSampler

__all__ = ["PARK_ABOVE", "ParkedSampler", "RecordedSampler"]

#: Runs with more clients than this park their samplers' generators (ParkedSampler); smaller
#: runs keep one live Generator per client (~1.5 KiB each, ≤ 15 MB), which saves the state
#: load and read of every pass (~5 µs: ~6 % of an exact-MAML job on the issue-9 workload,
#: whose jobs start 3.3 passes each). Same draws either way (the client's own generator).
PARK_ABOVE = 10_000


class ParkedSampler(BatchSampler):
    """A BatchSampler whose generator state is parked between draws (module docstring).

    ``make_rng`` builds the client's own generator on first use (only to read its initial
    state); ``shared`` is the run's one Generator of the same bit-generator type (PCG64).
    """

    __slots__ = ("parked", "shared")

    def __init__(self, make_rng: Callable[[], np.random.Generator],
                 shared: np.random.Generator) -> None:
        super().__init__(make_rng)
        self.shared = shared
        self.parked: tuple[int, int, int, int] | None = None

    def _load(self) -> np.random.Generator:
        p = self.parked
        bg = self.shared.bit_generator
        if p is None:
            bg.state = self._make().bit_generator.state  # type: ignore[misc]
            self._make = None  # parked from now on: the factory is not needed again
        else:
            bg.state = {"bit_generator": "PCG64", "state": {"state": p[0], "inc": p[1]},
                        "has_uint32": p[2], "uinteger": p[3]}
        return self.shared

    def _park(self) -> None:
        s = self.shared.bit_generator.state
        self.parked = (s["state"]["state"], s["state"]["inc"], s["has_uint32"], s["uinteger"])

    def _new_pass(self, m: int) -> None:
        self.perm = self._load().permutation(m)
        self._park()
        self.pos, self.m = 0, m

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:
        out = self._load().standard_normal(shape)
        self._park()
        return out

    def standard_normal(self, shape: Any) -> np.ndarray:
        return self.normal(shape)

    def generator(self) -> np.random.Generator:  # pragma: no cover - not used by the run
        raise RuntimeError("a ParkedSampler has no generator of its own; use take/normal")

    def state(self) -> tuple[dict | None, np.ndarray | None]:
        p = self.parked
        if p is None:
            return None, None
        gen = {"bit_generator": "PCG64", "state": {"state": p[0], "inc": p[1]},
               "has_uint32": p[2], "uinteger": p[3]}
        return {"gen": gen, "pos": self.pos, "m": self.m}, self.perm

    def load_state(self, s: dict | None, perm: np.ndarray | None = None) -> None:
        if s is None:
            return
        g = s["gen"]
        if g.get("bit_generator") != "PCG64":
            raise ValueError(f"sampler state: bit generator {g.get('bit_generator')!r}, "
                             "expected 'PCG64'")
        st = g["state"]
        self.parked = (int(st["state"]), int(st["inc"]), int(g["has_uint32"]),
                       int(g["uinteger"]))
        self.pos, self.m = int(s["pos"]), int(s["m"])
        self.perm = None if perm is None else np.asarray(perm, dtype=np.int64).copy()


class RecordedSampler:
    """Replays one client's recorded batches (``record_batches``) instead of its stream."""

    __slots__ = ("client", "k", "rows")

    def __init__(self, client: int, rows: list) -> None:
        self.client, self.rows, self.k = client, rows, 0

    def take(self, m: int, b: int | None, k: int) -> np.ndarray | None:
        if b is None or b >= m:
            return None
        if self.k >= len(self.rows):
            raise ValueError(f"recorded batches: client {self.client} has no batches left for "
                             f"its job {self.k + 1}")
        r = self.rows[self.k]
        self.k += 1
        if tuple(r.shape) != (k, b):
            raise ValueError(f"recorded batches: client {self.client} job {self.k} has shape "
                             f"{tuple(r.shape)}, this run needs ({k}, {b})")
        return r

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:
        raise ValueError("recorded batches cannot replay the additive-noise oracle's draws")

    def state(self) -> tuple[dict, None]:
        return {"k": self.k}, None

    def load_state(self, s: dict | None, perm: Any = None) -> None:
        if s is not None:
            self.k = int(s["k"])
