"""The shared vocabulary: the /processes record and the object readers everyone relies on."""

from workerlab.api.objects import (
    condition_is_true,
    controller_uid,
    epoch,
    event_time,
    find_condition,
    pod_ready,
    pod_restarts,
    pod_waiting_reason,
)
from workerlab.api.processes import ProcessesReport, ProcessRecord, alive_count
from workerlab.api.resource import ConditionType, Phase, Reason


def test_a_record_that_does_not_say_alive_is_not_counted():
    raw = {"processes": [{"pid": 1, "alive": True}, {"pid": 2}, {"pid": 3, "alive": False}]}
    assert alive_count(raw) == 1


def test_report_round_trips_and_skips_garbage():
    raw = {
        "pod": "demo-a",
        "arbiter_pid": 1,
        "served_by": 7,
        "balance": "shared",
        "processes": [
            {"pid": 7, "index": 0, "requests_served": 3, "in_flight": 1, "alive": True},
            "not a record",
            {"index": 1},
        ],
    }
    report = ProcessesReport.from_dict(raw)
    assert [p.pid for p in report.processes] == [7]
    assert report.alive == [
        ProcessRecord(pid=7, index=0, requests_served=3, in_flight=1, alive=True)
    ]
    assert ProcessesReport.from_dict(report.to_dict()) == report


def test_readers_of_pods_and_conditions():
    pod = {
        "metadata": {"ownerReferences": [{"uid": "x"}, {"uid": "u1", "controller": True}]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                {"restartCount": 1, "state": {}},
            ],
        },
    }
    assert pod_ready(pod) and pod_restarts(pod) == 3
    assert pod_waiting_reason(pod) == "CrashLoopBackOff" and controller_uid(pod) == "u1"
    wc = {"status": {"conditions": [{"type": "Degraded", "status": "False"}]}}
    assert find_condition(wc, ConditionType.DEGRADED) == {"type": "Degraded", "status": "False"}
    assert not condition_is_true(wc, ConditionType.DEGRADED)
    assert find_condition({}, ConditionType.READY) is None


def test_times_and_events():
    assert epoch("1970-01-01T00:01:40Z") == 100.0
    assert epoch("yesterday") is None and epoch(None) is None
    assert event_time({"metadata": {"creationTimestamp": "t0"}}) == "t0"
    assert event_time({"lastTimestamp": "t2", "eventTime": "t1"}) == "t2"


def test_names_compare_equal_to_the_strings_on_the_wire():
    assert Reason.REPLACED_POD == "ReplacedPod" and Phase.READY == "Ready"
    assert f"{ConditionType.PROGRESSING}" == "Progressing"


def test_a_record_from_an_older_worker_has_no_control_count():
    old = ProcessRecord.from_dict({"pid": 7, "requests_served": 41, "alive": True})
    assert old.control_served is None and old.requests_served == 41
    assert ProcessRecord.from_dict({"pid": 7, "control_served": 9}).control_served == 9
