"""The load generator's statistics: percentiles, distributions, errors, probes."""

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workerlab.cli.commands.load import control_note, whole_percents
from workerlab.cli.loadgen import LoadPlan, classify_error, sample_from_response
from workerlab.common.loadstats import Sample, jain, percentile, spread, summarize


def test_percentile_nearest_rank_returns_observed_values():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_percentile_rejects_out_of_range():
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200))
def test_percentiles_are_ordered_and_observed(values):
    p50, p90, p99 = (percentile(values, q) for q in (50, 90, 99))
    assert p50 <= p90 <= p99 <= max(values)
    assert {p50, p90, p99} <= set(values)


def test_summary_counts_distribution_per_pod_and_process():
    samples = [
        Sample(0.010, 200, None, "pod-a", 1),
        Sample(0.020, 200, None, "pod-a", 1),
        Sample(0.030, 200, None, "pod-a", 2),
        Sample(0.040, 200, None, "pod-b", 1),
        Sample(0.500, None, "timeout"),
        Sample(0.005, 503, "http 503", "pod-b", 1),
    ]
    summary = summarize(samples, elapsed_s=2.0)
    assert (summary.requests, summary.ok, summary.errors) == (6, 4, 2)
    assert summary.errors_by_kind == {"http 503": 1, "timeout": 1}
    assert summary.status_codes == {"200": 4, "503": 1}
    assert summary.by_pod == {"pod-a": 3, "pod-b": 1}
    # the same pid in two pods is two processes
    assert summary.by_process == {"pod-a/1": 2, "pod-a/2": 1, "pod-b/1": 1}
    assert summary.processes_per_pod() == {"pod-a": 2, "pod-b": 1}
    assert summary.latency.p50_ms == 20.0 and summary.latency.max_ms == 40.0
    assert summary.rps == 3.0
    assert summary.to_dict()["processes_seen"] == 3


def test_probe_samples_are_kept_apart():
    samples = [Sample(0.2, 200, None, "p", 1), Sample(0.004, 200, None, "p", 2, probe=True)]
    summary = summarize(samples, elapsed_s=1.0)
    assert summary.requests == 1
    assert summary.probe.count == 1 and summary.probe.p50_ms == 4.0


def test_spread():
    assert spread({"a": 50, "b": 50}) == 1.0
    assert spread({"a": 100, "b": 25}) == 0.25
    assert spread({}) is None


def test_all_requests_on_one_of_three_processes_is_not_even():
    counts = {"pod/1": 20}  # what the answers show: the idle processes never appear
    expected = ["pod/1", "pod/2", "pod/3"]  # what /processes says is alive
    assert spread(counts, expected) == 0.0
    assert jain(counts, expected) == round(1 / 3, 3)  # 1/n: one key got everything
    # without the expected set only the answering process counts: the old, wrong "even"
    assert spread(counts) == 1.0


def test_expected_keys_that_answered_are_not_double_counted():
    counts = {"a": 10, "b": 10, "c": 10}
    assert spread(counts, ["a", "b", "c"]) == 1.0
    assert jain(counts, ["a", "b", "c"]) == 1.0
    assert jain({"a": 10, "b": 10}, ["a", "b", "c"]) == round(20**2 / (3 * 200), 3)


def test_jain_index_of_known_distributions():
    assert jain({"a": 30, "b": 10}) == round(40**2 / (2 * (900 + 100)), 3)  # 0.8
    assert jain({}) is None
    assert jain({}, ["a", "b"]) is None  # nothing was served: no fairness to speak of
    assert spread({}, ["a", "b"]) is None


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=64))
def test_jain_is_between_one_over_n_and_one(values):
    counts = {str(i): v for i, v in enumerate(values)}
    index = jain(counts)
    if sum(values) == 0:
        assert index is None
    else:
        assert round(1 / len(values), 3) - 0.001 <= index <= 1.0
        if len(set(values)) == 1:
            assert index == 1.0


def test_summary_fairness_counts_expected_idle_processes():
    samples = [Sample(0.01, 200, None, "pod-a", 1) for _ in range(20)]
    summary = summarize(samples, elapsed_s=1.0)
    summary.expected_pods = ["pod-a", "pod-b"]
    summary.expected_processes = ["pod-a/1", "pod-a/2", "pod-b/7"]
    fair = summary.to_dict()["fairness"]
    assert fair["spread_processes"] == 0.0 and fair["jain_processes"] == 0.333
    assert fair["spread_pods"] == 0.0 and fair["jain_pods"] == 0.5


def test_sample_from_response_reads_pod_and_pid():
    ok = httpx.Response(200, json={"pod": "demo-x", "pid": 7})
    sample = sample_from_response(ok, 0.01, probe=False)
    assert (sample.pod, sample.pid, sample.ok) == ("demo-x", 7, True)
    text = sample_from_response(httpx.Response(502, text="bad gateway"), 0.01, probe=False)
    assert (text.pod, text.error, text.ok) == (None, "http 502", False)


def test_classify_error():
    request = httpx.Request("GET", "http://127.0.0.1:1/")
    assert classify_error(httpx.ConnectError("x", request=request)) == "connect"
    assert classify_error(httpx.ReadTimeout("x", request=request)) == "timeout"
    assert classify_error(httpx.RemoteProtocolError("x", request=request)) == "disconnected"


def test_plan_is_bounded():
    with pytest.raises(ValueError):
        LoadPlan(url="http://127.0.0.1:1/", requests=0)
    with pytest.raises(ValueError):
        LoadPlan(url="http://127.0.0.1:1/", duration_s=0)


@pytest.mark.parametrize(
    "counts",
    [
        {"a": 1, "b": 1, "c": 1},  # 33.3 each: rounding each gives 99%
        {"a": 1, "b": 1, "c": 4},  # rounding each gives 17% + 17% + 67% = 101%
        {"a": 1, "b": 199},
        {"a": 7},
    ],
)
def test_load_shares_are_whole_percents_that_add_up_to_100(counts):
    shares = whole_percents(counts)
    assert sum(shares.values()) == 100
    total = sum(counts.values())
    for key, count in counts.items():
        assert abs(shares[key] - 100 * count / total) < 1


def test_load_shares_of_nothing_are_zero():
    assert whole_percents({"a": 0}) == {"a": 0}
    assert whole_percents({}) == {}


def test_load_on_a_probe_path_is_said_to_count_as_control():
    assert control_note("/work/cpu?ms=20") is None and control_note("/") is None
    note = control_note("/healthz?x=1")
    assert note is not None and "/healthz?x=1" in note and "control" in note
