"""A Red contact's head start: while one is in hand, a process's routine work waits.

Every consumer given one (``broker.consumer``) holds back the routine deliveries it has not
begun while an urgent one is handled, in the hub and in each adapter; the hub also holds its
routine work from a new Red contact's acceptance until its packet is out.

The lanes keep a Red contact out of every queue's backlog, but on a busy hub it still shares
the CPU, the database and the broker with the routine work being drained, and each step of
its path (requests out, answers in, packet out) waits its turn. So from a new Red contact's
acceptance until its packet is out, the hub takes no routine deliveries and relays no
routine or event rows: the broker holds them (the prefetch bounds what is held in memory).

A Red contact can wait up to four hours for a silent agency, and the routine work must not
wait that long: each Red contact holds the routine work back for at most ``limit`` seconds.

The limit is one setting, ``MASH_RED_HEAD_START_S``, which the hub and every adapter read
through :func:`head_start_for`.

A held contact's own work never waits for the head start, whichever lane it came on: a contact
re-rated to Red is held from the re-rating on, and the answers its agencies gave while it was
still Amber (on the routine lane, perhaps held back by another Red contact) go straight in.
Re-ratings themselves are control traffic and never wait (``hub.service``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker.settings import BrokerSettings

__all__ = ["HeadStart", "head_start_for"]


class HeadStart:
    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._held: dict[str, float] = {}  # contact ref -> when its head start ends
        self._open = asyncio.Event()
        self._open.set()
        # Set and replaced on every change, so a waiter for one contact's turn re-checks when
        # that contact becomes held, not only when every hold ends.
        self._changed = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def holding(self) -> bool:
        return not self._open.is_set()

    def hold(self, ref: str) -> None:
        """A Red contact was accepted: routine work waits until it is released."""
        if self.limit <= 0:
            return
        self._held[ref] = self.clock() + self.limit
        self._update()

    def release(self, ref: str) -> None:
        """The contact's packet is out."""
        if self._held.pop(ref, None) is not None:
            self._update()

    def release_all(self) -> None:
        self._held.clear()
        self._update()

    def held(self, ref: str | None) -> bool:
        """Whether ``ref`` is a Red contact in hand (its own work never waits)."""
        return ref is not None and ref in self._held

    async def routine_turn(self, ref: str | None = None) -> None:
        """Return when routine work (for contact ``ref``, when known) may go on."""
        while not self._open.is_set() and not self.held(ref):
            await self._changed.wait()

    def _update(self) -> None:
        now = self.clock()
        for ref in [r for r, until in self._held.items() if until <= now]:
            del self._held[ref]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        if not self._held:
            self._open.set()
            return
        self._open.clear()
        delay = min(self._held.values()) - now
        self._timer = asyncio.get_running_loop().call_later(delay, self._update)


def head_start_for(
    settings: BrokerSettings, clock: Callable[[], float] = time.monotonic
) -> HeadStart:
    """The process's head start, limited by ``MASH_RED_HEAD_START_S`` (hub and adapters alike)."""
    return HeadStart(settings.red_head_start_s, clock)
