"""The jobs table: job_id -> job state (see tables.transitions), changelog-backed.

``use_partitioner=True`` sends each changelog record to the partition of its key. Every
topic is keyed by job_id with the same partition count, so that is the partition of the
events that update the job, even when a batch mixes events from several partitions.
"""

from __future__ import annotations

from typing import Any

import faust

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


def put_state(state: dict[str, Any]) -> None:
    jobs[state["job_id"]] = state


def local_states() -> list[dict[str, Any]]:
    """States of the partitions this worker holds (actives and standbys)."""
    return [value for value in jobs.values() if value]
