"""Client i's mini-batch law: one permutation per pass over its data (theory/simulator.md §1.1).

Law (SIM-BATCH), for a client with m training rows and batch size b < m, drawing from its own
generator ``G_i = default_rng(SeedSequence(seed, spawn_key=(1, i)))``:

* the client keeps a *pass*: a permutation π = ``G_i.permutation(m)`` and a position p;
* the next batch is π[p : p + b] and p ← p + b; if fewer than b entries are left
  (p + b > m) the remaining m − p entries are discarded (drop_last, like a shuffling
  DataLoader) and a new pass π = ``G_i.permutation(m)``, p = 0 starts first;
* a job asks for its Q·k batches in step order (k batches per local step, in the oracle's
  order: MAML D, D′, D″; first-order MAML D, D′; Plain and Moreau D), so batches continue the
  pass across steps *and across jobs* of the same client;
* b ≥ m (or b = None) is the full batch: no draw, the pass is untouched;
* the additive-noise oracle draws no batch; its noise for a job is ``G_i.standard_normal((Q, p))``
  (row q for step q, identical to Q successive ``standard_normal(p)`` calls).

Cost per batch: one slice of an existing permutation (~1 µs), plus one ``permutation(m)``
(~3 µs for m = 200) per pass.

The state to checkpoint: the generator state, the position p, m (JSON-able) and the current
permutation (an int array, :meth:`BatchSampler.state` / :meth:`BatchSampler.load_state`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["BatchSampler", "as_sampler"]


class BatchSampler:
    """One client's batch stream under the law (SIM-BATCH) of the module docstring.

    ``make_rng`` builds the client's generator on first use (creating a SeedSequence-seeded
    Generator costs ~50 µs, so full-batch runs with 10⁵ clients never pay it). A
    :class:`numpy.random.Generator` may be passed instead (used as is).
    """

    __slots__ = ("_make", "gen", "m", "perm", "pos")

    def __init__(self, make_rng: Callable[[], np.random.Generator] | np.random.Generator) -> None:
        if isinstance(make_rng, np.random.Generator):
            self.gen: np.random.Generator | None = make_rng
            self._make = None
        else:
            self.gen, self._make = None, make_rng
        self.perm: np.ndarray | None = None
        self.pos = 0
        self.m = 0

    def generator(self) -> np.random.Generator:
        """The client's generator (created on first use)."""
        g = self.gen
        if g is None:
            g = self.gen = self._make()  # type: ignore[misc]
        return g

    def _new_pass(self, m: int) -> None:
        self.perm = self.generator().permutation(m)
        self.pos, self.m = 0, m

    def take(self, m: int, b: int | None, k: int) -> np.ndarray | None:
        """The next k batches of b row indices as a (k, b) int64 array; None for the full batch.

        ``m`` must be the same on every call (the client's number of rows).
        """
        if b is None or b >= m:
            return None
        perm, pos = self.perm, self.pos
        if perm is not None and self.m != m:
            raise ValueError(f"BatchSampler: the client's row count changed ({self.m} -> {m})")
        if k < 1:
            return np.empty((0, b), dtype=np.int64)
        if perm is None or pos + b > m:
            self._new_pass(m)
            perm, pos = self.perm, 0
        if pos + k * b <= m:
            # the common case: the whole request lies in the current pass (a read-only view;
            # passes are replaced, never modified)
            self.pos = pos + k * b
            out = perm[pos:pos + k * b].reshape(k, b)
            out.flags.writeable = False
            return out
        parts = []
        left = k * b
        while left:
            if perm is None or pos + b > m:
                self._new_pass(m)
                perm, pos = self.perm, 0
            # as many whole batches as this pass still holds, in one slice
            n_here = min(left, (m - pos) // b * b)
            parts.append(perm[pos:pos + n_here])
            pos += n_here
            left -= n_here
        self.pos = pos
        return np.concatenate(parts).reshape(k, b)

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:
        """Standard normal draws (the additive-noise oracle), float64, on the host."""
        return self.generator().standard_normal(shape)

    # Generator look-alike for single-client oracle code that draws noise (AdditiveNoise.step)
    def standard_normal(self, shape: Any) -> np.ndarray:
        return self.generator().standard_normal(shape)

    # -- checkpoint state
    def state(self) -> tuple[dict | None, np.ndarray | None]:
        """(JSON-able dict or None if the generator was never used, current permutation)."""
        if self.gen is None:
            return None, None
        return {"gen": self.gen.bit_generator.state, "pos": self.pos, "m": self.m}, self.perm

    def load_state(self, s: dict | None, perm: np.ndarray | None = None) -> None:
        if s is None:
            return
        self.generator().bit_generator.state = s["gen"]
        self.pos, self.m = int(s["pos"]), int(s["m"])
        self.perm = None if perm is None else np.asarray(perm, dtype=np.int64).copy()


def as_sampler(rng: Any) -> Any:
    """``rng`` itself if it is a :class:`BatchSampler` (or None: full batches draw nothing),
    else a new sampler on the Generator ``rng`` (a fresh pass: the first batch starts a new
    permutation)."""
    if rng is None or isinstance(rng, BatchSampler) or hasattr(rng, "take"):
        return rng
    if isinstance(rng, np.random.Generator):
        return BatchSampler(rng)
    raise ValueError(f"rng must be a numpy Generator or a BatchSampler, got {type(rng).__name__}")
