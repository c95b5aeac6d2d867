import asyncio
import threading
import time
from concurrent.futures import Future

import pytest

from pipeline.worker.scheduling import PriorityExecutor, PriorityPicker


def test_highest_waiting_class_first_on_a_fresh_picker():
    picker = PriorityPicker({"low": 0.1})
    assert picker.pick(["low", "high", "normal"]) == "high"
    assert picker.pick(["low", "normal"]) == "normal"


def test_starvation_guard_gives_low_its_share():
    picker = PriorityPicker({"low": 0.1, "normal": 0.2}, window=40)
    picks = [picker.pick(["high", "normal", "low"]) for _ in range(400)]
    tail = picks[100:]
    assert 0.08 <= tail.count("low") / len(tail) <= 0.12
    assert 0.18 <= tail.count("normal") / len(tail) <= 0.22
    assert picks[:10] == ["high"] * 10  # no guard before there is history


def test_no_share_means_strict_priority():
    picker = PriorityPicker({})
    assert {picker.pick(["high", "low"]) for _ in range(100)} == {"high"}


def test_executor_runs_high_before_queued_low():
    order = []
    gate = threading.Event()
    busy = threading.Event()

    def work(name):
        if name == "blocker":
            busy.set()
            gate.wait(30)
        order.append(name)
        return name

    async def main():
        pool = PriorityExecutor(1, {"low": 0.0})
        blocker = asyncio.ensure_future(pool.run("low", work, "blocker"))
        await asyncio.sleep(0)  # queue it
        assert busy.wait(30)  # the only thread is now busy
        lows = [asyncio.ensure_future(pool.run("low", work, f"low{i}")) for i in range(3)]
        highs = [asyncio.ensure_future(pool.run("high", work, f"high{i}")) for i in range(2)]
        await asyncio.sleep(0)  # every one of them queued
        assert pool.queued("low") == 3 and pool.queued("high") == 2
        gate.set()
        results = await asyncio.gather(blocker, *lows, *highs)
        pool.shutdown()
        return results

    results = asyncio.run(main())
    assert results[0] == "blocker"
    assert order == ["blocker", "high0", "high1", "low0", "low1", "low2"]


def test_executor_propagates_errors_and_keeps_running():
    def boom():
        raise ValueError("bad image")

    async def main():
        pool = PriorityExecutor(2, {})
        try:
            await pool.run("normal", boom)
        except ValueError as exc:
            assert str(exc) == "bad image"
        else:
            raise AssertionError("no error")
        started = time.perf_counter()
        assert await pool.run("normal", lambda: 42) == 42
        pool.shutdown()
        return time.perf_counter() - started

    assert asyncio.run(main()) < 5


def test_a_thread_takes_its_next_job_without_the_event_loop():
    second_started = threading.Event()

    async def main():
        pool = PriorityExecutor(1, {})
        first = asyncio.ensure_future(pool.run("normal", lambda: "first"))
        second = asyncio.ensure_future(pool.run("normal", second_started.set))
        await asyncio.sleep(0)  # both queued
        # The loop is blocked here: the thread must move on to the second job by itself
        # (a pool fed by loop callbacks would wait for the loop and this would time out).
        moved_on = second_started.wait(30)
        results = await asyncio.gather(first, second)
        pool.shutdown()
        return moved_on, results

    moved_on, results = asyncio.run(main())
    assert moved_on and results == ["first", None]


def test_then_frees_the_thread_and_the_job_ends_with_the_next_step():
    step = Future()
    handed: list = []
    second_done = threading.Event()

    def then(rendered):
        handed.append((rendered, threading.current_thread().name))
        return step

    async def main():
        pool = PriorityExecutor(1, {})
        first = asyncio.ensure_future(pool.run("normal", lambda: "pixels", then=then))
        second = asyncio.ensure_future(pool.run("normal", second_done.set))
        # The only thread ran the second job while the first job's step had not ended.
        assert await asyncio.wait_for(second, 30) is None
        assert not first.done()
        step.set_result("stored")
        result = await asyncio.wait_for(first, 30)
        pool.shutdown()
        return result

    assert asyncio.run(main()) == "stored"
    assert handed[0][0] == "pixels" and handed[0][1].startswith("imgpipe-img_")


@pytest.mark.parametrize("failing", ["step", "then"])
def test_then_failures_reach_the_caller(failing):
    def then(_):
        if failing == "then":
            raise RuntimeError("could not start the writes")
        step = Future()
        step.set_exception(OSError("disk full"))
        return step

    async def main():
        pool = PriorityExecutor(1, {})
        try:
            with pytest.raises((OSError, RuntimeError)) as caught:
                await pool.run("normal", lambda: "pixels", then=then)
            assert await pool.run("normal", lambda: 7) == 7  # the thread lives on
        finally:
            pool.shutdown()
        return caught.value

    error = asyncio.run(main())
    assert str(error) == ("could not start the writes" if failing == "then" else "disk full")
