"""Bad specs are rejected by `kubectl apply` with the field named (schema + CEL in the CRD), and
odd-but-valid specs are handled by the operator without it ever crashing (its container's
restart count and pod stay the same across this module).
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

OPERATOR_NS = "workerlab-system"

# (case id, spec or full-manifest override, text the rejection must contain: the field)
INVALID = [
    ("negative-replicas", {"replicas": -1}, "spec.replicas"),
    ("too-many-replicas", {"replicas": 101}, "spec.replicas"),
    ("zero-processes", {"processesPerPod": 0}, "spec.processesPerPod"),
    ("65-processes", {"processesPerPod": 65}, "spec.processesPerPod"),
    ("replicas-not-an-int", {"replicas": "two"}, "spec.replicas"),
    ("labmode-not-a-bool", {"labMode": "yes"}, "spec.labMode"),
    ("unknown-service-type", {"service": {"type": "LoadBalancer"}}, "spec.service.type"),
    (
        "nodeport-out-of-range",
        {"service": {"type": "NodePort", "nodePort": 80}},
        "spec.service.nodePort",
    ),
    (
        "nodeport-on-clusterip",
        {"service": {"type": "ClusterIP", "nodePort": 30099}},
        "service.nodePort",
    ),
    ("privileged-port", {"port": 80}, "spec.port"),
    ("bad-pull-policy", {"imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy"),
    ("ingress-without-host", {"ingress": {"enabled": True}}, "ingress.host"),
    (
        "ingress-relative-path",
        {"ingress": {"enabled": True, "host": "a.test", "path": "x"}},
        "spec.ingress.path",
    ),
    (
        "surge-and-unavailable-zero",
        {"updateStrategy": {"maxSurge": 0, "maxUnavailable": 0}},
        "updateStrategy",
    ),
    ("surge-over-100-percent", {"updateStrategy": {"maxSurge": "150%"}}, "maxSurge"),
    (
        "env-overrides-managed-var",
        {"env": [{"name": "WORKER_PROCESSES", "value": "9"}]},
        "spec.env",
    ),
    (
        "reserved-pod-label",
        {"podTemplate": {"labels": {"app.kubernetes.io/name": "x"}}},
        "podTemplate.labels",
    ),
    ("graceful-timeout-zero", {"gracefulTimeoutSeconds": 0}, "spec.gracefulTimeoutSeconds"),
    ("typo-in-field-name", {"replica": 3}, "spec.replica"),
    ("9-name-not-dns-1035", {}, "metadata.name"),
]

# Valid specs that are unusual; the evidence that the operator handled each one.
ACCEPTED = [
    ("zero-replicas", {"replicas": 0}),
    ("64-processes-no-pods", {"replicas": 0, "processesPerPod": 64}),
    ("paused", {"replicas": 2, "paused": True}),
    (
        "image-never-pulled",
        {"replicas": 1, "image": "example.invalid/none:1", "imagePullPolicy": "Never"},
    ),
    (
        "unschedulable",
        {"replicas": 1, "podTemplate": {"nodeSelector": {"workerlab.dev/none": "x"}}},
    ),
    (
        "ingress-unknown-class",
        {
            "replicas": 0,
            "ingress": {"enabled": True, "host": "odd.test", "className": "none", "path": "/x"},
        },
    ),
    ("nodeport-allocated", {"replicas": 0, "service": {"type": "NodePort"}}),
    (
        "all-percent-bounds",
        {"replicas": 0, "updateStrategy": {"maxSurge": "100%", "maxUnavailable": "100%"}},
    ),
    ("unicode-env", {"replicas": 0, "env": [{"name": "GREETING", "value": "héllo $(X) ✓\n"}]}),
    # The API server accepts it in the WorkerCluster (preserved fields) but not in a Pod.
    (
        "affinity-rejected-by-pods",
        {
            "replicas": 1,
            "podTemplate": {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": "not-an-object"
                    }
                }
            },
        },
    ),
]


def manifest(name: str, namespace: str, spec: dict) -> dict:
    return {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def operator_state(kube) -> tuple[str, int]:
    items = kube.get("pods", "-n", OPERATOR_NS, "-l", "app.kubernetes.io/name=workerlab-operator")
    (pod,) = [p for p in items["items"] if not p["metadata"].get("deletionTimestamp")]
    return pod["metadata"]["uid"], pod["status"]["containerStatuses"][0]["restartCount"]


@pytest.fixture(scope="module")
def operator_never_crashes(cluster):
    before = operator_state(cluster)
    yield
    assert operator_state(cluster) == before, "the operator restarted (uid, restartCount)"


@pytest.fixture(scope="module")
def specs_ns(module_namespace, operator_never_crashes):
    return module_namespace("e2e-op-specs")


@pytest.mark.parametrize(("case", "spec", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_spec_is_rejected_naming_the_field(cluster, specs_ns, case, spec, field):
    name = case if case[0].isdigit() else f"bad-{case}"  # only the name case has a bad name
    result = cluster.run("apply", "-f", "-", stdin=json.dumps(manifest(name, specs_ns, spec)))
    assert result.returncode != 0, f"{case} was accepted"
    assert field in result.stderr, result.stderr
    assert cluster.run("get", "wc", name, "-n", specs_ns).returncode != 0


def test_odd_but_valid_specs_are_handled_without_crashing_the_operator(cluster, specs_ns, wait_for):
    for case, spec in ACCEPTED:
        cluster.apply(manifest(f"ok-{case}", specs_ns, spec))

    def handled(case: str) -> bool:
        wc = cluster.get("wc", f"ok-{case}", "-n", specs_ns)
        if case == "affinity-rejected-by-pods":  # no pod can be created: an Event and status
            events = cluster.get(
                "events",
                "-n",
                specs_ns,
                "--field-selector",
                f"involvedObject.uid={wc['metadata']['uid']},reason=FailedCreate",
            )
            conditions = {c["type"]: c for c in wc.get("status", {}).get("conditions", [])}
            reason = conditions.get("Degraded", {}).get("reason")
            return bool(events["items"]) and reason == "FailedCreate"
        return wc.get("status", {}).get("observedGeneration") == wc["metadata"]["generation"]

    for case, _ in ACCEPTED:
        wait_for(lambda c=case: handled(c), 60, f"the operator to handle {case}")
    phases = {
        c: cluster.get("wc", f"ok-{c}", "-n", specs_ns)["status"].get("phase")
        for c, _ in ACCEPTED
        if c != "affinity-rejected-by-pods"
    }
    assert phases["zero-replicas"] == "Ready" and phases["paused"] == "Paused"
    assert phases["unschedulable"] == "Progressing"
    wait_for(
        lambda: (
            cluster.get("wc", "ok-image-never-pulled", "-n", specs_ns)["status"]["phase"]
            == "Degraded"
        ),
        60,
        "ErrImageNeverPull reported as Degraded",
    )
    assert not cluster.get("pods", "-n", specs_ns, "-l", "app.kubernetes.io/instance=ok-paused")[
        "items"
    ]
