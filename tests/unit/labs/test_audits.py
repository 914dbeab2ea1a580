"""`workerlab class check` after the learner moved on: labs 4, 5, 7 and 11 re-judged from the
Events kept between the lab's start and the pass (what the controllers wrote; a learner cannot
write Events) and the runs the pass recorded. Each passes on a solved lab's evidence and fails
when one piece is missing or lies outside the window."""

from __future__ import annotations

from datetime import UTC, datetime

from workerlab.api.objects import changed_in_place_message
from workerlab.labs import course
from workerlab.labs.checking import Evidence, gather_evidence

T0 = 1_800_000_000.0  # the lab's recorded start
PASSED = T0 + 300  # the recorded pass


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ev(kind, name, reason, message, at, type_="Normal"):
    return {
        "involvedObject": {"kind": kind, "name": name},
        "reason": reason,
        "message": message,
        "type": type_,
        "firstTimestamp": iso(at),
        "lastTimestamp": iso(at),
    }


def wc_ev(reason, message, at, name="demo", type_="Normal"):
    return ev("WorkerCluster", name, reason, message, at, type_)


def run(start, end, by_pod=None, by_process=None, errors=0, path="/", keepalive=False):
    return {
        "wc": "demo",
        "keepalive": keepalive,
        "started_at": start,
        "ended_at": end,
        "path": path,
        "method": "GET",
        "base_url": "",
        "summary": {
            "ok": 100,
            "errors": errors,
            "by_pod": by_pod or {"demo-a": 100},
            "by_process": by_process or {},
        },
    }


def audit(number: int, events: list[dict], runs: list[dict]) -> tuple[bool, list]:
    checker = course.checker(course.get(number))
    assert checker.audit is not None, f"lab {number} has no audit"
    items = checker.audit(Evidence(T0, PASSED, events, runs))
    return all(i.passed for i in items), items


LAB4 = [
    wc_ev("ReplacedPod", "Created pod demo-b: replacing a pod that was deleted or failed", T0 + 20),
    wc_ev("ProcessReplaced", "The arbiter (pid 1) of pod demo-b replaced process 9 ...", T0 + 60),
    wc_ev(
        "CrashLoop", "REDIS_URL='not-a-url' is not a redis:// URL", T0 + 120, "crashy", "Warning"
    ),
]


def test_lab4_from_the_operators_events():
    assert audit(4, LAB4, [])[0]
    for missing in range(3):
        passed, items = audit(4, LAB4[:missing] + LAB4[missing + 1 :], [])
        assert not passed and not items[missing].passed


def created(pod: str, why: str, at: float) -> dict:
    return wc_ev("CreatedPod", f"Created pod {pod}: {why}", at)


def deleted(pod: str, why: str, at: float) -> dict:
    return wc_ev("DeletedPod", f"Deleted pod {pod}: {why}", at)


def in_place(pod: str, at: float) -> dict:
    return wc_ev("ChangedInPlace", changed_in_place_message(pod, "processes 2→3"), at)


LAB5_ROLL = "rolling update to template abc: the pod template (env, ...) cannot change in a ..."


def test_lab5_needs_the_scale_in_place_change_the_roll_and_a_run_on_the_new_pods():
    pods = ["demo-n1", "demo-n2", "demo-n3"]
    events = [
        wc_ev("Scaled", "Scaled up to 3 pods", T0 + 10),
        created("demo-x", "scale up", T0 + 10),
        in_place("demo-a", T0 + 20),
        in_place("demo-b", T0 + 20),
        in_place("demo-x", T0 + 20),
        wc_ev("RollingUpdate", LAB5_ROLL, T0 + 39),
        *(created(p, "rolling update", T0 + 40 + i) for i, p in enumerate(pods)),
    ]
    spread = run(
        T0 + 100,
        T0 + 120,
        by_pod=dict.fromkeys(pods, 100),
        by_process={f"{p}/{i}": 30 for p in pods for i in range(3)},
    )
    assert audit(5, events, [spread])[0]
    assert not audit(5, events[1:], [spread])[0]  # no Scaled up to 3
    assert not audit(5, events[:5], [spread])[0]  # nothing rolled
    assert not audit(5, events[:2] + events[5:], [spread])[0]  # processes not changed in place
    # a run on pods the operator did not create in the lab proves nothing
    elsewhere = run(T0 + 100, T0 + 120, by_pod={"demo-old1": 1, "demo-old2": 1, "demo-old3": 1})
    assert not audit(5, events, [elsewhere])[0]
    one_each = run(T0 + 100, T0 + 120, by_pod=dict.fromkeys(pods, 100),
                   by_process={f"{p}/0": 30 for p in pods})  # fmt: skip
    assert not audit(5, events, [one_each])[0]


def test_lab7_needs_a_clean_new_connection_run_across_the_rolled_pods():
    events = [
        created("demo-r1", "rolling update", T0 + 40),
        created("demo-r2", "rolling update", T0 + 60),
    ]
    assert audit(7, events, [run(T0 + 30, T0 + 90)])[0]
    assert not audit(7, [], [run(T0 + 30, T0 + 90)])[0]
    assert not audit(7, events, [run(T0 + 30, T0 + 90, errors=2)])[0]
    assert not audit(7, events, [run(T0 + 30, T0 + 50)])[0]  # ended mid-rollout
    assert not audit(7, events, [run(T0 + 30, T0 + 90, keepalive=True)])[0]
    # the next lab's reset rolls demo back just after the pass: a rollout of its own, which
    # the run did not span, does not undo the pass
    reset = [
        created("demo-b7-x1", "rolling update", T0 + 120),
        created("demo-b7-x2", "rolling update", T0 + 130),
    ]
    assert audit(7, events + reset, [run(T0 + 30, T0 + 90)])[0]
    assert not audit(7, reset, [run(T0 + 30, T0 + 90)])[0]


def test_lab7_counts_a_run_that_began_before_the_rollouts_first_old_pod_went():
    # `workerlab load` starts its clock once it has found its target: on a busy machine that
    # is after the patch created the first new pod, but before any old pod was drained
    events = [
        created("demo-r1", "rolling update", T0 + 40),
        deleted("demo-o1", "rolling update, outdated pod template", T0 + 45),
        created("demo-r2", "rolling update", T0 + 46),
        deleted("demo-o2", "rolling update, outdated pod template", T0 + 52),
    ]
    assert audit(7, events, [run(T0 + 42, T0 + 90)])[0]
    assert audit(7, events, [run(T0 + 45.5, T0 + 90)])[0]  # Events' times are whole seconds
    assert not audit(7, events, [run(T0 + 47, T0 + 90)])[0]  # an old pod went before it began
    # a scale-down's deletion is not the rollout's first drain
    scaled = [deleted("demo-o0", "scale down", T0 + 41), *events]
    assert audit(7, scaled, [run(T0 + 42, T0 + 90)])[0]


def rescale(size: int, at: float) -> dict:
    return ev(
        "HorizontalPodAutoscaler", "demo", "SuccessfulRescale", f"New size: {size}; reason: x", at
    )


def test_lab11_from_the_hpas_and_the_operators_events_once_the_hpa_is_gone():
    events = [
        rescale(4, T0 + 60),
        wc_ev("Scaled", "Scaled up to 4 pods", T0 + 61),
        rescale(2, T0 + 200),
        wc_ev("Scaled", "Scaled down to 2 pods", T0 + 201),
    ]
    load = [run(T0 + 20, T0 + 110, path="/work/cpu?ms=50")]
    assert audit(11, events, load)[0]
    assert not audit(11, events[:2], load)[0]  # never came down
    assert not audit(11, events, [])[0]  # no CPU load recorded


class FakeKube:
    def __init__(self, events: list[dict]) -> None:
        self.events = events

    def json(self, *args: str, **_: object) -> dict:
        assert args == ("get", "events")
        return {"items": self.events}


def test_the_evidence_is_the_window_between_start_and_pass():
    before = wc_ev("ReplacedPod", "before", T0 - 60)
    reset = wc_ev("CreatedPod", "Created pod demo-r: rolling update", T0 - 2)  # the reset's
    inside = wc_ev("ReplacedPod", "inside", T0 + 60)
    after = wc_ev("ReplacedPod", "after", PASSED + 3)  # the next lab's reset, just after
    # one Event repeated: first inside the window, last long after (counted, not lost)
    repeated = dict(wc_ev("Scaled", "repeated", PASSED + 600), firstTimestamp=iso(T0 + 30))
    old_run, new_run = run(T0 - 100, T0 - 50), run(T0 + 10, T0 + 20)
    evidence = gather_evidence(
        FakeKube([after, inside, before, reset, repeated]), T0, PASSED, [old_run, new_run, "junk"]
    )
    assert [e["message"] for e in evidence.events] == ["inside", "repeated"]
    assert evidence.runs == [new_run]
    assert [e["message"] for e in evidence.of("WorkerCluster", "demo", "ReplacedPod")] == ["inside"]
    assert evidence.of("HorizontalPodAutoscaler") == []


def test_only_the_labs_a_reset_undoes_need_an_audit():
    audited = {lab.number for lab in course.labs() if course.checker(lab).audit is not None}
    assert audited == {4, 5, 7, 11}
