"""Upgrades as a user of an existing cluster does them (issue 22, item 6; issue 23), on the
cluster `helm install` alone set up (conftest.py):

- `helm upgrade` to a new operator image rolls the operator while a WorkerCluster serves a
  bounded load through its Service (fresh connections, from the host to a node's NodePort):
  0 failed requests, and the new operator acts (a deleted pod is replaced);
- `helm upgrade` to a standby master (leaderElection, 2 replicas): the replicas on both
  workers; the active one's node frozen, the standby holds the Lease and heals within ~15 s,
  and the old one, woken, exits without writing.
(CRD upgrades and `helm uninstall`: test_e_uninstall.py, after the node loss of test_d.)
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request

import pytest
from support.own_cluster import NAME, OwnCluster, run, with_standby
from support.paths import REPO

from workerlab.api.objects import parse_time
from workerlab.api.resource import OPERATOR_LEASE

pytestmark = pytest.mark.e2e

NS = "upgrade-e2e"
MAX_REQUESTS = 20000  # the load is bounded in count and in time
MAX_LOAD_S = 400
INSTANCE = "app.kubernetes.io/instance=workerlab"


def served_cluster(own_cluster: OwnCluster) -> str:
    """wc/served (2 pods) behind a NodePort; the URL of a worker node's port."""
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NS, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    wc = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": "served", "namespace": NS},
        "spec": {"replicas": 2, "processesPerPod": 1, "service": {"type": "NodePort"}},
    }
    for manifest in (namespace, wc):
        own_cluster.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    own_cluster.kubectl("-n", NS, "wait", "--for=condition=Ready", "wc/served", "--timeout=240s")
    port = own_cluster.get("service", "served", "-n", NS)["spec"]["ports"][0]["nodePort"]
    node = own_cluster.get("node", f"{NAME}-worker")
    address = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    return f"http://{address}:{port}/"


class Load(threading.Thread):
    """GETs on fresh connections until stopped, or MAX_REQUESTS, or MAX_LOAD_S."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.ok, self.failed = url, threading.Event(), 0, []

    def run(self) -> None:
        deadline = time.monotonic() + MAX_LOAD_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            if self.ok + len(self.failed) >= MAX_REQUESTS:
                break
            request = urllib.request.Request(self.url, headers={"Connection": "close"})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    response.read()
                self.ok += 1
            except Exception as error:  # every failure is counted and shown
                self.failed.append(f"{time.strftime('%H:%M:%S')} {error}")
            time.sleep(0.02)


def new_operator_image(own_cluster: OwnCluster) -> str:
    """The same operator, rebuilt with a label: another digest, as a new release has."""
    current = own_cluster.image("operator")
    tag = own_cluster.tags["operator"] + "-next"
    dockerfile = f"FROM {current}\nLABEL dev.workerlab.upgrade-test={tag}\n"
    subprocess.run(
        ["docker", "build", "-q", "-t", own_cluster.image("operator", tag), "-"],
        input=dockerfile, env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    run("docker", "push", own_cluster.image("operator", tag), timeout=300)
    return tag


def operator_pods(own_cluster: OwnCluster) -> list[dict]:
    pods = own_cluster.get("pods", "-n", "workerlab-system", "-l", INSTANCE)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def test_helm_upgrade_rolls_the_operator_with_no_failed_request(own_cluster, figures):
    url = served_cluster(own_cluster)
    tag = new_operator_image(own_cluster)
    before = {p["metadata"]["name"] for p in operator_pods(own_cluster)}
    served_before = {p["metadata"]["name"] for p in own_cluster.get("pods", "-n", NS)["items"]}
    load = Load(url)
    load.start()
    time.sleep(3)
    started = time.monotonic()
    own_cluster.helm(
        "upgrade", "workerlab", str(REPO / "charts" / "workerlab"), "-n", "workerlab-system",
        "--reuse-values", "--set", f"operator.image.tag={tag}", "--wait", "--timeout", "300s",
    )  # fmt: skip
    upgrade_s = time.monotonic() - started
    time.sleep(5)
    load.stop.set()
    load.join(timeout=30)
    after = operator_pods(own_cluster)
    figures(
        "helm-upgrade-under-load",
        upgrade_s=round(upgrade_s, 1),
        requests_ok=load.ok,
        requests_failed=len(load.failed),
        operator_pods_before=sorted(before),
        operator_pods_after=sorted(p["metadata"]["name"] for p in after),
    )
    assert load.ok > 50, f"the load hardly ran: {load.ok} ok"
    assert not load.failed, f"{len(load.failed)} failed requests: {load.failed[:10]}"
    assert [p["spec"]["containers"][0]["image"] for p in after] == [
        own_cluster.image("operator", tag)
    ]
    assert not before & {p["metadata"]["name"] for p in after}, "the operator was not rolled"
    # The worker pods were not touched by an operator-only upgrade...
    served_after = {p["metadata"]["name"] for p in own_cluster.get("pods", "-n", NS)["items"]}
    assert served_after == served_before
    # ...and the new operator is the master: it replaces a deleted pod.
    victim = sorted(served_after)[0]
    own_cluster.kubectl("-n", NS, "delete", "pod", victim, "--wait=false")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        names = {p["metadata"]["name"] for p in own_cluster.get("pods", "-n", NS)["items"]}
        if victim not in names and len(names) == 2:
            break
        time.sleep(1)
    own_cluster.kubectl("-n", NS, "wait", "--for=condition=Ready", "wc/served", "--timeout=120s")


def lease_holder(own_cluster: OwnCluster) -> str:
    lease = own_cluster.get("lease", OPERATOR_LEASE, "-n", "workerlab-system")
    return str(lease["spec"].get("holderIdentity") or "")


def replaced_by(own_cluster: OwnCluster, since: float) -> list[str]:
    """The operator instances (Event.reportingInstance: the pod's name) that created a pod
    in place of a deleted one since `since` (epoch; the Events' times have whole seconds)."""
    events = own_cluster.get("events", "-n", NS)["items"]
    return sorted(
        str(e.get("reportingInstance"))
        for e in events
        if e.get("reason") == "ReplacedPod"
        and (stamp := parse_time(e.get("eventTime") or e.get("lastTimestamp"))) is not None
        and stamp.timestamp() >= int(since)
    )


def operator_logs(own_cluster: OwnCluster) -> str:
    """The operator pods' last lines (current and previous containers), for a failure message."""
    out = []
    for pod in own_cluster.get("pods", "-n", "workerlab-system", "-l", INSTANCE)["items"]:
        name = pod["metadata"]["name"]
        for previous in ("--previous=false", "--previous=true"):
            logs = own_cluster.kubectl_run(
                "-n", "workerlab-system", "logs", name, previous, "--tail=25", "--timestamps"
            )  # fmt: skip
            out.append(f"--- {name} {previous}\n{logs.stdout[-3000:]}")
    return "\n".join(out)


def test_a_standby_master_takes_over_when_the_active_ones_node_stops(own_cluster, figures):
    """`helm upgrade --set operator.leaderElection=true,operator.replicas=2`: two operator pods
    on the two workers, one holding the Lease. The active one's node frozen (`docker pause` of
    its kind node: a machine that stopped answering): the standby replaces a deleted worker pod
    within the Lease's 10 s + 5; the old master, woken, exits without writing (fencing) and its
    container comes back as a standby."""
    holder, pods = with_standby(own_cluster)
    nodes = sorted(pods.values())
    (standby,) = set(pods) - {holder}
    lost_node = pods[holder]
    own_cluster.kubectl("-n", NS, "wait", "--for=condition=Ready", "wc/served", "--timeout=120s")
    # A live pod: one still terminating from the test before would count as healed at once.
    victim = sorted(
        p["metadata"]["name"]
        for p in own_cluster.get("pods", "-n", NS)["items"]
        if not p["metadata"].get("deletionTimestamp")
    )[0]
    healed_s = None
    paused_at = time.time()
    run("docker", "pause", lost_node)
    assert run("docker", "inspect", "-f", "{{.State.Paused}}", lost_node).strip() == "true"
    try:
        stopped = time.monotonic()
        own_cluster.kubectl("-n", NS, "delete", "pod", victim, "--wait=false")
        while time.monotonic() < stopped + 60:
            names = {
                p["metadata"]["name"]
                for p in own_cluster.get("pods", "-n", NS)["items"]
                if not p["metadata"].get("deletionTimestamp")
            }
            if victim not in names and len(names) == 2:
                healed_s = time.monotonic() - stopped
                break
            time.sleep(0.5)
        new_holder = lease_holder(own_cluster)
    finally:
        run("docker", "unpause", lost_node)
    # Woken past its Lease, the old master exits (status 3) and restarts as a standby.
    deadline = time.monotonic() + 90
    exit_code = None
    while time.monotonic() < deadline and exit_code is None:
        status = own_cluster.get("pod", holder, "-n", "workerlab-system")["status"]
        last = (status.get("containerStatuses") or [{}])[0].get("lastState", {})
        exit_code = (last.get("terminated") or {}).get("exitCode")
        time.sleep(1)
    figures(
        "standby-master-takeover",
        operator_nodes=nodes,
        paused_node=lost_node,
        old_master=holder,
        standby=standby,
        new_holder=new_holder,
        healed_after_node_stop_s=None if healed_s is None else round(healed_s, 1),
        old_master_exit_code=exit_code,
        healed_by=(healers := replaced_by(own_cluster, paused_at)),
    )
    assert healed_s is not None, f"{victim} was not replaced within 60 s of {lost_node} stopping"
    assert healers == [standby] and new_holder == standby, operator_logs(own_cluster)
    assert healed_s <= 10 + 5 + 5, f"the standby healed after {healed_s:.1f} s"
    assert exit_code == 3, f"the old master's container: last exit {exit_code} (3: lost the Lease)"
    assert lease_holder(own_cluster) == standby  # the woken one did not take it back
