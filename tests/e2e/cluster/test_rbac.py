"""The operator's RBAC on the live cluster, asked with `kubectl auth can-i --as` its service
account: it can do what it uses and nothing else (no Secrets, no escalation, no unrelated
resources)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

OPERATOR_SA = "system:serviceaccount:workerlab-system:workerlab-operator"

# (verb, resource, namespace or None for cluster-wide / all namespaces)
ALLOWED = [
    ("create", "pods", "workerlab"),
    ("delete", "pods", "workerlab"),
    ("watch", "pods", None),
    ("get", "pods/proxy", "workerlab"),
    ("create", "services", "workerlab"),
    ("update", "services", "workerlab"),
    ("create", "ingresses.networking.k8s.io", "workerlab"),
    ("delete", "ingresses.networking.k8s.io", "workerlab"),
    ("create", "networkpolicies.networking.k8s.io", "workerlab"),
    ("update", "networkpolicies.networking.k8s.io", "workerlab"),
    ("create", "events", "workerlab"),
    ("watch", "workerclusters.workerlab.dev", None),
    ("patch", "workerclusters.workerlab.dev", "workerlab"),
    ("patch", "workerclusters.workerlab.dev/status", "workerlab"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("patch", "clusterkopfpeerings.kopf.dev", None),
]

DENIED = [
    ("get", "secrets", "workerlab"),
    ("list", "secrets", None),
    ("get", "secrets", "kube-system"),
    ("get", "configmaps", "kube-system"),
    ("create", "deployments.apps", "workerlab"),
    ("delete", "deployments.apps", "workerlab-system"),
    ("create", "pods/exec", "workerlab"),
    ("get", "pods/log", "workerlab"),
    ("create", "pods/eviction", "workerlab"),
    ("update", "workerclusters.workerlab.dev/status", "workerlab"),
    ("update", "pods", "workerlab"),
    ("delete", "services", "kube-system"),
    ("delete", "workerclusters.workerlab.dev", "workerlab"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("delete", "namespaces", None),
    ("create", "clusterroles.rbac.authorization.k8s.io", None),
    ("create", "rolebindings.rbac.authorization.k8s.io", "workerlab"),
    ("bind", "clusterroles.rbac.authorization.k8s.io", None),
    ("escalate", "roles.rbac.authorization.k8s.io", "workerlab"),
    ("impersonate", "serviceaccounts", None),
    ("create", "serviceaccounts/token", "workerlab-system"),
    ("create", "nodes", None),
]


def can_i(kube, verb: str, resource: str, namespace: str | None) -> bool:
    scope = ["-n", namespace] if namespace else ["--all-namespaces"]
    # can-i reads "pods/exec" as TYPE/NAME (a pod named exec): subresources go in a flag.
    resource, _, sub = resource.partition("/")
    subresource = [f"--subresource={sub}"] if sub else []
    result = kube.run("auth", "can-i", verb, resource, *subresource, *scope, f"--as={OPERATOR_SA}")
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"can-i {verb} {resource}: {result.stderr.strip()}"
    return answer == "yes"


def ids(cases):
    return [f"{verb}-{resource.split('.')[0]}-{ns or 'all'}" for verb, resource, ns in cases]


@pytest.mark.parametrize(("verb", "resource", "namespace"), ALLOWED, ids=ids(ALLOWED))
def test_operator_can_do_what_it_uses(cluster, verb, resource, namespace):
    assert can_i(cluster, verb, resource, namespace)


@pytest.mark.parametrize(("verb", "resource", "namespace"), DENIED, ids=ids(DENIED))
def test_operator_cannot_do_anything_else(cluster, verb, resource, namespace):
    assert not can_i(cluster, verb, resource, namespace)
