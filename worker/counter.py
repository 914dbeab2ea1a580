"""The seed's state-sharing lesson: a counter per process, or one shared counter in Redis.

Forked processes share no memory, so an in-process counter counts only the requests that
process happened to get: values disagree across processes (and pods). Redis's INCR is atomic,
so with REDIS_URL every process of every pod agrees and no increment is lost.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

REDIS_KEY = "workerlab:counter"
REDIS_TIMEOUT_S = 1.0  # fail fast: a 503 beats a request hanging on an unreachable Redis
RETRIES = 1  # a stale pooled connection (Redis restarted) gets one fresh try


class CounterUnavailable(RuntimeError):
    """The shared store could not be reached; the app answers 503."""


class CounterBackend(Protocol):
    name: str

    async def increment(self) -> int: ...
    async def value(self) -> int: ...
    async def close(self) -> None: ...


class ProcessCounter:
    """Lives in this process's memory: each process has its own, starting at 0."""

    name = "process"

    def __init__(self) -> None:
        self._value = 0

    async def increment(self) -> int:
        self._value += 1  # no await in between: atomic within one event loop
        return self._value

    async def value(self) -> int:
        return self._value

    async def close(self) -> None:
        return None


class RedisCounter:
    name = "redis"

    def __init__(self, url: str, key: str = REDIS_KEY) -> None:
        import redis.asyncio as redis_asyncio  # only processes configured with Redis need it
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        # One client per process, created after fork: connections must never cross a fork.
        # A pooled connection goes stale when Redis restarts: the next command on it fails with
        # "Connection closed by server". Retry once at once, on a fresh connection, and only on a
        # connection error: a timeout is not retried, so an unreachable Redis still fails fast.
        self._client = redis_asyncio.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            retry=Retry(NoBackoff(), RETRIES, supported_errors=(RedisConnectionError,)),
        )
        self._key = key

    async def increment(self) -> int:
        return int(await self._call(self._client.incr, self._key))

    async def value(self) -> int:
        raw = await self._call(self._client.get, self._key)
        return int(raw or 0)

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # a broken connection must not fail shutdown
            await self._client.aclose()

    @staticmethod
    async def _call(method, *args):
        from redis.exceptions import RedisError

        try:
            return await method(*args)
        except (RedisError, OSError, TimeoutError) as exc:
            raise CounterUnavailable(f"{type(exc).__name__}: {exc}") from exc


def make_counter(redis_url: str | None) -> CounterBackend:
    return RedisCounter(redis_url) if redis_url else ProcessCounter()
