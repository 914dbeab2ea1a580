"""The real operator (a `python -m workerlab.operator` process running kopf) against a real
control plane: etcd, kube-apiserver and kube-controller-manager (for garbage collection), the
binaries the toolchain builds, all on 127.0.0.1. There is no kubelet, so pods stay Pending:
what needs Ready pods (status Ready, processes, rollouts under load) is in test_operator_kind.py.

Everything here is real: the CRD's schema and CEL rules, Pod Security admission of the pods the
operator creates, RBAC of the operator's service account, garbage collection.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator

import pytest
from support.operator_process import OperatorProcess
from support.paths import REPO

pytestmark = pytest.mark.integration


NS = "workerlab"


@pytest.fixture(scope="module")
def plane(control_plane):
    control_plane.ok("apply", "-k", str(REPO / "manifests"))
    control_plane.wait(
        lambda: control_plane.kubectl("get", "serviceaccount", "default", "-n", NS).returncode == 0,
        60,
        "default service account in the lab namespace",
    )
    return control_plane


@pytest.fixture(scope="module")
def operator(plane, tmp_path_factory) -> Iterator[OperatorProcess]:
    op = OperatorProcess(plane, tmp_path_factory.mktemp("operator"))
    op.start()
    yield op
    op.stop()


def wc_manifest(name: str, **spec) -> str:
    return json.dumps(
        {
            "apiVersion": "workerlab.dev/v1alpha1",
            "kind": "WorkerCluster",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        }
    )


def live_pods(plane, name: str) -> list[dict]:
    pods = plane.json("get", "pods", "-n", NS, "-l", f"app.kubernetes.io/instance={name}")
    return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"replicas": -1}, "spec.replicas", "greater than or equal to 0"),
        ({"processesPerPod": 0}, "spec.processesPerPod", "greater than or equal to 1"),
        ({"processesPerPod": 65}, "spec.processesPerPod", "less than or equal to 64"),
        ({"replicas": "two"}, "spec.replicas", "must be of type integer"),
        ({"service": {"type": "LoadBalancer"}}, "spec.service.type", "Unsupported value"),
        ({"service": {"nodePort": 30080}}, "spec.service.nodePort", "only be set when"),
        ({"ingress": {"enabled": True}}, "spec.ingress.host", "required"),
        ({"updateStrategy": {"maxSurge": 0, "maxUnavailable": 0}}, "spec.updateStrategy", "both"),
        ({"env": [{"name": "PORT", "value": "1"}]}, "spec.env", "may not set"),
        ({"env": [{"name": "BALANCE", "value": "reuseport"}]}, "spec.env", "may not set"),
        ({"balance": "roundrobin"}, "spec.balance", "Unsupported value"),
    ],
)
def test_invalid_specs_are_rejected_naming_the_field(plane, spec, field, words):
    result = plane.kubectl("apply", "-f", "-", stdin=wc_manifest("invalid", **spec))
    assert result.returncode != 0
    assert field in result.stderr and words in result.stderr, result.stderr


def test_explain_reads_well(plane):
    text = plane.ok("explain", "workercluster.spec.processesPerPod")
    assert "gunicorn arbiter forks" in text


def test_apply_creates_owned_pods_and_service(plane, operator):
    plane.ok("apply", "-f", str(REPO / "manifests" / "samples" / "demo.yaml"))
    pods = plane.wait(
        lambda: len(live_pods(plane, "demo")) == 2 and live_pods(plane, "demo"), 20, "2 pods"
    )
    wc = plane.json("get", "wc", "demo", "-n", NS)
    for pod in pods:
        labels = pod["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "workerlab-worker"
        assert labels["app.kubernetes.io/managed-by"] == "workerlab-operator"
        assert labels["workerlab.dev/template-hash"] == wc["status"]["templateHash"]
        (owner,) = pod["metadata"]["ownerReferences"]
        assert owner["uid"] == wc["metadata"]["uid"] and owner["controller"] is True
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True  # admitted as restricted
    svc = plane.json("get", "service", "demo", "-n", NS)
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["ports"][0]["nodePort"] == 30080
    assert svc["spec"]["selector"] == {
        "app.kubernetes.io/name": "workerlab-worker",
        "app.kubernetes.io/instance": "demo",
    }
    assert svc["metadata"]["ownerReferences"][0]["uid"] == wc["metadata"]["uid"]
    status = plane.wait(
        lambda: plane.json("get", "wc", "demo", "-n", NS).get("status"), 10, "status"
    )
    assert status["replicas"] == 2 and status["observedGeneration"] == 1
    assert (
        status["selector"]
        == "app.kubernetes.io/instance=demo,app.kubernetes.io/name=workerlab-worker"
    )
    events = plane.ok("get", "events", "-n", NS, "--field-selector", "involvedObject.name=demo")
    assert "CreatedPod" in events and "CreatedService" in events


def test_no_writes_while_nothing_changes(plane, operator):
    plane.wait(lambda: len(live_pods(plane, "demo")) == 2, 20, "demo converged")
    time.sleep(2)
    before = plane.json("get", "wc", "demo", "-n", NS)["metadata"]["resourceVersion"]
    writes = operator.metrics()["workerlab_status_writes_total"]
    time.sleep(6)
    assert plane.json("get", "wc", "demo", "-n", NS)["metadata"]["resourceVersion"] == before
    assert operator.metrics()["workerlab_status_writes_total"] == writes


def test_deleted_pod_is_replaced_within_5_seconds(plane, operator):
    victim = live_pods(plane, "demo")[0]["metadata"]["name"]
    plane.ok("delete", "pod", victim, "-n", NS, "--wait=false")
    deleted_at = time.monotonic()

    def replaced():
        names = {p["metadata"]["name"] for p in live_pods(plane, "demo")}
        return victim not in names and len(names) == 2

    plane.wait(replaced, 5, "replacement pod")
    assert time.monotonic() - deleted_at < 5
    assert "ReplacedPod" in plane.ok("get", "events", "-n", NS)


def test_kubectl_scale_uses_the_scale_subresource(plane, operator):
    plane.ok("scale", "wc/demo", "-n", NS, "--replicas=4")
    plane.wait(lambda: len(live_pods(plane, "demo")) == 4, 10, "4 pods")
    scale = plane.json("get", "wc", "demo", "-n", NS, "--subresource=scale")
    assert scale["spec"]["replicas"] == 4
    assert scale["status"]["selector"].startswith("app.kubernetes.io/instance=demo")
    plane.ok("scale", "wc/demo", "-n", NS, "--replicas=2")
    plane.wait(lambda: len(live_pods(plane, "demo")) == 2, 10, "2 pods")


def test_template_change_rolls_pods_within_bounds(plane, operator):
    old_hash = plane.json("get", "wc", "demo", "-n", NS)["status"]["templateHash"]
    # An env var: no running process can take it (processesPerPod would change in place).
    patch = '{"spec":{"env":[{"name":"ROLL","value":"1"}]}}'
    plane.ok("patch", "wc", "demo", "-n", NS, "--type=merge", "-p", patch)
    desired, surge = 2, 1  # 25% of 2, rounded up
    peak = 0

    def rolled():
        nonlocal peak
        pods = live_pods(plane, "demo")
        peak = max(peak, len(pods))
        hashes = {p["metadata"]["labels"]["workerlab.dev/template-hash"] for p in pods}
        return len(pods) == desired and old_hash not in hashes

    plane.wait(rolled, 20, "pods on the new template")
    assert peak <= desired + surge
    env = live_pods(plane, "demo")[0]["spec"]["containers"][0]["env"]
    assert {"name": "ROLL", "value": "1"} in env


def test_hand_edited_service_is_restored(plane, operator):
    patch = '{"spec":{"selector":{"app.kubernetes.io/instance":"someone-else"}}}'
    plane.ok("patch", "service", "demo", "-n", NS, "--type=merge", "-p", patch)

    def restored():
        selector = plane.json("get", "service", "demo", "-n", NS)["spec"]["selector"]
        return selector.get("app.kubernetes.io/instance") == "demo"

    plane.wait(restored, 5, "Service selector restored")


def test_paused_cluster_leaves_pods_alone(plane, operator):
    plane.ok("patch", "wc", "demo", "-n", NS, "--type=merge", "-p", '{"spec":{"paused":true}}')
    plane.wait(
        lambda: plane.json("get", "wc", "demo", "-n", NS)["status"]["phase"] == "Paused",
        5,
        "Paused",
    )
    plane.ok("delete", "pods", "-n", NS, "-l", "app.kubernetes.io/instance=demo", "--wait=false")
    time.sleep(3)
    assert live_pods(plane, "demo") == []
    plane.ok("patch", "wc", "demo", "-n", NS, "--type=merge", "-p", '{"spec":{"paused":false}}')
    plane.wait(lambda: len(live_pods(plane, "demo")) == 2, 10, "pods back after unpausing")


def test_operator_restarted_mid_scale_converges_without_duplicates(plane, operator):
    plane.ok("scale", "wc/demo", "-n", NS, "--replicas=6")
    plane.wait(lambda: len(live_pods(plane, "demo")) > 2, 10, "scale-up started")
    operator.stop(signal.SIGKILL)
    plane.ok("scale", "wc/demo", "-n", NS, "--replicas=5")  # changed while the operator is down
    operator.start()
    # The killed instance's peering keep-alive pauses its successor until it expires (15 s).
    plane.wait(lambda: len(live_pods(plane, "demo")) == 5, 40, "5 pods after restart")
    time.sleep(3)
    pods = live_pods(plane, "demo")
    uid = plane.json("get", "wc", "demo", "-n", NS)["metadata"]["uid"]
    assert len(pods) == 5
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == uid for p in pods)


def test_deleting_the_cluster_leaves_nothing_behind(plane, operator):
    plane.ok("delete", "wc", "demo", "-n", NS, "--timeout=20s")  # no finalizer to wait for

    def gone():
        pods = plane.json("get", "pods", "-n", NS, "-l", "app.kubernetes.io/instance=demo")["items"]
        services = plane.kubectl("get", "service", "demo", "-n", NS)
        return not pods and services.returncode != 0

    plane.wait(gone, 30, "garbage collection of pods and Service")
    assert "Traceback" not in operator.log()
