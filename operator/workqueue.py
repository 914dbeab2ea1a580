"""A keyed work queue with the semantics of client-go's workqueue, on asyncio.

- A key queued several times before a worker picks it up is reconciled once (coalescing: a burst
  of pod events for one WorkerCluster costs one reconcile).
- A key is never reconciled by two workers at once; an add during its reconcile marks it dirty
  and it runs once more right after (nothing is lost, nothing races).
- Failures are retried with per-key exponential backoff; success resets it.
- Delayed adds (requeue after N seconds) keep only the earliest pending timer per key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
# The work function returns when it wants to see the key again (seconds), or None.
Work = Callable[[K], Awaitable[float | None]]

RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 60.0


def retry_delay(failures: int) -> float:
    return min(RETRY_BASE_SECONDS * 2.0 ** max(0, failures - 1), RETRY_CAP_SECONDS)


class WorkQueue(Generic[K]):
    def __init__(self, work: Work[K], workers: int = 4) -> None:
        self._work = work
        self._workers = workers
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._running: set[K] = set()
        self._dirty: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.on_error: Callable[[K, BaseException], None] | None = None

    def add(self, key: K) -> None:
        if key in self._running:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        existing = self._timers.get(key)
        if existing is not None and not existing.cancelled():
            if existing.when() <= when:
                return
            existing.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def forget(self, key: K) -> None:
        """The object is gone: drop its timers and retry state (a queued run finds nothing)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(key, None)

    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"reconciler-{i}")
            for i in range(self._workers)
        ]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._running.add(key)
            try:
                again = await self._work(key)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                if self.on_error is not None:
                    self.on_error(key, error)
                self.add_after(key, retry_delay(failures))
            else:
                self._failures.pop(key, None)
                if again is not None:
                    self.add_after(key, again)
            finally:
                self._running.discard(key)
                self._queue.task_done()
            if key in self._dirty:
                self._dirty.discard(key)
                self.add(key)
