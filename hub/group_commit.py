"""Group commit: the decisions of many deliveries in one SQLite transaction.

A committed transaction costs an fsync; one per message caps the hub at a few hundred
messages a second whatever else it does. Handlers hand their decision to :class:`GroupCommit`
and wait; it runs every decision waiting at that moment, each in a savepoint of one
transaction, commits once, and only then lets each handler return (and so ack). Under light
load a batch is one decision and nothing waits; under heavy load batches grow by themselves.
A decision that fails rolls back alone; a commit that fails fails every decision in it, and
their messages are retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hub.store import HubStore
from telemetry import tracing

__all__ = ["GroupCommit"]

T = TypeVar("T")


@dataclass
class _Decision:
    work: Callable[[], Any]
    # The handler's context (trace id, message id, log bindings), so what the decision logs
    # is tied to the delivery that asked for it, not to the committing task.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    def __init__(
        self, store: HubStore, on_commit: Callable[[], None], max_batch: int = 256
    ) -> None:
        self.store = store
        self.on_commit = on_commit
        self.max_batch = max_batch
        self.batches = 0
        self.decisions = 0
        self._urgent: deque[_Decision] = deque()
        self._routine: deque[_Decision] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def decide(self, work: Callable[[], T], *, urgent: bool = False) -> T:
        """Run ``work`` (which writes through the store) and return once it is committed.

        Urgent decisions (Red work) go into the next commit ahead of every routine one, so a
        Red answer never waits for a backlog of routine deliveries the hub has prefetched.
        """
        # From hand-in to commit: how long a delivery's decision waited for its batch, in the
        # delivery's trace. The decision runs with this span current (its context is copied).
        with tracing.span("hub.commit", {"mash.urgent": urgent}):
            decision = _Decision(work)
            (self._urgent if urgent else self._routine).append(decision)
            self._wake.set()
            result: T = await decision.done
        return result

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # One turn of the loop lets every handler already woken by a delivery hand in
            # its decision, so they share this commit.
            await asyncio.sleep(0)
            while self._urgent or self._routine:
                batch: list[_Decision] = []
                for waiting in (self._urgent, self._routine):
                    while waiting and len(batch) < self.max_batch:
                        batch.append(waiting.popleft())
                self._commit(batch)

    def _commit(self, batch: list[_Decision]) -> None:
        outcomes: list[tuple[_Decision, Any, BaseException | None]] = []
        try:
            with self.store.transaction():
                for decision in batch:
                    try:
                        with self.store.transaction():
                            outcomes.append((decision, decision.context.run(decision.work), None))
                    except Exception as exc:  # this decision alone is undone
                        outcomes.append((decision, None, exc))
        except Exception as exc:  # the commit failed: none of them happened
            for decision in batch:
                if not decision.done.done():
                    decision.done.set_exception(exc)
            return
        self.batches += 1
        self.decisions += len(batch)
        for decision, value, error in outcomes:
            if decision.done.done():
                continue  # the handler gave up waiting (its channel closed)
            if error is None:
                decision.done.set_result(value)
            else:
                decision.done.set_exception(error)
        self.on_commit()
