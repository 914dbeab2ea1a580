"""Class settings against a cluster: the cluster's defaults (ConfigMap
workerlab-system/workerlab-class-defaults), `class add` applying the merged settings (again for an
existing learner), and nothing created when they are invalid. The cluster is a stand-in Kube that
answers kubectl's calls from a dict; the command line is the real one."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from workerlab.api.resource import LABEL_LEARNER
from workerlab.cli import class_settings as cs
from workerlab.cli import classroom
from workerlab.cli.commands import class_ as class_command
from workerlab.cli.main import app
from workerlab.common.errors import KubeError, WorkerlabError
from workerlab.common.kube import KUBECTL_TIMEOUT_S, Kube

runner = CliRunner()
WHERE = "configmap workerlab-system/workerlab-class-defaults"
CONFIG = {
    "contexts": [{"name": "kind-workerlab", "context": {"cluster": "kind-workerlab"}}],
    "clusters": [
        {
            "name": "kind-workerlab",
            "cluster": {"server": "https://127.0.0.1:6443", "certificate-authority-data": "Q0E="},
        }
    ],
}


# A node with room for any class these tests make (`class add` compares the class with it).
ROOMY_NODE = {"status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"}}}


class FakeKube(Kube):
    """kubectl's answers from `objects` ((kind, namespace, name) -> object or an error)."""

    def __init__(self, objects: dict[tuple[str, str, str], Any] | None = None) -> None:
        super().__init__(context="kind-workerlab", namespace="default", kubectl="kubectl")
        self.objects = {("nodes", "", "n1"): ROOMY_NODE, **(objects or {})}
        self.applied: list[dict] = []
        self.calls: list[tuple[str, ...]] = []

    def run(
        self,
        *args: str,
        namespaced: bool = True,
        stdin: str | None = None,
        timeout: float = KUBECTL_TIMEOUT_S,
    ) -> str:
        self.calls.append(args)
        if args[:3] == ("config", "view", "--raw"):
            return json.dumps(CONFIG)
        if args[0] == "get" and args[2].startswith("-"):  # a list: -l, -o, --all-namespaces
            found = [o for (kind, _, _), o in self.objects.items() if kind == args[1]]
            return json.dumps({"items": found})
        if args[0] == "get":
            kind, name = args[1], args[2]
            namespace = self.namespace if namespaced else ""
            if "--namespace" in args:
                namespace = args[args.index("--namespace") + 1]
            found = self.objects.get((kind, namespace, name))
            if isinstance(found, Exception):
                raise found
            if found is None:
                raise KubeError(f'Error from server (NotFound): {kind}s "{name}" not found')
            return json.dumps(found)
        if args[0] == "apply":
            items = json.loads(stdin or "{}")["items"]
            self.applied.extend(items)
            for item in items:
                meta = item["metadata"]
                self.objects[(item["kind"].lower(), meta.get("namespace", ""), meta["name"])] = item
            return ""
        if args[:2] == ("create", "token"):
            return "token\n"
        raise AssertionError(f"unexpected kubectl call: {args}")


def with_defaults(profile: str | None, **extra: Any) -> FakeKube:
    data = {} if profile is None else {cs.PROFILE_KEY: profile}
    configmap = {"metadata": {"name": cs.CLASS_DEFAULTS_CONFIGMAP}, "data": {**data, **extra}}
    return FakeKube({("configmap", "workerlab-system", cs.CLASS_DEFAULTS_CONFIGMAP): configmap})


def error_of(call, *args, **kwargs) -> WorkerlabError:
    with pytest.raises(WorkerlabError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- the cluster's defaults -----------------------------------------------------------------
def test_no_configmap_is_normal():
    assert cs.cluster_layer(FakeKube()) is None
    assert cs.resolve(FakeKube()).describe() == (
        "quota: built-in defaults; limit range: built-in defaults"
    )


def test_the_configmap_is_read_from_workerlab_system():
    kube = with_defaults("quota: {pods: '10'}\nlimitRange: {max: {cpu: '3'}}\n")
    layer = cs.cluster_layer(kube)
    assert layer is not None
    assert layer.quota == {"pods": "10"} and layer.limit_range == {"max": {"cpu": "3"}}
    assert layer.source == "cluster workerlab-system/workerlab-class-defaults"
    (call,) = kube.calls
    assert call[:3] == ("get", "configmap", "workerlab-class-defaults")
    assert call[call.index("--namespace") + 1] == "workerlab-system"


def test_an_empty_profile_in_the_configmap_sets_nothing():
    layer = cs.cluster_layer(with_defaults(""))
    assert layer is not None and layer.empty


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("quota: [1, 2\n", f"{WHERE} (profile.yaml) is not valid YAML: expected ',' or ']'"),
        ("- a\n", f"{WHERE} (profile.yaml) is not a YAML mapping with the keys quota and"),
        ("quota: {pods: many}\n", f"{WHERE} (profile.yaml): quota.pods: 'many' is not a"),
        ("limits: {}\n", f"{WHERE} (profile.yaml): unknown key 'limits'"),
        (None, f"{WHERE} has no data key profile.yaml"),
    ],
)
def test_an_unreadable_configmap_is_an_error_naming_it(profile, message):
    error = error_of(cs.cluster_layer, with_defaults(profile))
    assert str(error).startswith(message)
    assert "class.quota" in str(error.hint)  # where to fix it: the chart's values


def test_a_configmap_that_cannot_be_read_says_so():
    kube = FakeKube(
        {
            ("configmap", "workerlab-system", cs.CLASS_DEFAULTS_CONFIGMAP): KubeError(
                'configmaps "workerlab-class-defaults" is forbidden: User "x" cannot get'
            )
        }
    )
    assert str(error_of(cs.cluster_layer, kube)).startswith(
        f"cannot read {WHERE} (the class defaults): configmaps"
    )


def test_precedence_built_in_cluster_profile_flags(tmp_path):
    kube = with_defaults("quota: {pods: '10', secrets: '9', configmaps: '7'}\n")
    profile = tmp_path / "class.yaml"
    profile.write_text("quota: {pods: '11', secrets: '8'}\n")
    local = cs.local_layers(profile, ["pods=12"])
    settings = cs.resolve(kube, local)
    assert settings.quota["pods"] == "12"
    assert settings.quota["secrets"] == "8"
    assert settings.quota["configmaps"] == "7"
    assert settings.quota["services"] == cs.QUOTA_HARD["services"]
    assert settings.describe() == (
        "quota: built-in defaults + cluster workerlab-system/workerlab-class-defaults + "
        f"--profile {profile} + --quota pods=12; limit range: built-in defaults"
    )


def test_the_order_check_sees_the_cluster_layer():
    # the flag alone would be below the built-in max; the cluster's max makes room for it
    kube = with_defaults("limitRange: {max: {cpu: '4'}, default: {cpu: '4'}}\n")
    settings = cs.resolve(kube, cs.local_layers(None, (), ["defaultRequest.cpu=3"]))
    assert settings.limit_range["defaultRequest"]["cpu"] == "3"
    error = error_of(cs.resolve, FakeKube(), cs.local_layers(None, (), ["defaultRequest.cpu=3"]))
    assert str(error) == (
        "limit range: default.cpu 500m is below defaultRequest.cpu 3; "
        "max.cpu 2 is below defaultRequest.cpu 3: nothing was created"
    )


# --- class add ------------------------------------------------------------------------------
def kinds(kube: FakeKube, kind: str) -> list[dict]:
    return [o for o in kube.applied if o["kind"] == kind]


def test_add_applies_the_settings(tmp_path):
    kube = with_defaults("quota: {pods: '10'}\n")
    settings = cs.resolve(kube, cs.local_layers(None, ["requests.cpu=2"]))
    (added,) = classroom.add(kube, ["ada"], tmp_path, "1h", None, settings)
    assert not added.renewed and added.kubeconfig.exists()
    (quota,) = kinds(kube, "ResourceQuota")
    assert quota["spec"]["hard"]["pods"] == "10" and quota["spec"]["hard"]["requests.cpu"] == "2"


def test_add_without_settings_uses_the_clusters(tmp_path):
    kube = with_defaults("limitRange: {max: {memory: 3Gi}}\n")
    classroom.add(kube, ["ada"], tmp_path, "1h", None)
    (limits,) = kinds(kube, "LimitRange")
    assert limits["spec"]["limits"][0]["max"] == {"cpu": "2", "memory": "3Gi"}


def test_adding_again_reapplies_the_new_settings(tmp_path):
    kube = FakeKube()
    classroom.add(kube, ["ada"], tmp_path, "1h", None)
    kube.applied.clear()
    settings = cs.resolve(kube, cs.local_layers(None, ["pods=12"], ["max.cpu=3"]))
    (again,) = classroom.add(kube, ["ada"], tmp_path, "1h", None, settings)
    assert again.renewed
    (quota,) = kinds(kube, "ResourceQuota")
    (limits,) = kinds(kube, "LimitRange")
    assert quota["spec"]["hard"]["pods"] == "12"
    assert limits["spec"]["limits"][0]["max"]["cpu"] == "3"
    assert quota["metadata"]["namespace"] == "learner-ada"


def test_invalid_cluster_defaults_create_nothing(tmp_path):
    kube = with_defaults("quota: {pods: lots}\n")
    error = error_of(classroom.add, kube, ["ada"], tmp_path / "out", "1h", None)
    assert str(error).startswith(f"{WHERE} (profile.yaml): quota.pods: 'lots'")
    assert kube.applied == [] and not any(c[0] in ("apply", "create") for c in kube.calls)
    assert not (tmp_path / "out").exists()


# --- the command line -----------------------------------------------------------------------
@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No kubectl on PATH: a command that tried to reach a real cluster would say so."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("WORKERLAB_KUBE_CONTEXT", raising=False)
    monkeypatch.chdir(tmp_path)


def invoke(*args: str):
    result = runner.invoke(app, ["class", "add", *args])
    return result, " ".join(result.output.split())


@pytest.mark.usefixtures("isolated")
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["ada", "--quota", "pods=twelve"],
            "error: --quota pods=twelve: 'twelve' is not a Kubernetes quantity "
            "(like 12, 500m, 2Gi)",
        ),
        (
            ["ada", "--quota", "pods=12", "--quota", "pod=3"],
            "error: --quota pod=3: 'pod' is not a ResourceQuota resource, did you mean 'pods'?",
        ),
        (
            ["ada", "--limit-range", "max.cpu=2,maximum.memory=1Gi"],
            "error: --limit-range maximum.memory=1Gi: unknown section 'maximum'",
        ),
        (["ada", "--profile", "missing.yaml"], "error: --profile missing.yaml: no such file"),
    ],
)
def test_bad_settings_are_one_line_before_any_cluster_call(args, line):
    result, output = invoke(*args)
    assert result.exit_code == 2, output
    assert output.startswith(line)
    assert "Traceback" not in output and "kubectl not found" not in output


@pytest.mark.usefixtures("isolated")
def test_bad_profile_file_is_named(tmp_path):
    (tmp_path / "class.yaml").write_text("quota: {pods: '12'}\nlimitrange: {}\n")
    result, output = invoke("ada", "--profile", "class.yaml")
    assert result.exit_code == 2
    assert output.startswith(
        "error: --profile class.yaml: unknown key 'limitrange', did you mean 'limitRange'?"
    )


@pytest.mark.usefixtures("isolated")
def test_add_says_where_the_settings_came_from(tmp_path, monkeypatch):
    kube = with_defaults("quota: {pods: '10'}\n")
    monkeypatch.setattr(class_command, "instructor", lambda context: kube)
    (tmp_path / "class.yaml").write_text("limitRange:\n  default: {cpu: 400m}\n")
    result, output = invoke(
        "ada", "--out", "out", "--profile", "class.yaml", "--quota", "pods=12,requests.cpu=2"
    )
    assert result.exit_code == 0, output
    assert output.startswith(
        "quota: built-in defaults + cluster workerlab-system/workerlab-class-defaults + "
        "--quota pods=12,requests.cpu=2; limit range: built-in defaults + --profile class.yaml "
        "added ada: namespace learner-ada"
    )
    (quota,) = kinds(kube, "ResourceQuota")
    assert quota["spec"]["hard"]["pods"] == "12"
    (namespace,) = kinds(kube, "Namespace")
    assert namespace["metadata"]["labels"][LABEL_LEARNER] == "ada"
    config = yaml.safe_load((tmp_path / "out" / "ada.kubeconfig").read_text())
    assert config["current-context"] == "workerlab-ada"


@pytest.mark.usefixtures("isolated")
def test_invalid_merged_settings_create_nothing(monkeypatch):
    kube = FakeKube()
    monkeypatch.setattr(class_command, "instructor", lambda context: kube)
    result, output = invoke("ada", "--limit-range", "max.memory=32Mi")
    assert result.exit_code == 2
    assert output.startswith(
        "error: limit range: max.memory 32Mi is below defaultRequest.memory 64Mi; "
        "max.memory 32Mi is below default.memory 256Mi: nothing was created"
    )
    assert "hint: values merge over each other" in output
    assert kube.applied == []


@pytest.mark.usefixtures("isolated")
def test_add_warns_when_the_class_cannot_fit_on_the_nodes(monkeypatch):
    kube = FakeKube()
    kube.objects[("nodes", "", "n1")] = {
        "status": {"allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"}}
    }
    kube.objects[("pods", "kube-system", "etcd")] = {
        "metadata": {"namespace": "kube-system"},
        "spec": {"nodeName": "n1", "containers": [{"resources": {"requests": {"cpu": "500m"}}}]},
    }
    monkeypatch.setattr(class_command, "instructor", lambda context: kube)
    result, output = invoke("ada", "bob", "--out", "out")
    assert result.exit_code == 0, output
    assert (
        "warning: the class may not fit: 2 learners x requests.cpu 1 = 2, but the nodes have "
        "1500m cpu left of 2 allocatable; when all work at once, the last pods stay Pending"
    ) in output
    assert "added ada" in output and "added bob" in output  # a warning, not a refusal
