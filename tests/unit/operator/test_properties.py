"""Property tests of the pure core (hypothesis): bounds, readiness order, convergence."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from workerlab.operator.model import ObservedPod
from workerlab.operator.reconcile import Plan, plan
from workerlab.operator.simulation import CLUSTER_UID, T0, World, make_cluster, make_pod
from workerlab.operator.templates import template_hash

int_or_percent = st.one_of(
    st.integers(min_value=0, max_value=4),
    st.sampled_from(["0%", "10%", "25%", "50%", "100%"]),
)


@st.composite
def clusters(draw):
    return make_cluster(
        replicas=draw(st.integers(min_value=0, max_value=8)),
        processesPerPod=draw(st.integers(min_value=1, max_value=4)),
        updateStrategy={"maxSurge": draw(int_or_percent), "maxUnavailable": draw(int_or_percent)},
    )


@st.composite
def observed_pods(draw, cluster):
    pods = []
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        phase = draw(st.sampled_from(["Running", "Running", "Pending", "Failed", "Unknown"]))
        pods.append(
            make_pod(
                cluster,
                hash=draw(st.sampled_from(["current", "current", "oldhash", "olderhash", None])),
                ready=phase == "Running" and draw(st.booleans()),
                age=draw(st.floats(min_value=0, max_value=3600)),
                owner=draw(st.sampled_from([CLUSTER_UID, CLUSTER_UID, CLUSTER_UID, "other", None])),
                terminating=draw(st.booleans()) and draw(st.booleans()),
                phase=phase,
            )
        )
    return pods


@st.composite
def worlds(draw):
    cluster = draw(clusters())
    return cluster, draw(observed_pods(cluster))


def active(pods: list[ObservedPod], cluster) -> list[ObservedPod]:
    return [p for p in pods if p.owned_by(cluster) and not p.terminating and not p.finished]


def check_one_step(cluster, pods: list[ObservedPod], result: Plan) -> None:
    desired = cluster.spec.replicas
    surge, unavailable = cluster.spec.update_strategy.bounds(desired)
    by_uid = {p.uid: p for p in pods}
    deleted = [by_uid[a.uid] for a in result.deletes]
    deleted_uids = {p.uid for p in deleted}

    # Only live pods this cluster controls are ever deleted, and each at most once.
    assert len(deleted_uids) == len(deleted)
    assert all(p.owned_by(cluster) and not p.terminating for p in deleted)

    before = active(pods, cluster)
    kept = [p for p in before if p.uid not in deleted_uids]
    # maxSurge: creating never takes the pod count above replicas + maxSurge.
    if result.creates:
        assert len(kept) + len(result.creates) <= desired + surge
    # maxUnavailable: deletions never take Ready pods below replicas - maxUnavailable
    # (or below what was Ready already, when the world started worse than that).
    ready_before = sum(p.ready for p in before)
    ready_after = sum(p.ready for p in kept)
    assert ready_after >= min(ready_before, desired - unavailable)

    # Never a Ready pod deleted while an unready surplus pod is kept.
    if any(p.ready for p in deleted):
        current = template_hash(cluster)
        kept_current = [p for p in kept if p.template_hash == current]
        assert not any(not p.ready and p.template_hash != current for p in kept)
        assert len(kept_current) <= desired


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_a_single_plan_respects_the_bounds(world):
    cluster, pods = world
    check_one_step(cluster, pods, plan(cluster, pods, T0))


@settings(max_examples=200, deadline=None)
@given(worlds(), st.integers(min_value=1, max_value=3))
def test_converges_in_bounded_steps_and_every_step_is_within_bounds(world, ready_after):
    cluster, pods = world
    sim = World(cluster, pods, ready_after_steps=ready_after)
    foreign_before = {p.uid for p in pods if not p.owned_by(cluster) and not p.terminating}
    desired = cluster.spec.replicas
    surge, unavailable = cluster.spec.update_strategy.bounds(desired)
    per_wave = max(1, surge + unavailable)
    # Each wave replaces >= per_wave pods and takes <= ready_after + 2 steps.
    limit = (len(pods) // per_wave + desired // per_wave + 3) * (ready_after + 2)
    for _ in range(limit):
        result = sim.observe()
        check_one_step(sim.cluster, sim.pods, result)
        sim.apply(result)
        if not result.actions and result.status["phase"] == "Ready":
            break
    else:
        raise AssertionError(f"no convergence in {limit} steps: {sim.cluster.status}")

    current = template_hash(cluster)
    live = active(sim.pods, cluster)
    assert len(live) == desired
    assert all(p.template_hash == current and p.ready for p in live)
    # Pods of other owners were never touched.
    assert foreign_before <= {p.uid for p in sim.pods}
    # Once the draining pods are gone, observing again changes nothing: no actions, no writes.
    sim.pods = [p for p in sim.pods if not p.terminating]
    settled = plan(sim.cluster, sim.pods, sim.now)
    sim.cluster = replace(sim.cluster, status=settled.status)
    again = plan(sim.cluster, sim.pods, sim.now + timedelta(minutes=1))
    assert settled.actions == again.actions == []
    assert again.status == settled.status


@settings(max_examples=100, deadline=None)
@given(clusters(), st.integers(min_value=1, max_value=10))
def test_failing_pods_are_never_replaced_faster_than_the_backoff(cluster, steps):
    """A world where every pod fails at once: replacements thin out exponentially."""
    sim = World(cluster, [], ready_after_steps=None, step_seconds=1.0)
    replacement_times = []
    for _ in range(steps * 20):
        result = sim.observe()
        if any(a.reason == "ReplaceFailed" for a in result.deletes):
            replacement_times.append(sim.now)
        sim.apply(result)
        sim.pods = [
            p if p.terminating else replace(p, phase="Failed", ready=False) for p in sim.pods
        ]
    gaps = [(b - a).total_seconds() for a, b in pairwise(replacement_times)]
    assert replacement_times or cluster.spec.replicas == 0
    for n, gap in enumerate(gaps, start=1):
        assert gap >= min(10 * 2 ** (n - 1), 300)
