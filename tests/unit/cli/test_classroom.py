"""`workerlab class`: the pure parts (names, manifests, kubeconfig, progress, grid), the
context/namespace rules, and bad input refused before anything reaches a cluster."""

from __future__ import annotations

import json
import stat

import pytest
import yaml
from typer.testing import CliRunner

from workerlab.api.resource import LABEL_LEARNER, PROGRESS_CONFIGMAP
from workerlab.cli import classroom, targets
from workerlab.cli.commands.class_ import grid_labs
from workerlab.cli.main import app
from workerlab.common.errors import WorkerlabError
from workerlab.common.kube import Kube, choose_context, choose_namespace, is_learner_namespace
from workerlab.labs import course
from workerlab.labs.checking import CheckContext, Item
from workerlab.labs.starting_state import demo_manifest

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No kubectl on PATH, no cluster: a command that tried to reach one would say so."""
    monkeypatch.setenv("WORKERLAB_LAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WORKERLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("WORKERLAB_KUBE_CONTEXT", raising=False)


# --- names ----------------------------------------------------------------------------------
def test_valid_names_pass_in_order():
    assert classroom.validate_names(["ada", "bob-2", "x"]) == ["ada", "bob-2", "x"]


@pytest.mark.parametrize(
    "bad", ["Ada", "bob_1", "-a", "a-", "a.b", "", "x" * (classroom.MAX_NAME + 1), "é"]
)
def test_invalid_names_are_refused_naming_the_name(bad):
    with pytest.raises(WorkerlabError, match="not a valid learner name"):
        classroom.validate_names(["ok", bad])


def test_duplicates_and_no_names_are_refused():
    with pytest.raises(WorkerlabError, match="more than once: ada"):
        classroom.validate_names(["ada", "bob", "ada"])
    with pytest.raises(WorkerlabError, match="at least one"):
        classroom.validate_names([])


def test_the_longest_name_makes_a_63_char_namespace():
    name = "a" * classroom.MAX_NAME
    classroom.validate_names([name])
    assert len(classroom.namespace_of(name)) == 63


@pytest.mark.parametrize(("text", "seconds"), [("12h", 43200), ("90m", 5400), ("1h30m", 5400)])
def test_durations(text, seconds):
    assert classroom.duration_seconds(text) == seconds


@pytest.mark.parametrize("bad", ["", "12", "1d", "5m", "h"])
def test_bad_or_too_short_durations(bad):
    with pytest.raises(WorkerlabError, match="--duration"):
        classroom.duration_seconds(bad)


# --- manifests ------------------------------------------------------------------------------
def test_namespace_is_restricted_and_labelled_as_a_learners():
    ns = classroom.learner_namespace("ada")
    labels = ns["metadata"]["labels"]
    assert ns["metadata"]["name"] == "learner-ada"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels[LABEL_LEARNER] == "ada"


def by_kind(name="ada"):
    return {o["kind"]: o for o in classroom.learner_objects(name)}


def test_every_object_lives_in_the_learners_namespace():
    objects = classroom.learner_objects("ada")
    assert {o["kind"] for o in objects} == {
        "ResourceQuota",
        "LimitRange",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
    }
    assert all(o["metadata"]["namespace"] == "learner-ada" for o in objects)
    assert by_kind()["ConfigMap"]["metadata"]["name"] == PROGRESS_CONFIGMAP


def test_quota_bounds_pods_and_resources_and_allows_no_node_ports():
    hard = by_kind()["ResourceQuota"]["spec"]["hard"]
    assert hard["services.nodeports"] == "0" and hard["services.loadbalancers"] == "0"
    for key in ("pods", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"):
        assert key in hard
    # lab 5's 3 pods x 3 processes fit, with room for a rollout's surge
    assert int(hard["pods"]) >= 6


def test_role_grants_only_namespaced_lab_rights():
    rules = by_kind()["Role"]["rules"]
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for needed in [
        ("workerlab.dev", "workerclusters", "patch"),
        ("workerlab.dev", "workerclusters/scale", "update"),
        ("workerlab.dev", "workerclusters/status", "get"),
        ("", "pods", "delete"),
        ("", "pods/proxy", "get"),
        ("", "pods/log", "get"),
        ("", "services/proxy", "get"),
        ("", "events", "list"),
    ]:
        assert needed in granted
    resources = {r for _, r, _ in granted}
    assert not resources & {"secrets", "pods/exec", "namespaces", "nodes", "roles"}
    assert ("", "pods", "create") not in granted  # only the operator creates pods
    writable_configmaps = [
        r for r in rules if "configmaps" in r["resources"] and "patch" in r["verbs"]
    ]
    assert [r.get("resourceNames") for r in writable_configmaps] == [[PROGRESS_CONFIGMAP]]


def test_binding_binds_the_role_to_the_learners_service_account():
    binding = by_kind()["RoleBinding"]
    assert binding["roleRef"]["kind"] == "Role"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "workerlab-learner", "namespace": "learner-ada"}
    ]


def test_kubeconfig_has_one_context_in_the_learners_namespace():
    text = classroom.render_kubeconfig("ada", "https://127.0.0.1:6443", "Q0E=", "tok")
    config = yaml.safe_load(text)
    assert config["current-context"] == "workerlab-ada"
    (ctx,) = config["contexts"]
    assert ctx["context"]["namespace"] == "learner-ada"
    assert config["users"][0]["user"] == {"token": "tok"}
    assert config["clusters"][0]["cluster"]["certificate-authority-data"] == "Q0E="
    # what kubectl config view would give back: our own rules pick that context and namespace
    assert choose_context(None, None, config) == "workerlab-ada"
    assert choose_namespace(None, config, "workerlab-ada") == "learner-ada"


def test_cluster_of_reads_server_and_ca_of_the_context():
    config = {
        "contexts": [{"name": "kind-workerlab", "context": {"cluster": "kind-workerlab"}}],
        "clusters": [
            {
                "name": "kind-workerlab",
                "cluster": {"server": "https://127.0.0.1:1", "certificate-authority-data": "X"},
            }
        ],
    }
    assert classroom.cluster_of(config, "kind-workerlab") == ("https://127.0.0.1:1", "X")
    with pytest.raises(WorkerlabError, match="not found"):
        classroom.cluster_of(config, "other")


def test_private_files_are_0600(tmp_path):
    path = tmp_path / "ada.kubeconfig"
    classroom.write_private(path, "secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "secret"
    classroom.write_private(path, "renewed")  # overwrite keeps the mode
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "renewed"


# --- progress and the grid ------------------------------------------------------------------
def test_progress_round_trip_and_malformed_entries_skipped():
    entry = classroom.progress_entry([Item("a", True)], [{"started_at": 1}] * 30, at=5.0)
    cm = {"data": {"lab-5": entry, "lab-x": "{}", "lab-4": "not json", "other": "1"}}
    found = classroom.progress_of(cm)
    assert list(found) == [5]
    assert found[5]["items"] == ["a"] and found[5]["passed_at"] == 5.0
    assert len(found[5]["runs"]) == classroom.MAX_RECORDED_RUNS
    assert classroom.progress_of(None) == {}


def test_grid_tells_verified_from_claimed_passes():
    labs = [classroom.GridLab(n, n == 3) for n in (1, 3, 4, 5)]
    ada = classroom.Standing(
        claimed={1: {"passed_at": 7}, 4: {"passed_at": 9}, 5: {"passed_at": 20}},
        verified={4: {"passed_at": 9}, 5: {"passed_at": 10}},  # 5 passed again since: a claim
    )
    bob = classroom.Standing(claimed={}, verified={})
    header, rows = classroom.grid_rows({"bob": bob, "ada": ada}, labs)
    assert header == ["learner", "1", "3", "4", "5", "verified", "claimed"]
    assert rows == [
        ["ada", "c", "-", "ok", "c", "1/3", "2"],
        ["bob", ".", "-", ".", ".", "0/3", "0"],
    ]


def test_the_grid_lists_every_lab_and_counts_those_a_learner_can_do():
    labs = grid_labs()
    assert [lab.number for lab in labs] == [lab.number for lab in course.labs()]
    doable = {lab.number for lab in labs if not lab.cluster_admin}
    assert {4, 5, 7, 9, 11} <= doable  # 9 is local (a claim only); 11 needs the class Role's HPA
    _, rows = classroom.grid_rows({"ada": classroom.Standing({}, {})}, labs)
    assert rows[0][-2] == f"0/{len(doable)}"


def test_a_hand_written_verification_without_a_record_verifies_nothing():
    forged = classroom.Standing(claimed={}, verified={5: {"passed_at": None}})
    assert not forged.is_verified(5) and not forged.only_claimed(5)


def test_the_record_carries_the_labs_start_for_the_instructors_rerun():
    entry = json.loads(classroom.progress_entry([Item("a", True)], [], at=50.0, started_at=40.0))
    assert entry["started_at"] == 40.0 and entry["passed_at"] == 50.0


def test_recorded_runs_stand_in_for_the_journal():
    ctx = CheckContext(
        Kube(), started_at=10, options={"runs": [{"started_at": 5}, {"started_at": 11}]}
    )
    assert ctx.runs() == [{"started_at": 11}]


# --- context and namespace rules ------------------------------------------------------------
def test_context_precedence():
    config = {"current-context": "workerlab-ada"}
    assert choose_context("explicit", "env", config) == "explicit"
    assert choose_context(None, "env", config) == "env"
    assert choose_context(None, None, config) == "workerlab-ada"
    # any other current context (a production cluster, say) is never used implicitly
    assert choose_context(None, None, {"current-context": "prod"}) == "kind-workerlab"
    assert choose_context(None, None, {}) == "kind-workerlab"


def test_namespace_precedence():
    config = {"contexts": [{"name": "kind-workerlab", "context": {"namespace": "mine"}}]}
    assert choose_namespace("given", config, "kind-workerlab") == "given"
    assert choose_namespace(None, config, "kind-workerlab") == "mine"
    assert choose_namespace(None, config, "other") == "workerlab"
    assert choose_namespace(None, {}, "kind-workerlab") == "workerlab"


def test_learner_namespaces_get_a_cluster_ip_demo():
    assert is_learner_namespace("learner-ada") and not is_learner_namespace("workerlab")
    assert demo_manifest("learner-ada")["spec"]["service"] == {"type": "ClusterIP"}
    assert demo_manifest("workerlab")["spec"]["service"]["nodePort"] == 30080


def test_service_proxy_target_keeps_its_path_prefix():
    path = targets.service_proxy_path("learner-ada", "demo", "http")
    assert path == "/api/v1/namespaces/learner-ada/services/demo:http/proxy/"
    target = targets.Target(base_url=f"http://127.0.0.1:9{path}", label="wc/demo")
    assert target.url("/work/cpu?ms=20") == f"http://127.0.0.1:9{path}work/cpu?ms=20"
    assert targets.Target("http://127.0.0.1:1/", "x").url("p") == "http://127.0.0.1:1/p"


def test_cluster_admin_labs_say_so():
    admin = {lab.number for lab in course.labs() if lab.needs_cluster_admin}
    assert admin == {3, 6, 8, 10, 12}
    for lab in course.labs():
        if lab.needs_cluster_admin:
            assert "**Rights:** cluster-admin" in course.text(lab)


# --- commands: bad input, refused before any cluster call (there is no kubectl here) --------
def invoke(*args):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["class", "add", "Bad_Name"], "not a valid learner name"),
        (["class", "add", "ok", "ok"], "more than once"),
        (["class", "add", "ok", "--duration", "1m"], "too short"),
        (["class", "remove", "x_y"], "not a valid learner name"),
        (["class", "check", "ada", "1"], "own machine"),
        (["lab", "reset", "3", "-n", "learner-ada", "--context", "c"], "ask your instructor"),
        (["lab", "check", "10", "-n", "learner-ada", "--context", "c"], "ask your instructor"),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else "",
)
def test_bad_input_is_one_clear_line_exit_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert "kubectl not found" not in result.output  # refused before reaching for a cluster


def test_lab_list_shows_rights():
    result = invoke("lab", "list")
    assert result.exit_code == 0
    assert "cluster-admin" in result.output


def test_progress_entry_is_json():
    json.loads(classroom.progress_entry([], [], 1.0))


def test_classroom_keeps_the_names_others_import():
    """The pure parts moved to class_* modules; `classroom.X` still reaches each of them."""
    for name in classroom.__all__:
        assert hasattr(classroom, name), name
    for name in ("QUOTA_HARD", "LIMIT_RANGE", "learner_objects", "write_private", "GridLab"):
        assert name in classroom.__all__


def test_class_add_help_names_the_settings_options():
    result = invoke("class", "add", "--help")
    assert result.exit_code == 0
    for option in ("--quota", "--limit-range", "--profile", "workerlab-class-defaults"):
        assert option in result.output
