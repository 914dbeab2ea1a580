"""The add-ons on the kind cluster (issue 5): all traffic enters from the host on 127.0.0.1.

- Ingress: Traefik (built from its Go module) routes a WorkerCluster's `spec.ingress` (class
  `traefik`, Host header) from 127.0.0.1:30081 and spreads requests over every pod.
- The seed's nginx: its upstream block lists the sample WorkerCluster's pods; 127.0.0.1:30082
  spreads requests over every one of them (read-only use of wc/demo).
- Redis: with REDIS_URL, concurrent POST /counter through a NodePort from the host gives exactly
  N increments across pods and processes; without it, each process counts on its own.

`kubectl apply -k manifests/addons` is applied here (idempotent); the images must already be in
the lab's registry (hack/build-addon-images.sh and hack/registry.sh, both run by `make up`).
Every load loop is bounded in count and time. Without a cluster the tests FAIL with the reason.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support.paths import CACHE, REPO

pytestmark = pytest.mark.e2e


ADDONS = REPO / "manifests" / "addons"
# `make up` applies manifests/addons through this overlay, each image pinned to its immutable
# tag: applying it again changes nothing, where the bare tree would roll every add-on.
PINNED = CACHE / "overlays" / "addons"
INGRESS_URL = "http://127.0.0.1:30081/"
NGINX_URL = "http://127.0.0.1:30082/"
ROLLOUTS = (
    ("workerlab", "deployment/redis"),
    ("workerlab", "deployment/nginx"),
    ("workerlab-ingress", "deployment/traefik"),
    ("workerlab-metrics", "deployment/metrics-server"),
)
REQUESTS = 120  # per spread measurement: bounded count ...
DEADLINE_S = 60  # ... and time


# --- helpers -------------------------------------------------------------------------------------


def http(
    url: str, *, method: str = "GET", host: str | None = None, timeout: float = 5
) -> tuple[int, dict[str, Any]]:
    """One request on a fresh connection (so a layer-4 balancer may pick another pod)."""
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    request.add_header("Connection", "close")
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body)
        except ValueError:
            return error.code, {"raw": body[:200].decode(errors="replace")}


def bounded_load(
    send: Callable[[], tuple[int, dict[str, Any]]], count: int, concurrency: int, deadline_s: float
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Run `send` up to `count` times with `concurrency` threads, stopping at the deadline.
    Returns the 200 bodies and a Counter of the other outcomes."""
    stop_at = time.monotonic() + deadline_s
    failures: Counter[str] = Counter()

    def one(_: int) -> dict[str, Any] | None:
        if time.monotonic() > stop_at:
            failures["skipped (deadline)"] += 1
            return None
        try:
            status, body = send()
        except OSError as error:
            failures[type(error).__name__] += 1
            return None
        if status != 200:
            failures[f"HTTP {status}"] += 1
            return None
        return body

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        bodies = [body for body in pool.map(one, range(count)) if body is not None]
    return bodies, failures


def distribution(bodies: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(body["pod"] for body in bodies).items()))


def assert_spread(name: str, bodies: list[dict[str, Any]], pods: set[str], figures) -> None:
    by_pod = distribution(bodies)
    processes = {(body["pod"], body["pid"]) for body in bodies}
    fair = len(bodies) / len(pods)
    figures(
        f"addons-{name}",
        requests=len(bodies),
        pods=len(pods),
        by_pod=by_pod,
        distinct_pod_pid=len(processes),
        min_share_of_fair=round(min(by_pod.values(), default=0) / fair, 2),
    )
    assert set(by_pod) == pods, f"{name}: answered by {sorted(by_pod)}, pods are {sorted(pods)}"
    # A layer-7 round robin: every pod gets at least half its fair share.
    assert min(by_pod.values()) >= fair / 2, f"{name}: uneven spread {by_pod}"


def ready_pods(kube, ns: str, instance: str) -> set[str]:
    pods = kube.get(
        "pods",
        "-n",
        ns,
        "-l",
        f"app.kubernetes.io/name=workerlab-worker,app.kubernetes.io/instance={instance}",
    )["items"]
    return {
        pod["metadata"]["name"]
        for pod in pods
        if not pod["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod["status"].get("conditions", [])
        )
    }


def worker_cluster(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 2, "processesPerPod": 2, **spec},
    }


def wait_wc_ready(kube, ns: str, name: str, replicas: int, wait_for) -> set[str]:
    kube.ok("wait", "--for=condition=Ready", f"wc/{name}", "-n", ns, "--timeout=180s", timeout=190)
    return wait_for(
        lambda: (pods := ready_pods(kube, ns, name)) and len(pods) == replicas and pods,
        60,
        f"{replicas} Ready pods of wc/{name}",
    )


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def addons(cluster, wait_for):
    """The add-ons installed and rolled out (manifests/addons, pinned as make up pins them)."""
    cluster.ok("apply", "-k", str(PINNED if PINNED.is_dir() else ADDONS), timeout=120)
    for ns, deployment in ROLLOUTS:
        result = cluster.run(
            "rollout", "status", deployment, "-n", ns, "--timeout=120s", timeout=130
        )
        if result.returncode != 0:
            pods = cluster.run("get", "pods", "-n", ns, "-o", "wide").stdout
            pytest.fail(
                f"{deployment} in {ns} did not roll out: {result.stderr.strip()}\n{pods}\n"
                "Are the add-on images in the lab's registry? make up builds and pushes them "
                "(hack/registry.sh push)"
            )
    return cluster


@pytest.fixture(scope="module")
def lab_ns(module_namespace):
    """One namespace for this module's WorkerClusters (restricted PSS), deleted at the end."""
    return module_namespace("e2e-addons")


@pytest.fixture(scope="module")
def workloads(addons, lab_ns):
    """Create every WorkerCluster of the module at once (their pods start in parallel)."""
    host = f"web.{lab_ns}.test"
    db = random.randint(1, 15)  # a Redis database of our own: other users' counters don't mix
    redis_url = f"redis://redis.workerlab.svc.cluster.local:6379/{db}"
    specs = {
        "web": worker_cluster(
            "web",
            lab_ns,
            replicas=3,
            ingress={"enabled": True, "className": "traefik", "host": host, "path": "/"},
        ),
        "shared": worker_cluster("shared", lab_ns, env=[{"name": "REDIS_URL", "value": redis_url}]),
        "local": worker_cluster("local", lab_ns),
    }
    for manifest in specs.values():
        addons.apply(manifest)
    return {"ns": lab_ns, "host": host, "redis_url": redis_url}


@pytest.fixture(scope="module")
def counter_port(addons, workloads, node_port_service):
    """A NodePort Service of our own (on a spare port) whose selector the Redis test switches."""
    return node_port_service(workloads["ns"], "counter", {"app.kubernetes.io/instance": "local"})


# --- tests ---------------------------------------------------------------------------------------


def test_addon_pods_run_under_restricted(addons) -> None:
    for ns, deployment in ROLLOUTS:
        labels = addons.get("namespace", ns)["metadata"].get("labels", {})
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", (ns, labels)
        name = deployment.split("/")[1]
        pods = addons.get("pods", "-n", ns, "-l", f"app.kubernetes.io/name={name}")["items"]
        assert pods and all(p["status"]["phase"] == "Running" for p in pods), deployment
        for pod in pods:
            container = pod["spec"]["containers"][0]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_ingress_spreads_over_every_pod(addons, workloads, wait_for, figures) -> None:
    ns, host = workloads["ns"], workloads["host"]
    pods = wait_wc_ready(addons, ns, "web", 3, wait_for)
    ingress = wait_for(
        lambda: addons.get("ingress", "web", "-n", ns), 60, "the operator to create Ingress web"
    )
    assert ingress["spec"]["ingressClassName"] == "traefik"

    def routed() -> bool:
        status, body = http(INGRESS_URL, host=host, timeout=3)
        return status == 200 and body.get("pod") in pods

    started = time.monotonic()
    wait_for(routed, 60, f"Traefik to route Host {host} on {INGRESS_URL}")

    def routes_every_pod() -> bool:
        # Traefik learns endpoints from EndpointSlices a moment after the pods are Ready.
        seen = {http(INGRESS_URL, host=host, timeout=3)[1].get("pod") for _ in range(15)}
        return pods <= seen

    wait_for(routes_every_pod, 60, f"Traefik to route Host {host} to all {len(pods)} pods")
    routed_after = round(time.monotonic() - started, 1)
    address = wait_for(
        lambda: addons.get("ingress", "web", "-n", ns)["status"]["loadBalancer"]["ingress"],
        30,
        "Traefik to publish the Ingress address",
    )
    assert address == [{"ip": "127.0.0.1"}], address
    # Unknown hosts are not routed to the pods.
    assert http(INGRESS_URL, host="nobody.invalid")[0] == 404

    bodies, failures = bounded_load(lambda: http(INGRESS_URL, host=host), REQUESTS, 4, DEADLINE_S)
    print(f"\nTraefik routed Host {host} {routed_after}s after wc Ready; failures {dict(failures)}")
    assert not failures, failures
    assert_spread("ingress-traefik", bodies, pods, figures)


def test_seed_nginx_upstream_spreads_over_every_pod(addons, wait_for, figures) -> None:
    """Read-only on wc/demo: nginx's upstream lists its Ready pods; every one of them answers."""
    pods = ready_pods(addons, "workerlab", "demo")
    if not pods:
        pytest.fail("wc/demo in namespace workerlab has no Ready pod (make up applies it)")

    def upstream_complete() -> bool:
        bodies, _ = bounded_load(lambda: http(NGINX_URL), 4 * len(pods), 2, 10)
        return {body["pod"] for body in bodies} == pods

    wait_for(upstream_complete, 60, f"nginx on {NGINX_URL} to reach every pod of {sorted(pods)}")
    bodies, failures = bounded_load(lambda: http(NGINX_URL), REQUESTS, 4, DEADLINE_S)
    assert not failures, failures
    assert_spread("nginx-upstream", bodies, pods, figures)
    # The seed's upstream block, generated: one `server POD_IP:8000;` per Ready pod of wc/demo.
    upstream = addons.ok(
        "exec", "-n", "workerlab", "deployment/nginx", "--", "cat", "/tmp/nginx/upstream.conf"
    )
    print(f"\n{upstream}")
    ips = {
        pod["status"]["podIP"]
        for pod in addons.get("pods", "-n", "workerlab", "-l", "app.kubernetes.io/instance=demo")[
            "items"
        ]
        if pod["metadata"]["name"] in pods
    }
    servers = {line.split()[1].rstrip(";") for line in upstream.splitlines() if "server " in line}
    assert servers == {f"{ip}:8000" for ip in ips}, upstream


def test_counter_is_per_process_without_redis(addons, workloads, counter_port, wait_for, figures):
    ns = workloads["ns"]
    pods = wait_wc_ready(addons, ns, "local", 2, wait_for)
    url = f"http://127.0.0.1:{counter_port}/counter"
    wait_for(lambda: http(url)[1].get("pod") in pods, 60, f"{url} to answer")
    n = 100
    bodies, failures = bounded_load(lambda: http(url, method="POST"), n, 8, DEADLINE_S)
    assert not failures, failures
    assert {body["backend"] for body in bodies} == {"process"}
    last: dict[str, int] = {}
    for body in bodies:
        key = f"{body['pod']}/{body['pid']}"
        last[key] = max(last.get(key, 0), body["count"])
    figures("addons-counter-without-redis", posts=n, final_count_by_process=last)
    assert len(last) >= 2, f"only one process answered: {last}"
    assert max(last.values()) < n, "one process saw every increment: the spread failed"
    # Every increment happened, but each process only knows its own share.
    assert sum(last.values()) == n, last


def test_counter_is_exact_with_redis(addons, workloads, counter_port, wait_for, figures) -> None:
    ns = workloads["ns"]
    pods = wait_wc_ready(addons, ns, "shared", 2, wait_for)
    selector = {"spec": {"selector": {"app.kubernetes.io/instance": "shared"}}}
    addons.ok("patch", "service", "counter", "-n", ns, "--type=merge", "-p", json.dumps(selector))
    url = f"http://127.0.0.1:{counter_port}/counter"

    def only_shared() -> dict[str, Any] | None:  # kube-proxy follows the new selector in seconds
        answers = [http(url)[1] for _ in range(6)]
        if all(a.get("backend") == "redis" and a.get("pod") in pods for a in answers):
            return answers[-1]
        return None

    before = wait_for(only_shared, 60, f"{url} to answer from wc/shared only")["count"]
    n = 200
    started = time.monotonic()
    bodies, failures = bounded_load(lambda: http(url, method="POST"), n, 16, DEADLINE_S)
    elapsed = time.monotonic() - started
    assert not failures, failures
    status, final = http(url)
    by_process = Counter(f"{b['pod']}/{b['pid']}" for b in bodies)
    figures(
        "addons-counter-with-redis",
        redis_url=workloads["redis_url"],
        posts=n,
        concurrency=16,
        before=before,
        after=final.get("count"),
        seconds=round(elapsed, 2),
        posts_by_process=dict(sorted(by_process.items())),
    )
    assert status == 200 and final["backend"] == "redis"
    assert final["count"] == before + n, f"{n} increments from {before} gave {final['count']}"
    # INCR is atomic: the POSTs returned every value in between, each exactly once.
    assert sorted(b["count"] for b in bodies) == list(range(before + 1, before + n + 1))
    assert {b["pod"] for b in bodies} == pods, "the increments did not cross pods"
    assert len(by_process) > len(pods), "the increments did not cross processes within a pod"
