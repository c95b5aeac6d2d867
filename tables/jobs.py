"""The jobs table: job_id -> job state (see tables.transitions), changelog-backed.

``use_partitioner=True`` sends each changelog record to the partition of its key. Every
topic is keyed by job_id with the same partition count, so that is the partition of the
events that update the job, even when a batch mixes events from several partitions.

Agents and web views use the table through ``JobStates`` (``app.job_states``); a dict
stands in for the Faust table in unit tests.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import faust
from aiokafka.partitioner import murmur2

from pipeline.worker import faustcompat
from pipeline.worker.app import app, settings
from tables import transitions


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
    token = faustcompat.current_event_as(event)
    try:
        yield
    finally:
        faustcompat.restore_current_event(token)


def key_partition(job_id: str | bytes, partitions: int) -> int:
    """The partition of a job_id: Kafka's default partitioner, which every producer of
    our topics and the table's changelog (use_partitioner) use. (RocksDB hands keys
    back as bytes.)"""
    key = job_id if isinstance(job_id, bytes) else job_id.encode()
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@lru_cache(maxsize=1 << 16)
def _cached_partition(job_id: str, partitions: int) -> int:
    return key_partition(job_id, partitions)


#: Where the current task collects its changelog writes (JobStates.writes), or None.
_collecting: ContextVar[list[Any] | None] = ContextVar("jobs_changelog_writes", default=None)


def collect_changelog_writes(table: Any) -> None:
    """Make each changelog write of ``table`` (the future Faust's ``send_changelog``
    returns for a set) visible to ``JobStates.writes``, so a batch can wait for its own
    writes instead of flushing the whole producer."""
    send = table.send_changelog

    def send_changelog(*args: Any, **kwargs: Any) -> Any:
        future = send(*args, **kwargs)
        writes = _collecting.get()
        if writes is not None:
            writes.append(future)
        return future

    table.send_changelog = send_changelog


class JobStates:
    """Job states by job_id over a table (Faust's, or any mapping in tests)."""

    def __init__(self, table: MutableMapping[str, Any], partitions: int,
                 assigned_actives: Any = None, name: str = "jobs") -> None:
        self.table = table
        self.partitions = partitions
        self.name = name
        self._assigned_actives = assigned_actives

    def partition_of(self, job_id: str) -> int:
        """The partition of a job's state (and events); remembered, because pollers ask
        for the same ids pass after pass and murmur2 runs in Python."""
        return _cached_partition(job_id, self.partitions)

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self.table.get(job_id)

    def put(self, state: dict[str, Any], event: Any = None) -> None:
        """Write a job's state; pass the event it came from when writing in a batch."""
        with event_context(event):
            self.table[state["job_id"]] = state

    @contextmanager
    def writes(self) -> Iterator[list[Any]]:
        """Collects the changelog writes (futures) of the puts this task makes inside
        the block; a plain mapping (unit tests) makes none."""
        writes: list[Any] = []
        token = _collecting.set(writes)
        try:
            yield writes
        finally:
            _collecting.reset(token)

    def values(self) -> list[dict[str, Any]]:
        return [state for state in self.table.values() if state]

    def active_states(self, partitions: set[int]) -> list[dict[str, Any]]:
        """States of the jobs in ``partitions`` (this worker's actives: no standby
        copies, so answers of several workers add up without double counting)."""
        return [value for key, value in self.table.items()
                if value and key_partition(key, self.partitions) in partitions]

    def active_partitions(self) -> set[int]:
        """Partitions of the jobs table this worker is the active owner of."""
        changelog = self.changelog_topic_name()
        return {tp.partition for tp in self._assigned_actives() if tp.topic == changelog}

    def changelog_topic_name(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    @staticmethod
    def public_view(state: dict[str, Any]) -> dict[str, Any]:
        return transitions.public_view(state)

    @staticmethod
    def record_view(record: Any) -> dict[str, Any]:
        """A finished job from its metadata row (JobRecord), shaped like public_view."""
        return transitions.record_view(record)


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
jobs.changelog_topic = faustcompat.remake_changelog_topic(jobs)  # made with json at init
collect_changelog_writes(jobs)
app.job_states = JobStates(jobs, settings.partitions,
                           lambda: app.assignor.assigned_actives(), jobs.name)
