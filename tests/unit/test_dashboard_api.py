"""The pieces behind the dashboard's list and charts: job search and paging, lag over
time, and the per-worker summary."""

from __future__ import annotations

import pytest

from pipeline.errors import InvalidRequest
from pipeline.kafka.lag import LagHistory, PartitionLag
from pipeline.web.jobs import JobQuery
from pipeline.web.stats import merge_counts

STATE = {"job_id": "acme:beach-sunset-3fa2", "name": "Beach Sunset.JPG", "label": "holiday",
         "tenant": "acme", "status": "DONE", "priority": "normal"}


@pytest.mark.parametrize(("q", "found"), [
    ("", True), ("sunset", True), ("SUNSET beach", True), ("holiday", True),
    ("acme", True), ("3fa2", True), ("sunset city", False), ("nothing", False),
])
def test_search_finds_every_word_in_id_name_label_or_tenant(q, found):
    assert JobQuery.from_query({"q": q}).matches(STATE) is found


def test_filters_and_page_bounds():
    assert not JobQuery.from_query({"status": "FAILED"}).matches(STATE)
    assert not JobQuery.from_query({"priority": "high"}).matches(STATE)
    page = JobQuery.from_query({"limit": "5000", "offset": "40"})
    assert (page.limit, page.offset, page.end) == (1000, 40, 1040)
    for bad in ({"offset": "-1"}, {"offset": "10001"}, {"limit": "x"}, {"q": "y" * 201}):
        with pytest.raises(InvalidRequest):
            JobQuery.from_query(bad)


def test_lag_history_keeps_one_sample_per_interval_and_a_bounded_hour():
    history = LagHistory(every=10.0, keep=3)
    lags = [PartitionLag("t.ingest", 0, 10, 4, 6), PartitionLag("t.ingest", 1, 5, 5, 0),
            PartitionLag("t.jobs.high", 0, 9, 7, 2)]
    for now in (100.0, 105.0, 110.0, 121.0, 140.0):
        history.add(lags, now)
    assert [s["at"] for s in history.samples] == [110.0, 121.0, 140.0]
    assert history.samples[-1]["lag"] == {"t.ingest": 6, "t.jobs.high": 2}


def test_workers_are_listed_with_their_partitions_and_jobs_in_flight():
    parts = [{"worker": "10.0.0.2:6066", "partitions": [2, 3], "by_status":
              {"DONE": 5, "PROCESSING": 2, "QUEUED": 1}, "by_status_priority": {},
              "throughput": []},
             {"worker": "10.0.0.1:6066", "partitions": [0, 1], "by_status": {"DONE": 1},
              "by_status_priority": {}, "throughput": []}]
    merged = merge_counts(parts, 60)
    assert merged["workers"] == [
        {"worker": "10.0.0.1:6066", "partitions": [0, 1], "in_flight": 0},
        {"worker": "10.0.0.2:6066", "partitions": [2, 3], "in_flight": 3}]
    assert merged["partitions"] == [0, 1, 2, 3] and merged["jobs"]["DONE"] == 6


def test_a_job_in_flight_is_polled_briefly():
    from pipeline.web.states import brief_view

    state = {**STATE, "status": "PROCESSING", "updated_at": 5.0, "history": [{}] * 40}
    assert brief_view(state) == {"job_id": STATE["job_id"], "status": "PROCESSING",
                                 "updated_at": 5.0}
