"""Static checks of manifests/: valid YAML, a well-described CRD, least-privilege RBAC."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from support.paths import REPO

from workerlab.api.resource import (
    ENV_WORKER_IMAGE,
    ENV_WORKER_IMAGE_PULL_POLICY,
    ENV_WORKER_IMAGE_PULL_SECRETS,
)
from workerlab.operator.images import (
    FALLBACK_IMAGE,
    IMAGE_PATTERN,
    default_worker_image,
    is_image_reference,
)
from workerlab.operator.model import BALANCE_MODES, DEFAULT_BALANCE, RESERVED_ENV

MANIFESTS = REPO / "manifests"
OWNED_DIRS = ("crd", "rbac", "operator", "samples")


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def all_files():
    return sorted(p for d in OWNED_DIRS for p in (MANIFESTS / d).glob("*.yaml"))


@pytest.mark.parametrize("path", all_files(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_yaml_parses(path):
    assert documents(path)


def test_kustomizations_list_existing_files_and_exclude_samples():
    root = documents(MANIFESTS / "kustomization.yaml")[0]
    assert root["resources"] == ["crd", "rbac", "operator"]
    for folder in root["resources"]:
        kust = documents(MANIFESTS / folder / "kustomization.yaml")[0]
        for resource in kust["resources"]:
            assert (MANIFESTS / folder / resource).is_file()


def crd():
    return documents(MANIFESTS / "crd" / "workerclusters.workerlab.dev.yaml")[0]


def walk(schema, path="$"):
    yield path, schema
    for name, child in (schema.get("properties") or {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def test_crd_names_subresources_and_columns():
    doc = crd()
    spec = doc["spec"]
    assert (spec["group"], spec["scope"]) == ("workerlab.dev", "Namespaced")
    assert spec["names"]["kind"] == "WorkerCluster" and spec["names"]["shortNames"] == ["wc"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1"
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert "status" in version["subresources"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    for wanted in ("Desired", "Ready", "Processes", "Phase", "Age"):
        assert wanted in columns
    (image,) = [c for c in version["additionalPrinterColumns"] if c["name"] == "Image"]
    assert (image["jsonPath"], image["priority"]) == (".status.image", 1)  # kubectl get -o wide


def test_every_schema_field_is_described():
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    missing = [
        path
        for path, node in walk(schema)
        if path not in ("$.metadata",) and not node.get("description")
    ]
    assert missing == []


def test_status_is_declared_without_kopf_escape_hatch():
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    status = schema["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    for field in (
        "observedGeneration",
        "replicas",
        "readyReplicas",
        "updatedReplicas",
        "availableReplicas",
        "readyProcesses",
        "selector",
        "image",
        "phase",
        "conditions",
        "pods",
    ):
        assert field in status["properties"]
    assert "rollout" in status["properties"]["image"]["description"]


def test_spec_bounds_and_defaults():
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    props = schema["properties"]["spec"]["properties"]
    assert (props["replicas"]["minimum"], props["replicas"]["default"]) == (0, 2)
    ppp = props["processesPerPod"]
    assert (ppp["minimum"], ppp["maximum"], ppp["default"]) == (1, 64, 2)
    assert props["service"]["properties"]["type"]["enum"] == ["ClusterIP", "NodePort"]
    assert props["updateStrategy"]["properties"]["maxSurge"]["default"] == "25%"
    assert props["updateStrategy"]["properties"]["maxUnavailable"]["default"] == 0
    assert props["balance"]["enum"] == list(BALANCE_MODES)
    assert props["balance"]["default"] == DEFAULT_BALANCE


def test_crd_rejects_every_reserved_env_name_in_spec_env():
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    env = schema["properties"]["spec"]["properties"]["env"]
    (rule,) = env["x-kubernetes-validations"]
    listed = re.search(r"in \[(.*)\]", rule["rule"]).group(1)
    assert sorted(n.strip(" '") for n in listed.split(",")) == sorted(RESERVED_ENV)
    assert all(name in rule["message"] and name in env["description"] for name in RESERVED_ENV)


VALID_IMAGES = [
    "workerlab/worker:dev",
    "busybox",
    "python:3.11-slim",
    "registry.example:5000/a/b:1.2",
    "localhost:5000/worker",
    "docker.io/library/nginx:1.27.0",
    "ghcr.io/some-org/some_repo/worker__x:v1.0.0-rc.1",
    "example.invalid/none:1",
    "busybox@sha256:" + "a" * 64,
    "registry.example/a/b:1.2@sha256:" + "0123456789abcdef" * 4,
]
INVALID_IMAGES = [
    "Not A Valid/Image:!!",
    "worker:",
    "Worker/UPPER:dev",
    "a//b",
    "a/b:tag:again",
    "-leading/dash",
    "busybox@sha256:short",
    "busybox:" + "t" * 129,
    " workerlab/worker:dev",
]


def test_image_pattern_accepts_references_and_rejects_nonsense():
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    image = schema["properties"]["spec"]["properties"]["image"]
    # the API server searches with the pattern as written (unanchored, so it anchors itself)
    pattern = re.compile(image["pattern"])
    for valid in VALID_IMAGES:
        assert pattern.search(valid), valid
        assert is_image_reference(valid), valid  # the operator's setting accepts the same
    for invalid in INVALID_IMAGES:
        assert not pattern.search(invalid), invalid
        assert not is_image_reference(invalid), invalid
    assert image["pattern"] == IMAGE_PATTERN
    assert image["maxLength"] == 512 and not is_image_reference("a" * 513)


def test_image_and_pull_policy_have_no_schema_default():
    # The default is the operator's setting: a default here would be stored in every object
    # and pin it, so a new operator default would never reach it.
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    props = schema["properties"]["spec"]["properties"]
    assert "default" not in props["image"] and "default" not in props["imagePullPolicy"]
    assert FALLBACK_IMAGE not in props["image"]["description"]
    assert "--worker-image" in props["image"]["description"]
    assert "IfNotPresent" in props["imagePullPolicy"]["description"]


def rules():
    return [r for d in documents(MANIFESTS / "rbac" / "cluster-role.yaml") for r in d["rules"]]


def test_rbac_is_least_privilege():
    granted = {(g, res) for r in rules() for g in r["apiGroups"] for res in r["resources"]}
    assert not any(res in ("secrets", "configmaps", "*") for _, res in granted)
    assert not any("*" in r["verbs"] for r in rules())
    by_resource = {res: set(r["verbs"]) for r in rules() for res in r["resources"]}
    # patch: the annotation that tells a pod's arbiter its count (in place)
    assert by_resource["pods"] == {"get", "list", "watch", "create", "delete", "patch"}
    assert by_resource["pods/proxy"] == {"get"}
    assert by_resource["pods/resize"] == {"patch"}  # CPU and memory in place
    assert by_resource["events"] == {"create"}
    assert "clusterkopfpeerings" in by_resource


def test_operator_deployment_is_single_recreate_and_restricted():
    docs = documents(MANIFESTS / "operator" / "deployment.yaml")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    (container,) = spec["template"]["spec"]["containers"]
    assert is_image_reference(container["image"]) and container["imagePullPolicy"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert "--all-namespaces" in container["args"]


def test_operator_deployment_configures_a_valid_default_worker_image():
    docs = documents(MANIFESTS / "operator" / "deployment.yaml")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    # The operator refuses to start on a bad setting: the manifests must pass its own check.
    image = default_worker_image(
        env.get(ENV_WORKER_IMAGE),
        env.get(ENV_WORKER_IMAGE_PULL_POLICY),
        (env.get(ENV_WORKER_IMAGE_PULL_SECRETS) or "").split(","),
    )
    assert ENV_WORKER_IMAGE in env and image.reference != FALLBACK_IMAGE


def test_lab_namespace_enforces_restricted_pod_security():
    docs = documents(MANIFESTS / "operator" / "namespaces.yaml")
    namespaces = {d["metadata"]["name"]: d for d in docs}
    for name in ("workerlab", "workerlab-system"):
        labels = namespaces[name]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_demo_sample():
    (demo,) = documents(MANIFESTS / "samples" / "demo.yaml")
    assert demo["metadata"] == {"name": "demo", "namespace": "workerlab"}
    spec = demo["spec"]
    assert (spec["replicas"], spec["processesPerPod"], spec["labMode"]) == (2, 2, True)
    assert spec["service"] == {"type": "NodePort", "nodePort": 30080}


def test_traefik_is_the_default_ingress_class_the_crd_promises():
    (ingress_class,) = documents(MANIFESTS / "addons" / "ingress" / "ingressclass.yaml")
    annotations = ingress_class["metadata"].get("annotations") or {}
    assert annotations.get("ingressclass.kubernetes.io/is-default-class") == "true"
    args = " ".join(
        " ".join(c.get("args") or [])
        for d in documents(MANIFESTS / "addons" / "ingress" / "deployment.yaml")
        if d.get("kind") == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    )
    assert f"--providers.kubernetesingress.ingressClass={ingress_class['metadata']['name']}" in args
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    class_name = schema["properties"]["spec"]["properties"]["ingress"]["properties"]["className"]
    assert "default IngressClass" in class_name["description"]
