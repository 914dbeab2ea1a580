"""Manifests the operator owns (Pod, Service, Ingress, NetworkPolicy), built from a WorkerCluster.
Pure.

The template hash is computed over the pod template exactly as it will be sent, so any change
that alters a pod (image, env, processesPerPod, resources, probes, extras) rolls the pods, and
anything that does not (replicas, service, ingress, paused) does not. The image is the resolved
one (`WorkerCluster.image`): a new operator default rolls the pods that follow it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from workerlab.api.resource import (
    APP_NAME,
    INGRESS_NAMESPACE,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_TEMPLATE_HASH,
    MANAGER,
)
from workerlab.operator.images import WorkerImage
from workerlab.operator.model import WorkerCluster, WorkerClusterSpec

WORKER_UID = 10001
STATE_DIR = "/tmp/workerlab"
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
        {"name": "WORKER_PROCESSES", "value": str(spec.processes_per_pod)},
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
        "resources": copy.deepcopy(spec.resources) or default_resources(spec),
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
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
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
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
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
    metadata: dict[str, Any] = {"labels": labels}
    if extras.annotations:
        metadata["annotations"] = dict(extras.annotations)
    return {"metadata": metadata, "spec": pod_spec}


def template_hash(cluster: WorkerCluster) -> str:
    canonical = json.dumps(pod_template(cluster), sort_keys=True, separators=(",", ":"))
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


def _object_meta(cluster: WorkerCluster) -> dict[str, Any]:
    labels = owned_labels(cluster)
    labels[LABEL_COMPONENT] = "endpoint"
    return {
        "name": cluster.name,
        "namespace": cluster.namespace,
        "labels": labels,
        "ownerReferences": [cluster.owner_reference()],
    }


def build_service(cluster: WorkerCluster) -> dict[str, Any]:
    service = cluster.spec.service
    port: dict[str, Any] = {
        "name": PORT_NAME,
        "port": service.port,
        "targetPort": PORT_NAME,
        "protocol": "TCP",
    }
    if service.type == "NodePort" and service.node_port:
        port["nodePort"] = service.node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _object_meta(cluster),
        "spec": {"type": service.type, "selector": dict(cluster.selector), "ports": [port]},
    }


def build_ingress(cluster: WorkerCluster) -> dict[str, Any] | None:
    ingress = cluster.spec.ingress
    if not ingress.enabled:
        return None
    backend = {"service": {"name": cluster.name, "port": {"name": PORT_NAME}}}
    rule = {
        "host": ingress.host,
        "http": {"paths": [{"path": ingress.path, "pathType": "Prefix", "backend": backend}]},
    }
    spec: dict[str, Any] = {"rules": [rule]}
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _object_meta(cluster),
        "spec": spec,
    }


# The label the API server puts on every namespace: a namespace selector by name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def build_network_policy(cluster: WorkerCluster) -> dict[str, Any] | None:
    """Ingress to the worker port from this namespace's pods, the Ingress controller's namespace
    and what the spec lists; nothing else. Egress is left alone (Redis, DNS...)."""
    policy = cluster.spec.network_policy
    if not policy.enabled:
        return None
    namespaces = sorted({INGRESS_NAMESPACE, *policy.allowed_namespaces} - {cluster.namespace})
    peers: list[dict[str, Any]] = [{"podSelector": {}}]  # no namespaceSelector: this namespace
    if namespaces:
        expression = {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": namespaces}
        peers.append({"namespaceSelector": {"matchExpressions": [expression]}})
    peers += [{"ipBlock": {"cidr": cidr}} for cidr in policy.allowed_cidrs]
    port = {"protocol": "TCP", "port": cluster.spec.port}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _object_meta(cluster),
        "spec": {
            "podSelector": {"matchLabels": dict(cluster.selector)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [port]}],
        },
    }


def _metadata_drifted(desired: dict[str, Any], actual: dict[str, Any]) -> bool:
    labels = actual["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in desired["metadata"]["labels"].items()):
        return True
    owner_uid = desired["metadata"]["ownerReferences"][0]["uid"]
    return not any(
        ref.get("uid") == owner_uid and ref.get("controller")
        for ref in actual["metadata"].get("ownerReferences") or []
    )


def _merge_metadata(desired: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """Keep what others put on the object (their labels, resourceVersion), restore ours."""
    merged = copy.deepcopy(actual)
    meta = merged["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), **desired["metadata"]["labels"]}
    owner_uid = desired["metadata"]["ownerReferences"][0]["uid"]
    others = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != owner_uid]
    meta["ownerReferences"] = [*others, *desired["metadata"]["ownerReferences"]]
    for key in ("managedFields", "creationTimestamp", "generation"):
        meta.pop(key, None)
    merged.pop("status", None)
    return merged


def service_update(desired: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any] | None:
    """The body to PUT when the live Service drifted from the desired one; None when in sync.

    Compares only the fields we own, so the API server's own additions (clusterIP, an
    allocated nodePort, ipFamilies...) never count as drift and never cause a write.
    """
    want, have = desired["spec"], actual.get("spec") or {}
    want_port = want["ports"][0]
    have_ports = have.get("ports") or []
    have_port = have_ports[0] if len(have_ports) == 1 else {}
    port_keys = ("name", "port", "targetPort", "protocol")
    drifted = (
        have.get("type") != want["type"]
        or have.get("selector") != want["selector"]
        or any(have_port.get(k) != want_port.get(k) for k in port_keys)
        or ("nodePort" in want_port and have_port.get("nodePort") != want_port["nodePort"])
        or _metadata_drifted(desired, actual)
    )
    if not drifted:
        return None
    merged = _merge_metadata(desired, actual)
    port = dict(want_port)
    # Keep an allocated nodePort when the user did not ask for a specific one (no churn).
    if want["type"] == "NodePort" and "nodePort" not in port and have_port.get("nodePort"):
        port["nodePort"] = have_port["nodePort"]
    merged["spec"]["type"] = want["type"]
    merged["spec"]["selector"] = dict(want["selector"])
    merged["spec"]["ports"] = [port]
    if want["type"] == "ClusterIP":
        merged["spec"].pop("externalTrafficPolicy", None)
    return merged


def ingress_update(desired: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any] | None:
    """Same contract as service_update, for the Ingress.

    Without `spec.ingress.className` we want the cluster's default class: the API server's
    DefaultIngressClass admission writes it into `ingressClassName` at creation, so whatever
    class it filled in is in sync, and an update keeps it (removing it would leave the Ingress
    to no controller).
    """
    have = actual.get("spec") or {}
    want = desired["spec"]
    class_drifted = (
        "ingressClassName" in want and have.get("ingressClassName") != want["ingressClassName"]
    )
    drifted = (
        have.get("rules") != want["rules"] or class_drifted or _metadata_drifted(desired, actual)
    )
    if not drifted:
        return None
    merged = _merge_metadata(desired, actual)
    merged["spec"] = copy.deepcopy(want)
    if "ingressClassName" not in want and have.get("ingressClassName"):
        merged["spec"]["ingressClassName"] = have["ingressClassName"]
    return merged


def network_policy_update(desired: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any] | None:
    """Same contract as service_update, for the NetworkPolicy (we own its whole spec)."""
    if actual.get("spec") == desired["spec"] and not _metadata_drifted(desired, actual):
        return None
    merged = _merge_metadata(desired, actual)
    merged["spec"] = copy.deepcopy(desired["spec"])
    return merged
