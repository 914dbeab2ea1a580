"""Cluster smoke test (issue 3): the kind cluster `make up` brought up is a working Kubernetes.

- the node(s) are Ready and `kubectl version` reports the stamped server version;
- CoreDNS resolves a Service name from inside a pod (a short-lived pod from the lab's
  worker image, admitted under Pod Security `restricted`);
- a pod started from the worker image (pulled from the lab's registry) serves HTTP through a
  NodePort Service that the host reaches on 127.0.0.1 (kind's port mapping).

Uses the shared fixtures of tests/e2e/conftest.py; without a cluster the tests FAIL with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

K8S_VERSION = os.environ.get("K8S_VERSION", "v1.34.4")
CLUSTER_NAME = os.environ.get("CLUSTER_NAME", "workerlab")

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod_manifest(
    name: str, ns: str, image: str, command: list[str] | None, **spec: Any
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": image,  # from the lab's registry
        "securityContext": RESTRICTED_CONTAINER,
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if command:
        container["command"] = command
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": RESTRICTED_POD,
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            **spec,
        },
    }


def test_nodes_ready(cluster) -> None:
    nodes = cluster.get("nodes")["items"]
    assert nodes, "the cluster has no node"
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}.get("Ready")
        assert ready == "True", f"node {node['metadata']['name']} is not Ready: {ready}"
        assert node["status"]["nodeInfo"]["kubeletVersion"] == K8S_VERSION
    print(f"\nnodes Ready: {[n['metadata']['name'] for n in nodes]}")


def test_server_version_is_stamped(cluster) -> None:
    version = json.loads(cluster.ok("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == K8S_VERSION, version["serverVersion"]
    assert version["clientVersion"]["gitVersion"] == K8S_VERSION, version["clientVersion"]


def test_kind_lists_the_cluster(cluster) -> None:
    kind = shutil.which("kind") or str(
        os.path.expanduser(os.environ.get("WORKERLAB_CACHE", "~/.cache/workerlab")) + "/bin/kind"
    )
    clusters = subprocess.run(
        [kind, "get", "clusters"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()
    assert CLUSTER_NAME in clusters, clusters


def test_coredns_resolves_a_service_name(cluster, namespace, wait_for, worker_image) -> None:
    ns = namespace("e2e-addons-smoke")
    want = cluster.get("service", "kubernetes", "-n", "default")["spec"]["clusterIP"]
    script = "import socket; print(socket.gethostbyname('kubernetes.default.svc.cluster.local'))"
    cluster.apply(
        pod_manifest("dns-probe", ns, worker_image, ["python", "-c", script], restartPolicy="Never")
    )

    def finished() -> str | None:
        phase = cluster.get("pod", "dns-probe", "-n", ns)["status"].get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    started = time.monotonic()
    phase = wait_for(finished, 90, "the DNS probe pod to finish")
    logs = cluster.ok("logs", "dns-probe", "-n", ns).strip()
    print(
        f"\nkubernetes.default.svc.cluster.local -> {logs} (Service IP {want}), "
        f"pod done in {time.monotonic() - started:.1f}s"
    )
    assert phase == "Succeeded", f"DNS probe pod {phase}: {logs}"
    assert logs == want


def test_the_registrys_image_serves_http_through_a_node_port(
    cluster, namespace, node_port_service, wait_for, worker_image
):
    ns = namespace("e2e-addons-smoke")
    env = [{"name": "WORKER_PROCESSES", "value": "1"}, {"name": "PORT", "value": "8000"}]
    cluster.apply(
        pod_manifest(
            "http",
            ns,
            worker_image,
            None,
            container={
                "env": env,
                "ports": [{"containerPort": 8000}],
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": 8000},
                    "periodSeconds": 1,
                },
            },
        )
    )
    port = node_port_service(ns, "smoke-http", {"app": "http"})
    cluster.ok("wait", "--for=condition=Ready", "pod/http", "-n", ns, "--timeout=90s", timeout=100)
    url = f"http://127.0.0.1:{port}/"

    def answer() -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=3) as response:
            return json.loads(response.read())

    started = time.monotonic()
    body = wait_for(answer, 30, f"{url} to answer")
    print(f"\n{url} -> {body} ({time.monotonic() - started:.1f}s after Ready)")
    assert body["pod"] == "http", body
