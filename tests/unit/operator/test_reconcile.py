"""Unit tests of the pure core: scale, rollout, crash loop, backoff, pause, bad observed states."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from workerlab.operator.reconcile import CreatePod, DeletePod, backoff_delay, plan
from workerlab.operator.simulation import CLUSTER_UID, T0, World, make_cluster, make_pod
from workerlab.operator.templates import template_hash


def conditions(status):
    return {c["type"]: c for c in status["conditions"]}


def test_empty_cluster_scales_up_to_replicas():
    wc = make_cluster(replicas=3)
    result = plan(wc, [], T0)
    assert [type(a) for a in result.actions] == [CreatePod] * 3
    assert {a.reason for a in result.creates} == {"ScaleUp"}
    assert result.status["phase"] == "Progressing"
    assert conditions(result.status)["Ready"]["status"] == "False"


def test_converged_cluster_makes_no_actions_and_a_stable_status():
    wc = make_cluster(replicas=2)
    pods = [make_pod(wc), make_pod(wc)]
    first = plan(wc, pods, T0)
    assert first.actions == []
    assert first.status["phase"] == "Ready"
    assert first.status["readyProcesses"] == 4
    assert conditions(first.status)["Ready"]["status"] == "True"
    # Fed back and observed later, nothing changes: the shell then writes nothing.
    again = plan(replace(wc, status=first.status), pods, T0 + timedelta(minutes=5))
    assert again.actions == []
    assert again.status == first.status


def test_status_reports_selector_and_counts():
    wc = make_cluster(replicas=2)
    result = plan(wc, [make_pod(wc), make_pod(wc, ready=False)], T0)
    status = result.status
    assert (
        status["selector"]
        == "app.kubernetes.io/instance=demo,app.kubernetes.io/name=workerlab-worker"
    )
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (2, 1, 2)
    assert status["readyProcesses"] == 2
    assert [p["ready"] for p in status["pods"]] == [True, False]


def test_hand_deleted_pod_is_replaced():
    wc = make_cluster(replicas=2)
    result = plan(wc, [make_pod(wc)], T0)
    assert [a.reason for a in result.creates] == ["Replace"]


def test_spec_change_of_replicas_is_a_scale_up_not_a_replacement():
    wc = make_cluster(replicas=3, generation=2, status={"observedGeneration": 1})
    result = plan(wc, [make_pod(wc), make_pod(wc)], T0)
    assert [a.reason for a in result.creates] == ["ScaleUp"]


def test_scale_down_removes_unready_pods_first():
    wc = make_cluster(replicas=2)
    ready = [make_pod(wc, age=100), make_pod(wc, age=10)]
    unready = [make_pod(wc, ready=False, age=200), make_pod(wc, ready=False, age=5)]
    result = plan(wc, ready + unready, T0)
    assert result.creates == []
    assert {a.name for a in result.deletes} == {p.name for p in unready}
    assert {a.reason for a in result.deletes} == {"ScaleDown"}


def test_scale_down_of_ready_pods_removes_newest_first():
    wc = make_cluster(replicas=1)
    oldest, middle, newest = make_pod(wc, age=300), make_pod(wc, age=200), make_pod(wc, age=100)
    result = plan(wc, [middle, newest, oldest], T0)
    assert [a.name for a in result.deletes] == [newest.name, middle.name]


def test_scale_to_zero_deletes_everything_and_is_ready():
    wc = make_cluster(replicas=0)
    result = plan(wc, [make_pod(wc), make_pod(wc, ready=False)], T0)
    assert len(result.deletes) == 2
    after = plan(replace(wc, status=result.status), [], T0)
    assert after.actions == []
    assert conditions(after.status)["Ready"]["status"] == "True"


def test_rollout_surges_before_removing_ready_pods():
    wc = make_cluster(replicas=4)  # maxSurge 25% -> 1, maxUnavailable 0
    old = [make_pod(wc, hash="oldhash") for _ in range(4)]
    first = plan(wc, old, T0)
    assert [type(a) for a in first.actions] == [CreatePod]
    assert first.creates[0].reason == "RollingUpdate"
    assert conditions(first.status)["Progressing"]["reason"] == "RollingUpdate"
    # The new pod is not Ready yet: nothing more happens.
    new_unready = make_pod(wc, ready=False, age=1)
    assert plan(wc, [*old, new_unready], T0).actions == []
    # Once Ready, one old pod goes and the next new one is created.
    second = plan(wc, [*old, replace(new_unready, ready=True)], T0)
    assert len(second.deletes) == 1 and second.deletes[0].ready
    assert len(second.creates) == 1


def test_rollout_with_max_unavailable_removes_first():
    wc = make_cluster(replicas=4, updateStrategy={"maxSurge": 0, "maxUnavailable": 2})
    old = [make_pod(wc, hash="oldhash") for _ in range(4)]
    result = plan(wc, old, T0)
    assert len(result.deletes) == 2
    assert len(result.creates) == 2


def test_rollout_completes_in_the_simulated_world():
    wc = make_cluster(replicas=4)
    world = World(wc, [make_pod(wc, hash="oldhash") for _ in range(4)])
    for _ in range(30):
        if not world.step().actions and world.cluster.status["phase"] == "Ready":
            break
    current = template_hash(wc)
    live = [p for p in world.pods if not p.terminating]
    assert len(live) == 4 and all(p.template_hash == current and p.ready for p in live)


def test_both_bounds_zero_still_makes_progress_with_one_surge_pod():
    wc = make_cluster(replicas=3, updateStrategy={"maxSurge": "10%", "maxUnavailable": "10%"})
    assert wc.spec.update_strategy.bounds(3) == (1, 0)
    result = plan(wc, [make_pod(wc, hash="oldhash") for _ in range(3)], T0)
    assert len(result.creates) == 1 and result.deletes == []


def crashing(wc, **extra):
    fields = {
        "ready": False,
        "waiting_reason": "CrashLoopBackOff",
        "restarts": 5,
        "last_exit_code": 1,
        "last_exit_message": "Traceback...\nRuntimeError: boom",
    }
    return make_pod(wc, **(fields | extra))


def test_crash_loop_marks_degraded_and_deletes_nothing():
    wc = make_cluster(replicas=2)
    looping = crashing(wc)
    result = plan(wc, [make_pod(wc), looping], T0)
    assert result.actions == []
    degraded = conditions(result.status)["Degraded"]
    assert degraded["status"] == "True"
    assert degraded["reason"] == "CrashLoopBackOff"
    assert looping.name in degraded["message"] and "RuntimeError: boom" in degraded["message"]
    assert result.status["phase"] == "Degraded"


def test_crash_loop_stays_degraded_while_the_restarted_container_runs_unready():
    # Between two crashes the kubelet runs the container again: no waiting reason, not Ready.
    wc = make_cluster(replicas=1)
    between = crashing(wc, waiting_reason=None)
    result = plan(wc, [between], T0)
    assert result.actions == []
    assert conditions(result.status)["Degraded"]["reason"] == "CrashLoopBackOff"
    assert result.status["phase"] == "Degraded"
    # Ready again after its restarts: healthy, whatever its restart count.
    healed = plan(wc, [crashing(wc, waiting_reason=None, ready=True)], T0)
    assert conditions(healed.status)["Degraded"]["status"] == "False"


def test_rollout_to_a_crashing_template_stalls_within_surge_and_keeps_old_pods():
    wc = make_cluster(replicas=4)
    old = [make_pod(wc, hash="oldhash") for _ in range(4)]
    result = plan(wc, [*old, crashing(wc)], T0)
    assert result.actions == []  # surge used up, no old Ready pod may go
    assert result.status["phase"] == "Degraded"


def test_failed_pods_are_replaced_with_exponential_backoff():
    wc = make_cluster(replicas=1)
    failed = make_pod(wc, ready=False, phase="Failed", status_reason="Evicted")
    first = plan(wc, [failed], T0)
    assert [type(a) for a in first.actions] == [DeletePod, CreatePod]
    assert first.deletes[0].reason == "ReplaceFailed"
    assert first.status["failureBackoff"]["consecutiveFailures"] == 1

    # The replacement failed too, 3 s later: wait for the 10 s backoff, keep the pod for inspection.
    wc = replace(wc, status=first.status)
    failed_again = make_pod(wc, ready=False, phase="Failed")
    waiting = plan(wc, [failed_again], T0 + timedelta(seconds=3))
    assert waiting.actions == []
    assert waiting.requeue_after == pytest.approx(7.0)
    assert conditions(waiting.status)["Degraded"]["status"] == "True"

    later = plan(wc, [failed_again], T0 + timedelta(seconds=10))
    assert [type(a) for a in later.actions] == [DeletePod, CreatePod]
    assert later.status["failureBackoff"]["consecutiveFailures"] == 2


def test_backoff_resets_once_healthy():
    wc = make_cluster(
        replicas=1,
        status={
            "observedGeneration": 1,
            "failureBackoff": {
                "consecutiveFailures": 4,
                "lastReplacementTime": "2025-01-01T11:59:00Z",
            },
        },
    )
    result = plan(wc, [make_pod(wc)], T0)
    assert result.status["failureBackoff"] == {"consecutiveFailures": 0}


def test_backoff_delay_grows_and_is_capped():
    assert [backoff_delay(n) for n in range(5)] == [0, 10, 20, 40, 80]
    assert backoff_delay(50) == 300


def test_paused_cluster_takes_no_action_but_reports():
    wc = make_cluster(replicas=3, paused=True)
    result = plan(wc, [make_pod(wc, hash="oldhash")], T0)
    assert result.actions == []
    assert result.status["phase"] == "Paused"
    assert conditions(result.status)["Progressing"]["status"] == "Unknown"


def test_pods_of_another_owner_are_neither_counted_nor_touched():
    wc = make_cluster(replicas=1)
    stranger = make_pod(wc, owner="someone-else")
    orphan = make_pod(wc, owner=None)
    result = plan(wc, [stranger, orphan], T0)
    assert result.deletes == []
    assert len(result.creates) == 1
    assert result.warnings and result.warnings[0][0] == "IgnoredPods"
    assert all(p["name"] not in (stranger.name, orphan.name) for p in result.status["pods"])


def test_pod_without_hash_label_is_rolled_like_an_outdated_pod():
    wc = make_cluster(replicas=1)
    unlabelled = make_pod(wc, hash=None)
    result = plan(wc, [unlabelled], T0)
    assert len(result.creates) == 1  # surge first, it stays until the new one is Ready
    replacement = make_pod(wc)
    result = plan(wc, [unlabelled, replacement], T0)
    assert [a.name for a in result.deletes] == [unlabelled.name]


def test_terminating_pods_drain_untouched_and_do_not_count():
    wc = make_cluster(replicas=2)
    draining = make_pod(wc, terminating=True, ready=False)
    result = plan(wc, [make_pod(wc), draining], T0)
    assert result.deletes == []
    assert len(result.creates) == 1
    summary = {p["name"]: p for p in result.status["pods"]}
    assert summary[draining.name]["phase"] == "Terminating"


def test_condition_transition_time_changes_only_on_flip():
    wc = make_cluster(replicas=1)
    first = plan(wc, [], T0)
    later = T0 + timedelta(seconds=30)
    second = plan(replace(wc, status=first.status), [make_pod(wc, ready=False)], later)
    assert conditions(second.status)["Ready"]["lastTransitionTime"] == "2025-01-01T12:00:00Z"
    third = plan(replace(wc, status=second.status), [make_pod(wc)], later)
    assert conditions(third.status)["Ready"]["lastTransitionTime"] == "2025-01-01T12:00:30Z"


def test_template_hash_tracks_pod_relevant_fields_only():
    base = make_cluster(replicas=2)
    same = [
        make_cluster(replicas=5),
        make_cluster(paused=True),
        make_cluster(service={"type": "NodePort", "nodePort": 30080}),
        make_cluster(ingress={"enabled": True, "host": "demo.localhost"}),
        # Taken in place by running pods (inplace.py), so no new template:
        make_cluster(processesPerPod=4),
        make_cluster(resources={"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}),
    ]
    guaranteed = {"cpu": "1", "memory": "1Gi"}
    different = [
        make_cluster(image="workerlab/worker:v2"),
        make_cluster(env=[{"name": "GREETING", "value": "hi"}]),
        make_cluster(labMode=True),
        make_cluster(resources={"requests": guaranteed, "limits": guaranteed}),  # QoS class
    ]
    h = template_hash(base)
    assert all(template_hash(c) == h for c in same)
    assert len({template_hash(c) for c in different} | {h}) == len(different) + 1


def test_owner_check_uses_uid_not_name():
    wc = make_cluster(replicas=1)
    assert make_pod(wc).owned_by(wc)
    assert not make_pod(wc, owner="other").owned_by(wc)
    assert wc.uid == CLUSTER_UID
