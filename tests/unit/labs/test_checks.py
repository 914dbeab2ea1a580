"""The checkers' verdicts on fake facts: each lab passes on its solved state and fails, with a
hint for every failed item, on a fresh or wrong one. (The facts' shapes are what kubectl, the
worker and the journal really return; e2e runs the same checkers on the real cluster.)"""

import re
from datetime import UTC, datetime

import pytest

from workerlab.api.objects import changed_in_place_message
from workerlab.labs import course

CHECKERS = {lab.number: course.checker(lab) for lab in course.labs()}
lab02 = course.check_module(course.get(2))

T0 = 1_800_000_000.0  # the lab's start


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wc(name="demo", replicas=2, ppp=2, env=None, conditions=None, uid="wc-uid", gen=1):
    conds = conditions or [{"type": "Ready", "status": "True", "reason": "AllPodsReady"}]
    return {
        "metadata": {"name": name, "namespace": "workerlab", "uid": uid, "generation": gen},
        "spec": {"replicas": replicas, "processesPerPod": ppp, "env": env or []},
        "status": {
            "observedGeneration": gen,
            "replicas": replicas,
            "readyReplicas": replicas,
            "updatedReplicas": replicas,
            "conditions": conds,
        },
    }


def pod(name, created=T0 + 10, ready=True, restarts=0, hash_="h1", owner="wc-uid"):
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": iso(created),
            "labels": {"workerlab.dev/template-hash": hash_},
            "ownerReferences": [{"uid": owner, "controller": True}],
        },
        "spec": {"nodeName": "node"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"restartCount": restarts, "state": {"running": {}}}],
        },
    }


def run(
    port=30080,
    wc_name="demo",
    path="/",
    method="GET",
    start=T0 + 100,
    end=T0 + 200,
    by_pod=None,
    by_process=None,
    ok=100,
    errors=0,
    processes=None,
    probe_p50=None,
    keepalive=False,
    concurrency=None,
):
    by_pod = by_pod or {}
    return {
        "keepalive": keepalive,
        "concurrency": concurrency,
        "started_at": start,
        "ended_at": end,
        "base_url": f"http://127.0.0.1:{port}/",
        "wc": wc_name,
        "path": path,
        "method": method,
        "target_processes": processes,
        "summary": {
            "ok": ok,
            "errors": errors,
            "errors_by_kind": {"disconnected": errors} if errors else {},
            "by_pod": by_pod,
            "by_process": by_process or {},
            "probe_latency_ms": {"p50_ms": probe_p50},
        },
    }


# what a dict, list or missing value looks like when it leaks into the output unformatted
PYTHON_REPR = re.compile(r"[\[{]'|'[\]}]|[\[{][\]}]|\bNone\b|\(\)")


def squeezed(text: str) -> str:
    return re.sub(r"[\s()'`]", "", text).lower()


def verdict(number, facts):
    items = CHECKERS[number].evaluate(facts)
    for it in items:
        assert it.passed or it.hint, f"failed item without a hint: {it.name}"
        for said in (it.name, it.detail, it.hint):
            assert not PYTHON_REPR.search(said), f"lab {number} prints Python data: {said!r}"
        # `lab check` prints name (detail), then the hint: the evidence is said once.
        if it.detail:
            shown = squeezed(it.name) + "|" + squeezed(it.hint if not it.passed else "")
            assert squeezed(it.detail) not in shown, f"lab {number} repeats {it.detail!r}: {it}"
    return all(it.passed for it in items), items


def local(processes, p50):
    return run(port=8001, wc_name=None, path="/work/cpu?ms=200", processes=processes, probe_p50=p50)


def balance_run(mode, by_process, port=8003, processes=3, keepalive=False):
    pids = [f"lab1/{100 + i}" for i in range(processes)]
    done = run(
        port=port,
        wc_name=None,
        path="/",
        processes=processes,
        by_process=by_process,
        ok=sum(by_process.values()),
        keepalive=keepalive,
        concurrency=16,
    )
    done["target_balance"] = mode
    done["summary"]["expected_processes"] = pids
    done["summary"]["fairness"] = {"jain_processes": 0.85}
    return done


BOTH_MODES = [
    balance_run("shared", {"lab1/100": 86, "lab1/101": 233, "lab1/102": 281}),
    balance_run("reuseport", {"lab1/100": 200, "lab1/101": 198, "lab1/102": 202}, port=8004),
]


def test_lab1():
    part1 = [local(1, 105.0), local(2, 9.0)]
    assert verdict(1, {"runs": part1 + BOTH_MODES})[0]
    assert not verdict(1, {"runs": []})[0]
    assert not verdict(1, {"runs": [local(1, 105.0), *BOTH_MODES]})[0]
    passed, items = verdict(1, {"runs": [local(1, 12.0), local(2, 9.0), *BOTH_MODES]})
    assert not passed and "--concurrency 1" in items[2].hint


def processes_report(
    arbiter=100, alive=((201, 0, 50.0), (202, 1, 40.0), (203, 2, 60.0)), dead=((200, 0, 45.0),)
):
    recs = [{"pid": p, "index": i, "started_at": s, "alive": True} for p, i, s in alive]
    recs += [
        {"pid": p, "index": i, "exited_at": e, "alive": False, "exit": "exited"} for p, i, e in dead
    ]
    return {"arbiter_pid": arbiter, "processes": recs}


def test_lab2():
    facts = {
        "url": lab02.DEFAULT_URL,
        "report": processes_report(),
        "parents": {201: 100, 202: 100, 203: 100},
    }
    assert verdict(2, facts)[0]
    assert not verdict(2, {"url": lab02.DEFAULT_URL, "error": "ConnectError"})[0]
    fresh = {
        "url": lab02.DEFAULT_URL,
        "report": processes_report(dead=()),
        "parents": {201: 100, 202: 100},
    }
    passed, items = verdict(2, fresh)
    assert not passed and "crash" in items[1].hint
    # a replacement whose parent is not the arbiter was not healed by it
    foreign = dict(facts, parents={201: 1, 202: 100, 203: 100})
    assert not verdict(2, foreign)[0]


def test_lab2_parent_pid_reads_proc(tmp_path):
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "status").write_text("Name:\tx\nPPid:\t7\n")
    assert lab02.parent_pid(42, tmp_path) == 7
    assert lab02.parent_pid(43, tmp_path) is None


def test_lab3():
    crd = {"status": {"conditions": [{"type": "Established", "status": "True"}]}}
    solved = {
        "crd": crd,
        "operator": {"status": {"availableReplicas": 1}},
        "wc": wc("first"),
        "pods": [pod("first-a"), pod("first-b")],
        "events": [{"reason": "Created"}],
    }
    assert verdict(3, solved)[0]
    passed, items = verdict(3, dict(solved, wc=None, pods=[], events=[]))
    assert not passed and "metadata.name: first" in items[-1].hint
    assert not verdict(3, dict(solved, crd=None, operator=None, wc=None))[0]
    assert not verdict(3, dict(solved, pods=[pod("first-a", owner="other")]))[0]


def demo_processes(dead=True):
    recs = [{"pid": 7, "alive": True}, {"pid": 8, "alive": True}]
    if dead:
        recs.append({"pid": 6, "alive": False})
    return {"processes": recs}


def test_lab4():
    degraded = [
        {
            "type": "Degraded",
            "status": "True",
            "reason": "CrashLoopBackOff",
            "message": "pod crashy-x: CrashLoopBackOff, 3 restarts",
        }
    ]
    solved = {
        "started_at": T0,
        "demo": wc(),
        "pods": [pod("demo-c"), pod("demo-d")],
        "processes": {"demo-c": demo_processes(), "demo-d": demo_processes(False)},
        "events": [
            {
                "reason": "ReplacedPod",
                "message": "Created pod demo-c",
                "lastTimestamp": iso(T0 + 10),
            }
        ],
        "crashy": wc("crashy", replicas=1, conditions=degraded),
        "crashy_pods": [pod("crashy-x", restarts=3, ready=False)],
    }
    assert verdict(4, solved)[0]
    fresh = dict(
        solved,
        pods=[pod("demo-a", created=T0 - 100)],
        crashy=None,
        crashy_pods=[],
        processes={"demo-a": demo_processes(False)},
    )
    passed, items = verdict(4, fresh)
    assert not passed and any("kill-pod" in it.hint for it in items)
    assert not verdict(4, dict(solved, started_at=None))[0]
    # a process healed by a container restart is the kubelet, not the arbiter
    restarted = dict(solved, pods=[pod("demo-c", restarts=1), pod("demo-d")])
    assert not verdict(4, restarted)[0]


def spread_run(pods, per_pod=3, start=T0 + 100):
    return run(
        start=start,
        by_pod={p: 100 for p in pods},
        by_process={f"{p}/{pid}": 33 for p in pods for pid in range(per_pod)},
        path="/work/cpu?ms=20",
    )


def lab5_events(changed: list[str], rolled: bool = True) -> list[dict]:
    """demo's Events since the reset: pods changed in place, then a rolling update."""
    told = [
        {
            "involvedObject": {"kind": "WorkerCluster", "name": "demo"},
            "reason": "ChangedInPlace",
            "message": changed_in_place_message(name, "processes 2→3, memory 128Mi/320Mi"),
        }
        for name in changed
    ]
    roll = {
        "involvedObject": {"kind": "WorkerCluster", "name": "demo"},
        "reason": "RollingUpdate",
        "message": "rolling update to template abc: the pod template (env, ...) cannot ...",
    }
    return told + ([roll] if rolled else [])


def test_lab5():
    pods = [pod(f"demo-{i}") for i in "xyz"]
    names = [p["metadata"]["name"] for p in pods]
    solved = {
        "demo": wc(replicas=3, ppp=3),
        "pods": pods,
        "alive": dict.fromkeys(names, 3),
        "runs": [spread_run(names)],
        "events": lab5_events(["demo-a", "demo-b", "demo-c"]),
    }
    assert verdict(5, solved)[0]
    assert not verdict(5, dict(solved, demo=wc()))[0]
    # the processes changed by a roll, not in place; or never rolled after the in-place change
    assert not verdict(5, dict(solved, events=lab5_events([])))[0]
    assert not verdict(5, dict(solved, events=lab5_events(["demo-a", "demo-b"], rolled=False)))[0]
    # the pods changed in place still running: the env patch has not rolled them yet
    assert not verdict(5, dict(solved, events=lab5_events(["demo-x", "demo-y"])))[0]
    # a run from before the scale does not count
    assert not verdict(5, dict(solved, runs=[spread_run(names, start=T0)]))[0]
    assert not verdict(5, dict(solved, runs=[spread_run(names, per_pod=1)]))[0]
    assert not verdict(5, dict(solved, alive=dict.fromkeys(names, 2)))[0]


def test_lab6():
    pods = ["demo-a", "demo-b"]
    service = run(port=30080, by_pod={"demo-a": 200})
    nginx = run(port=30082, by_pod={"demo-a": 100, "demo-b": 100})
    assert verdict(6, {"pods": pods, "runs": [service, nginx]})[0]
    passed, items = verdict(6, {"pods": pods, "runs": [service]})
    assert not passed and "addons/nginx" in items[1].hint
    skewed = run(port=30082, by_pod={"demo-a": 190, "demo-b": 10})
    assert not verdict(6, {"pods": pods, "runs": [service, skewed]})[0]


def test_lab7():
    env = [{"name": "ROLLOUT", "value": "v2"}]
    pods = [
        pod("demo-n1", created=T0 + 30, hash_="h2"),
        pod("demo-n2", created=T0 + 50, hash_="h2"),
    ]
    during = run(start=T0 + 5, end=T0 + 95)
    solved = {"started_at": T0, "demo": wc(env=env), "pods": pods, "runs": [during]}
    assert verdict(7, solved)[0]
    passed, items = verdict(7, dict(solved, runs=[run(start=T0 + 5, end=T0 + 95, errors=3)]))
    assert not passed and "readiness" in items[-1].hint
    # a run that ended before the rollout finished did not cover it
    assert not verdict(7, dict(solved, runs=[run(start=T0 + 5, end=T0 + 40)]))[0]
    mixed = [pods[0], pod("demo-old", created=T0 - 60, hash_="h1")]
    assert not verdict(7, dict(solved, pods=mixed))[0]
    assert not verdict(7, dict(solved, demo=wc()))[0]


def test_lab8():
    env = [{"name": "REDIS_URL", "value": "redis://redis:6379/0"}]
    reads = [{"pod": "demo-a", "pid": p, "count": 100, "backend": "redis"} for p in (7, 8)]
    post = run(path="/counter", method="POST", start=T0 + 100, ok=100)
    solved = {"demo": wc(env=env), "reads": reads, "newest_pod": T0 + 50, "runs": [post]}
    assert verdict(8, solved)[0]
    local = [
        {"pod": "demo-a", "pid": 7, "count": 31, "backend": "process"},
        {"pod": "demo-b", "pid": 8, "count": 22, "backend": "process"},
    ]
    passed, items = verdict(8, {"demo": wc(), "reads": local, "newest_pod": T0, "runs": []})
    assert not passed and all(it.hint for it in items if not it.passed)
    lost = [dict(r, count=97) for r in reads]
    assert not verdict(8, dict(solved, reads=lost))[0]
    unreachable = [{"pod": "demo-a", "error": "503 redis unavailable"}]
    assert not verdict(8, dict(solved, reads=unreachable))[0]


def test_lab9():
    ok = {"folder": "/x", "missing": False, "rc": 0, "output": "9 passed in 0.1s", "is_stub": False}
    assert verdict(9, ok)[0]
    failing = dict(
        ok,
        rc=1,
        is_stub=True,
        output="FAILED test_autoscaler.py::test_on_target_keeps_the_count - X\n1 failed",
    )
    passed, items = verdict(9, failing)
    assert not passed and "test_on_target_keeps_the_count" in items[1].hint
    assert not verdict(9, {"folder": "/x", "missing": True})[0]


def test_lab10():
    solved = {
        "started_at": T0,
        "demo": wc(replicas=4),
        "operator_started": [T0 + 20],
        "apiserver_started": [T0 + 70],
        "runs": [run(start=T0 + 5, end=T0 + 155)],
    }
    assert verdict(10, solved)[0]
    assert not verdict(10, dict(solved, started_at=None))[0]
    passed, items = verdict(10, dict(solved, apiserver_started=[T0 - 1000]))
    assert not passed and "static pod" in items[1].hint
    assert not verdict(10, dict(solved, runs=[run(start=T0 + 5, end=T0 + 155, errors=2)]))[0]
    assert not verdict(10, dict(solved, demo=wc(replicas=2)))[0]


def event(reason, message, at):
    return {"reason": reason, "message": message, "lastTimestamp": iso(at)}


def test_lab12():
    lost = "Node w2 is lost: no heartbeat since 2027-01-15T08:00:30Z (...)"
    solved = {
        "started_at": T0,
        "demo": wc(),
        "pods": [pod("demo-a"), pod("demo-c", created=T0 + 45)],
        "events": [
            event("NodeLost", lost, T0 + 45),
            event(
                "ReplacedPod", "Created pod demo-c: replacing pod demo-b of lost node w2", T0 + 45
            ),
        ],
        "operator_created": [T0 - 500, T0 + 110],
        "stood_down": [T0 + 80],
        "lease_acquired": T0 + 110,
        "lease_holder": "workerlab-operator-x",
    }
    assert verdict(12, solved)[0]
    assert not verdict(12, dict(solved, started_at=None))[0]
    # A node loss before the reset is not this drill's.
    passed, items = verdict(12, dict(solved, events=[event("NodeLost", lost, T0 - 5)]))
    assert not passed and "docker pause" in items[0].hint
    # The old master never stood down: its node is still paused.
    passed, items = verdict(12, dict(solved, stood_down=[T0 - 100]))
    assert not passed and "unpause" in items[2].hint
    # The active master was not deleted: the Lease changed hands only when the node stopped.
    passed, items = verdict(12, dict(solved, operator_created=[T0 - 500], lease_acquired=T0 + 12))
    assert not passed and "delete the pod the Lease names" in items[3].hint
    # Still a node lost, or a pod too many: not whole again.
    status = dict(wc()["status"], lostNodes=[{"name": "w2"}])
    passed, items = verdict(12, dict(solved, demo=dict(wc(), status=status)))
    assert not passed and "w2" in items[4].detail
    three = [*solved["pods"], pod("demo-b", created=T0 - 100)]
    assert not verdict(12, dict(solved, pods=three))[0]


@pytest.mark.parametrize("number", sorted(CHECKERS))
def test_every_lab_has_a_checker_with_reset(number):
    checker = CHECKERS[number]
    assert callable(checker.gather) and callable(checker.evaluate) and callable(checker.reset)


def test_check_details_are_plain_words():
    pods = ["demo-a", "demo-b"]
    _, items = verdict(6, {"pods": pods, "runs": [run(port=30082, by_pod={"demo-a": 3})]})
    assert "requests per pod: demo-a 3" in items[1].detail
    failed = run(start=T0 + 5, end=T0 + 95, errors=3)
    env = [{"name": "ROLLOUT", "value": "v2"}]
    rolled = [pod("demo-n1", created=T0 + 30, hash_="h2")]
    _, items = verdict(7, {"started_at": T0, "demo": wc(env=env), "pods": rolled, "runs": [failed]})
    assert items[-1].detail == "100 ok, 3 failed (disconnected 3)"
    assert "template hashes: h2" in items[1].detail
    reads = [{"pod": "demo-a", "pid": 7, "count": 3, "backend": "process"}]
    _, items = verdict(8, {"demo": wc(), "reads": reads, "newest_pod": T0, "runs": []})
    assert "backends process, values 3" in items[3].detail
    _, items = verdict(
        3,
        {
            "crd": None,
            "operator": None,
            "wc": wc("first", conditions=[{"type": "X"}]),
            "pods": [],
            "events": [],
        },
    )
    assert "Ready=unknown" in items[3].detail


lab11 = course.check_module(course.get(11))


def hpa(active="True", target_name="demo", kind="WorkerCluster"):
    return {
        "metadata": {"name": "demo", "creationTimestamp": iso(T0 + 5)},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "workerlab.dev/v1alpha1",
                "kind": kind,
                "name": target_name,
            },
            "minReplicas": 2,
            "maxReplicas": 6,
        },
        "status": {
            "conditions": [
                {"type": "ScalingActive", "status": active, "reason": "ValidMetricFound"}
            ]
        },
    }


def rescale(size, at):
    why = "above target" if size > 2 else "All metrics below target"
    return {
        "reason": "SuccessfulRescale",
        "message": f"New size: {size}; reason: {why}",
        "lastTimestamp": iso(at),
    }


def scaled(direction, replicas, at):
    return {
        "reason": "Scaled",
        "message": f"Scaled {direction} to {replicas} pods",
        "lastTimestamp": iso(at),
    }


def lab11_solved():
    return {
        "started_at": T0,
        "hpas": [hpa()],
        "hpa_events": [rescale(6, T0 + 60), rescale(2, T0 + 180)],
        "wc_events": [scaled("up", 6, T0 + 61), scaled("down", 2, T0 + 181)],
        "runs": [run(path="/work/cpu?ms=50", start=T0 + 20, end=T0 + 110)],
    }


def test_lab11_passes_on_an_up_and_down_cycle():
    assert verdict(11, lab11_solved())[0]
    # several steps each way count as well
    steps = dict(
        lab11_solved(), hpa_events=[rescale(s, T0 + 30 * i) for i, s in enumerate((4, 6, 3, 2), 1)]
    )
    assert verdict(11, steps)[0]


def test_lab11_fresh_state_fails_with_hints():
    fresh = {"started_at": T0, "hpas": [], "hpa_events": [], "wc_events": [], "runs": []}
    passed, items = verdict(11, fresh)
    assert not passed and "hpa-demo.yaml" in items[0].hint
    assert not verdict(11, dict(fresh, started_at=None))[0]


def test_lab11_needs_the_down_after_the_up():
    only_up = dict(lab11_solved(), hpa_events=[rescale(6, T0 + 60)])
    passed, items = verdict(11, only_up)
    failed = [it.name for it in items if not it.passed]
    assert not passed and failed == ["... and back down after the load stopped"]
    # a shrink before any growth (e.g. the reset's own) is not the cycle asked for
    backwards = dict(
        lab11_solved(), wc_events=[scaled("down", 2, T0 + 1), scaled("up", 6, T0 + 61)]
    )
    assert not verdict(11, backwards)[0]


def test_lab11_ignores_evidence_from_before_the_reset():
    old = dict(
        lab11_solved(),
        hpa_events=[rescale(6, T0 - 300), rescale(2, T0 - 100)],
        wc_events=[scaled("up", 6, T0 - 299), scaled("down", 2, T0 - 99)],
        runs=[run(path="/work/cpu?ms=50", start=T0 - 400, end=T0 - 310)],
    )
    passed, items = verdict(11, old)
    assert not passed and sum(not it.passed for it in items) == 4


def test_lab11_an_hpa_without_metrics_points_at_metrics_server():
    facts = dict(lab11_solved(), hpas=[hpa(active="False")])
    passed, items = verdict(11, facts)
    assert not passed and "metrics-server" in items[1].hint


def test_lab11_rescale_sizes_and_directions():
    assert lab11.rescale_sizes([rescale(4, T0), {"reason": "Other", "message": "New size: 9"}]) == [
        4
    ]
    assert lab11.up_then_down([4, 6, 2]) == (True, True)
    assert lab11.up_then_down([2, 2]) == (False, False)
    assert lab11.up_then_down([1, 3]) == (True, False)
    assert lab11.operator_directions(
        [scaled("up", 3, T0), {"reason": "Scaled", "message": "x"}]
    ) == ["up"]


def test_lab1_a_run_without_a_spare_process_does_not_hide_the_one_with_one():
    spare = dict(local(2, 9.0), concurrency=1)
    busy = dict(local(2, 140.0), concurrency=2)  # question 2: every process busy
    passed, items = verdict(1, {"runs": [local(1, 105.0), spare, busy, *BOTH_MODES]})
    assert passed, items
    assert "1 with every process busy" in items[1].detail
    passed, items = verdict(1, {"runs": [local(1, 105.0), busy]})
    assert not passed and "kept every process busy" in items[1].hint


def test_lab1_part2_wants_one_spread_run_per_mode_and_shows_what_was_seen():
    part1 = [local(1, 105.0), local(2, 9.0)]
    passed, items = verdict(1, {"runs": part1 + BOTH_MODES[:1]})
    assert not passed
    shared, reuseport = items[-2], items[-1]
    assert shared.passed and "86/233/281" in shared.detail and "0.85" in shared.detail
    assert not reuseport.passed and "BALANCE=reuseport" in reuseport.hint
    # A starved process counts: the worker reported 3, only 2 answered.
    starved = balance_run("reuseport", {"lab1/100": 300, "lab1/101": 300}, port=8004)
    passed, items = verdict(1, {"runs": [*part1, BOTH_MODES[0], starved]})
    assert passed and "0/300/300" in items[-1].detail


@pytest.mark.parametrize(
    "unfit",
    [
        balance_run("reuseport", {"lab1/100": 300, "lab1/101": 300}, keepalive=True),
        balance_run("reuseport", {"lab1/100": 600}, processes=1),
        balance_run("reuseport", {"lab1/100": 50, "lab1/101": 50, "lab1/102": 50}),
        dict(balance_run("reuseport", {"lab1/100": 300, "lab1/101": 300}), target_balance=None),
    ],
    ids=["keep-alive", "one-process", "too-few", "mode-unknown"],
)
def test_lab1_part2_ignores_runs_that_cannot_show_the_spread(unfit):
    passed, items = verdict(1, {"runs": [local(1, 105.0), local(2, 9.0), BOTH_MODES[0], unfit]})
    assert not passed and not items[-1].passed


def test_lab3_says_first_was_deleted_when_its_events_outlive_it():
    crd = {"status": {"conditions": [{"type": "Established", "status": "True"}]}}
    created = {"reason": "CreatedPod", "lastTimestamp": iso(T0 + 20)}
    facts = {
        "crd": crd,
        "operator": {"status": {"availableReplicas": 1}},
        "wc": None,
        "pods": [],
        "events": [created],
        "started_at": T0,
    }
    passed, items = verdict(3, facts)
    assert not passed and "has been deleted since" in items[2].detail
    # events from before this lab's reset say nothing about this try
    passed, items = verdict(3, dict(facts, started_at=T0 + 60))
    assert not passed and items[2].detail == ""


def test_lab4_crashy_fixed_by_question_3_still_shows_the_crash_loop():
    recovered = [{"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "ok"}]
    facts = {
        "started_at": T0,
        "demo": wc(),
        "pods": [pod("demo-c"), pod("demo-d")],
        "processes": {"demo-c": demo_processes(), "demo-d": demo_processes(False)},
        "events": [
            {
                "reason": "ReplacedPod",
                "message": "Created pod demo-c",
                "lastTimestamp": iso(T0 + 10),
            }
        ],
        "crashy": wc("crashy", replicas=1, conditions=recovered),
        "crashy_pods": [pod("crashy-y", restarts=0)],
        "crashy_events": [
            {
                "type": "Warning",
                "reason": "CrashLoopBackOff",
                "message": "pod crashy-x: CrashLoopBackOff",
                "lastTimestamp": iso(T0 + 40),
            },
            {"type": "Normal", "reason": "Recovered", "lastTimestamp": iso(T0 + 90)},
        ],
    }
    passed, items = verdict(4, facts)
    assert passed, items
    assert "fixed it" in items[-1].name and "Recovered" in items[-1].detail
    # healthy from the start (no crash loop seen): still fails
    assert not verdict(4, dict(facts, crashy_events=[]))[0]


def test_lab5_names_the_shape_it_finds():
    pods = [pod(f"demo-{i}") for i in "uvwxyz"]
    names = [p["metadata"]["name"] for p in pods]
    facts = {
        "demo": wc(replicas=6, ppp=1),
        "pods": pods,
        "alive": dict.fromkeys(names, 1),
        "runs": [spread_run(names, per_pod=1)],
        "events": [],
    }
    passed, items = verdict(5, facts)
    assert not passed
    assert (
        items[0].detail == "spec.replicas is 6" and items[1].detail == "spec.processesPerPod is 1"
    )


def test_lab7_judges_only_runs_with_a_new_connection_per_request():
    pods = [
        pod("demo-n1", created=T0 + 30, hash_="h3"),
        pod("demo-n2", created=T0 + 50, hash_="h3"),
    ]
    env = [{"name": "ROLLOUT", "value": "v3"}]  # question 1 rolls on to v3
    facts = {"started_at": T0, "demo": wc(env=env), "pods": pods}
    assert verdict(7, dict(facts, runs=[run(start=T0 + 5, end=T0 + 95)]))[0]
    keepalive = run(start=T0 + 5, end=T0 + 95, keepalive=True)
    passed, items = verdict(7, dict(facts, runs=[keepalive]))
    assert not passed and "only keep-alive runs did" in items[2].detail
    assert "close race" in items[2].hint


def test_lab7_says_when_the_latest_run_saw_no_rollout():
    pods = [
        pod("demo-n1", created=T0 + 30, hash_="h2"),
        pod("demo-n2", created=T0 + 50, hash_="h2"),
    ]
    env = [{"name": "ROLLOUT", "value": "v2"}]
    again = run(start=T0 + 200, end=T0 + 290)  # v2 patched again: the same template
    facts = {"started_at": T0, "demo": wc(env=env), "pods": pods}
    passed, items = verdict(7, dict(facts, runs=[run(start=T0 + 5, end=T0 + 95), again]))
    assert passed and "changes nothing" in items[2].detail
    passed, items = verdict(7, dict(facts, runs=[again]))
    assert not passed and "no pod rolled during it" in items[2].detail


def test_lab8_a_counter_that_went_down_is_redis_losing_its_data():
    env = [{"name": "REDIS_URL", "value": "redis://redis:6379/0"}]
    post = run(path="/counter", method="POST", start=T0 + 100, ok=100)
    wiped = [{"pod": "demo-a", "pid": p, "count": 0, "backend": "redis"} for p in (7, 8)]
    facts = {"demo": wc(env=env), "reads": wiped, "newest_pod": T0 + 50, "runs": [post]}
    passed, items = verdict(8, facts)
    assert not passed
    assert "went DOWN" in items[-1].hint and "Redis lost its data" in items[-1].hint
    assert "other clients" not in items[-1].hint
    more = [dict(r, count=130) for r in wiped]
    passed, items = verdict(8, dict(facts, reads=more))
    assert not passed and "other clients" in items[-1].hint


def test_lab2_names_each_replacement_once_when_its_slot_died_twice():
    report = processes_report(dead=((200, 0, 45.0), (199, 0, 30.0)))
    facts = {"url": lab02.DEFAULT_URL, "report": report, "parents": {201: 100, 202: 100, 203: 100}}
    passed, items = verdict(2, facts)
    assert passed and items[2].detail == "pid 201 in slot 0, parent 100", items[2].detail


def test_lab7_counts_a_run_that_began_before_the_first_new_pod_was_ready():
    """`workerlab load` starts its clock once it has found its target: on a busy machine, after
    the patch created the first new pod. No old pod goes before a new one is Ready."""
    env = [{"name": "ROLLOUT", "value": "v2"}]
    pods = [pod(f"demo-n{i}", created=T0 + 10 + 20 * i, hash_="h2") for i in (1, 2)]
    pods[0]["status"]["conditions"][0]["lastTransitionTime"] = iso(T0 + 34)
    pods[1]["status"]["conditions"][0]["lastTransitionTime"] = iso(T0 + 54)
    facts = {"started_at": T0, "demo": wc(env=env), "pods": pods}
    assert verdict(7, dict(facts, runs=[run(start=T0 + 32, end=T0 + 95)]))[0]
    passed, items = verdict(7, dict(facts, runs=[run(start=T0 + 36, end=T0 + 95)]))
    assert not passed and "0 run(s) with --no-keepalive spanned them" in items[2].detail
