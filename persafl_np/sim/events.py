"""The virtual clock's event queue with a documented total order (theory/simulator.md §3).

Events are tuples ``(time, kind, client, seq)`` in a binary heap, compared lexicographically:
earlier time first; at equal times ``ARRIVAL`` (0) before ``FAILURE`` (1) before ``START`` (2)
(so a client coming online at t pulls the model after every arrival at t); then the smaller
client id; then the smaller sequence number (the global push counter, unique). The order is
therefore total and independent of insertion order and of hash seeds. Push and pop are
O(log q), q = the number of jobs in flight.
"""

from __future__ import annotations

import heapq

__all__ = ["ARRIVAL", "FAILURE", "START", "EventQueue"]

#: A job's upload reached the server.
ARRIVAL = 0
#: A job was lost (client dropped out); the server learns it at the would-be arrival time.
FAILURE = 1
#: A waiting client comes online (availability window opens) and starts its job.
START = 2


class EventQueue:
    """Min-heap of ``(time, kind, client, seq)`` (module docstring gives the order)."""

    __slots__ = ("heap", "seq")

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, int, int]] = []
        self.seq = 0

    def push(self, time: float, kind: int, client: int) -> None:
        heapq.heappush(self.heap, (time, kind, client, self.seq))
        self.seq += 1

    def pop(self) -> tuple[float, int, int, int]:
        return heapq.heappop(self.heap)

    def __len__(self) -> int:
        return len(self.heap)

    def state(self) -> dict:
        return {"heap": [list(e) for e in self.heap], "seq": self.seq}

    def load_state(self, s: dict) -> None:
        # The saved list is already a valid heap (it was one when saved).
        self.heap = [(float(t), int(k), int(c), int(q)) for t, k, c, q in s["heap"]]
        self.seq = int(s["seq"])
