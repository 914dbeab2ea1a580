"""This process's own request counts, published to the pod's state dir for its siblings.

Two counts, never mixed (see workerlab.api.traffic): the learner's requests, and the control
traffic of the machinery that watches the pod (probes, `/processes` polls, `/metrics` scrapes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from workerlab.worker import siblings

RECORD_FLUSH_S = 0.5  # how stale /processes may be about a sibling's request counts


class ProcessState:
    def __init__(self, identity: siblings.ProcessIdentity, state: siblings.StateDir) -> None:
        self.identity = identity
        self.state = state
        self.requests_served = 0  # the learner's requests answered
        # The learner's requests only: it tells whether a process is busy *serving*. A control
        # request is answered in microseconds, except that the /processes answering would always
        # count itself; and a process blocked in /work/cpu cannot even begin one.
        self.in_flight = 0
        self.control_served = 0
        self._published: tuple[int, int, int] | None = None
        self._published_at = 0.0

    def begin_request(self) -> None:
        """A learner's request begins."""
        self.in_flight += 1
        # A process whose record is stale (it was idle) publishes at once: if this request then
        # blocks its event loop (/work/cpu), its siblings' /processes still show it busy. Under
        # steady load the periodic publisher keeps the record fresh, so this rarely writes.
        if time.monotonic() - self._published_at > RECORD_FLUSH_S:
            with contextlib.suppress(OSError):
                self.publish()

    def count_request(self) -> int:
        """The learner's request was answered (or failed): one more served, one fewer in flight."""
        self.in_flight -= 1
        self.requests_served += 1
        return self.requests_served

    def count_control(self) -> int:
        """A control request was answered; returns the new total."""
        self.control_served += 1
        return self.control_served

    def publish(self) -> None:
        figures = (self.requests_served, self.in_flight, self.control_served)
        if self._published != figures:
            requests_served, in_flight, control_served = figures
            self.state.write_record(self.identity, requests_served, in_flight, control_served)
            self._published = figures
            self._published_at = time.monotonic()

    async def publish_periodically(self) -> None:
        while True:
            await asyncio.sleep(RECORD_FLUSH_S)
            with contextlib.suppress(OSError):  # a full or vanished dir must not kill serving
                self.publish()
