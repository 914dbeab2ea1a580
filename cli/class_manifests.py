"""`workerlab class`: the objects a learner gets (their namespace; in it a ResourceQuota and a
LimitRange from the class settings, a ServiceAccount, its Role and RoleBinding, the progress
ConfigMap). Pure."""

from __future__ import annotations

from typing import Any

from workerlab.api.resource import (
    GROUP,
    LABEL_LEARNER,
    LABEL_NAME,
    LEARNER_OBJECTS,
    PLURAL,
    PROGRESS_CONFIGMAP,
    VERIFIED_CONFIGMAP,
)
from workerlab.cli.class_names import namespace_of
from workerlab.cli.class_settings import ClassSettings, built_in_layer, merge

# Exactly what the namespaced labs (4, 5, 7, 9's cluster part) and `workerlab status|load|chaos`
# call; nothing cluster-scoped, no Secrets, no exec, no pod creation outside the operator.
ROLE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [GROUP],
        "resources": [PLURAL],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get"]},
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/scale"], "verbs": ["get", "update", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    # GET /processes, POST /crash (lab mode) through the API server's pod proxy
    {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["services", "endpoints"], "verbs": ["get", "list", "watch"]},
    # `workerlab load wc/NAME` without a NodePort: the API server's service proxy
    {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get", "create"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list"]},
    {
        "apiGroups": ["", "events.k8s.io"],
        "resources": ["events"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["resourcequotas", "limitranges"], "verbs": ["get", "list"]},
    # lab 11: an HPA on their own demo, fed by metrics-server (`kubectl top pods`)
    {
        "apiGroups": ["autoscaling"],
        "resources": ["horizontalpodautoscalers"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
    # progress: only the one ConfigMap `class add` created (create cannot be limited by name)
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": [PROGRESS_CONFIGMAP],
        "verbs": ["update", "patch"],
    },
]


def _meta(name: str, learner: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {LABEL_NAME: "workerlab", LABEL_LEARNER: learner},
    }
    if namespace:
        meta["namespace"] = namespace
    return meta


def learner_namespace(name: str) -> dict[str, Any]:
    meta = _meta(namespace_of(name), name)
    meta["labels"].update(
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        }
    )
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def learner_objects(name: str, settings: ClassSettings | None = None) -> list[dict[str, Any]]:
    """What lives in the learner's namespace (created after the namespace itself); quota and
    limit range from `settings` (default: the built-in defaults)."""
    settings = settings or merge([built_in_layer()])
    ns = namespace_of(name)
    return [
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _meta(LEARNER_OBJECTS, name, ns),
            "spec": {"hard": dict(settings.quota)},
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _meta(LEARNER_OBJECTS, name, ns),
            "spec": {"limits": [settings.limit_range_item()]},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(LEARNER_OBJECTS, name, ns),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(LEARNER_OBJECTS, name, ns),
            "rules": ROLE_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(LEARNER_OBJECTS, name, ns),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": LEARNER_OBJECTS,
            },
            "subjects": [{"kind": "ServiceAccount", "name": LEARNER_OBJECTS, "namespace": ns}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(PROGRESS_CONFIGMAP, name, ns),
            "data": {},
        },
    ]


def verified_configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    """The instructor's verifications in the learner's namespace (their Role may only read it)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(VERIFIED_CONFIGMAP, name, namespace_of(name)),
        "data": data,
    }
