"""``Generator.integers(n)`` one value at a time, from blocks of the generator's 32-bit words.

A scalar ``rng.integers(n)`` costs ~1.5 µs of call overhead; theorem mode makes one or two per
arrival. For 1 ≤ n ≤ 2³¹ NumPy draws it by Lemire's method on the bit generator's 32-bit
outputs, eq. (BND-1) of theory/simulator.md §2. :class:`BlockedIntegers` takes those words 1024
at a time with ``rng.integers(0, 2**32, size=1024, dtype=np.uint32)`` — the same
``next_uint32`` sequence — and applies (BND-1) in Python, so every value *and* the generator
state after it are NumPy's own (``tests/sim/test_bounded.py`` checks both against
``rng.integers`` for random ranges). :meth:`state` is the generator state at the consumption
point (the block is redrawn from the state before it and advanced), so a checkpoint holds
exactly what an unblocked run would.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BlockedIntegers"]

_BLOCK = 1024
_MAX_N = 2**31


class BlockedIntegers:
    """``draw(n)`` ≡ ``int(rng.integers(n))`` bit for bit (module docstring), for n ≤ 2³¹."""

    __slots__ = ("before", "pos", "rng", "words")

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.words: list[int] = []
        self.pos = 0
        self.before: dict | None = None  # generator state before the current block

    def _refill(self) -> None:
        self.before = self.rng.bit_generator.state
        self.words = self.rng.integers(0, 2**32, size=_BLOCK, dtype=np.uint32).tolist()
        self.pos = 0

    def draw(self, n: int) -> int:
        """A uniform integer in 0..n−1, as ``rng.integers(n)`` (n ≥ 1)."""
        if n == 1:
            return 0
        if n > _MAX_N:
            self._sync()
            return int(self.rng.integers(n))
        words, pos = self.words, self.pos
        if pos == len(words):
            self._refill()
            words, pos = self.words, 0
        m = words[pos] * n
        pos += 1
        low = m & 0xFFFFFFFF
        if low < n:
            threshold = (0xFFFFFFFF - (n - 1)) % n
            while low < threshold:
                if pos == len(words):
                    self.pos = pos
                    self._refill()
                    words, pos = self.words, 0
                m = words[pos] * n
                pos += 1
                low = m & 0xFFFFFFFF
        self.pos = pos
        return m >> 32

    def _sync(self) -> None:
        """Put the generator where an unblocked run's would be (drop the unused words)."""
        if self.before is not None:
            self.rng.bit_generator.state = self.state()
            self.words, self.pos, self.before = [], 0, None

    def state(self) -> dict:
        """The generator state after the words consumed so far."""
        if self.before is None:
            return self.rng.bit_generator.state
        g = np.random.Generator(type(self.rng.bit_generator)())
        g.bit_generator.state = self.before
        if self.pos:
            g.integers(0, 2**32, size=self.pos, dtype=np.uint32)
        return g.bit_generator.state

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state
        self.words, self.pos, self.before = [], 0, None
