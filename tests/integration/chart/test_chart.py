"""The Helm chart charts/workerlab: it lints, never drifts from manifests/, and refuses bad values.

Runs the real helm (built by `bash hack/build-helm.sh`, `make chart`) and kubectl's kustomize;
needs no cluster. The drift check renders both

    helm template workerlab charts/workerlab -n workerlab-system --include-crds \
        -f charts/workerlab/ci/lab-values.yaml
    kubectl kustomize manifests/

and compares them object by object, keyed by (apiVersion, kind, namespace, name), after removing
only what Helm itself adds (its labels, and the keep policy on the lab namespace). The release
namespace workerlab-system is the one object only manifests/ has: Helm's --create-namespace makes
it, and the chart's README labels it; that the README's labels are the manifest's is checked too.
"""

from __future__ import annotations

import difflib
import re
import subprocess
import tomllib
from typing import Any

import pytest
import yaml
from support.paths import REPO
from support.tools import tool as find_tool

pytestmark = pytest.mark.integration

CHART = REPO / "charts" / "workerlab"
LAB_VALUES = CHART / "ci" / "lab-values.yaml"
RELEASE = "workerlab"
RELEASE_NAMESPACE = "workerlab-system"
HELM_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
)
HELM_ANNOTATIONS = ("helm.sh/resource-policy",)
HINTS = {
    "helm": "run `bash hack/build-helm.sh` (or `make chart`)",
    "kubectl": "run `make toolchain` (hack/build-control-plane.sh builds it)",
}

Key = tuple[str, str, str, str]


def tool(name: str) -> str:
    return find_tool(name, HINTS[name])


@pytest.fixture(scope="module")
def helm() -> str:
    return tool("helm")


@pytest.fixture(scope="module")
def kubectl() -> str:
    return tool("kubectl")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, cwd=REPO)


def ok(*args: str) -> str:
    result = run(*args)
    assert result.returncode == 0, (
        f"`{' '.join(args)}` exited {result.returncode}:\n{result.stderr}{result.stdout}"
    )
    return result.stdout


def render(helm: str, *args: str) -> list[dict[str, Any]]:
    out = ok(helm, "template", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, *args)
    return [d for d in yaml.safe_load_all(out) if d]


def key(doc: dict[str, Any]) -> Key:
    meta = doc["metadata"]
    return (doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"])


def by_key(docs: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    keyed: dict[Key, dict[str, Any]] = {}
    for doc in docs:
        assert key(doc) not in keyed, f"rendered twice: {key(doc)}"
        keyed[key(doc)] = doc
    return keyed


def without_helm_metadata(node: Any) -> Any:
    """A copy of node without Helm's labels and annotations, in every metadata it holds."""
    if isinstance(node, list):
        return [without_helm_metadata(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: without_helm_metadata(v) for k, v in node.items()}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for field, names in (("labels", HELM_LABELS), ("annotations", HELM_ANNOTATIONS)):
            if isinstance(meta.get(field), dict):
                meta[field] = {k: v for k, v in meta[field].items() if k not in names}
                if not meta[field]:
                    del meta[field]
    return out


def dump(doc: dict[str, Any]) -> list[str]:
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False).splitlines()


def readme_release_namespace_labels() -> dict[str, str]:
    """The labels of the README's `kubectl label namespace workerlab-system ...` step."""
    text = (CHART / "README.md").read_text()
    match = re.search(
        rf"kubectl label (?:namespace|ns) {RELEASE_NAMESPACE}((?:[^\n]*\\\n)*[^\n]*)", text
    )
    assert match, f"charts/workerlab/README.md has no `kubectl label namespace {RELEASE_NAMESPACE}`"
    words = match.group(1).replace("\\\n", " ").split()
    return dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))


def test_chart_version_is_the_project_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert (chart["apiVersion"], chart["name"]) == ("v2", "workerlab")
    assert chart["appVersion"] == project["version"], "Chart.yaml appVersion = pyproject's version"


@pytest.mark.parametrize("values", [None, LAB_VALUES], ids=["defaults", "lab-values"])
def test_helm_lint_strict(helm, values):
    extra = ["-f", str(values)] if values else []
    out = ok(helm, "lint", "--strict", str(CHART), *extra)
    assert "0 chart(s) failed" in out, out


def test_chart_renders_what_manifests_apply(helm, kubectl):
    chart = by_key(render(helm, "--include-crds", "-f", str(LAB_VALUES)))
    manifests = by_key([d for d in yaml.safe_load_all(ok(kubectl, "kustomize", "manifests")) if d])

    release_ns = manifests.pop(("v1", "Namespace", "", RELEASE_NAMESPACE), None)
    assert release_ns, f"manifests/ no longer creates {RELEASE_NAMESPACE}: update this test"
    assert ("v1", "Namespace", "", RELEASE_NAMESPACE) not in chart, (
        "the chart must not create its release namespace (helm's --create-namespace does)"
    )
    assert readme_release_namespace_labels() == release_ns["metadata"]["labels"], (
        "charts/workerlab/README.md's `kubectl label namespace` step must set the labels "
        f"manifests/operator/namespaces.yaml gives {RELEASE_NAMESPACE}"
    )

    only_chart = sorted(set(chart) - set(manifests))
    only_manifests = sorted(set(manifests) - set(chart))
    assert not only_chart and not only_manifests, (
        f"objects only the chart renders: {only_chart}\n"
        f"objects only manifests/ has: {only_manifests}"
    )
    diffs = []
    for k in sorted(chart):
        ours, theirs = without_helm_metadata(chart[k]), without_helm_metadata(manifests[k])
        if ours != theirs:
            diff = difflib.unified_diff(
                dump(theirs), dump(ours), "kubectl kustomize manifests/", "helm template", n=4
            )
            diffs.append(
                f"=== {'/'.join(p for p in k if p)}\n" + "\n".join(d.rstrip("\n") for d in diff)
            )
    assert not diffs, "chart and manifests/ drifted:\n\n" + "\n\n".join(diffs)


def test_chart_labels_its_objects_as_helm_does(helm):
    for doc in render(helm, "-f", str(LAB_VALUES)):
        labels = doc["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", key(doc)
        assert labels.get("app.kubernetes.io/instance") == RELEASE, key(doc)
        assert labels.get("helm.sh/chart") == "workerlab-0.1.0", key(doc)


def test_crds_are_byte_identical_copies_of_manifests():
    source = {p.name: p for p in (REPO / "manifests" / "crd").glob("*.yaml")}
    source.pop("kustomization.yaml")
    copies = {p.name: p for p in (CHART / "crds").iterdir()}
    assert sorted(copies) == sorted(source), "charts/workerlab/crds/ = manifests/crd/*.yaml"
    stale = [n for n in sorted(source) if source[n].read_bytes() != copies[n].read_bytes()]
    assert not stale, "stale CRD copies: " + "; ".join(
        f"cp manifests/crd/{n} charts/workerlab/crds/" for n in stale
    )


# (--set, what its error message must name): the value's path and the offending value
REFUSED = [
    ("operator.replicas=0", ["/operator/replicas"]),
    ("operator.image.pullPolicy=Sometimes", ["/operator/image/pullPolicy", "IfNotPresent"]),
    ("operator.image.digest=sha256:xyz", ["/operator/image/digest", "sha256:xyz"]),
    ("operator.replica=2", ["/operator", "replica"]),
    ("operator.watchNamespaces={Bad_NS}", ["/operator/watchNamespaces/0", "Bad_NS"]),
    ("class.quota.pods=twelve", ["/class/quota/pods", "twelve"]),
    ("image.registry=https://registry.example", ["/image/registry"]),
    ("worker.image.tag=-bad", ["/worker/image/tag", "-bad"]),
    ("operator.resources.requests.cpu=lots", ["/operator/resources/requests/cpu", "lots"]),
    ("class.limitRange.maximum.cpu=1", ["/class/limitRange", "maximum"]),
]


@pytest.mark.parametrize("setting,named", REFUSED, ids=[s for s, _ in REFUSED])
def test_schema_refuses_bad_values_saying_which(helm, setting, named):
    result = run(helm, "template", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, "--set", setting)
    message = result.stderr.strip()
    print(f"helm template --set {setting}: exit {result.returncode}\n{message}")
    assert result.returncode != 0, f"--set {setting} was accepted"
    missing = [n for n in named if n not in message]
    assert not missing, f"--set {setting}: the message does not name {missing}:\n{message}"


ACCEPTED = [
    "image.registry=",
    "image.registry=registry.example:5000/team",
    "operator.image.tag=v1.2.3-rc.1",
    "class.quota.pods=12",
    "class.quota.requests\\.cpu=1500m",
    "class.limitRange.max.memory=2Gi",
    "operator.watchNamespaces={a,b}",
]


@pytest.mark.parametrize("setting", ACCEPTED)
def test_schema_accepts_good_values(helm, setting):
    render(helm, "--set", setting)


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    return operator


def test_image_references_from_registry_tag_and_digest(helm):
    digest = "sha256:" + "0123456789abcdef" * 4
    docs = render(
        helm,
        "--set",
        "image.registry=registry.example:5000/lab",
        "--set",
        "operator.image.tag=1.2.3",
        "--set",
        f"worker.image.digest={digest}",
        "--set",
        "worker.image.tag=ignored",
        "--set",
        "worker.image.pullSecrets={pull-a,pull-b}",
        "--set",
        "image.pullSecrets={regcred}",
    )
    operator = container(docs)
    assert operator["image"] == "registry.example:5000/lab/workerlab/operator:1.2.3"
    env = {e["name"]: e.get("value") for e in operator["env"]}
    assert env["WORKERLAB_WORKER_IMAGE"] == f"registry.example:5000/lab/workerlab/worker@{digest}"
    assert env["WORKERLAB_WORKER_IMAGE_PULL_SECRETS"] == "pull-a,pull-b"
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]

    bare = container(render(helm, "--set", "image.registry="))
    assert bare["image"] == "workerlab/operator:0.1.0"


def test_class_defaults_reach_the_configmap(helm):
    docs = render(helm, "--set", "class.quota.pods=12", "--set", "class.limitRange.max.cpu=1")
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config["metadata"]["name"] == "workerlab-class-defaults"
    profile = yaml.safe_load(config["data"]["profile.yaml"])
    assert profile == {"quota": {"pods": 12}, "limitRange": {"max": {"cpu": 1}}}


def test_watch_namespaces_confines_rbac_and_flags(helm):
    docs = render(helm, "--set", "operator.watchNamespaces={a,b}")
    roles = {d["metadata"]["namespace"]: d for d in docs if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"]: d for d in docs if d["kind"] == "RoleBinding"}
    # and the nodes' heartbeats, read-only, wherever the operator serves
    assert sorted(roles) == sorted(bindings) == ["a", "b", "kube-node-lease"]
    heartbeats = roles["kube-node-lease"]["rules"]
    assert heartbeats == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list", "watch"]}
    ]
    for namespace in ("a", "b"):
        granted = {res for r in roles[namespace]["rules"] for res in r["resources"]}
        assert {"workerclusters", "pods", "pods/proxy", "services", "events"} <= granted
        (subject,) = bindings[namespace]["subjects"]
        assert (subject["name"], subject["namespace"]) == ("workerlab-operator", RELEASE_NAMESPACE)
        assert bindings[namespace]["roleRef"]["kind"] == "Role"

    cluster_wide = {
        res
        for d in docs
        if d["kind"] == "ClusterRole"
        for r in d["rules"]
        for res in r["resources"]
    }
    assert cluster_wide == {"customresourcedefinitions", "clusterkopfpeerings"}

    args = container(docs)["args"]
    assert [a for a in args if "namespace" in a] == ["--namespace=a", "--namespace=b"]


def test_every_namespace_by_default_with_one_cluster_role(helm):
    docs = render(helm)
    namespaced = [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
    # one Role only: the nodes' heartbeats, where the kubelets keep them
    assert {d["metadata"]["namespace"] for d in namespaced} == {"kube-node-lease"}
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert "pods" in {res for r in role["rules"] for res in r["resources"]}
    assert "--all-namespaces" in container(docs)["args"]


def test_optional_objects_follow_their_values(helm):
    kinds = {d["kind"] for d in render(helm)}
    assert "NetworkPolicy" not in kinds and "Namespace" not in kinds and "Service" in kinds
    kinds = {d["kind"] for d in render(helm, "--set", "metrics.service=false")}
    assert "Service" not in kinds
    crds = render(helm, "--include-crds")
    assert {d["metadata"]["name"] for d in crds if d["kind"] == "CustomResourceDefinition"} == {
        "workerclusters.workerlab.dev",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }


def test_operator_pod_keeps_its_security_settings(helm):
    docs = render(helm)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "checkov.io/skip1" in deployment["metadata"]["annotations"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    security = container(docs)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}


def test_leader_election_gives_a_standby_its_lease_rights_and_a_rolling_hand_over(helm):
    docs = render(helm, "--set", "operator.leaderElection=true", "--set", "operator.replicas=2")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    spread = spec["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = spread["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    operator = container(docs)
    assert "--leader-elect" in operator["args"]
    env = {e["name"]: e for e in operator["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    (role,) = [
        d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == RELEASE_NAMESPACE
    ]
    assert {"leases"} == {r for rule in role["rules"] for r in rule["resources"]}
    (binding,) = [
        d
        for d in docs
        if d["kind"] == "RoleBinding" and d["metadata"]["namespace"] == RELEASE_NAMESPACE
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    # off by default: one replica, Recreate, no Lease
    default = render(helm)
    (deployment,) = [d for d in default if d["kind"] == "Deployment"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "--leader-elect" not in container(default)["args"]


def test_two_replicas_without_leader_election_are_refused_saying_why(helm):
    result = run(
        helm, "template", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE,
        "--set", "operator.replicas=2",
    )  # fmt: skip
    assert result.returncode != 0
    assert "operator.replicas > 1 needs operator.leaderElection=true" in result.stderr
