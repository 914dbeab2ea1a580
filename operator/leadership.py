"""One active master among the operator's replicas: a `coordination.k8s.io/v1` Lease with
client-go's leader-election semantics, as kube-controller-manager uses it.

- A candidate takes the Lease when there is none, when it is released (no holder), or when the
  holder has not renewed it for `lease_duration` as measured by the candidate's own clock from
  the moment it saw the record last change (client-go's rule: no trust in other machines'
  clocks, only in how long the record has stood still).
- The leader renews every `retry_period`; every write is an update at the Lease's
  resourceVersion, so two candidates can never both win (the API server refuses the second
  with 409 Conflict).
- Fencing: the leader may write only while its last successful renewal is younger than
  `renew_deadline` (< lease_duration), by its monotonic clock. A leader that was frozen
  (SIGSTOP, a stalled node) finds that window closed the moment it runs again, before any
  standby could have taken the Lease: it writes nothing more and exits, as controller-runtime's
  managers do, and restarts as a standby.
- A leader stopping gracefully releases the Lease, so a standby takes over at its next poll.

`LeaseState` is the pure core (what to write, given what was read and when); `Elector` does the
I/O through `workerlab.operator.kube.Kube` and runs in threads of its own, beside kopf's loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from workerlab.api.resource import OPERATOR_EXIT_LOST_LEASE, OPERATOR_LEASE
from workerlab.operator.kube import ApiError, Kube

log = logging.getLogger("workerlab.operator.leadership")

LEASE_NAME = OPERATOR_LEASE
# Shorter than kube-controller-manager's 15/10/2 s: a standby acts within ~11 s of the active
# master's death (the goal: 15 s), for one small write every 2 s. The fence (7 s) closes 3 s
# before a standby may take over (10 s), so a paused leader stops writing in time even if its
# clock runs 30% slow.
LEASE_DURATION_S = 10.0
RENEW_DEADLINE_S = 7.0
RETRY_PERIOD_S = 2.0
# A standby polls more often than the leader renews: a released Lease is taken within ~1 s.
STANDBY_POLL_S = 0.5
EXIT_LOST = OPERATOR_EXIT_LOST_LEASE  # after losing the Lease (the kubelet restarts it)


def micro_time(epoch: float) -> str:
    """A Lease's MicroTime: RFC 3339 with microseconds, UTC."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Observed:
    """The Lease as last read, and when (our monotonic clock) its record last changed."""

    lease: dict[str, Any] | None
    changed_at: float

    @property
    def spec(self) -> dict[str, Any]:
        return dict((self.lease or {}).get("spec") or {})

    @property
    def holder(self) -> str:
        return str(self.spec.get("holderIdentity") or "")

    def record(self) -> tuple[Any, ...]:
        spec = self.spec
        return (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))


def observe(previous: Observed | None, lease: dict[str, Any] | None, now: float) -> Observed:
    """The new observation: `changed_at` moves only when the record itself changed."""
    seen = Observed(lease, now)
    if previous is not None and previous.record() == seen.record() and lease is not None:
        return Observed(lease, previous.changed_at)
    return seen


def may_take(observed: Observed, me: str, now: float, lease_duration: float) -> bool:
    """Whether `me` may write itself into the Lease now: by the duration its holder wrote
    into it (`lease_duration`, ours, when it says none)."""
    if observed.lease is None or observed.holder in ("", me):
        return True
    duration = float(observed.spec.get("leaseDurationSeconds") or lease_duration)
    return now >= observed.changed_at + duration


def claimed(
    observed: Observed, me: str, wall: float, lease_duration: float, namespace: str
) -> dict[str, Any]:
    """The Lease with `me` as holder, renewed at `wall`: a new one, a renewal, or a take-over
    (which counts a transition and sets acquireTime). Carries the resourceVersion it was read
    at, so that a concurrent writer makes this update fail instead of both succeeding."""
    spec = observed.spec
    renewal = observed.holder == me
    lease = dict(observed.lease or {})
    lease.update(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                **dict(lease.get("metadata") or {}),
                "name": LEASE_NAME,
                "namespace": namespace,
            },
            "spec": {
                **spec,
                "holderIdentity": me,
                "leaseDurationSeconds": int(lease_duration),
                "renewTime": micro_time(wall),
                "acquireTime": spec.get("acquireTime") if renewal else micro_time(wall),
                "leaseTransitions": int(spec.get("leaseTransitions") or 0)
                + (0 if renewal or observed.lease is None else 1),
            },
        }
    )
    return lease


class Elector:
    """Campaigns for the Lease, then keeps it; `write_allowed()` is the fence."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        identity: str,
        *,
        lease_duration: float = LEASE_DURATION_S,
        renew_deadline: float = RENEW_DEADLINE_S,
        retry_period: float = RETRY_PERIOD_S,
        clock: Callable[[], float] = time.monotonic,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.kube, self.namespace, self.identity = kube, namespace, identity
        self.lease_duration, self.renew_deadline = lease_duration, renew_deadline
        self.retry_period, self.clock = retry_period, clock
        self.on_lost = on_lost or exit_after_losing
        self.observed: Observed | None = None
        self.renewed_at: float | None = None  # monotonic time of our last successful write
        self.stopping = threading.Event()

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{LEASE_NAME}"

    def write_allowed(self) -> bool:
        return self.renewed_at is not None and self.clock() < self.renewed_at + self.renew_deadline

    def _read(self) -> dict[str, Any] | None:
        try:
            return dict(self.kube._call("GET", self.path, guarded=False))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def try_once(self) -> bool:
        """One read, and one write when the Lease may be ours: True when we hold it now."""
        started = self.clock()
        self.observed = observe(self.observed, self._read(), started)
        if not may_take(self.observed, self.identity, started, self.lease_duration):
            return False
        body = claimed(
            self.observed, self.identity, time.time(), self.lease_duration, self.namespace
        )
        try:
            if self.observed.lease is None:
                path = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
                written = self.kube._call("POST", path, body, guarded=False)
            else:
                written = self.kube._call("PUT", self.path, body, guarded=False)
        except ApiError as error:
            if error.status in (409, 422):  # another candidate wrote first
                return False
            raise
        # The window counts from before the read: a slow request shortens it, never extends it.
        self.renewed_at = started
        self.observed = Observed(dict(written), started)
        return True

    def campaign(self) -> bool:
        """Block until we hold the Lease (True), or until stop() (False)."""
        announced = False
        while not self.stopping.is_set():
            try:
                if self.try_once():
                    log.info("holding lease %s/%s as %s", self.namespace, LEASE_NAME, self.identity)
                    return True
            except Exception as error:  # a standby keeps campaigning, whatever failed
                log.warning("cannot reach lease %s: %s", LEASE_NAME, error)
            if not announced and self.observed is not None:
                log.info("standby: lease %s is held by %s", LEASE_NAME, self.observed.holder)
                announced = True
            self.stopping.wait(STANDBY_POLL_S)
        return False

    def keep(self) -> None:
        """Renew every retry period until stop(); past the renew deadline without a successful
        renewal, the Lease is lost: `on_lost` (by default: exit at once)."""
        while not self.stopping.wait(self.retry_period):
            try:
                if self.try_once():
                    continue
                holder = self.observed.holder if self.observed else "?"
                reason = f"lease {LEASE_NAME} taken by {holder}"
            except Exception as error:
                # Any failed renewal counts as one: HTTP, TLS, a connection reset after a freeze
                # (urllib3's errors are no OSError; one left uncaught ended this thread unfenced).
                if self.write_allowed():
                    log.warning("renewing lease %s failed, retrying: %s", LEASE_NAME, error)
                    continue
                reason = f"could not renew lease {LEASE_NAME} within {self.renew_deadline:.0f} s"
            if not self.stopping.is_set():
                self.renewed_at = None
                self.on_lost(reason)
                return

    def release(self) -> None:
        """Graceful stop: give the Lease up so that a standby takes it at its next poll."""
        self.stopping.set()
        if not self.write_allowed() or self.observed is None or self.observed.lease is None:
            return
        lease = dict(self.observed.lease)
        lease["spec"] = {
            **dict(lease.get("spec") or {}),
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
        }
        try:
            self.kube._call("PUT", self.path, lease, guarded=False)
            log.info("released lease %s", LEASE_NAME)
        except (ApiError, OSError) as error:
            log.warning("could not release lease %s (it expires by itself): %s", LEASE_NAME, error)
        self.renewed_at = None


@contextlib.contextmanager
def standby_health(url: str | None) -> Iterator[None]:
    """While campaigning, answer the liveness URL (kopf serves it once this instance leads): a
    standby is alive and ready to take over, so the kubelet must neither restart it nor keep
    a rollout waiting for it."""
    if not url:
        yield
        return
    parts = urlsplit(url)

    class Standby(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 200 if self.path.split("?")[0] == (parts.path or "/") else 404
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"standby\n" if status == 200 else b"")

        def log_message(self, *args: Any) -> None:  # probes every few seconds: not worth a line
            pass

    port = 80 if parts.port is None else parts.port
    server = ThreadingHTTPServer((parts.hostname or "127.0.0.1", port), Standby)
    thread = threading.Thread(target=server.serve_forever, name="standby-health", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()  # kopf binds the same address next


def exit_after_losing(reason: str) -> None:
    """Fencing by exit: nothing of this process writes again; the kubelet starts it afresh,
    as a standby."""
    log.error("lost leadership (%s): exiting so that nothing is written any more", reason)
    logging.shutdown()
    os._exit(EXIT_LOST)
