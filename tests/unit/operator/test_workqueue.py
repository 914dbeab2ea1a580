"""The keyed work queue: coalescing, one reconcile per key at a time, retries with backoff."""

from __future__ import annotations

import asyncio

from workerlab.operator.workqueue import WorkQueue, retry_delay


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def test_burst_of_adds_coalesces_into_one_run():
    async def scenario():
        calls = []

        async def work(key):
            calls.append(key)

        queue = WorkQueue(work, workers=2)
        for _ in range(20):
            queue.add("a")
        queue.add("b")
        queue.start()
        await asyncio.sleep(0.05)
        await queue.stop()
        return calls

    assert sorted(run(scenario())) == ["a", "b"]


def test_a_key_never_runs_twice_at_once_and_an_add_while_running_is_not_lost():
    async def scenario():
        running, peak, runs = 0, 0, 0
        gate = asyncio.Event()

        async def work(key):
            nonlocal running, peak, runs
            running += 1
            peak = max(peak, running)
            runs += 1
            await gate.wait()
            running -= 1

        queue = WorkQueue(work, workers=4)
        queue.start()
        queue.add("a")
        await asyncio.sleep(0.01)
        queue.add("a")  # arrives while "a" is being reconciled
        queue.add("a")
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.sleep(0.05)
        await queue.stop()
        return peak, runs

    assert run(scenario()) == (1, 2)


def test_failures_are_retried_with_backoff_then_succeed():
    async def scenario():
        attempts = []
        errors = []

        async def work(key):
            attempts.append(asyncio.get_running_loop().time())
            if len(attempts) < 3:
                raise RuntimeError("API server said 500")

        queue = WorkQueue(work, workers=1)
        queue.on_error = lambda key, error: errors.append(str(error))
        queue.start()
        queue.add("a")
        await asyncio.sleep(2.0)
        await queue.stop()
        return attempts, errors

    attempts, errors = run(scenario())
    assert len(attempts) == 3 and len(errors) == 2
    assert attempts[1] - attempts[0] >= 0.45 and attempts[2] - attempts[1] >= 0.95


def test_requeue_after_keeps_the_earliest_timer():
    async def scenario():
        calls = []

        async def work(key):
            calls.append(asyncio.get_running_loop().time())

        queue = WorkQueue(work, workers=1)
        queue.start()
        start = asyncio.get_running_loop().time()
        queue.add_after("a", 5.0)
        queue.add_after("a", 0.1)  # earlier wins
        queue.add_after("a", 3.0)  # later is dropped
        await asyncio.sleep(0.4)
        await queue.stop()
        return [c - start for c in calls]

    (only,) = run(scenario())
    assert 0.05 <= only < 0.4


def test_retry_delay_is_capped():
    assert retry_delay(1) == 0.5 and retry_delay(2) == 1.0 and retry_delay(100) == 60.0
