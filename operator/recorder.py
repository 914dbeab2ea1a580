"""Posting Events on a WorkerCluster, as client-go's event recorder does: in the background, with
a bounded backlog, never failing a reconcile. Which Event to post is decided by the pure core
(`events.py`); this only sends them and logs each one once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from workerlab.operator.events import Event
from workerlab.operator.kube import ApiError

logger = logging.getLogger("workerlab.operator")

Key = tuple[str, str]  # (namespace, name)
MAX_PENDING_EVENTS = 1000  # client-go's broadcaster queue holds 1,000 too


class EventSink(Protocol):
    async def post_event(
        self,
        involved: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        now: Any,
        name: str | None = None,
    ) -> None: ...


@dataclass
class Recorder:
    sink: EventSink
    background: bool = False  # the operator: True (tests read Events at once)
    dropped: int = 0
    _said: dict[Key, set[str]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def forget(self, key: Key) -> None:
        self._said.pop(key, None)

    async def post(self, body: dict[str, Any], event: Event, now: datetime) -> None:
        await self.event(body, event.type, event.reason, event.message, now, event.name)

    async def say_once(
        self, body: dict[str, Any], event_type: str, reason: str, message: str, now: datetime
    ) -> None:
        """Events for standing situations are posted when they change, not on every poll."""
        meta = body["metadata"]
        said = self._said.setdefault((meta["namespace"], meta["name"]), set())
        if f"{reason}:{message}" in said:
            return
        said.add(f"{reason}:{message}")
        await self.event(body, event_type, reason, message, now)

    async def event(
        self,
        body: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        now: datetime,
        name: str | None = None,  # a fixed name: told once, even by the next operator
    ) -> None:
        meta = body["metadata"]
        log = logger.warning if event_type == "Warning" else logger.info
        log(
            "event: namespace=%s name=%s reason=%s message=%s",
            meta["namespace"],
            meta["name"],
            reason,
            message,
        )
        if not self.background:
            await self._send(body, event_type, reason, message, now, name)
            return
        # As client-go's event recorder: the reconcile does not wait for its Events (at 1,000
        # WorkerClusters, 5 of a reconcile's ~11 round trips); a bounded backlog, then drops.
        if len(self._tasks) >= MAX_PENDING_EVENTS:
            self.dropped += 1
            if self.dropped == 1:
                logger.warning("too many Events pending: dropping some (counted, logged once)")
            return
        task = asyncio.create_task(self._send(body, event_type, reason, message, now, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(
        self,
        body: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        now: datetime,
        name: str | None = None,
    ) -> None:
        try:
            await self.sink.post_event(body, event_type, reason, message, now, name)
        except ApiError as error:  # an Event is worth a log line, never a failed reconcile
            if name is not None and error.status == 409:
                return  # told already (by this operator or the one before it)
            logger.warning("posting event failed: %s", error)
        except Exception as error:
            if not self.background:
                raise
            logger.warning("posting event failed: %s", error)

    async def drain(self) -> None:
        """Wait for the Events posted in the background (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
