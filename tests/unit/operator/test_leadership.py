"""The Lease's rules (client-go's), with a fake clock and a fake API server that keeps one Lease
and refuses a write at a stale resourceVersion, as the real one does."""

from __future__ import annotations

import copy
import json
import urllib.request
from typing import Any

import pytest

from workerlab.operator import leadership
from workerlab.operator.kube import ApiError
from workerlab.operator.leadership import Elector, Observed, claimed, may_take, observe


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LeaseServer:
    """One Lease, optimistic concurrency by resourceVersion."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.writes: list[str] = []

    def _call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        assert kwargs.get("guarded") is False, "the Lease's own calls bypass the fence"
        if method == "GET":
            if self.lease is None:
                raise ApiError(404, method, path, "{}")
            return copy.deepcopy(self.lease)
        sent = (body.get("metadata") or {}).get("resourceVersion")
        if method == "POST" and self.lease is not None:
            raise ApiError(409, method, path, '{"message": "already exists"}')
        if method == "PUT" and sent != (self.lease or {}).get("metadata", {}).get(
            "resourceVersion"
        ):
            raise ApiError(409, method, path, '{"message": "the object has been modified"}')
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        self.writes.append(body["spec"]["holderIdentity"])
        return copy.deepcopy(self.lease)


def elector(server: LeaseServer, clock: Clock, me: str, lost: list[str]) -> Elector:
    return Elector(server, "workerlab-system", me, clock=clock, on_lost=lost.append)  # type: ignore[arg-type]


def test_the_first_candidate_creates_the_lease_and_the_second_stands_by():
    server, clock, lost = LeaseServer(), Clock(), []
    a, b = elector(server, clock, "a", lost), elector(server, clock, "b", lost)
    assert a.try_once() and a.write_allowed()
    assert not b.try_once() and not b.write_allowed()
    spec = server.lease["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 10
    assert spec["leaseTransitions"] == 0


def test_a_standby_takes_over_only_after_the_record_stood_still_for_the_lease_duration():
    server, clock, lost = LeaseServer(), Clock(), []
    a, b = elector(server, clock, "a", lost), elector(server, clock, "b", lost)
    a.try_once()
    assert not b.try_once()  # b first sees the record now
    clock.now += 9.9
    assert not b.try_once()
    clock.now += 0.2  # 10.1 s since b saw it change: a stopped renewing
    assert b.try_once()
    assert server.lease["spec"]["holderIdentity"] == "b"
    assert server.lease["spec"]["leaseTransitions"] == 1


def test_a_renewal_resets_the_standbys_clock():
    server, clock, lost = LeaseServer(), Clock(), []
    a, b = elector(server, clock, "a", lost), elector(server, clock, "b", lost)
    a.try_once()
    b.try_once()
    clock.now += 6
    a.try_once()  # renewed: the record changed
    clock.now += 6
    assert not b.try_once(), "12 s since the first sight, but only 6 s since the renewal"


def test_the_fence_closes_at_the_renew_deadline_before_anyone_may_take_over():
    server, clock, lost = LeaseServer(), Clock(), []
    a = elector(server, clock, "a", lost)
    a.try_once()
    clock.now += 6.9
    assert a.write_allowed()
    clock.now += 0.2
    assert not a.write_allowed()  # 7.1 s: no write, 3 s before a standby may take the Lease


def test_two_candidates_racing_for_an_expired_lease_cannot_both_win():
    server, clock, lost = LeaseServer(), Clock(), []
    a = elector(server, clock, "a", lost)
    b, c = elector(server, clock, "b", lost), elector(server, clock, "c", lost)
    a.try_once()
    b.try_once(), c.try_once()
    clock.now += 11
    # both read the same expired record; c writes first, b's write is at a stale version
    b.observed = observe(b.observed, b._read(), clock())
    assert c.try_once()
    body = claimed(b.observed, "b", 0.0, 10, "workerlab-system")
    with pytest.raises(ApiError) as refused:
        server._call("PUT", b.path, body, guarded=False)
    assert refused.value.status == 409
    assert server.lease["spec"]["holderIdentity"] == "c"


def test_release_hands_over_at_the_standbys_next_poll():
    server, clock, lost = LeaseServer(), Clock(), []
    a, b = elector(server, clock, "a", lost), elector(server, clock, "b", lost)
    a.try_once()
    b.try_once()
    a.release()
    assert server.lease["spec"]["holderIdentity"] == ""
    assert not a.write_allowed()
    assert b.try_once(), "a released Lease is free at once"


def test_losing_the_lease_while_keeping_it_calls_on_lost_once():
    server, clock, lost = LeaseServer(), Clock(), []
    a = elector(server, clock, "a", lost)
    a.retry_period = 0.0
    a.try_once()
    server.lease["spec"]["holderIdentity"] = "intruder"  # as if a took too long to renew
    server.lease["metadata"]["resourceVersion"] = "99"
    clock.now += 11
    a.keep()
    assert lost == ["lease workerlab-operator taken by intruder"]
    assert not a.write_allowed()


def test_a_renewal_failing_with_any_error_past_the_deadline_is_a_lost_lease():
    """After a freeze the first request may die of a reset connection, which urllib3 raises as
    its own ProtocolError (no OSError): the holder must still give up, not die silently."""

    class ResetAfterFreeze(LeaseServer):
        def _call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
            if frozen:
                raise RuntimeError("('Connection aborted.', ConnectionResetError(104))")
            return super()._call(method, path, body, **kwargs)

    server, clock, lost = ResetAfterFreeze(), Clock(), []
    frozen = False
    a = elector(server, clock, "a", lost)
    a.retry_period = 0.0
    a.try_once()
    frozen = True
    clock.now += 11
    a.keep()
    assert lost == ["could not renew lease workerlab-operator within 7 s"]


def test_pure_rules():
    empty = Observed(None, 0.0)
    assert may_take(empty, "a", 0.0, 15)
    held = Observed({"spec": {"holderIdentity": "b"}}, 100.0)
    assert not may_take(held, "a", 114.0, 15) and may_take(held, "a", 115.0, 15)
    assert may_take(held, "b", 100.0, 15)
    released = Observed({"spec": {"holderIdentity": ""}}, 100.0)
    assert may_take(released, "a", 100.0, 15)
    # the holder's own duration counts, not the candidate's
    short = Observed({"spec": {"holderIdentity": "b", "leaseDurationSeconds": 5}}, 100.0)
    assert not may_take(short, "a", 104.0, 15) and may_take(short, "a", 105.0, 15)


def test_a_standby_answers_its_liveness_url_until_it_leads():
    port = _free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    with leadership.standby_health(url), urllib.request.urlopen(url, timeout=2) as answer:
        assert answer.status == 200 and answer.read() == b"standby\n"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_micro_time_is_rfc3339_with_microseconds():
    assert leadership.micro_time(0) == "1970-01-01T00:00:00.000000Z"
    json.dumps(claimed(Observed(None, 0.0), "a", 1.5, 15, "ns"))  # serialisable as sent
