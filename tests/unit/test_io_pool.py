"""BoundedExecutor: the I/O pool, and outputs' writes started from an image thread."""

import asyncio
import threading

import pytest

from pipeline.worker.executor import BoundedExecutor


@pytest.fixture
def pool():
    pool = BoundedExecutor(3)
    yield pool
    pool.shutdown()


def test_submit_each_gives_every_result_in_call_order(pool):
    release = threading.Event()

    def write(name, wait):
        if wait:
            release.wait(30)
        return name

    combined = pool.submit_each(write, [("first", True), ("second", False)],
                                lambda names: "+".join(names))
    assert not combined.done()  # the first call still runs
    release.set()
    assert combined.result(30) == "first+second"


def test_submit_each_fails_only_once_every_call_has_ended(pool):
    release = threading.Event()
    ended = []

    def write(name):
        if name == "slow":
            release.wait(30)
        ended.append(name)
        if name == "bad":
            raise OSError("disk full")
        return name

    combined = pool.submit_each(write, [("slow",), ("bad",)], list)
    assert not combined.done()  # "bad" failed, but "slow" still writes
    release.set()
    with pytest.raises(OSError, match="disk full"):
        combined.result(30)
    assert sorted(ended) == ["bad", "slow"]


def test_submit_each_with_no_calls_finishes_at_once(pool):
    assert pool.submit_each(print, [], len).result(0) == 0


def test_submit_each_reports_an_error_of_finish(pool):
    def finish(_):
        raise ValueError("no summary")

    with pytest.raises(ValueError, match="no summary"):
        pool.submit_each(str, [(1,)], finish).result(30)


def test_run_hands_the_result_back_to_the_loop(pool):
    async def main():
        return await asyncio.gather(*(pool.run(pow, 2, n) for n in range(20)))

    assert asyncio.run(main()) == [2 ** n for n in range(20)]
