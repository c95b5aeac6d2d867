"""The jobs table: job_id -> job state (see tables.transitions), changelog-backed.

``use_partitioner=True`` sends each changelog record to the partition of its key. Every
topic is keyed by job_id with the same partition count, so that is the partition of the
events that update the job, even when a batch mixes events from several partitions.
"""

from __future__ import annotations

import weakref
from typing import Any

import faust
from faust.streams import _current_event  # see put_state

from pipeline.app import app, settings

jobs = app.Table(
    "jobs",
    default=None,
    schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
    partitions=settings.partitions,
    use_partitioner=True,
    help="job_id -> state, attempts, history, outputs, error",
)


def get_state(job_id: str) -> dict[str, Any] | None:
    return jobs.get(job_id)


def put_state(state: dict[str, Any], event: Any = None) -> None:
    """Write a job's state. Pass the event it came from when writing inside a batch: the
    RocksDB store files a key under the *current event's* partition, and in a batch that
    is otherwise the last event taken, possibly of another partition."""
    if event is None:
        jobs[state["job_id"]] = state
        return
    token = _current_event.set(weakref.ref(event))
    try:
        jobs[state["job_id"]] = state
    finally:
        _current_event.reset(token)


def local_states() -> list[dict[str, Any]]:
    """States of the partitions this worker holds (actives and standbys)."""
    return [value for value in jobs.values() if value]
