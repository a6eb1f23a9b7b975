"""When each contact went in and when its packet came out.

Latency is measured from the moment a contact was *due* to be submitted (open-loop pacing),
not from when the driver got round to it, so a stalled system cannot hide its stall by
slowing the driver down (coordinated omission).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["Tracker", "percentile", "summary"]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "count": float(len(values)),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
    }


@dataclass
class Tracker:
    """Submission and packet times by contact key, on this process's monotonic clock."""

    submitted: dict[str, float] = field(default_factory=dict)
    completed: dict[str, float] = field(default_factory=dict)
    _waiting: set[str] = field(default_factory=set)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, keys: Iterable[str]) -> None:
        self._waiting = {k for k in keys if k not in self.completed}
        if self._waiting:
            self._done.clear()
        else:
            self._done.set()

    def submit(self, key: str, at: float | None = None) -> None:
        self.submitted[key] = time.perf_counter() if at is None else at

    def complete(self, key: str) -> None:
        # A packet seen twice (an at-least-once redelivery) counts once, at its first arrival.
        if key in self.completed:
            return
        self.completed[key] = time.perf_counter()
        self._waiting.discard(key)
        if not self._waiting:
            self._done.set()

    async def wait(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def latencies(self, keys: Iterable[str]) -> list[float]:
        return [
            self.completed[k] - self.submitted[k]
            for k in keys
            if k in self.completed and k in self.submitted
        ]
