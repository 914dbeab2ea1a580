"""The objects in front of a WorkerCluster's pods (Service, Ingress, NetworkPolicy): what the
operator wants them to be, and the update that brings an existing one there. Pure."""

from __future__ import annotations

import copy
from typing import Any

from workerlab.api.resource import INGRESS_NAMESPACE, LABEL_COMPONENT
from workerlab.operator.model import WorkerCluster
from workerlab.operator.templates import PORT_NAME, owned_labels


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
