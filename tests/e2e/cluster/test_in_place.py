"""processesPerPod and CPU changed in place on the kind cluster (issue 26), in a namespace of
its own (restricted PSS):

- processesPerPod 2→4: the same pods and arbiter pids, 4 processes each in the operator's
  status, no restart, a ChangedInPlace Event; the template hash unchanged;
- the count survives the arbiter's reload (HUP to pid 1: all processes new, same arbiter) and a
  process crash (re-forked to 4);
- a CPU resize: the kubelet applies it to the running container (containerStatuses[].resources),
  no restart, the same pods;
- an image change cannot be done in place: a rolling update (new pods), said in an Event.
"""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.e2e

WC = "inplace"
CHANGE_TIMEOUT_S = 120
ROLL_TIMEOUT_S = 300


def pods(cluster, ns: str) -> dict[str, dict]:
    items = cluster.get("pods", "-n", ns, "-l", f"app.kubernetes.io/instance={WC}")["items"]
    return {p["metadata"]["name"]: p for p in items if not p["metadata"].get("deletionTimestamp")}


def processes(cluster, ns: str, pod: str) -> dict:
    raw = cluster.ok("get", "--raw", f"/api/v1/namespaces/{ns}/pods/{pod}:8000/proxy/processes")
    return json.loads(raw)


def alive(report: dict) -> set[int]:
    return {p["pid"] for p in report["processes"] if p["alive"]}


def patch(cluster, ns: str, spec: dict) -> None:
    cluster.ok("-n", ns, "patch", "wc", WC, "--type", "merge", "-p", json.dumps({"spec": spec}))


def ready_at(cluster, ns: str, generation: int) -> dict | None:
    """The WorkerCluster once Ready for `generation`, else None."""
    wc = cluster.get("wc", WC, "-n", ns)
    status = wc.get("status") or {}
    ready = {c["type"]: c["status"] for c in status.get("conditions") or []}.get("Ready")
    if status.get("observedGeneration") == generation and ready == "True":
        return wc
    return None


def events(cluster, ns: str, reason: str) -> list[str]:
    items = cluster.get("events", "-n", ns, "--field-selector", f"reason={reason}")["items"]
    return [str(e.get("message")) for e in items]


@pytest.fixture(scope="module")
def served(cluster, module_namespace, wait_for):
    ns = module_namespace("inplace")
    cluster.apply(
        {
            "apiVersion": "workerlab.dev/v1alpha1",
            "kind": "WorkerCluster",
            "metadata": {"name": WC, "namespace": ns},
            "spec": {"replicas": 2, "processesPerPod": 2, "labMode": True},
        }
    )
    wait_for(lambda: ready_at(cluster, ns, 1), 240, "wc/inplace Ready")
    return ns


def test_processes_per_pod_changes_in_place_and_survives_a_reload_and_a_crash(
    cluster, served, wait_for, figures
):
    ns = served
    before = pods(cluster, ns)
    arbiters = {name: processes(cluster, ns, name)["arbiter_pid"] for name in before}
    hashes = {p["metadata"]["labels"]["workerlab.dev/template-hash"] for p in before.values()}
    patch(cluster, ns, {"processesPerPod": 4})
    started = time.monotonic()
    wc = wait_for(lambda: ready_at(cluster, ns, 2), CHANGE_TIMEOUT_S, "4 processes in place")
    took_s = time.monotonic() - started
    after = pods(cluster, ns)
    assert set(after) == set(before), "pods were replaced, not changed in place"
    assert [p["processes"] for p in wc["status"]["pods"]] == [4, 4]
    assert wc["status"]["readyProcesses"] == 8
    for name, pod in after.items():
        report = processes(cluster, ns, name)
        assert report["arbiter_pid"] == arbiters[name] and len(alive(report)) == 4
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
        assert pod["metadata"]["labels"]["workerlab.dev/template-hash"] in hashes
    told = [m for m in events(cluster, ns, "ChangedInPlace") if "processes 2→4" in m]
    assert len(told) == 2 and all(m.endswith("no restart") for m in told), told

    # The arbiter's reload (gunicorn's HUP) re-reads the count: 4 new processes, same arbiter.
    pod = sorted(after)[0]
    first = alive(processes(cluster, ns, pod))
    cluster.ok("-n", ns, "exec", pod, "--", "sh", "-c", "kill -HUP 1")

    def reloaded() -> bool:
        now = alive(processes(cluster, ns, pod))
        return len(now) == 4 and not now & first

    wait_for(reloaded, 60, "a reload keeping 4 processes")
    # A process crash (lab mode's POST /crash): re-forked, still 4.
    crash = f"/api/v1/namespaces/{ns}/pods/{pod}:8000/proxy/crash"
    crashed = json.loads(cluster.ok("create", "--raw", crash, "-f", "-", stdin="{}"))["pid"]

    def re_forked() -> bool:
        now = alive(processes(cluster, ns, pod))
        return len(now) == 4 and crashed not in now

    wait_for(re_forked, 60, "the crashed process re-forked")
    assert processes(cluster, ns, pod)["arbiter_pid"] == arbiters[pod]
    figures("in-place-processes-e2e", two_to_four_ready_s=round(took_s, 1))


def test_a_cpu_resize_is_applied_to_the_running_containers(cluster, served, wait_for, figures):
    ns = served
    before = pods(cluster, ns)
    generation = cluster.get("wc", WC, "-n", ns)["metadata"]["generation"] + 1
    resources = {"requests": {"cpu": "120m", "memory": "256Mi"}, "limits": {"memory": "640Mi"}}
    patch(cluster, ns, {"resources": resources})
    started = time.monotonic()
    wait_for(lambda: ready_at(cluster, ns, generation), CHANGE_TIMEOUT_S, "the resize done")
    took_s = time.monotonic() - started
    after = pods(cluster, ns)
    assert set(after) == set(before)
    for pod in after.values():
        (status,) = pod["status"]["containerStatuses"]
        assert status["resources"]["requests"]["cpu"] == "120m", status.get("resources")
        assert status["resources"]["limits"]["memory"] == "640Mi"
        assert status["restartCount"] == 0
    assert any("cpu 120m/-" in m for m in events(cluster, ns, "ChangedInPlace"))
    figures("in-place-resize-e2e", resize_ready_s=round(took_s, 1))


def test_an_image_change_falls_back_to_a_rolling_update_and_says_so(
    cluster, served, wait_for, worker_image
):
    ns = served
    before = set(pods(cluster, ns))
    # The same worker by another reference (a digest-free tag of the lab's registry): a new
    # image for the pod spec, which no running container can switch to.
    other = worker_image.rsplit(":", 1)[0] + ":0.1.0"
    assert other != worker_image
    generation = cluster.get("wc", WC, "-n", ns)["metadata"]["generation"] + 1
    patch(cluster, ns, {"image": other})
    wait_for(lambda: ready_at(cluster, ns, generation), ROLL_TIMEOUT_S, "the rolling update")
    after = pods(cluster, ns)
    assert not set(after) & before, "an image change must replace the pods"
    assert {p["spec"]["containers"][0]["image"] for p in after.values()} == {other}
    rolls = events(cluster, ns, "RollingUpdate")
    assert any(f"image {worker_image} → {other}" in m for m in rolls), rolls
