"""The process probe's cost at scale: backoff for pods that cannot answer, a reconcile that never
waits for the reads in background mode, one warning line whatever the number of silent pods."""

from __future__ import annotations

import asyncio
import logging
import time

from workerlab.operator.processes import ProcessProbe

NS = "ns"
REPORT = {"processes": [{"pid": 1, "alive": True}, {"pid": 2, "alive": True}]}


def test_a_pod_that_cannot_answer_is_unknown_and_backed_off(caplog):
    calls: list[str] = []

    async def fetch(namespace: str, pod: str, port: int) -> dict:
        calls.append(pod)
        raise OSError("address not allowed")

    async def scenario() -> None:
        probe = ProcessProbe(fetch, ttl=10.0, rate=0)
        pods = [(f"p{i}", f"u{i}") for i in range(3)]
        with caplog.at_level(logging.DEBUG, logger="workerlab.operator.processes"):
            assert await probe.alive(NS, pods, 8000) == {}
            assert await probe.alive(NS, pods, 8000) == {}  # backed off: not asked again
        assert len(calls) == 3
        assert probe.unreachable() == 3
        assert probe.due_in(["u0"]) > 15  # 10 s x 2 after one failure
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "unknown" in warnings[0].getMessage()

    asyncio.run(scenario())


def test_background_reads_never_hold_the_reconcile_and_report_changes():
    release = asyncio.Event()
    changed: list[tuple[str, str]] = []

    async def fetch(namespace: str, pod: str, port: int) -> dict:
        await release.wait()
        return REPORT

    async def scenario() -> None:
        probe = ProcessProbe(
            fetch, ttl=10.0, rate=0, background=True, on_change=lambda n, o: changed.append((n, o))
        )
        first = await asyncio.wait_for(probe.alive(NS, [("p", "u")], 8000, owner="wc"), 1.0)
        assert first == {}  # not known yet, and the reconcile did not wait
        release.set()
        for _ in range(50):
            if changed:
                break
            await asyncio.sleep(0.01)
        assert changed == [(NS, "wc")]
        assert await probe.alive(NS, [("p", "u")], 8000, owner="wc") == {"u": 2}
        await probe.stop()

    asyncio.run(scenario())


def test_reads_are_paced_by_the_rate_cap():
    starts: list[float] = []

    async def fetch(namespace: str, pod: str, port: int) -> dict:
        starts.append(asyncio.get_running_loop().time())
        return REPORT

    async def scenario() -> None:
        probe = ProcessProbe(fetch, ttl=10.0, rate=20.0)
        await probe.alive(NS, [(f"p{i}", f"u{i}") for i in range(5)], 8000)
        assert starts[-1] - starts[0] >= 4 * 0.05 * 0.9

    asyncio.run(scenario())


def test_the_background_poll_rereads_due_pods_and_drops_gone_ones():
    calls: list[str] = []

    async def fetch(namespace: str, pod: str, port: int) -> dict:
        calls.append(pod)
        return REPORT

    async def scenario() -> None:
        probe = ProcessProbe(fetch, ttl=0.05, rate=0, background=True)
        probe.start_polling(every=0.02)
        assert probe.polls_itself
        await probe.alive(NS, [("a", "ua"), ("b", "ub")], 8000, owner="wc")
        await asyncio.sleep(0.3)
        assert calls.count("a") >= 3 and calls.count("b") >= 3  # no reconcile asked again
        await probe.alive(NS, [("a", "ua")], 8000, owner="wc")  # b was deleted
        before = calls.count("b")
        await asyncio.sleep(0.2)
        assert calls.count("b") == before
        probe.forget(NS, "wc")
        before = calls.count("a")
        await asyncio.sleep(0.2)
        assert calls.count("a") == before
        await probe.stop()

    asyncio.run(scenario())


def test_reconciles_do_not_each_walk_every_known_pod(monkeypatch):
    """purge() visits every pod the probe knows: once per ttl, not once per alive() call (at
    5,000 pods and thousands of reconciles, per call made CPU grow with N squared)."""

    async def fetch(namespace: str, pod: str, port: int) -> dict:
        return REPORT

    async def scenario() -> None:
        probe = ProcessProbe(fetch, ttl=10.0, rate=0)
        walks: list[None] = []
        real_purge = probe.purge
        monkeypatch.setattr(probe, "purge", lambda *a: (walks.append(None), real_purge(*a)))
        for i in range(200):
            await probe.alive(NS, [(f"p{i}", f"u{i}")], 8000, owner=f"wc{i}")
        assert walks == []  # 200 reconciles within one ttl: no walk
        probe._purged -= 11.0  # a ttl later
        await probe.alive(NS, [("p0", "u0")], 8000, owner="wc0")
        await probe.alive(NS, [("p1", "u1")], 8000, owner="wc1")
        assert len(walks) == 1

    asyncio.run(scenario())


def _record(pid: int, index: int, generation: int, alive: bool, exited_at: float | None = None):
    return {
        "pid": pid,
        "index": index,
        "generation": generation,
        "alive": alive,
        "exited_at": exited_at,
        "exit": None if alive else "killed by signal 9",
    }


def test_a_re_forked_process_is_told_once_and_only_if_it_died_recently():
    now = time.time()
    reports = [
        # before: slot 0 died long ago (before this operator), slot 1 runs pid 11
        {"arbiter_pid": 7, "processes": [_record(10, 0, 1, False, now - 3600),
                                          _record(20, 0, 3, True), _record(11, 1, 2, True)]},
        # pid 11 died and pid 21 took its slot; pid 12 died in slot 2, not replaced yet
        {"arbiter_pid": 7, "processes": [_record(10, 0, 1, False, now - 3600),
                                          _record(20, 0, 3, True), _record(21, 1, 4, True),
                                          _record(11, 1, 2, False, now + 1),
                                          _record(12, 2, 5, False, now + 1)]},
    ]  # fmt: skip
    seen: list[int] = []

    async def fetch(namespace: str, pod: str, port: int) -> dict:
        return reports[1] if seen else reports[0]

    async def scenario() -> None:
        probe = ProcessProbe(fetch, ttl=0.0, rate=0)
        await probe.alive(NS, [("p", "u")], 8000, owner="wc")
        assert probe.take_replacements(NS, "wc") == []  # pid 10 ended an hour ago: not news
        seen.append(1)
        for _ in range(2):  # read twice: told once
            await probe.alive(NS, [("p", "u")], 8000, owner="wc")
        told = probe.take_replacements(NS, "wc")
        assert [(t.pod, t.arbiter_pid, t.replacement.dead.pid) for t in told] == [("p", 7, 11)]
        assert told[0].replacement.successor.pid == 21
        assert probe.take_replacements(NS, "wc") == []

    asyncio.run(scenario())


def test_in_background_a_heal_asks_for_a_reconcile_even_at_the_same_count():
    now = time.time()
    before = {"processes": [_record(11, 0, 1, True)]}
    after = {"processes": [_record(11, 0, 1, False, now + 1), _record(12, 0, 2, True)]}
    reads: list[dict] = [before, after]
    changed: list[tuple[str, str]] = []

    async def fetch(namespace: str, pod: str, port: int) -> dict:
        return reads.pop(0) if len(reads) > 1 else reads[0]

    async def scenario() -> None:
        probe = ProcessProbe(
            fetch, ttl=0.0, rate=0, background=True, on_change=lambda n, o: changed.append((n, o))
        )
        for _ in range(100):
            await probe.alive(NS, [("p", "u")], 8000, owner="wc")
            if len(changed) >= 2:
                break
            await asyncio.sleep(0.01)
        assert changed == [(NS, "wc"), (NS, "wc")]  # the first count, then the heal (1 -> 1)
        assert [t.replacement.successor.pid for t in probe.take_replacements(NS, "wc")] == [12]
        await probe.stop()

    asyncio.run(scenario())


def test_the_heal_event_names_the_arbiter_the_pod_and_both_processes():
    from workerlab.api.processes import PodReplacement, ProcessesReport, replacements
    from workerlab.operator.events import process_replaced

    report = ProcessesReport.from_dict(
        {"processes": [_record(11, 1, 2, False, 5.0), _record(21, 1, 4, True)]}
    )
    (found,) = replacements(report)
    event = process_replaced(PodReplacement("demo-abc", 7, found))
    assert (event.type, event.reason) == ("Normal", "ProcessReplaced")
    assert event.message == (
        "The arbiter (pid 7) of pod demo-abc replaced process 11 (killed by signal 9) with "
        "process 21 in slot 1: the pod and its container kept running"
    )
