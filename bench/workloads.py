"""The two sides of the comparison: a WorkerCluster and a Deployment with the same pod template.

The Deployment's pod template is built by the operator's own `pod_template()` from the very
WorkerCluster it is compared with; only two label values differ (managed-by and instance), so
the operator never mistakes the Deployment's pods for its own.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from common import NAMESPACE

from workerlab.api.resource import API_VERSION, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, PLURAL
from workerlab.operator.model import WorkerCluster
from workerlab.operator.templates import pod_template

ROLL_ENV = "BENCH_ROLL"  # changing its value is "a template change" on both sides
GROUP_LABEL = "workerlab-bench/group"


def bench_resources(processes: int) -> dict[str, Any]:
    """The operator's default sizing, with a 10m CPU request instead of 50m: the single-node
    cluster is shared with e2e runs, and 20-30 bench pods at 50m do not fit beside them."""
    return {
        "requests": {"cpu": "10m", "memory": f"{48 + 40 * processes}Mi"},
        "limits": {"memory": f"{128 + 96 * processes}Mi"},
    }


def cluster_body(
    name: str, replicas: int, processes: int = 2, node_port: int | None = None, roll: str = "0"
) -> dict[str, Any]:
    service: dict[str, Any] = {"type": "ClusterIP"}
    if node_port:
        service = {"type": "NodePort", "nodePort": node_port}
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkerCluster",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "processesPerPod": processes,
            "resources": bench_resources(processes),
            "env": [{"name": ROLL_ENV, "value": roll}],
            "service": service,
            "podTemplate": {"labels": {GROUP_LABEL: "bench"}},
            "updateStrategy": {"maxSurge": "25%", "maxUnavailable": 0},
        },
    }


def deployment_template(cluster: dict[str, Any], name: str) -> dict[str, Any]:
    template = pod_template(WorkerCluster.from_body(copy.deepcopy(cluster)))
    labels = template["metadata"]["labels"]
    labels[LABEL_MANAGED_BY] = "bench-deployment"
    labels[LABEL_INSTANCE] = name
    return template


def deployment_body(name: str, cluster: dict[str, Any]) -> dict[str, Any]:
    replicas = cluster["spec"]["replicas"]
    selector = {LABEL_NAME: "workerlab-worker", LABEL_INSTANCE: name}
    strategy = cluster["spec"]["updateStrategy"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": dict(strategy)},
            "template": deployment_template(cluster, name),
        },
    }


def node_port_service(name: str, node_port: int) -> dict[str, Any]:
    """For the Deployment: what the operator builds for a WorkerCluster with a NodePort."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": "NodePort",
            "selector": {LABEL_NAME: "workerlab-worker", LABEL_INSTANCE: name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": node_port}],
        },
    }


@dataclass(frozen=True)
class Side:
    """One side of the A/B comparison, with the API paths it is driven through."""

    kind: str  # "WorkerCluster" or "Deployment"
    name: str

    @property
    def path(self) -> str:
        if self.kind == "WorkerCluster":
            return f"/apis/{API_VERSION}/namespaces/{NAMESPACE}/{PLURAL}/{self.name}"
        return f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{self.name}"

    @property
    def collection(self) -> str:
        return self.path.rsplit("/", 1)[0]

    def body(self, replicas: int, processes: int = 2, node_port: int | None = None) -> dict:
        cluster = cluster_body(self.name, replicas, processes, node_port)
        if self.kind == "WorkerCluster":
            return cluster
        return deployment_body(self.name, cluster)

    def roll_patch(self, value: str, replicas: int, processes: int = 2) -> dict[str, Any]:
        """A merge patch changing BENCH_ROLL: a new pod template on either side."""
        if self.kind == "WorkerCluster":
            return {"spec": {"env": [{"name": ROLL_ENV, "value": value}]}}
        cluster = cluster_body(self.name, replicas, processes, roll=value)
        containers = deployment_template(cluster, self.name)["spec"]["containers"]
        return {"spec": {"template": {"spec": {"containers": containers}}}}
