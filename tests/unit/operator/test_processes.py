"""The process probe's cost at scale: backoff for pods that cannot answer, a reconcile that never
waits for the reads in background mode, one warning line whatever the number of silent pods."""

from __future__ import annotations

import asyncio
import logging

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
