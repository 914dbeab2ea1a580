"""4. Operator efficiency: API traffic and writes at rest, RSS, and 20 WorkerClusters at once.

- Writes at rest are counted from the API server's side: watches on everything the operator
  writes (the WorkerCluster and its status, pods, the Service, Events in `bench`, kopf's
  ClusterKopfPeering) over a window in which nothing changes. Each MODIFIED/ADDED/DELETED event
  is one write; pod MODIFIED events are the kubelet's and are reported apart.
- Requests per reconcile: the operator's own Controller, with a counting transport, reconciles
  the same WorkerCluster against the real API server (a steady reconcile, probe cache cold, as
  every 10 s poll finds it); reconciles per window come from the in-cluster operator's log.
- RSS: the kubelet's summary API (cgroup figures) for the operator's container.
- Burst: 20 WorkerClusters created at once vs 20 Deployments (same pod template, 1 replica x 1
  process), time until all pods exist and until all are Ready.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from common import CONTEXT, NAMESPACE, kubectl, log, ratio, wait_until
from workloads import GROUP_LABEL, Side

from api import Api
from workerlab.api.objects import pod_ready
from workerlab.api.resource import (
    API_VERSION,
    APP_NAME,
    LABEL_INSTANCE,
    LABEL_NAME,
    MANAGER,
    OPERATOR_NAMESPACE,
    PLURAL,
)
from workerlab.operator.controller import Controller
from workerlab.operator.kube import Kube
from workerlab.operator.metrics import Metrics
from workerlab.operator.processes import ProcessProbe

OPERATOR_NS, OPERATOR_CONTAINER = OPERATOR_NAMESPACE, "operator"
STEADY = "steady"
BURST = 20
# What the operator writes for one WorkerCluster, filtered to it, so other work may go on.
WATCHED = {
    "workerclusters": (
        f"/apis/{API_VERSION}/namespaces/{NAMESPACE}/{PLURAL}",
        f"fieldSelector=metadata.name={STEADY}",
    ),
    "pods": (
        f"/api/v1/namespaces/{NAMESPACE}/pods",
        f"labelSelector={LABEL_INSTANCE}={STEADY}",
    ),
    "services": (
        f"/api/v1/namespaces/{NAMESPACE}/services",
        f"fieldSelector=metadata.name={STEADY}",
    ),
    "events": (
        f"/api/v1/namespaces/{NAMESPACE}/events",
        f"fieldSelector=involvedObject.name={STEADY}",
    ),
    "kopf_peering": (
        "/apis/kopf.dev/v1/clusterkopfpeerings",
        "fieldSelector=metadata.name=workerlab",
    ),
}


def _watch(api: Api, path: str, selector: str, seconds: int) -> subprocess.Popen:
    version = api.get(path)["metadata"]["resourceVersion"]
    url = f"{path}?{selector}&watch=1&resourceVersion={version}&timeoutSeconds={seconds}"
    return subprocess.Popen(
        ["kubectl", "--context", CONTEXT, "get", "--raw", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _count(stream: str) -> Counter:
    counts: Counter = Counter()
    for line in stream.splitlines():
        if line.strip():
            counts[json.loads(line)["type"]] += 1
    return counts


def operator_rss() -> dict:
    where = "jsonpath={.items[0].metadata.name} {.items[0].spec.nodeName}"
    selector = f"{LABEL_NAME}={MANAGER}"
    pod = kubectl("get", "pods", "-n", OPERATOR_NS, "-l", selector, "-o", where).split()
    summary = json.loads(kubectl("get", "--raw", f"/api/v1/nodes/{pod[1]}/proxy/stats/summary"))
    for entry in summary["pods"]:
        if entry["podRef"]["name"] == pod[0]:
            for container in entry["containers"]:
                if container["name"] == OPERATOR_CONTAINER:
                    memory = container["memory"]
                    return {
                        "rss_mib": round(memory["rssBytes"] / 2**20, 1),
                        "working_set_mib": round(memory["workingSetBytes"] / 2**20, 1),
                    }
    return {}


def operator_pod() -> str:
    selector = f"{LABEL_NAME}={MANAGER}"
    where = "jsonpath={range .items[*]}{.metadata.name}:{.metadata.uid} {end}"
    return kubectl("get", "pods", "-n", OPERATOR_NS, "-l", selector, "-o", where).strip()


def _reconciles_logged(since: str, name: str) -> int | None:
    """None when the log cannot be read (e.g. the operator was redeployed meanwhile)."""
    try:
        out = kubectl(
            "logs", "-n", OPERATOR_NS, "deploy/workerlab-operator", f"--since-time={since}"
        )
    except RuntimeError as error:
        log(f"operator log unreadable: {error}")
        return None
    needle = f"reconciled: namespace={NAMESPACE} name={name} "
    return sum(1 for line in out.splitlines() if needle in line)


class CountingKube(Kube):
    def __init__(self, api) -> None:
        super().__init__(api)
        self.calls: Counter = Counter()

    def _call(self, method: str, path: str, body=None, **kw):
        self.calls[describe(method, path)] += 1
        return super()._call(method, path, body, **kw)


def describe(method: str, path: str) -> str:
    """'GET pods (list)', 'GET workerclusters', 'GET pods/proxy', 'PATCH workerclusters/status'."""
    parts = path.strip("/").split("/")
    at = parts.index("namespaces") + 2 if "namespaces" in parts else len(parts) - 1
    resource = "/".join([parts[at], *parts[at + 2 : at + 3]])
    listing = method == "GET" and len(parts) == at + 1
    return f"{method} {resource}" + (" (list)" if listing else "")


def requests_per_reconcile(api: Api) -> dict:
    kube = CountingKube(api.kube.api)
    controller = Controller(kube, ProcessProbe(kube.pod_processes), Metrics())
    asyncio.run(controller.reconcile((NAMESPACE, STEADY)))
    writes = sum(n for call, n in kube.calls.items() if not call.startswith("GET"))
    return {"requests": kube.calls.total(), "writes": writes, "by_call": dict(kube.calls)}


def steady_state(api: Api, window_s: int) -> dict:
    wc = Side("WorkerCluster", STEADY)
    api.delete(wc.path)
    wait_until(lambda: not api.instance_pods(NAMESPACE, STEADY), 120, what="old steady gone")
    api.post(wc.collection, wc.body(2))
    wait_until(lambda: _all_ready(api, STEADY, 2), 180, what="steady Ready")
    time.sleep(15)  # let the first status writes and process polls settle
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rss_before, pod_before = operator_rss(), operator_pod()
    log(f"steady state: watching writes for {window_s}s")
    watches = {name: _watch(api, *where, window_s) for name, where in WATCHED.items()}
    per_reconcile = requests_per_reconcile(api)
    counts = {}
    for name, proc in watches.items():
        out, _ = proc.communicate(timeout=window_s + 60)
        counts[name] = dict(_count(out))
    reconciles = _reconciles_logged(since, STEADY)
    pod_after = operator_pod()
    api.delete(wc.path)
    operator_writes = (
        counts["workerclusters"].get("MODIFIED", 0)
        + counts["pods"].get("ADDED", 0)
        + counts["pods"].get("DELETED", 0)
        + sum(counts["services"].values())
        + counts["events"].get("ADDED", 0)
    )
    peering = counts["kopf_peering"].get("MODIFIED", 0)
    return {
        "window_s": window_s,
        "watch_events": counts,
        "operator_writes_on_its_objects": operator_writes,
        "kopf_peering_keepalive_writes": peering,
        "reconciles_in_window": reconciles,
        "requests_per_steady_reconcile": per_reconcile,
        "requests_in_window_estimate": reconciles and reconciles * per_reconcile["requests"],
        # A redeployed operator resumes and may rewrite: such a window is not "at rest".
        "operator_pod_unchanged": pod_before == pod_after,
        "operator_pods": [pod_before, pod_after],
        "rss_before": rss_before,
        "rss_after": operator_rss(),
    }


def _all_ready(api: Api, instance: str, replicas: int) -> bool:
    live = [p for p in api.instance_pods(NAMESPACE, instance) if not p.terminating]
    return len(live) == replicas and all(p.ready for p in live)


def _burst_once(api: Api, kind: str) -> dict:
    sides = [Side(kind, f"burst-{kind[:3].lower()}-{i:02d}") for i in range(BURST)]
    selector = f"{GROUP_LABEL}=bench,{LABEL_NAME}={APP_NAME}"

    def live() -> list:
        names = {s.name for s in sides}
        pods = api.get(f"/api/v1/namespaces/{NAMESPACE}/pods", labelSelector=selector)["items"]
        return [
            p
            for p in pods
            if p["metadata"]["labels"].get(LABEL_INSTANCE) in names
            and "deletionTimestamp" not in p["metadata"]
        ]

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda s: Api().post(s.collection, s.body(1, processes=1)), sides))
    created_s = None
    try:

        def progress() -> bool:
            nonlocal created_s
            pods = live()
            if created_s is None and len(pods) >= BURST:
                created_s = round(time.monotonic() - started, 3)
            return len(pods) == BURST and all(pod_ready(p) for p in pods)

        wait_until(progress, 300, interval=0.5, what=f"{BURST} {kind}s Ready")
        ready_s = round(time.monotonic() - started, 3)
    finally:
        for side in sides:
            api.delete(side.path)
        wait_until(lambda: not live(), 300, interval=1, what="burst gone")
        wait_until(
            lambda: (
                not api.get(f"/api/v1/namespaces/{NAMESPACE}/pods", labelSelector=selector)["items"]
            ),
            300,
            interval=1,
            what="burst pods terminated",
        )
    log(f"burst {kind}: all pods created {created_s}s, all Ready {ready_s}s")
    return {"all_pods_created_s": created_s, "all_ready_s": ready_s}


def burst(api: Api) -> dict:
    wc = _burst_once(api, "WorkerCluster")
    rss = operator_rss()
    dep = _burst_once(api, "Deployment")
    return {
        "operator": wc,
        "deployment": dep,
        "operator_rss_after_burst": rss,
        "ratio_created": ratio(wc["all_pods_created_s"], dep["all_pods_created_s"]),
        "ratio_ready": ratio(wc["all_ready_s"], dep["all_ready_s"]),
    }
