"""The load generator's statistics: percentiles, distributions, errors, probes."""

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workerlab.cli.commands.load import whole_percents
from workerlab.cli.loadgen import LoadPlan, classify_error, sample_from_response
from workerlab.cli.loadstats import Sample, percentile, spread, summarize


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
