"""StallWatch: a partition with waiting records whose offsets stop moving is a stall."""

from __future__ import annotations

from pipeline.worker.stalls import StallWatch


def test_a_partition_that_stops_moving_with_work_waiting_is_stalled_once_per_period():
    watch = StallWatch(stale_after=10)
    assert not watch.stalled("p0", 5, 5, end=20, now=0)
    assert not watch.stalled("p0", 5, 5, end=20, now=9)
    assert watch.stalled("p0", 5, 5, end=20, now=10)
    assert not watch.stalled("p0", 5, 5, end=20, now=15)  # the remedy gets its time
    assert watch.stalled("p0", 5, 5, end=20, now=20)


def test_progress_or_an_empty_backlog_is_not_a_stall():
    watch = StallWatch(stale_after=10)
    watch.stalled("p0", 5, 5, end=20, now=0)
    assert not watch.stalled("p0", 6, 5, end=20, now=11)  # delivered moved
    assert not watch.stalled("p0", 6, 6, end=20, now=22)  # committed moved
    assert not watch.stalled("p1", None, 20, end=20, now=0)  # nothing waits
    assert not watch.stalled("p1", None, 20, end=20, now=100)


def test_forgotten_partitions_start_over():
    watch = StallWatch(stale_after=10)
    watch.stalled("p0", 1, 1, end=9, now=0)
    watch.forget_except({"p1"})
    assert not watch.stalled("p0", 1, 1, end=9, now=50)
