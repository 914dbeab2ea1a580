"""How many worker processes each Ready pod has alive, read from the pod's GET /processes.

The reads go through the API server's pod proxy, so they work the same from a laptop and from
inside the cluster. Answers are cached per pod for `ttl` seconds: a reconcile triggered by a pod
event does not re-read every pod, and an idle cluster is polled at a modest, fixed pace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from workerlab.api.processes import alive_count

logger = logging.getLogger(__name__)

Fetch = Callable[[str, str, int], Awaitable[dict[str, Any]]]


class ProcessProbe:
    def __init__(self, fetch: Fetch, ttl: float = 10.0, concurrency: int = 8) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._limit = asyncio.Semaphore(concurrency)
        self._cache: dict[str, tuple[float, int | None]] = {}  # pod uid -> (when, alive)

    async def alive(self, namespace: str, pods: list[tuple[str, str]], port: int) -> dict[str, int]:
        """{pod uid: processes alive} for the given (name, uid) pods; unknown ones are left out."""
        self.purge()
        now = time.monotonic()
        stale = [(n, u) for n, u in pods if now - self._cache.get(u, (-1e9, None))[0] >= self._ttl]
        await asyncio.gather(*(self._refresh(namespace, name, uid, port) for name, uid in stale))
        result = {}
        for _, uid in pods:
            value = self._cache.get(uid, (0.0, None))[1]
            if value is not None:
                result[uid] = value
        return result

    async def _refresh(self, namespace: str, name: str, uid: str, port: int) -> None:
        async with self._limit:
            try:
                report = await self._fetch(namespace, name, port)
                value: int | None = alive_count(report)
            except Exception as error:  # a pod that cannot answer is "unknown", not fatal
                logger.debug("GET /processes of %s/%s failed: %s", namespace, name, error)
                previous = self._cache.get(uid)
                value = previous[1] if previous else None
        self._cache[uid] = (time.monotonic(), value)

    def purge(self, older_than: float | None = None) -> None:
        """Drop answers of pods nobody asked about for a while (deleted pods)."""
        limit = time.monotonic() - (older_than if older_than is not None else 6 * self._ttl)
        for uid, (when, _) in list(self._cache.items()):
            if when < limit:
                del self._cache[uid]
