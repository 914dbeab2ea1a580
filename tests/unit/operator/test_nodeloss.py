"""A lost node: which nodes count as lost, what the core does with their pods, what it says."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from workerlab.api.resource import Reason
from workerlab.operator import events
from workerlab.operator.heartbeats import Heartbeats
from workerlab.operator.nodeloss import NodeHealth
from workerlab.operator.reconcile import CreatePod, DeletePod, plan
from workerlab.operator.simulation import T0, make_cluster, make_pod
from workerlab.operator.templates import build_pod, template_hash


def health(**silent_seconds: float) -> NodeHealth:
    """Nodes by name (a_b for a-b) and how long ago their last heartbeat arrived, at T0."""
    return NodeHealth(
        {name.replace("_", "-"): T0 - timedelta(seconds=s) for name, s in silent_seconds.items()}
    )


def test_a_node_is_lost_once_silent_for_the_tolerance():
    nodes = health(w1=2, w2=29.9, w3=30)
    assert set(nodes.lost(30, T0)) == {"w3"}
    assert nodes.lost(30, T0)["w3"] == T0 - timedelta(seconds=30)


def test_every_node_silent_is_a_stale_view_not_a_loss():
    assert health(w1=100, w2=100).lost(30, T0) == {}
    assert health(cp=100).lost(30, T0) == {}  # one node: the lab's laptop cluster
    assert NodeHealth().lost(30, T0) == {}  # no heartbeats read (no RBAC on Leases)


def test_a_quiet_node_is_looked_at_again_when_its_tolerance_ends():
    nodes = health(w1=2, w2=20, w3=5)
    assert nodes.seconds_until_lost({"w1", "w2"}, 30, T0) == 10
    assert nodes.seconds_until_lost({"w1", "w3"}, 30, T0) is None  # a renewal or less missed


def pods_on(wc, *nodes):
    return [make_pod(wc, node=n) for n in nodes]


def test_pods_of_a_lost_node_go_without_grace_and_are_replaced_elsewhere():
    wc = make_cluster(replicas=4)
    pods = pods_on(wc, "w1", "w1", "w2", "w2")
    result = plan(wc, pods, T0, health(cp=1, w1=3, w2=31))
    gone = [d for d in result.deletes]
    assert {(d.name, d.reason, d.force, d.node) for d in gone} == {
        (p.name, "NodeLost", True, "w2") for p in pods[2:]
    }
    assert len(result.creates) == 2
    assert {c.reason for c in result.creates} == {"Replace"}
    assert {c.avoid_nodes for c in result.creates} == {("w2",)}
    assert {c.replaces.name for c in result.creates if c.replaces} == {p.name for p in pods[2:]}
    assert result.status["lostNodes"] == [
        {"name": "w2", "lastHeartbeatTime": "2025-01-01T11:59:29Z"}
    ]
    # Pods on lost nodes are not this cluster's capacity: 2 of 4 Ready.
    assert result.status["readyReplicas"] == 2
    assert [p["node"] for p in result.status["pods"]] == ["w1", "w1"]


def test_before_the_tolerance_nothing_is_done_but_a_look_is_due():
    wc = make_cluster(replicas=2, nodeLossTolerationSeconds=60)
    pods = pods_on(wc, "w1", "w2")
    result = plan(wc, pods, T0, health(w1=1, w2=31))
    assert result.actions == []
    assert result.requeue_after == 29
    assert result.status["lostNodes"] == []


def test_a_terminating_pod_on_a_lost_node_is_removed_too_but_not_replaced_twice():
    wc = make_cluster(replicas=2)
    stuck = make_pod(wc, node="w2", terminating=True)
    pods = [*pods_on(wc, "w1"), stuck, make_pod(wc, node="w1", ready=False, age=1)]
    result = plan(wc, pods, T0, health(w1=1, w2=40))
    assert [(d.name, d.force) for d in result.deletes] == [(stuck.name, True)]
    assert result.creates == []  # the unready new pod on w1 already stands in for it


def test_lost_node_stays_in_status_until_it_answers_and_events_say_both():
    wc = make_cluster(replicas=2)
    first = plan(wc, pods_on(wc, "w1", "w2"), T0, health(w1=1, w2=35))
    later = replace(wc, status=first.status)
    survivors = [*pods_on(wc, "w1", "w1")]
    still = plan(later, survivors, T0, health(w1=1, w2=50))
    assert [n["name"] for n in still.status["lostNodes"]] == ["w2"]
    back = plan(replace(wc, status=still.status), survivors, T0, health(w1=1, w2=2))
    assert back.status["lostNodes"] == []

    lost = events.node_transitions(wc.status, first.status)
    assert [(e.type, e.reason) for e in lost] == [("Warning", Reason.NODE_LOST)]
    assert "w2" in lost[0].message and "11:59:25" in lost[0].message
    assert events.node_transitions(first.status, still.status) == []
    recovered = events.node_transitions(still.status, back.status)
    assert [(e.type, e.reason) for e in recovered] == [("Normal", Reason.NODE_RECOVERED)]


def test_events_name_the_pod_replaced_and_its_node():
    lost = DeletePod("demo-a", "uid-a", True, "NodeLost", node="w2", force=True)
    created = events.pod_created(CreatePod("h", "Replace", ("w2",), lost), "demo-b", False)
    assert created.reason == Reason.REPLACED_POD
    assert created.message == "Created pod demo-b: replacing pod demo-a of lost node w2"
    deleted = events.pod_deleted(lost)
    assert "demo-a" in deleted.message and "node w2 is lost" in deleted.message


def test_a_replacement_keeps_off_lost_nodes_within_the_specs_own_node_terms():
    term = {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}
    wc = make_cluster(
        podTemplate={
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [term, {"matchExpressions": []}]
                    }
                }
            }
        }
    )
    pod = build_pod(wc, ("w2", "w3"))
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    keep_off = {"key": "metadata.name", "operator": "NotIn", "values": ["w2", "w3"]}
    assert all(keep_off in t["matchFields"] for t in terms["nodeSelectorTerms"])
    assert term["matchExpressions"][0] in terms["nodeSelectorTerms"][0]["matchExpressions"]
    # Not part of the template: the pods' generation (hash) is the same as without it.
    assert pod["metadata"]["labels"]["workerlab.dev/template-hash"] == template_hash(wc)
    plain = build_pod(make_cluster(), ("w2",))["spec"]["affinity"]["nodeAffinity"]
    assert plain["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchFields": [keep_off | {"values": ["w2"]}]}
    ]
    assert "affinity" not in build_pod(make_cluster())["spec"]


def test_heartbeats_count_from_when_a_renewal_arrives():
    clock = [T0]
    beats = Heartbeats(clock=lambda: clock[0])

    def lease(node, renewed):
        return {"metadata": {"name": node}, "spec": {"renewTime": renewed}}

    beats.observe(
        "ADDED", lease("w1", "2020-01-01T00:00:00.000000Z")
    )  # its clock is off: no matter
    clock[0] = T0 + timedelta(seconds=20)
    beats.observe("MODIFIED", lease("w1", "2020-01-01T00:00:00.000000Z"))  # no renewal: a relist
    assert beats.health().silent_for("w1", clock[0]) == 15 + 20  # first seen: 15 s at most
    beats.observe("MODIFIED", lease("w1", "2020-01-01T00:00:10.000000Z"))
    assert beats.health().silent_for("w1", clock[0]) == 0
    beats.observe("DELETED", lease("w1", ""))
    assert beats.health().heartbeats == {}


def test_a_node_first_seen_counts_from_its_renewal_but_never_from_further_than_15_s_back():
    clock = [T0]
    beats = Heartbeats(clock=lambda: clock[0])
    beats.observe(
        "ADDED", {"metadata": {"name": "fresh"}, "spec": {"renewTime": "2025-01-01T11:59:57.5Z"}}
    )
    beats.observe(
        "ADDED", {"metadata": {"name": "stale"}, "spec": {"renewTime": "2025-01-01T11:50:00Z"}}
    )
    beats.observe(
        "ADDED", {"metadata": {"name": "ahead"}, "spec": {"renewTime": "2025-01-01T13:00:00Z"}}
    )
    beats.observe("ADDED", {"metadata": {"name": "odd"}, "spec": {"renewTime": "yesterday"}})
    health = beats.health()
    assert health.silent_for("fresh", T0) == 2.5
    assert health.silent_for("stale", T0) == 15  # a kubelet's clock behind looks no worse
    assert health.silent_for("ahead", T0) == 0
    assert health.silent_for("odd", T0) == 0
