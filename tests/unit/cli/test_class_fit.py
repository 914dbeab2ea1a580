"""Does a class fit on the nodes: the pure comparison behind `workerlab class add`'s warning."""

from __future__ import annotations

from fractions import Fraction

from workerlab.cli.class_fit import allocatable, requested, shortfalls


def node(cpu: str, memory: str, pods: str = "110", unschedulable: bool = False) -> dict:
    return {
        "spec": {"unschedulable": unschedulable},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}},
    }


def pod(namespace: str, cpu: str = "0", memory: str = "0", **status: str) -> dict:
    return {
        "metadata": {"namespace": namespace},
        "spec": {
            "nodeName": status.pop("node", "n1"),
            "containers": [{"resources": {"requests": {"cpu": cpu, "memory": memory}}}],
        },
        "status": {"phase": status.get("phase", "Running")},
    }


def test_allocatable_sums_the_schedulable_nodes_only() -> None:
    total = allocatable([node("2", "8Gi"), node("4", "8Gi", unschedulable=True)])
    assert total == {"cpu": 2, "memory": 8 * 2**30, "pods": 110}


def test_requested_counts_other_namespaces_running_pods_and_skips_the_learners() -> None:
    pods = [
        pod("kube-system", cpu="250m", memory="100Mi"),
        pod("learner-ada", cpu="1", memory="1Gi"),
        pod("workerlab", cpu="100m", phase="Succeeded"),
        pod("workerlab", cpu="100m", node=""),
    ]
    taken = requested(pods, {"learner-ada"})
    assert taken == {"cpu": Fraction(1, 4), "memory": 100 * 2**20, "pods": 1}


def test_two_learners_with_one_cpu_each_do_not_fit_a_two_core_node_already_busy() -> None:
    short = shortfalls(
        {"requests.cpu": "1", "requests.memory": "2Gi", "pods": "8"},
        learners=2,
        nodes_allocatable={
            "cpu": Fraction(2),
            "memory": Fraction(24 * 2**30),
            "pods": Fraction(110),
        },
        others_requested={"cpu": Fraction(11, 20), "memory": Fraction(2**30), "pods": Fraction(12)},
    )
    assert [s.resource for s in short] == ["cpu"]
    assert short[0].describe() == (
        "2 learners x requests.cpu 1 = 2, but the nodes have 1450m cpu left of 2 allocatable"
    )


def test_a_class_that_fits_has_no_shortfall_and_no_learner_none() -> None:
    roomy = {"cpu": Fraction(16), "memory": Fraction(64 * 2**30), "pods": Fraction(220)}
    nothing = {"cpu": Fraction(0), "memory": Fraction(0), "pods": Fraction(0)}
    assert shortfalls({"requests.cpu": "1", "pods": "8"}, 3, roomy, nothing) == []
    assert shortfalls({"requests.cpu": "100"}, 0, roomy, nothing) == []


def test_the_plain_cpu_quota_name_counts_when_requests_cpu_is_absent() -> None:
    small = {"cpu": Fraction(1), "memory": Fraction(2**30), "pods": Fraction(10)}
    nothing = {"cpu": Fraction(0), "memory": Fraction(0), "pods": Fraction(0)}
    short = shortfalls({"cpu": "800m", "memory": "1Gi", "pods": "6"}, 2, small, nothing)
    assert [(s.resource, s.quota_name) for s in short] == [
        ("cpu", "cpu"),
        ("memory", "memory"),
        ("pods", "pods"),
    ]
    assert "2 learners x memory 1.0Gi = 2.0Gi" in short[1].describe()
