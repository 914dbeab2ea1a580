"""The in-place path of the pure core: a process count or CPU/memory change keeps the pods,
anything else (or a pod that refuses) rolls them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from workerlab.api.resource import Reason
from workerlab.operator.inplace import ChangeInPlace, qos_class, quantity
from workerlab.operator.simulation import T0, World, make_cluster, make_pod

SIZED = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}


def settled(**spec):
    cluster = make_cluster(**spec)
    return cluster, [make_pod(cluster), make_pod(cluster)]


def test_a_new_process_count_is_told_to_the_running_pods_and_nothing_rolls():
    _, pods = settled(replicas=2, processesPerPod=2)
    world = World(make_cluster(replicas=2, processesPerPod=4, generation=2), pods)
    first = world.step()
    assert not first.creates and not first.deletes
    assert [a.processes for a in first.in_place] == [(2, 4), (2, 4)]
    assert first.in_place[0].summary.startswith("processes 2→4")  # memory follows the count
    assert first.status["phase"] == "Progressing"
    assert first.status["conditions"][0]["status"] == "False"  # not Ready while changing
    settled_plan = world.step()
    assert settled_plan.actions == [] and settled_plan.status["phase"] == "Ready"
    assert {p.name for p in world.pods} == {p.name for p in pods}  # same pods
    assert all("inPlace" not in p for p in settled_plan.status["pods"])


def test_a_pod_whose_arbiter_has_not_caught_up_keeps_the_cluster_not_ready():
    cluster, _ = settled(processesPerPod=4)
    told = T0 - timedelta(seconds=3)
    pods = [
        make_pod(cluster, changed_at=told),
        make_pod(cluster, processes_alive=2, changed_at=told),
    ]
    result = World(cluster, pods).observe()
    assert result.actions == []
    assert result.status["phase"] == "Progressing"
    assert [p.get("inPlace") for p in result.status["pods"]] == [None, "processes 2→4"]
    assert "changing in place" in result.status["conditions"][1]["message"]


def test_a_process_re_forking_long_after_a_change_is_no_change_in_place():
    cluster, _ = settled(processesPerPod=4)
    long_ago = T0 - timedelta(minutes=10)
    pods = [make_pod(cluster, changed_at=long_ago), make_pod(cluster, processes_alive=3)]
    result = World(cluster, pods).observe()
    assert result.status["phase"] == "Ready"
    assert all("inPlace" not in p for p in result.status["pods"])


def test_cpu_and_memory_are_resized_in_place_while_the_qos_class_stays():
    _, pods = settled(resources=SIZED)
    bigger = {**SIZED, "requests": {"cpu": "1", "memory": "256Mi"}}
    result = World(make_cluster(resources=bigger, generation=2), pods).observe()
    assert not result.creates and not result.deletes
    assert [a.resources[1] for a in result.in_place if a.resources] == [bigger, bigger]
    assert all(a.processes is None for a in result.in_place)


def test_quantities_compare_by_value_so_an_echoed_spec_is_no_change():
    assert quantity("500m") == quantity("0.5") and quantity("1Gi") == quantity("1024Mi")
    cluster = make_cluster(resources={"requests": {"cpu": "0.5", "memory": "1024Mi"}})
    echoed = {"requests": {"cpu": "500m", "memory": "1Gi"}}  # as the API server stores them
    assert World(cluster, [make_pod(cluster, resources=echoed)]).observe().in_place == []


def test_a_qos_class_change_rolls_the_pods_and_says_why():
    _, pods = settled(resources=SIZED)
    exact = {"cpu": "500m", "memory": "256Mi"}
    assert qos_class(SIZED) == "Burstable" and qos_class({"limits": exact}) == "Guaranteed"
    was = {"observedGeneration": 1, "templateHash": pods[0].template_hash}
    result = World(make_cluster(was, 2, resources={"limits": exact}), pods).observe()
    assert result.creates and not result.in_place
    (note,) = result.notes
    assert note[0] == Reason.ROLLING_UPDATE and "QoS class Burstable → Guaranteed" in note[1]


def test_an_image_change_rolls_the_pods_and_says_why():
    cluster, _ = settled()
    pods = [make_pod(cluster, image="reg/worker:1"), make_pod(cluster, image="reg/worker:1")]
    was = {"observedGeneration": 1, "templateHash": pods[0].template_hash}
    world = World(make_cluster(was, 2, image="reg/worker:2"), pods)
    result = world.step()
    assert result.creates and not result.in_place
    assert "image reg/worker:1 → reg/worker:2 cannot change in a running pod" in result.notes[0][1]
    # Said when the new template is first seen, not at every step of the rollout...
    assert world.step().notes == []
    # ...and again when a later change rolls to a template seen before.
    assert result.status["templateHash"] != pods[0].template_hash


def test_a_pod_that_refuses_or_cannot_be_resized_is_rolled_with_a_warning():
    cluster, _ = settled(replicas=2)
    infeasible = make_pod(cluster, resize="Infeasible", resize_message="no room")
    refused = make_pod(cluster, in_place_refused="its arbiter runs 2 processes")
    result = World(cluster, [infeasible, refused]).observe()
    assert len(result.creates) == 1  # the surge budget: one at a time, as a rolling update
    warnings = dict((message.split(":")[0], message) for _, message in result.warnings)
    assert "no room" in warnings[f"pod {infeasible.name}"]
    assert "replacing it (rolling update)" in warnings[f"pod {refused.name}"]
    assert {r for r, _ in result.warnings} == {Reason.IN_PLACE_FALLBACK}


def test_a_deferred_resize_waits_then_falls_back():
    cluster, _ = settled(replicas=1)
    deferred = make_pod(cluster, resize="Deferred", changed_at=T0 - timedelta(seconds=10))
    waiting = World(cluster, [deferred]).observe()
    assert waiting.actions == [] and waiting.status["phase"] == "Progressing"
    late = replace(deferred, changed_at=T0 - timedelta(seconds=61))
    assert World(cluster, [late]).observe().creates


def test_scaled_down_pods_are_not_changed_first():
    _, pods = settled(replicas=2, processesPerPod=2)
    result = World(make_cluster(replicas=1, processesPerPod=3, generation=2), pods).observe()
    assert len(result.deletes) == 1 and len(result.in_place) == 1
    assert isinstance(result.in_place[0], ChangeInPlace)
    assert result.in_place[0].uid != result.deletes[0].uid


def test_amounts_admission_added_are_kept_and_not_compared():
    """A learner namespace's LimitRange defaults a CPU limit on every pod: no resize for that,
    and a resize keeps it (the API server refuses one that removes a limit)."""
    cluster = make_cluster(resources=SIZED)
    defaulted = {**SIZED, "limits": {"memory": "512Mi", "cpu": "500m"}}
    assert World(cluster, [make_pod(cluster, resources=defaulted)]).observe().in_place == []
    bigger = make_cluster(resources={**SIZED, "requests": {"cpu": "1", "memory": "256Mi"}})
    (change,) = World(bigger, [make_pod(cluster, resources=defaulted)]).observe().in_place
    assert change.resources is not None
    assert change.resources[1] == {
        "requests": {"cpu": "1", "memory": "256Mi"},
        "limits": {"memory": "512Mi", "cpu": "500m"},
    }
