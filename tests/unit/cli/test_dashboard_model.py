"""The dashboard's pure fold: watch events + /processes polls -> view and "who healed it"."""

from __future__ import annotations

from collections import deque

from workerlab.cli.dashboard.model import Model
from workerlab.cli.dashboard.timeline import ARBITER, KUBELET, OPERATOR
from workerlab.cli.dashboard.view import window_delta

NS = "lab"


def wc(name="demo", replicas=2, procs=2, lab=True, ready=2, hash_="h1"):
    return {
        "metadata": {"name": name, "namespace": NS, "generation": 1},
        "spec": {"replicas": replicas, "processesPerPod": procs, "labMode": lab},
        "status": {"readyReplicas": ready, "readyProcesses": ready * procs, "templateHash": hash_},
    }


def pod(name, uid=None, ready=True, restarts=0, wc_name="demo", terminating=False, hash_="h1",
        finished=None):  # fmt: skip
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [{"restartCount": restarts, "lastState": {}}],
    }
    if finished:
        status["containerStatuses"][0]["lastState"] = {
            "terminated": {"finishedAt": finished, "reason": "Error"}
        }
    meta = {
        "name": name,
        "uid": uid or f"uid-{name}",
        "labels": {
            "app.kubernetes.io/instance": wc_name,
            "workerlab.dev/template-hash": hash_,
        },
    }
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": "n1"}, "status": status}


def report(*procs, arbiter=1):
    return {"pod": "p", "arbiter_pid": arbiter, "processes": list(procs)}


def proc(pid, served=0, alive=True, started=100.0, index=0, exited_at=None, exit=None):
    return {
        "pid": pid, "index": index, "started_at": started, "requests_served": served,
        "alive": alive, "exited_at": exited_at, "exit": exit,
    }  # fmt: skip


def k8s_event(reason, message, at, kind="WorkerCluster", name="demo", type_="Normal", uid=None,
              source="workerlab-operator"):  # fmt: skip
    stamp = f"1970-01-01T00:{int(at) // 60:02d}:{int(at) % 60:02d}Z"
    return {
        "metadata": {"uid": uid or f"{reason}-{message}", "name": f"e-{at}"},
        "involvedObject": {"kind": kind, "name": name},
        "reason": reason, "message": message, "type": type_, "count": 1,
        "lastTimestamp": stamp, "source": {"component": source},
    }  # fmt: skip


def levels(model):
    return [e.level for e in model.timeline]


def base():
    m = Model(NS)
    m.wc("ADDED", wc(), 1000)
    m.pod("ADDED", pod("demo-a"), 1000)
    m.pod("ADDED", pod("demo-b"), 1000)
    return m


def test_view_nests_pods_and_processes_under_their_worker_cluster():
    m = base()
    m.pod("ADDED", pod("other-x", wc_name="other"), 1000)
    m.processes("demo-a", report(proc(10, 5), proc(11, 7, index=1)), 1001)
    v = m.view(1002)
    (c,) = v["clusters"]
    assert c["name"] == "demo" and c["desired"] == 2 and c["desired_processes"] == 4
    assert c["ready_replicas"] == 2 and c["ready_processes"] == 4 and c["lab_mode"]
    assert [p["name"] for p in c["pods"]] == ["demo-a", "demo-b"]
    a = c["pods"][0]
    assert [p["pid"] for p in a["processes"]] == [10, 11]
    assert a["processes"][0]["age_s"] == 902.0 and a["up_to_date"] is True
    assert c["pods"][1]["processes"] is None
    assert v["orphan_pods"] == ["other-x"]


def test_up_to_date_compares_the_pod_hash_with_the_clusters():
    m = base()
    m.wc("MODIFIED", wc(hash_="h2"), 1001)
    pods = m.view(1002)["clusters"][0]["pods"]
    assert [p["up_to_date"] for p in pods] == [False, False]


def test_deleted_pod_then_a_new_ready_pod_is_an_operator_heal_with_its_time():
    m = base()
    m.pod("MODIFIED", pod("demo-a", terminating=True), 1010)
    m.pod("DELETED", pod("demo-a", terminating=True), 1011)
    m.pod("ADDED", pod("demo-c", ready=False), 1011.5)
    # the operator's status write arrives meanwhile: the same spec, not a scale-down
    m.wc("MODIFIED", dict(wc(), status={"readyReplicas": 1}), 1012)
    said = "Created pod demo-c: replacing a pod that was deleted or failed"
    m.event("ADDED", k8s_event("ReplacedPod", said, 1012), 1012)
    assert [e.reason for e in m.timeline] == ["ReplacedPod"]  # the Event itself, not a heal yet
    m.pod("MODIFIED", pod("demo-c", ready=True), 1014)
    (entry,) = [e for e in m.timeline if e.level == OPERATOR and e.heal_s is not None]
    assert "demo-a" in entry.message and entry.pod == "demo-c" and entry.heal_s == 4.0


def test_scale_down_is_not_a_fault():
    m = base()
    m.wc("MODIFIED", wc(replicas=1), 1005)
    m.pod("MODIFIED", pod("demo-b", terminating=True), 1006)
    m.pod("DELETED", pod("demo-b"), 1007)
    m.wc("MODIFIED", wc(replicas=2), 1008)
    m.pod("ADDED", pod("demo-d"), 1009)  # a scale-up, not a replacement
    assert list(m.timeline) == []


def test_scale_down_seen_before_the_lower_spec_is_not_a_fault_either():
    # The pod watch and the WorkerCluster watch are separate streams: here the pod removed by a
    # scale-down arrives first. A later real deletion must be named as the replaced pod.
    m = base()
    m.pod("MODIFIED", pod("demo-b", terminating=True), 1006)
    m.pod("DELETED", pod("demo-b"), 1007)
    m.wc("MODIFIED", wc(replicas=1), 1007.5)
    m.wc("MODIFIED", wc(replicas=2), 1008)
    m.pod("ADDED", pod("demo-d"), 1009)  # the scale-up back to 2: not a replacement
    assert list(m.timeline) == []
    m.pod("MODIFIED", pod("demo-a", terminating=True), 1010)
    m.pod("ADDED", pod("demo-e", ready=False), 1011)
    m.pod("MODIFIED", pod("demo-e", ready=True), 1013)
    # the operator's word arrives after the pod was Ready: the heal is told at Ready time
    said = "Created pod demo-e: replacing a pod that was deleted or failed"
    m.event("ADDED", k8s_event("ReplacedPod", said, 1011), 1014)
    (entry,) = [e for e in m.timeline if e.level == OPERATOR and e.heal_s is not None]
    assert "replaced demo-a" in entry.message and entry.heal_s == 3.0


def test_restart_count_up_is_the_kubelet_and_ready_again_closes_it():
    m = base()
    m.pod("MODIFIED", pod("demo-a", ready=False, restarts=1,
                          finished="1970-01-01T00:16:50Z"), 1011)  # fmt: skip
    m.pod("MODIFIED", pod("demo-a", ready=True, restarts=1), 1015)
    assert levels(m) == [KUBELET, KUBELET]
    assert "0 -> 1" in m.timeline[0].message and "Error" in m.timeline[0].message
    assert m.timeline[1].heal_s == 5.0  # finishedAt 1010 -> Ready at 1015


def test_a_vanished_pid_and_a_new_one_in_the_same_pod_is_the_arbiter():
    m = base()
    m.processes("demo-a", report(proc(10), proc(11, index=1)), 1001)
    m.processes(
        "demo-a",
        report(
            proc(10, alive=False, exited_at=1002.0, exit="signal 9 (SIGKILL)"),
            proc(11, index=1),
            proc(12, started=1002.4),
        ),
        1003,
    )
    (entry,) = list(m.timeline)
    assert entry.level == ARBITER and "pid 10" in entry.message and "pid 12" in entry.message
    assert "SIGKILL" in entry.message and entry.heal_s == 0.4 and entry.pod == "demo-a"


def test_a_pid_gone_without_replacement_waits_for_the_next_poll():
    m = base()
    m.processes("demo-a", report(proc(10), proc(11)), 1001)
    m.processes("demo-a", report(proc(11)), 1003)
    assert list(m.timeline) == []
    m.processes("demo-a", report(proc(11), proc(13, started=1004.0)), 1005)
    assert levels(m) == [ARBITER] and m.timeline[0].heal_s == 1.0


def test_a_new_arbiter_is_not_a_re_fork():
    m = base()
    m.processes("demo-a", report(proc(10), arbiter=1), 1001)
    m.processes("demo-a", report(proc(20), arbiter=2), 1003)
    assert list(m.timeline) == []


def test_operator_events_enter_the_timeline_once_even_after_a_relist():
    m = base()
    event = {
        "metadata": {"uid": "e1", "name": "demo.1"},
        "involvedObject": {"kind": "WorkerCluster", "name": "demo"},
        "reason": "ReplacedPod",
        "message": "replaced pod demo-a",
        "count": 1,
        "lastTimestamp": "1970-01-01T00:16:50Z",
    }
    m.event("ADDED", event, 1011)
    m.resync("event", [event], 1012)
    noise = dict(event, reason="Pulled", metadata={"uid": "e2"}, involvedObject={"kind": "Pod"})
    m.event("ADDED", noise, 1012)  # the kubelet's, on a pod: not the master's word
    (entry,) = list(m.timeline)
    assert entry.level == OPERATOR and entry.reason == "ReplacedPod" and entry.at == 1010
    m.event("MODIFIED", dict(event, count=2, lastTimestamp="1970-01-01T00:16:55Z"), 1016)
    assert len(m.timeline) == 2


def test_every_event_on_a_workercluster_is_the_masters_word_whatever_its_reason():
    """A crash loop's Warning carries the Degraded reason (CrashLoopBackOff) and the worker's own
    error; a node's loss and return have reasons of their own: none may be dropped."""
    m = base()
    for uid, reason in (("e1", "CrashLoopBackOff"), ("e2", "NodeLost"), ("e3", "NodeRecovered")):
        m.event(
            "ADDED",
            {
                "metadata": {"uid": uid},
                "involvedObject": {"kind": "WorkerCluster", "name": "demo"},
                "reason": reason,
                "type": "Warning",
                "message": f"{reason} said",
                "lastTimestamp": "1970-01-01T00:16:50Z",
            },
            1011,
        )
    assert [e.reason for e in m.timeline] == ["CrashLoopBackOff", "NodeLost", "NodeRecovered"]


def test_old_events_from_the_first_list_stay_off_the_timeline():
    m = base()
    old = {
        "metadata": {"uid": "e1"},
        "involvedObject": {"kind": "WorkerCluster", "name": "demo"},
        "reason": "CreatedPod",
        "message": "x",
        "lastTimestamp": "1970-01-01T00:00:10Z",
    }
    m.resync("event", [old], 5000)
    assert list(m.timeline) == []


def test_resync_drops_what_vanished_while_the_watch_was_down():
    m = base()
    m.resync("pod", [pod("demo-b")], 1020)
    assert set(m.pods) == {"demo-b"}
    m.resync("wc", [], 1021)
    assert m.view(1022)["clusters"] == []


def test_recent_requests_are_deltas_within_the_window():
    m = Model(NS, window_s=10)
    m.wc("ADDED", wc(), 0)
    m.pod("ADDED", pod("demo-a"), 0)
    for t, served in ((100, 5), (105, 9), (112, 20), (114, 30)):
        m.processes("demo-a", report(proc(10, served)), t)
    v = m.view(115)
    assert v["clusters"][0]["pods"][0]["processes"][0]["requests_recent"] == 30 - 9
    assert v["clusters"][0]["pods"][0]["requests_recent"] == 21
    assert v["clusters"][0]["requests_recent"] == 21


def test_control_traffic_is_shown_apart_and_never_in_the_recent_requests():
    m = Model(NS, window_s=30)
    m.wc("ADDED", wc(), 0)
    m.pod("ADDED", pod("demo-a"), 0)
    for t, control in ((100, 3), (110, 25), (120, 41)):  # probes and polls only: a pod at rest
        m.processes("demo-a", report(proc(10, 0) | {"control_served": control}), t)
    (c,) = m.view(121)["clusters"]
    (p,) = c["pods"][0]["processes"]
    assert (p["requests_served"], p["requests_recent"], p["control_served"]) == (0, 0, 41)
    assert c["pods"][0]["requests_recent"] == 0 and c["requests_recent"] == 0
    m.processes("demo-a", report(proc(10, 4)), 122)  # an older worker: no control count
    assert m.view(123)["clusters"][0]["pods"][0]["processes"][0]["control_served"] is None


def test_window_delta_edges():
    assert window_delta(None, 10, 5) == 0
    assert window_delta(deque([(9.0, 4)]), 10, 5) == 0
    assert window_delta(deque([(1.0, 4), (9.0, 10)]), 10, 5) == 6
    assert window_delta(deque([(6.0, 4), (9.0, 10)]), 10, 5) == 6


def test_version_moves_only_on_changes():
    m = base()
    v = m.version
    m.pod("MODIFIED", pod("demo-a"), 1001)
    assert m.version == v
    m.processes("demo-a", report(proc(10, 1)), 1001)
    v = m.version
    m.processes("demo-a", report(proc(10, 1)), 1003)
    assert m.version == v


def test_unreachable_then_back_is_on_the_timeline_and_in_health():
    m = base()
    m.set_health("cluster", True, 1000)
    m.set_health("cluster", False, 1001, "connection refused")
    assert m.view(1002)["health"] == {
        "cluster": False, "cluster_error": "connection refused", "operator": None, "master": None
    }  # fmt: skip
    m.set_health("cluster", True, 1005)
    assert [e.message for e in m.timeline] == [
        "the API server is unreachable: connection refused",
        "the API server is reachable again",
    ]


def test_pods_to_poll_are_ready_and_not_terminating():
    m = base()
    m.pod("MODIFIED", pod("demo-b", terminating=True), 1001)
    m.pod("ADDED", pod("demo-c", ready=False), 1001)
    assert m.pods_to_poll() == [("demo-a", "demo")]


def test_timeline_is_bounded():
    m = base()
    for i in range(1000):
        m.add(OPERATOR, f"e{i}", i)
    assert len(m.timeline) == 300 and m.view(0)["timeline"][0]["message"] == "e999"


def test_the_master_and_its_standby_and_a_hand_over_on_the_timeline():
    m = base()
    operators = {"op-a": "w1", "op-b": "w2"}
    m.master("op-a", 900.0, operators, 1000)
    assert m.health["master"] == {
        "active": "op-a",
        "node": "w1",
        "standbys": [{"name": "op-b", "node": "w2"}],
    }
    assert list(m.timeline) == []  # the first holder seen is no hand-over
    version = m.version
    m.master("op-a", 900.0, operators, 1010)
    assert m.version == version  # nothing changed, nothing to redraw
    m.master("op-b", 1012.0, {"op-b": "w2"}, 1020)
    (entry,) = list(m.timeline)
    assert entry.level == OPERATOR and entry.reason == "HandOver" and entry.at == 1012.0
    assert entry.message == "master hand-over: op-b on w2 took the Lease from op-a"
    assert m.health["master"]["standbys"] == []
    assert m.view(1020)["health"]["master"]["active"] == "op-b"


def test_a_rollout_is_no_heal_even_below_the_desired_count():
    """maxUnavailable lets the operator delete an old pod before its successor is Ready: the
    operator's own DeletedPod / CreatedPod Events say it was a rollout step."""
    m = base()
    m.wc("MODIFIED", wc(hash_="h2"), 1001)
    m.event("ADDED", k8s_event("DeletedPod",
            "Deleted pod demo-a: rolling update, outdated pod template", 1002), 1002)  # fmt: skip
    m.pod("MODIFIED", pod("demo-a", terminating=True), 1002.5)
    m.pod("DELETED", pod("demo-a"), 1003)
    m.event("ADDED", k8s_event("CreatedPod", "Created pod demo-n: rolling update", 1003), 1003)
    m.pod("ADDED", pod("demo-n", ready=False, hash_="h2"), 1003)
    m.pod("MODIFIED", pod("demo-n", hash_="h2"), 1006)
    # the pod watch first, the operator's word after: still no fault
    m.pod("MODIFIED", pod("demo-b", terminating=True), 1007)
    m.event("ADDED", k8s_event("DeletedPod",
            "Deleted pod demo-b: rolling update, outdated pod template", 1007), 1007.5)  # fmt: skip
    m.pod("ADDED", pod("demo-o", ready=False, hash_="h2"), 1008)
    m.pod("MODIFIED", pod("demo-o", hash_="h2"), 1010)
    assert [e for e in m.timeline if e.heal_s is not None] == []
    assert {e.reason for e in m.timeline} == {"DeletedPod", "CreatedPod"}


def test_every_warning_on_the_cluster_or_its_pods_is_shown_as_a_warning():
    m = base()
    crash = "REDIS_URL='not-a-url' is not a redis:// URL"
    m.event("ADDED", k8s_event("WorkerCrashLoop", crash, 1001, type_="Warning"), 1001)
    m.event("ADDED", k8s_event("BackOff", "Back-off restarting failed container", 1002,
                               kind="Pod", name="demo-a", type_="Warning",
                               source="kubelet"), 1002)  # fmt: skip
    m.event("ADDED", k8s_event("FailedScheduling", "0/1 nodes are available", 1003,
                               kind="Pod", name="demo-b", type_="Warning",
                               source="default-scheduler"), 1003)  # fmt: skip
    # the kubelet's routine about a pod, and a Warning about someone else's pod: not shown
    m.event("ADDED", k8s_event("Pulled", "image present", 1004, kind="Pod", name="demo-a",
                               source="kubelet"), 1004)  # fmt: skip
    m.event("ADDED", k8s_event("BackOff", "x", 1005, kind="Pod", name="other-z",
                               type_="Warning", source="kubelet"), 1005)  # fmt: skip
    shown = [(e.level, e.reason, e.warning, e.wc, e.pod) for e in m.timeline]
    assert shown == [
        (OPERATOR, "WorkerCrashLoop", True, "demo", None),
        (KUBELET, "BackOff", True, "demo", "demo-a"),
        ("cluster", "FailedScheduling", True, "demo", "demo-b"),
    ]
    assert crash in m.timeline[0].message
    assert m.view(1006)["timeline"][0]["warning"] is True


def test_a_re_fork_is_told_once_whether_the_page_or_the_operator_saw_it_first():
    told = ("The arbiter (pid 1) of pod demo-a replaced process 10 (killed by signal 9) with "
            "process 12 in slot 0: the pod and its container kept running")  # fmt: skip
    m = base()
    m.processes("demo-a", report(proc(10), proc(11, index=1)), 1001)
    m.processes("demo-a", report(proc(10, alive=False, exited_at=1001.5, exit="killed by signal 9"),
                                 proc(12, started=1002), proc(11, index=1)), 1003)  # fmt: skip
    m.event("ADDED", k8s_event("ProcessReplaced", told, 1004), 1004)
    assert levels(m) == [ARBITER]
    # the other way round: the operator's Event first, then the page's poll
    m = base()
    m.processes("demo-a", report(proc(10), proc(11, index=1)), 1001)
    m.event("ADDED", k8s_event("ProcessReplaced", told, 1004), 1004)
    m.processes("demo-a", report(proc(10, alive=False, exited_at=1001.5, exit="killed by signal 9"),
                                 proc(12, started=1002), proc(11, index=1)), 1005)  # fmt: skip
    assert levels(m) == [ARBITER]
    assert m.timeline[0].pod == "demo-a" and "arbiter" in m.timeline[0].message


def test_a_change_in_place_is_the_operators_entry_on_the_pod_and_says_no_restart():
    from workerlab.api.objects import changed_in_place_message

    told = changed_in_place_message("demo-a", "processes 2→4")
    m = base()
    m.event("ADDED", k8s_event("ChangedInPlace", told, 1004), 1004)
    (entry,) = m.timeline
    assert (entry.level, entry.pod, entry.warning) == (OPERATOR, "demo-a", False)
    assert entry.message.endswith("in place: processes 2→4, no restart")
    assert entry.heal_s is None  # nothing was broken
