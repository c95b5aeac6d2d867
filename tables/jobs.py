"""The jobs table: job_id -> job state (see tables.transitions), changelog-backed.

``use_partitioner=True`` sends each changelog record to the partition of its key. Every
topic is keyed by job_id with the same partition count, so that is the partition of the
events that update the job, even when a batch mixes events from several partitions.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.streams import _current_event  # see put_state

from pipeline.worker.app import app, settings

jobs = app.Table(
    "jobs",
    default=None,
    schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
    partitions=settings.partitions,
    use_partitioner=True,
    help="job_id -> state, attempts, history, outputs, error",
)
# Faust derives the changelog key serializer from key_type alone (str -> "json"), and
# use_partitioner hashes the *serialized* key: a JSON-quoted job_id lands on another
# partition than the job's events, so a job's state would be restored to, and routed
# to, a worker that does not process it. Raw keys hash exactly like the events' keys.
jobs.key_serializer = "raw"
jobs.changelog_topic = jobs._new_changelog_topic()  # made at init with the json serializer


def get_state(job_id: str) -> dict[str, Any] | None:
    return jobs.get(job_id)


@contextmanager
def event_context(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's *current event* for table writes inside the block.

    Stores file a key under the current event's partition (and tables without
    use_partitioner send their changelog there); in a batch that is otherwise the last
    event taken, possibly of another partition.
    """
    if event is None:
        yield
        return
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def put_state(state: dict[str, Any], event: Any = None) -> None:
    """Write a job's state; pass the event it came from when writing inside a batch."""
    with event_context(event):
        jobs[state["job_id"]] = state


def key_partition(job_id: str | bytes) -> int:
    """The partition of a job_id: Kafka's default partitioner, which every producer of
    our topics and the table's changelog (use_partitioner) use. (RocksDB hands keys
    back as bytes.)"""
    key = job_id if isinstance(job_id, bytes) else job_id.encode()
    return (murmur2(key) & 0x7FFFFFFF) % settings.partitions


def active_states(partitions: set[int]) -> list[dict[str, Any]]:
    """States of the jobs in ``partitions`` (this worker's actives: no standby copies,
    so answers of several workers add up without double counting)."""
    return [value for key, value in jobs.items()
            if value and key_partition(key) in partitions]


def active_partitions() -> set[int]:
    """Partitions of the jobs table this worker is the active owner of."""
    changelog = jobs.changelog_topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog}
