"""The pure side of "no silent failure": which API errors are refusals, what a cause is, the
Degraded condition they set, one Warning per change of cause, and the backoff of held writes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workerlab.operator.events import transitions
from workerlab.operator.model import WorkerCluster
from workerlab.operator.reconcile import BACKOFF_CAP_SECONDS, HeldWrite, held_after
from workerlab.operator.status import (
    Refusal,
    cause_key,
    condition_cause,
    conflict,
    refusal_for,
    with_refusals,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
QUOTA = (
    'services "demo" is forbidden: exceeded quota: workerlab-learner, requested: '
    "services.nodeports=1, used: services.nodeports=0, limited: services.nodeports=0"
)


def pod_quota(name: str, used: int) -> str:
    return (
        f'pods "{name}" is forbidden: exceeded quota: workerlab-learner, requested: pods=1, '
        f"used: pods={used}, limited: pods={used}"
    )


@pytest.mark.parametrize(
    ("kind", "verb", "code", "reason"),
    [
        ("Service", "create", 403, "ServiceRefused"),  # quota, RBAC, a terminating namespace
        ("Service", "update", 422, "ServiceRefused"),  # e.g. a nodePort already allocated
        ("Ingress", "create", 400, "IngressRefused"),
        ("NetworkPolicy", "delete", 403, "NetworkPolicyRefused"),
        ("Pod", "create", 403, "FailedCreate"),
        ("Pod", "create", 422, "FailedCreate"),
        ("Service", "create", 409, "ServiceConflict"),  # AlreadyExists: someone else's
        ("Ingress", "create", 409, "IngressConflict"),
        ("Ingress", "create", 404, "IngressRefused"),  # the API is not served
    ],
)
def test_considered_answers_are_refusals(kind, verb, code, reason):
    refusal = refusal_for(kind, verb, "demo", code, "the server's words")
    assert refusal is not None and (refusal.kind, refusal.reason) == (kind, reason)
    assert "the server's words" in refusal.message
    if not reason.endswith("Conflict"):
        assert refusal.message.startswith(f"the API server refused to {verb} ")


@pytest.mark.parametrize(
    ("kind", "verb", "code"),
    [
        ("Service", "update", 409),  # a stale resourceVersion: read again and retry
        ("Pod", "create", 409),
        ("Service", "create", 429),
        ("Service", "create", 500),
        ("Service", "create", 503),
        ("Service", "create", 401),
        ("Ingress", "delete", 404),  # gone meanwhile
        ("Service", "update", 404),
    ],
)
def test_transient_errors_are_left_to_the_work_queue(kind, verb, code):
    assert refusal_for(kind, verb, "demo", code, "busy") is None


@given(
    st.lists(st.text("abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1), min_size=2, max_size=4),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)
def test_a_cause_ignores_generated_names_and_figures(names, used_a, used_b):
    a = refusal_for("Pod", "create", "", 403, pod_quota(names[0], used_a))
    b = refusal_for("Pod", "create", "", 403, pod_quota(names[1], used_b))
    assert a is not None and b is not None and a.cause == b.cause


def test_a_different_refusal_is_a_different_cause():
    quota = refusal_for("Service", "create", "demo", 403, QUOTA)
    taken = refusal_for("Service", "create", "demo", 422, "spec.ports[0].nodePort: Invalid value")
    assert quota is not None and taken is not None and quota.cause != taken.cause
    assert cause_key("A", "x") != cause_key("B", "x")


def cluster_with(status: dict) -> WorkerCluster:
    body = {"metadata": {"name": "demo", "namespace": "ns", "uid": "u", "generation": 3}}
    return WorkerCluster.from_body({**body, "spec": {}, "status": status})


def plain_status() -> dict:
    degraded = {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "ok"}
    return {"phase": "Progressing", "conditions": [degraded]}


def test_refusals_set_degraded_with_the_first_reason_and_keep_the_message_per_cause():
    refusals = [
        refusal_for("Pod", "create", "", 403, pod_quota("demo-abc", 4)),
        refusal_for("Service", "create", "demo", 403, QUOTA),
    ]
    first = with_refusals(cluster_with({}), plain_status(), [r for r in refusals if r], T0)
    degraded = first["conditions"][-1]
    assert first["phase"] == "Degraded"
    assert (degraded["status"], degraded["reason"]) == ("True", "FailedCreate")
    assert "used: pods=4" in degraded["message"] and degraded["observedGeneration"] == 3

    # The same cause later, other figures: the condition (and so the status) stays as it was.
    again = refusal_for("Pod", "create", "", 403, pod_quota("demo-xyz", 5))
    assert again is not None
    later = with_refusals(cluster_with(first), plain_status(), [again], T0 + timedelta(minutes=1))
    assert later["conditions"][-1] == degraded

    paused = {**plain_status(), "phase": "Paused"}
    assert (
        with_refusals(cluster_with({}), paused, [conflict("Ingress", "demo")], T0)["phase"]
        == "Paused"
    )
    assert with_refusals(cluster_with({}), plain_status(), [], T0) == plain_status()


def degraded_status(refusal: Refusal | None) -> dict:
    if refusal is None:
        return plain_status()
    return with_refusals(cluster_with({}), plain_status(), [refusal], T0)


CAUSES = [
    None,
    refusal_for("Service", "create", "demo", 403, QUOTA),
    refusal_for("Service", "create", "demo", 422, "nodePort 30080 is already allocated"),
    refusal_for("Pod", "create", "", 403, pod_quota("demo-1", 2)),
    refusal_for("Pod", "create", "", 403, pod_quota("demo-2", 3)),  # the same cause as above
    conflict("NetworkPolicy", "demo"),
]


@given(st.lists(st.sampled_from(range(len(CAUSES))), max_size=30))
def test_one_warning_per_change_of_cause_and_one_recovery_per_clearing(sequence):
    statuses = [plain_status()] + [degraded_status(CAUSES[i]) for i in sequence]
    warnings = recoveries = 0
    for old, new in itertools.pairwise(statuses):
        for event in transitions(old, new):
            warnings += event.type == "Warning"
            recoveries += event.reason == "Recovered"
    causes = [condition_cause(s["conditions"][-1]) for s in statuses]
    changes = sum(1 for a, b in itertools.pairwise(causes) if b is not None and a != b)
    clearings = sum(1 for a, b in itertools.pairwise(causes) if a and b is None)
    assert (warnings, recoveries) == (changes, clearings)


def test_a_crash_loop_keeps_its_single_warning_while_restarts_grow():
    def crash(restarts: int) -> dict:
        message = f"pod demo-abc: CrashLoopBackOff, {restarts} restarts"
        degraded = {"type": "Degraded", "status": "True", "reason": "CrashLoopBackOff"}
        return {"conditions": [{**degraded, "message": message}]}

    assert [e.reason for e in transitions(plain_status(), crash(1))] == ["CrashLoopBackOff"]
    assert transitions(crash(1), crash(7)) == []


def test_a_held_write_waits_out_its_backoff_unless_its_context_changes():
    refusal = refusal_for("Service", "create", "demo", 403, QUOTA)
    assert refusal is not None
    held = held_after(None, refusal, "spec-a", T0)
    assert held.failures == 1 and held.wait(T0) == 10
    assert held.holds("spec-a", T0 + timedelta(seconds=9.9))
    assert not held.holds("spec-a", T0 + timedelta(seconds=10))
    assert not held.holds("spec-b", T0 + timedelta(seconds=1)), "a new spec is tried at once"
    again = held_after(held, refusal, "spec-b", T0 + timedelta(seconds=1))
    assert again.failures == 2, "a spec change gets one try, not a reset"
    other = refusal_for("Service", "create", "demo", 422, "nodePort: Invalid value")
    assert other is not None and held_after(again, other, "spec-b", T0).failures == 1


@given(st.lists(st.floats(0, 400), min_size=1, max_size=40))
def test_retries_of_one_cause_back_off_exponentially_up_to_the_cap(gaps):
    refusal = refusal_for("Pod", "create", "", 403, pod_quota("demo-x", 2))
    assert refusal is not None
    now, held, tries = T0, None, []
    for gap in gaps:
        now += timedelta(seconds=gap)
        if held is None or not held.holds("same", now):
            held = held_after(held, refusal, "same", now)
            tries.append(now)
    assert isinstance(held, HeldWrite)
    waits = [(b - a).total_seconds() for a, b in itertools.pairwise(tries)]
    for n, wait in enumerate(waits, start=1):
        assert wait >= min(10 * 2 ** (n - 1), BACKOFF_CAP_SECONDS) - 1e-6
    # Never more tries than the backoff allows in the time that passed.
    elapsed = (now - T0).total_seconds()
    assert len(tries) <= 2 + elapsed / 10
