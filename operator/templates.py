"""Manifests the operator owns (Pod, Service, Ingress, NetworkPolicy), built from a WorkerCluster.
Pure.

The template hash is computed over the pod template as it will be sent, but for what a running
pod takes in place (inplace.py): the process count (an annotation its arbiter follows) and the
CPU/memory amounts (the resize subresource), of which only the QoS class counts. So a change
of image, env, probes or extras rolls the pods; processesPerPod and resources change them in
place; replicas, service, ingress and paused touch no pod. The image is the resolved one
(`WorkerCluster.image`): a new operator default rolls the pods that follow it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from workerlab.api.resource import (
    ANNOTATION_PROCESSES,
    APP_NAME,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_TEMPLATE_HASH,
    MANAGER,
)
from workerlab.operator.images import WorkerImage
from workerlab.operator.inplace import qos_class
from workerlab.operator.model import ObservedPod, WorkerCluster, WorkerClusterSpec

WORKER_UID = 10001
STATE_DIR = "/tmp/workerlab"
# The downward API file with the pod's ANNOTATION_PROCESSES: the arbiter follows it.
PROCESSES_DIR = "/etc/workerlab"
PROCESSES_FILE = f"{PROCESSES_DIR}/processes"
CONTAINER_NAME = "worker"
PORT_NAME = "http"
# Extra grace after preStop + the worker's own graceful timeout, so the kubelet's SIGKILL only
# ever hits a worker that ignored its deadline.
GRACE_MARGIN_SECONDS = 5


def owned_labels(cluster: WorkerCluster) -> dict[str, str]:
    return {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: cluster.name,
        LABEL_MANAGED_BY: MANAGER,
        LABEL_COMPONENT: "worker",
    }


def default_spread(name: str) -> list[dict[str, Any]]:
    """One node's loss should cost as few of a WorkerCluster's pods as possible: spread them over
    nodes, at most one apart, each template revision on its own (matchLabelKeys: a rollout's new
    pods spread among themselves). ScheduleAnyway: on one node, or with a node full, pods still
    run, where DoNotSchedule would leave them Pending."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "nodeTaintsPolicy": "Honor",  # a node the pods cannot go to is no domain to fill
            "labelSelector": {"matchLabels": {LABEL_INSTANCE: name}},
            "matchLabelKeys": [LABEL_TEMPLATE_HASH],
        }
    ]


def desired_resources(spec: WorkerClusterSpec) -> dict[str, Any]:
    return copy.deepcopy(spec.resources) or default_resources(spec)


def default_resources(spec: WorkerClusterSpec) -> dict[str, Any]:
    """Sized by process count: every uvicorn process is a full Python interpreter.

    The CPU request is what an HPA's utilisation is a percentage of (lab 11), so it stays even
    without a CPU limit; 50m keeps six demo pods plus the control plane on one 2-core kind node.
    """
    n = spec.processes_per_pod
    return {
        "requests": {"cpu": "50m", "memory": f"{48 + 40 * n}Mi"},
        "limits": {"memory": f"{128 + 96 * n}Mi"},
    }


def termination_grace_seconds(spec: WorkerClusterSpec) -> int:
    return spec.pre_stop_sleep_seconds + spec.graceful_timeout_seconds + GRACE_MARGIN_SECONDS


def _env(spec: WorkerClusterSpec) -> list[dict[str, Any]]:
    own: list[dict[str, Any]] = [
        {"name": "WORKER_PROCESSES_FILE", "value": PROCESSES_FILE},
        {"name": "PORT", "value": str(spec.port)},
        {"name": "BALANCE", "value": spec.balance},
        {"name": "WORKERLAB_LAB_MODE", "value": "true" if spec.lab_mode else "false"},
        {"name": "WORKERLAB_STATE_DIR", "value": STATE_DIR},
        {"name": "GRACEFUL_TIMEOUT", "value": str(spec.graceful_timeout_seconds)},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    return own + [copy.deepcopy(e) for e in spec.env]


def _container(spec: WorkerClusterSpec, image: WorkerImage) -> dict[str, Any]:
    def http_get(path: str) -> dict[str, Any]:
        return {"path": path, "port": PORT_NAME, "scheme": "HTTP"}

    return {
        "name": CONTAINER_NAME,
        "image": image.reference,
        "imagePullPolicy": image.pull_policy,
        "ports": [{"name": PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
        "env": _env(spec),
        "resources": desired_resources(spec),
        # Startup gives gunicorn time to fork every process before liveness can kill it.
        "startupProbe": {
            "httpGet": http_get("/healthz"),
            "periodSeconds": 1,
            "timeoutSeconds": 2,
            "failureThreshold": 60,
        },
        "readinessProbe": {
            "httpGet": http_get("/readyz"),
            "periodSeconds": 2,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": http_get("/healthz"),
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        # The endpoint is removed as soon as the pod is terminating, but kube-proxy and ingress
        # controllers learn it a moment later: keep serving while they catch up, then SIGTERM.
        "lifecycle": {"preStop": {"sleep": {"seconds": spec.pre_stop_sleep_seconds}}},
        # On a crash the last log lines become the termination message, which ends up in the
        # WorkerCluster's Degraded condition.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": WORKER_UID,
            "runAsGroup": WORKER_UID,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "told", "mountPath": PROCESSES_DIR, "readOnly": True},
        ],
    }


def pod_template(cluster: WorkerCluster) -> dict[str, Any]:
    """The pod template without the hash label (the hash is computed over this)."""
    spec = cluster.spec
    extras = spec.pod_template
    image = cluster.image
    pod_spec: dict[str, Any] = {
        "containers": [_container(spec, image)],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": termination_grace_seconds(spec),
        # The worker never talks to the API server; no token, no service-link env noise.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": WORKER_UID,
            "runAsGroup": WORKER_UID,
            "fsGroup": WORKER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            {
                "name": "told",
                "downwardAPI": {
                    "items": [
                        {
                            "path": "processes",
                            "fieldRef": {
                                "fieldPath": f"metadata.annotations['{ANNOTATION_PROCESSES}']"
                            },
                        }
                    ]
                },
            },
        ],
    }
    if image.pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in image.pull_secrets]
    if extras.node_selector:
        pod_spec["nodeSelector"] = dict(extras.node_selector)
    if extras.tolerations:
        pod_spec["tolerations"] = copy.deepcopy(extras.tolerations)
    if extras.affinity:
        pod_spec["affinity"] = copy.deepcopy(extras.affinity)
    spread = extras.topology_spread_constraints
    if spread is None:
        pod_spec["topologySpreadConstraints"] = default_spread(cluster.name)
    elif spread:
        pod_spec["topologySpreadConstraints"] = copy.deepcopy(spread)
    labels = {**extras.labels, **owned_labels(cluster)}
    annotations = {**extras.annotations, ANNOTATION_PROCESSES: str(spec.processes_per_pod)}
    metadata: dict[str, Any] = {"labels": labels, "annotations": annotations}
    return {"metadata": metadata, "spec": pod_spec}


def hashed_template(cluster: WorkerCluster) -> dict[str, Any]:
    """The pod template without what a running pod takes in place (inplace.py)."""
    template = pod_template(cluster)
    del template["metadata"]["annotations"][ANNOTATION_PROCESSES]
    for container in template["spec"]["containers"]:
        container["resources"] = {"qosClass": qos_class(container["resources"])}
    return template


def template_hash(cluster: WorkerCluster) -> str:
    canonical = json.dumps(hashed_template(cluster), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def keep_off(pod_spec: dict[str, Any], nodes: tuple[str, ...]) -> None:
    """Require a node other than `nodes` (lost ones), within each of the spec's own required
    node terms (the terms are ORed, so each one gets the condition). By the Node's name
    (`matchFields`), not its hostname label, which need not equal it outside kind."""
    if not nodes:
        return
    rule = {"key": "metadata.name", "operator": "NotIn", "values": list(nodes)}
    affinity = pod_spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    required = affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = required.setdefault("nodeSelectorTerms", [])
    if not terms:
        terms.append({})
    for term in terms:
        term.setdefault("matchFields", []).append(rule)


def build_pod(cluster: WorkerCluster, avoid_nodes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The pod to create; `avoid_nodes` (lost nodes) is a constraint of this pod alone, not of
    the template: the template hash, and so the pods' generation, stay as they are."""
    template = pod_template(cluster)
    digest = template_hash(cluster)
    keep_off(template["spec"], avoid_nodes)
    metadata = template["metadata"]
    metadata["labels"][LABEL_TEMPLATE_HASH] = digest
    # The API server appends 5 random characters; the hash in the name shows the generation.
    metadata["generateName"] = f"{cluster.name}-{digest[:5]}-"
    metadata["namespace"] = cluster.namespace
    metadata["ownerReferences"] = [cluster.owner_reference()]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def roll_reason(cluster: WorkerCluster, outdated: list[ObservedPod]) -> str | None:
    """Why pods of an older template are replaced rather than changed in place (for an Event),
    from one of them; None when they only refused in place (they get a warning of their own)."""
    current = template_hash(cluster)
    pod = next((p for p in outdated if p.template_hash != current), None)
    if pod is None:
        return None
    changed = []
    if pod.image and pod.image != cluster.image.reference:
        changed.append(f"image {pod.image} → {cluster.image.reference}")
    before, after = qos_class(pod.resources), qos_class(desired_resources(cluster.spec))
    if pod.resources and before != after:
        changed.append(f"QoS class {before} → {after}")
    what = "; ".join(changed) or "the pod template (env, port, balance, probes or podTemplate)"
    return f"rolling update to template {current}: {what} cannot change in a running pod"
