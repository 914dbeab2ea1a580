"""How many worker processes each Ready pod has alive, read from the pod's GET /processes.

The reads go through the API server's pod proxy, so they work the same from a laptop and from
inside the cluster. What keeps their cost bounded at scale (5,000 pods):

- Answers are cached per pod for `ttl` seconds: a reconcile triggered by a pod event does not
  re-read every pod, and an idle cluster is polled at a modest, fixed pace.
- A pod whose /processes cannot be read (no route, not serving, a fake kwok pod) counts as
  "processes unknown" and is asked again with exponential backoff, up to `max_backoff` seconds;
  the first such pod is logged once at warning level, the others at debug.
- At most `rate` reads start per second, whatever the number of pods.
- A process that died and was re-forked in a pod (its arbiter's heal, invisible to the kubelet)
  is kept for the controller to tell (`take_replacements`): each one once per operator, and
  none that ended more than TELL_WITHIN_S ago (the Event's fixed name makes it once in all).
- In `background` mode (the operator's) a reconcile never waits for these reads: it takes what is
  known, the reads run on their own, and `on_change(namespace, owner)` asks for one more reconcile
  when a pod's count changed. Pod actions are never delayed by a slow or silent pod.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from workerlab.api.processes import PodReplacement, ProcessesReport, replacements

logger = logging.getLogger(__name__)

Fetch = Callable[[str, str, int], Awaitable[dict[str, Any]]]
OnChange = Callable[[str, str], None]

MAX_BACKOFF_SECONDS = 600.0
TELL_WITHIN_S = 900.0  # a re-fork older than this, first seen now, is not told
RATE_PER_SECOND = 50.0


CLOSE_PERIOD_S = 1.0  # between reads of a pod taking a new process count


@dataclass
class _Entry:
    fetched: float = -1e9  # when the last read ended (monotonic)
    value: int | None = None
    failures: int = 0
    asked: float = 0.0  # when a reconcile last asked about the pod
    # Where to read it again without a reconcile asking (background mode's own poll).
    namespace: str = ""
    name: str = ""
    port: int = 0
    owner: str | None = None
    told: set[int] = field(default_factory=set)  # dead pids already taken as replacements
    closely_until: float = 0.0  # read every poll until then (monotonic): a change in place


class ProcessProbe:
    def __init__(
        self,
        fetch: Fetch,
        ttl: float = 10.0,
        concurrency: int = 8,
        *,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        rate: float = RATE_PER_SECOND,
        background: bool = False,
        on_change: OnChange | None = None,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._max_backoff = max(max_backoff, ttl)
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next_start = 0.0
        self._limit = asyncio.Semaphore(concurrency)
        self._cache: dict[str, _Entry] = {}  # pod uid -> what we know
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._background = background
        self.on_change = on_change
        self._warned = False
        self._poller: asyncio.Task[None] | None = None
        self._owned: dict[tuple[str, str], set[str]] = {}  # (namespace, owner) -> pod uids
        self._purged = time.monotonic()
        # Re-forks older than this are not news (epoch, as the records' exited_at). Newer ones
        # seen again by a restarted operator are told again: their Event's fixed name dedupes.
        self.tell_within_s = TELL_WITHIN_S
        self._replaced: dict[tuple[str, str], list[PodReplacement]] = {}
        self.reads = 0
        self.failures = 0

    @property
    def polls_itself(self) -> bool:
        """True once `start_polling` runs: reconciles need not come back to refresh counts."""
        return self._poller is not None

    def start_polling(self, every: float = 1.0) -> None:
        """Background mode: re-read each known pod when it is due, without any reconcile (a
        changed count still asks for one through `on_change`)."""
        self._poller = asyncio.create_task(self._poll(every), name="process-poll")

    async def _poll(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self._purge_now_and_then()
            now = time.monotonic()
            for uid, entry in list(self._cache.items()):
                due = now - entry.fetched >= self._period(entry)
                if due and entry.name and uid not in self._inflight:
                    self._spawn(entry.namespace, entry.name, uid, entry.port, entry.owner)

    def _spawn(self, namespace: str, name: str, uid: str, port: int, owner: str | None) -> None:
        self._inflight.add(uid)
        task = asyncio.create_task(self._refresh(namespace, name, uid, port, owner))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def watch_closely(self, uid: str, seconds: float) -> None:
        """Read this pod at every poll for a while (its process count is being changed in
        place): the status shows the new count within a poll, not a ttl."""
        if (entry := self._cache.get(uid)) is not None:
            entry.closely_until = time.monotonic() + seconds
            entry.fetched = min(entry.fetched, time.monotonic() - self._ttl)

    def _period(self, entry: _Entry) -> float:
        """Seconds between reads of a pod: ttl while it answers, backing off while it does not."""
        if entry.failures == 0:
            if time.monotonic() < entry.closely_until:
                return min(self._ttl, CLOSE_PERIOD_S)
            return self._ttl
        return min(self._ttl * 2.0 ** min(entry.failures, 20), self._max_backoff)

    def due_in(self, uids: list[str]) -> float:
        """Seconds until one of these pods is due to be read again (ttl when none is known)."""
        now = time.monotonic()
        waits = [
            e.fetched + self._period(e) - now
            for u in uids
            if (e := self._cache.get(u)) is not None and u not in self._inflight
        ]
        if not waits:
            return self._ttl
        return max(min(waits), 1.0)

    def unreachable(self) -> int:
        """Pods whose last read failed (their processes are unknown)."""
        return sum(1 for e in self._cache.values() if e.failures)

    async def alive(
        self, namespace: str, pods: list[tuple[str, str]], port: int, owner: str | None = None
    ) -> dict[str, int]:
        """{pod uid: processes alive} for the given (name, uid) pods; unknown ones are left out."""
        self._purge_now_and_then()
        now = time.monotonic()
        stale = []
        if owner is not None:
            # The pods the owner serves with now: the others are gone, stop reading them.
            current = {uid for _, uid in pods}
            for uid in self._owned.get((namespace, owner), set()) - current:
                self._cache.pop(uid, None)
            self._owned[(namespace, owner)] = current
        for name, uid in pods:
            entry = self._cache.setdefault(uid, _Entry())
            entry.asked = now
            entry.namespace, entry.name, entry.port, entry.owner = namespace, name, port, owner
            if now - entry.fetched >= self._period(entry) and uid not in self._inflight:
                stale.append((name, uid))
        if self._background:
            for name, uid in stale:
                self._spawn(namespace, name, uid, port, owner)
        else:
            await asyncio.gather(
                *(
                    self._refresh(namespace, name, uid, port, owner, notify=False)
                    for name, uid in stale
                )
            )
        result = {}
        for _, uid in pods:
            value = self._cache[uid].value
            if value is not None:
                result[uid] = value
        return result

    async def _pace(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        start = max(now, self._next_start)
        self._next_start = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)

    async def _refresh(
        self,
        namespace: str,
        name: str,
        uid: str,
        port: int,
        owner: str | None,
        notify: bool = True,  # False: the reconcile that asked waits for this read anyway
    ) -> None:
        entry = self._cache.get(uid)
        if entry is None:  # forgotten (its owner or pod gone) between the spawn and this read
            self._inflight.discard(uid)
            return
        before = entry.value
        healed = False
        try:
            await self._pace()
            async with self._limit:
                self.reads += 1
                try:
                    report = ProcessesReport.from_dict(await self._fetch(namespace, name, port))
                    entry.value = report.alive_count
                    entry.failures = 0
                    healed = self._note_replacements(namespace, name, owner, entry, report)
                except Exception as error:  # a pod that cannot answer is "unknown", not fatal
                    self.failures += 1
                    entry.failures += 1
                    self._say_unreachable(namespace, name, error)
        finally:
            entry.fetched = time.monotonic()
            self._inflight.discard(uid)
        changed = entry.value != before or healed
        if notify and owner is not None and changed and self.on_change is not None:
            self.on_change(namespace, owner)

    def _note_replacements(
        self, namespace: str, name: str, owner: str | None, entry: _Entry, report: ProcessesReport
    ) -> bool:
        if owner is None:
            return False
        new = [
            r
            for r in replacements(report)
            if r.dead.pid not in entry.told
            and (r.dead.exited_at or 0) >= time.time() - self.tell_within_s
        ]
        entry.told.update(r.dead.pid for r in new)
        pending = self._replaced.setdefault((namespace, owner), [])
        pending += [PodReplacement(name, report.arbiter_pid, r) for r in new]
        return bool(new)

    def take_replacements(self, namespace: str, owner: str) -> list[PodReplacement]:
        """The re-forked processes seen in the owner's pods since the last call, each once."""
        return self._replaced.pop((namespace, owner), [])

    def _say_unreachable(self, namespace: str, name: str, error: Exception) -> None:
        if self._warned:
            logger.debug("GET /processes of %s/%s failed: %s", namespace, name, error)
            return
        self._warned = True
        logger.warning(
            "GET /processes of %s/%s failed (%s): its processes count as unknown; such pods are "
            "asked again with backoff up to %.0f s and logged at debug level from now on",
            namespace,
            name,
            str(error)[:200],
            self._max_backoff,
        )

    def forget(self, namespace: str, owner: str) -> None:
        """The owner is gone: stop reading its pods."""
        for uid in self._owned.pop((namespace, owner), set()):
            self._cache.pop(uid, None)
        self._replaced.pop((namespace, owner), None)

    def _purge_now_and_then(self) -> None:
        # A purge walks every known pod: once per ttl, not once per reconcile (at 5,000 pods,
        # per reconcile made the operator's CPU grow with N squared).
        now = time.monotonic()
        if now - self._purged >= self._ttl:
            self._purged = now
            self.purge()

    def purge(self, older_than: float | None = None) -> None:
        """Forget pods no reconcile asked about for a while (a safety net behind `forget`)."""
        horizon = older_than if older_than is not None else 2 * self._max_backoff + 6 * self._ttl
        limit = time.monotonic() - horizon
        for uid, entry in list(self._cache.items()):
            if entry.asked < limit and uid not in self._inflight:
                del self._cache[uid]

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
