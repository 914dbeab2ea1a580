"""#17 and #25, one cluster and a whole class, on the real kind cluster: three learners added with
`workerlab class add`; each learner's kubeconfig reaches only their namespace; two learners do
labs 4, 5, 7 and 11 at the same time from their own kubeconfigs, with the commands `workerlab
lab show` prints for their namespace; once they moved on, the instructor re-checks every pass
from the Events kept; a pass written by hand stays a claim; a
WorkerCluster over the quota, or asking for a NodePort, is refused visibly; `class remove` leaves
nothing behind.

Learners are named e2e-a/b/c (namespaces learner-e2e-*); everything is removed at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.paths import CACHE, REPO
from support.polling import wait_until

from workerlab.labs import course

pytestmark = pytest.mark.e2e

LEARNERS = ("e2e-a", "e2e-b", "e2e-c")
TWO = ("e2e-a", "e2e-b")  # the learners who do the labs; e2e-c tries what a curious one tries
QUOTA = "workerlab-learner"
LABEL = "workerlab.dev/learner"


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    kube_bins = [str(p.parent) for p in sorted(CACHE.glob("k8s/v*/bin/kubectl"))]
    env["PATH"] = ":".join([str(Path(sys.executable).parent), *kube_bins, env.get("PATH", "")])
    env.pop("KUBECONFIG", None)
    return env


def run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(
        list(args), env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def ok(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = run(env, *args, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def classroom(cluster, tmp_path_factory) -> Any:
    """The instructor's env (kind-workerlab) and each learner's (their kubeconfig, own home)."""
    out = tmp_path_factory.mktemp("class")
    instructor = base_env()
    instructor["WORKERLAB_KUBE_CONTEXT"] = cluster.context
    started = time.monotonic()
    added = ok(
        instructor, "workerlab", "class", "add", *LEARNERS, "--out", str(out), "--duration", "1h"
    )
    learners = {}
    for name in LEARNERS:
        env = base_env()
        env.pop("WORKERLAB_KUBE_CONTEXT", None)
        env["KUBECONFIG"] = str(out / f"{name}.kubeconfig")
        env["WORKERLAB_LAB_HOME"] = str(tmp_path_factory.mktemp(f"home-{name}"))
        learners[name] = env

    class Room:
        pass

    room = Room()
    room.out, room.instructor, room.learners, room.kube = out, instructor, learners, cluster
    room.add_seconds = time.monotonic() - started
    room.added = " ".join(added.split())
    yield room
    for name in (*LEARNERS, "e2e-x", "e2e-y"):
        cluster.run("delete", "namespace", f"learner-{name}", "--ignore-not-found", "--wait=false")


@pytest.fixture(scope="module")
def operator(cluster) -> None:
    """The WorkerCluster CRD and the operator (`make up`); fails, never skips, without them."""
    if cluster.run("get", "crd", "workerclusters.workerlab.dev").returncode != 0:
        pytest.fail("the WorkerCluster CRD is not installed: run `make up`")
    ready = cluster.run(
        "-n", "workerlab-system", "rollout", "status", "deployment/workerlab-operator",
        "--timeout=60s",
    )  # fmt: skip
    if ready.returncode != 0:
        pytest.fail(f"the operator is not running: {ready.stderr.strip()} -- run `make up`")


def test_add_made_namespaces_quota_and_private_kubeconfigs(classroom):
    listed = json.loads(ok(classroom.instructor, "workerlab", "class", "list", "--json"))
    assert {e["name"] for e in listed} >= set(LEARNERS)
    for name in LEARNERS:
        ns = classroom.kube.get("namespace", f"learner-{name}")
        labels = ns["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels[LABEL] == name
        quota = classroom.kube.get("resourcequota", QUOTA, "-n", f"learner-{name}")
        assert quota["spec"]["hard"]["services.nodeports"] == "0"
        path = classroom.out / f"{name}.kubeconfig"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # the lab's node has 2 cores: three learners with requests.cpu 1 each cannot all fit at once
    warning = (
        r"warning: the class may not fit: (\d+) learners x requests\.cpu 1 = \1, but the nodes"
    )
    assert re.search(warning, classroom.added), classroom.added
    assert f"export KUBECONFIG={classroom.out.resolve()}/NAME.kubeconfig" in classroom.added
    assert "also export WORKERLAB_LAB_HOME=$HOME/lab-NAME" in classroom.added
    # a learner's kubeconfig just works: its context, its namespace
    env = classroom.learners["e2e-a"]
    assert ok(env, "kubectl", "config", "current-context").strip() == "workerlab-e2e-a"
    ok(env, "kubectl", "get", "pods")  # in learner-e2e-a, allowed


FORBIDDEN = [
    ("read B's pods", ["get", "pods", "-n", "learner-e2e-b"]),
    ("delete B's progress", ["delete", "configmap", "workerlab-progress", "-n", "learner-e2e-b"]),
    ("create in B's namespace", ["create", "configmap", "x", "-n", "learner-e2e-b"]),
    ("list namespaces", ["get", "namespaces"]),
    ("list nodes", ["get", "nodes"]),
    ("read Secrets, even its own", ["get", "secrets"]),
    ("list CRDs", ["get", "crd"]),
    ("create a pod itself", ["run", "x", "--image=busybox", "--restart=Never"]),
    ("touch the operator", ["get", "pods", "-n", "workerlab-system"]),
]


# with the CRD installed (the operator fixture): B's WorkerClusters are out of A's reach too
FORBIDDEN_WC = [
    ("read B's WorkerClusters", ["get", "wc", "-n", "learner-e2e-b"]),
    ("delete B's demo", ["delete", "wc", "demo", "-n", "learner-e2e-b"]),
    ("scale B's demo", ["scale", "wc/demo", "--replicas=1", "-n", "learner-e2e-b"]),
]


def forbidden(env: dict[str, str], what: str, args: list[str]) -> None:
    done = run(env, "kubectl", *args)
    assert done.returncode != 0, f"{what} was allowed: {done.stdout}"
    assert "forbidden" in done.stderr.lower(), done.stderr


@pytest.mark.parametrize(("what", "args"), FORBIDDEN, ids=[w for w, _ in FORBIDDEN])
def test_learner_a_is_confined_to_their_namespace(classroom, what, args):
    forbidden(classroom.learners["e2e-a"], what, args)


@pytest.mark.parametrize(("what", "args"), FORBIDDEN_WC, ids=[w for w, _ in FORBIDDEN_WC])
def test_learner_a_cannot_touch_bs_workerclusters(classroom, operator, what, args):
    forbidden(classroom.learners["e2e-a"], what, args)


LABS = (4, 5, 7, 11)  # every lab a learner does in their namespace on the cluster
MOVE_ON = "workerlab lab reset 5"  # the last lab moved on from too (none after 11 is theirs)
LAB_TIMEOUT_S = 1500


def learner_script(name: str) -> str:
    """Labs 4, 5, 7 and 11 as `workerlab lab show N` prints them for the learner's namespace,
    verbatim, each to `workerlab lab check N`; then the learner moves on."""
    parts = ["set -euo pipefail", "SECONDS=0"]
    for number in LABS:
        steps = course.steps(course.get(number), f"learner-{name}")
        assert "-n workerlab " not in steps, f"lab {number} still names the namespace: {steps}"
        parts += [
            f"echo '@@ lab {number} steps'",
            steps,
            f"workerlab lab check {number}",
            f'echo "@@ lab {number} passed after $SECONDS s"',
        ]
    parts += [MOVE_ON, "echo '@@ done'"]
    return "\n".join(parts) + "\n"


def in_session(env: dict[str, str], script: str) -> subprocess.CompletedProcess:
    """The script in a session of its own: on a timeout its whole process group goes (a
    background `workerlab load` or a `kubectl wait` it started included)."""
    args = ["bash", "-c", script]
    with subprocess.Popen(
        args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    ) as process:  # fmt: skip
        try:
            out, err = process.communicate(timeout=LAB_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            err += f"\n(killed after {LAB_TIMEOUT_S} s)"
    return subprocess.CompletedProcess(args, process.returncode, out, err)


@pytest.mark.timeout(LAB_TIMEOUT_S + 120)
def test_two_learners_do_labs_4_5_7_and_11_as_printed_and_pass(classroom, operator, figures):
    results: dict[str, subprocess.CompletedProcess] = {}

    def learn(name: str) -> None:
        results[name] = in_session(classroom.learners[name], learner_script(name))

    threads = [threading.Thread(target=learn, args=(n,)) for n in TWO]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=LAB_TIMEOUT_S + 60)
    assert set(results) == set(TWO), f"a learner did not finish: {sorted(results)}"
    for name, done in results.items():
        said = f"{name} (rc {done.returncode}):\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
        assert done.returncode == 0 and "@@ done" in done.stdout, said
        assert "Traceback" not in done.stderr, said
        for number in LABS:
            assert f"lab {number}: " in done.stdout and f"@@ lab {number} passed" in done.stdout
        # moving on removed what lab 11 left in their namespace (a leftover HPA would scale
        # demo back behind their back)
        assert "deleted hpa/demo" in done.stdout.split("@@ lab 11 passed")[1], said
        env = classroom.learners[name]
        # the learner's demo has no NodePort: nothing collides between learners
        svc = json.loads(ok(env, "kubectl", "get", "svc", "demo", "-o", "json"))
        assert svc["spec"]["type"] == "ClusterIP"
    figures(
        "class-labs-4-5-7-11",
        passed_after={
            name: re.findall(r"@@ lab (\d+) passed after (\d+) s", done.stdout)
            for name, done in results.items()
        },
    )


def test_instructor_rechecks_every_lab_after_the_learners_moved_on(classroom, operator):
    grid = json.loads(ok(classroom.instructor, "workerlab", "class", "status", "--json"))
    for name in TWO:
        assert set(LABS) <= set(grid[name]["claimed"]), grid
    assert not set(LABS) & set(grid["e2e-c"]["claimed"] + grid["e2e-c"]["verified"]), grid
    for name in TWO:
        for number in LABS:
            again = run(classroom.instructor, "workerlab", "class", "check", name, str(number),
                        "--json")  # fmt: skip
            assert again.returncode == 0, f"{name} lab {number}: {again.stdout}{again.stderr}"
            verdict = json.loads(again.stdout)
            assert verdict["recorded"] and verdict["passed"] and verdict["verified"], verdict
            # the namespace moved on: the pass was judged from the Events kept
            assert verdict["judged"] == "evidence", verdict
            assert verdict["evidence"] and all(i["passed"] for i in verdict["evidence"])
    said = ok(classroom.instructor, "workerlab", "class", "check", "e2e-a", "4")
    assert "From the Events kept between" in " ".join(said.split()), said
    grid = json.loads(ok(classroom.instructor, "workerlab", "class", "status", "--json"))
    for name in TWO:
        assert set(LABS) <= set(grid[name]["verified"]), grid
    table = ok(classroom.instructor, "workerlab", "class", "status")
    assert "e2e-a" in table and "ok" in table and "c claimed" in " ".join(table.split())
    # C did not do it: the re-run says so (exit 1), it does not invent a pass
    assert run(classroom.instructor, "workerlab", "class", "check", "e2e-c", "5").returncode != 0
    # A pass C writes into their own progress ConfigMap by hand is a claim, never verified:
    # the re-check finds neither the present state nor the Events of a rollout in the window.
    forged = json.dumps(
        {"started_at": time.time() - 600, "passed_at": time.time(), "items": [], "runs": []}
    )
    patch = json.dumps({"data": {"lab-7": forged}})
    env_c = classroom.learners["e2e-c"]
    ok(env_c, "kubectl", "patch", "configmap", "workerlab-progress", "--type", "merge", "-p", patch)
    grid = json.loads(ok(classroom.instructor, "workerlab", "class", "status", "--json"))
    assert 7 in grid["e2e-c"]["claimed"] and 7 not in grid["e2e-c"]["verified"], grid
    forged_check = run(classroom.instructor, "workerlab", "class", "check", "e2e-c", "7", "--json")
    assert forged_check.returncode == 1 and not json.loads(forged_check.stdout)["verified"]
    denied = run(
        env_c, "kubectl", "create", "configmap", "workerlab-verified", "--from-literal=lab-7={}"
    )
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr


def test_instructor_labs_say_ask_your_instructor(classroom):
    done = run(classroom.learners["e2e-c"], "workerlab", "lab", "reset", "10")
    assert done.returncode == 2
    assert "ask your instructor" in " ".join(done.stderr.split())
    assert "Forbidden" not in done.stderr


def test_a_workercluster_over_the_quota_is_refused_visibly(classroom, operator):
    kube = classroom.kube
    before = {
        p["metadata"]["uid"]
        for p in kube.get("pods", "-n", "learner-e2e-b")["items"]
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    }
    greedy = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": "greedy"},
        "spec": {
            "replicas": 1,
            "processesPerPod": 1,
            "resources": {
                "requests": {"cpu": "1500m", "memory": "128Mi"},
                "limits": {"cpu": "2", "memory": "128Mi"},
            },
        },
    }
    env = classroom.learners["e2e-c"]
    done = subprocess.run(
        ["kubectl", "apply", "-f", "-"], input=json.dumps(greedy), env=env, cwd=REPO,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    def degraded() -> dict | None:
        wc = kube.get("wc", "greedy", "-n", "learner-e2e-c")
        for c in (wc.get("status") or {}).get("conditions") or []:
            if c["type"] == "Degraded" and c["status"] == "True" and c["reason"] == "FailedCreate":
                return c
        return None

    condition = wait_until(degraded, 90, "wc/greedy Degraded with reason FailedCreate")
    assert QUOTA in condition["message"] and "exceeded quota" in condition["message"]

    def warning() -> list:
        events = kube.get(
            "events", "-n", "learner-e2e-c", "--field-selector",
            "involvedObject.kind=WorkerCluster,involvedObject.name=greedy,type=Warning",
        )["items"]  # fmt: skip
        return [e for e in events if e["reason"] == "FailedCreate" and QUOTA in e["message"]]

    wait_until(warning, 30, "a Warning event FailedCreate naming the quota")
    # the learner sees it too, with their own rights
    seen = ok(env, "kubectl", "get", "events", "--field-selector", "reason=FailedCreate")
    assert QUOTA in seen
    after = {
        p["metadata"]["uid"]
        for p in kube.get("pods", "-n", "learner-e2e-b")["items"]
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    }
    assert before and before <= after, "learner B's pods changed while C was refused"


def test_a_nodeport_in_a_learner_namespace_is_refused_visibly_and_quietly(classroom, operator):
    """The quota allows a learner no NodePort: the master says so in the WorkerCluster's
    condition and one Warning naming the quota, and its log does not repeat it every second."""
    kube, env, ns = classroom.kube, classroom.learners["e2e-c"], "learner-e2e-c"
    exposed = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": "exposed"},
        "spec": {"replicas": 0, "service": {"type": "NodePort"}},
    }
    done = subprocess.run(
        ["kubectl", "apply", "-f", "-"], input=json.dumps(exposed), env=env, cwd=REPO,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    applied = time.monotonic()

    def refused() -> dict | None:
        wc = kube.get("wc", "exposed", "-n", ns)
        for c in (wc.get("status") or {}).get("conditions") or []:
            if (c["type"], c["status"], c["reason"]) == ("Degraded", "True", "ServiceRefused"):
                return c
        return None

    try:
        condition = wait_until(refused, 30, "wc/exposed Degraded with reason ServiceRefused")
        assert QUOTA in condition["message"] and "services.nodeports" in condition["message"]

        def warnings() -> list:
            events = kube.get(
                "events", "-n", ns, "--field-selector",
                "involvedObject.kind=WorkerCluster,involvedObject.name=exposed,type=Warning",
            )["items"]  # fmt: skip
            return [e for e in events if e["reason"] == "ServiceRefused" and QUOTA in e["message"]]

        wait_until(warnings, 30 - (time.monotonic() - applied), "a Warning naming the quota")
        # the learner reads it with their own rights
        assert "services.nodeports" in ok(env, "kubectl", "get", "wc", "exposed", "-o", "yaml")
        time.sleep(max(0.0, 30 - (time.monotonic() - applied)))  # let retries show, if any
        assert len(warnings()) == 1 and warnings()[0].get("count", 1) == 1, warnings()
        logs = kube.run(
            "-n", "workerlab-system", "logs", "deployment/workerlab-operator", "--since=40s"
        ).stdout  # fmt: skip
        said = [line for line in logs.splitlines() if "exposed" in line]
        assert len(said) <= 5, "\n".join(said)
    finally:
        kube.run("delete", "wc", "exposed", "-n", ns, "--ignore-not-found", "--wait=false")


def test_bad_inputs_are_refused_and_nothing_is_half_done(classroom):
    kube, env = classroom.kube, classroom.instructor
    kube.ok("create", "namespace", "learner-e2e-x")  # someone else's, no learner label
    done = run(env, "workerlab", "class", "add", "e2e-y", "e2e-x", "--out", str(classroom.out))
    assert done.returncode == 2
    assert "not a workerlab learner's" in " ".join(done.stderr.split())
    assert kube.run("get", "namespace", "learner-e2e-y").returncode != 0  # nothing created
    assert kube.get("resourcequotas", "-n", "learner-e2e-x")["items"] == []
    assert not (classroom.out / "e2e-y.kubeconfig").exists()
    kube.ok("delete", "namespace", "learner-e2e-x", "--wait=false")

    bad = run(env, "workerlab", "class", "add", "Not_A_Label", "--out", str(classroom.out))
    assert bad.returncode == 2 and "not a valid learner name" in " ".join(bad.stderr.split())
    absent = run(env, "workerlab", "class", "remove", "e2e-never", "--out", str(classroom.out))
    assert absent.returncode == 2 and "not in the class" in " ".join(absent.stderr.split())


def test_remove_leaves_nothing_behind(classroom):
    kube, env = classroom.kube, classroom.instructor
    old_token = classroom.out / "old-a.kubeconfig"
    shutil.copy(classroom.out / "e2e-a.kubeconfig", old_token)
    ok(env, "workerlab", "class", "remove", *LEARNERS, "--out", str(classroom.out), timeout=500)
    for name in LEARNERS:
        assert kube.run("get", "namespace", f"learner-{name}").returncode != 0
        assert not (classroom.out / f"{name}.kubeconfig").exists()
    # no cluster-scoped leftovers
    for kind in ("clusterroles", "clusterrolebindings", "namespaces"):
        assert kube.get(kind, "-l", LABEL)["items"] == []
    # the token died with its ServiceAccount
    stale = dict(env, KUBECONFIG=str(old_token))
    stale.pop("WORKERLAB_KUBE_CONTEXT")
    done = run(stale, "kubectl", "get", "pods")
    assert done.returncode != 0 and "unauthorized" in done.stderr.lower(), done.stderr
    old_token.unlink()
    twice = run(env, "workerlab", "class", "remove", "e2e-a", "--out", str(classroom.out))
    assert twice.returncode == 2 and "not in the class" in " ".join(twice.stderr.split())
