"""Windowed counts of finished jobs: outcomes per priority per minute, kept for an hour.

Keys are ``partition|priority|outcome``: the partition of the job, so exactly one
worker (the partition's owner) ever writes a key, and its changelog record goes to that
same partition (no use_partitioner; the job's event is made current when counting).
Agents count through ``app.throughput.count``; web views read ``local_windows``.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from pipeline.worker import faustcompat
from pipeline.worker.app import app, settings
from tables.jobs import event_context

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60
RETENTION = timedelta(hours=1)


class Throughput:
    """Counts finished jobs into a tumbling-window table (Faust's, or a dict in tests)."""

    window_seconds = WINDOW_SECONDS

    def __init__(self, table: Any) -> None:
        self.table = table

    def count(self, event: Any, priority: str, outcome: str, jobs: int = 1) -> None:
        """Count ``jobs`` finished jobs (outcome: done, failed, rejected) of ``event``'s
        partition in the current window. Statistics never fail a job: a counting error
        is logged and skipped."""
        key = f"{event.message.partition}|{priority}|{outcome}"
        try:
            with event_context(event):
                self.table[key] += jobs
        except Exception:
            log.exception("could not count %d %s %s job(s) in the throughput table", jobs,
                          priority, outcome)

    def local_windows(self, partitions: set[int]) -> list[dict[str, Any]]:
        """``[{"start", "priority", "outcome", "count"}]`` of the given partitions'
        windows, summed over partitions, oldest first."""
        totals: dict[tuple[float, str, str], int] = {}
        for stored_key, count in self.table.table.data.items():
            key, (start, _end) = stored_key
            partition, priority, outcome = key.split("|")
            if int(partition) in partitions:
                slot = (start, priority, outcome)
                totals[slot] = totals.get(slot, 0) + count
        return [{"start": start, "priority": priority, "outcome": outcome, "count": count}
                for (start, priority, outcome), count in sorted(totals.items())]


throughput = app.Table(
    "throughput",
    default=int,
    partitions=settings.partitions,
    key_type=str,
    value_type=int,
    help="partition|priority|outcome -> jobs finished per 60 s window (1 h kept)",
).tumbling(WINDOW_SECONDS, expires=RETENTION)
# Faust's relative_to_now() reads a per-partition clock that only advances for streams
# iterating the table itself, i.e. never here: count by the wall clock instead.
throughput = throughput.clone(relative_to=lambda event=None: time.time())


# Faust checks a table's changelog has as many partitions as the source topic by
# reading the consumer's metadata, which right after the changelog topic is created can
# still say 0 partitions, failing every write for minutes. `imgpipe topics create`
# guarantees equal counts and Faust creates the changelog with the same count, so the
# check is marked done for our source topics.
faustcompat.trust_source_partitions(throughput.table, [
    app.topic_names.ingest, *app.topic_names.priority.values()])
app.throughput = Throughput(throughput)
