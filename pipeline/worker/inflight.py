"""What this worker is working on right now: the sweeper's view of "not lost".

Agents register each batch while they handle it (job ids, the source partitions and
their offsets); the sweeper re-sends a job only when its work record lies below what the
group committed or what this worker finished, and no batch here is handling it, and it
seeks a quiet partition back only when no batch of its topic is in flight (a long job is
not a stall). Pure bookkeeping, no Faust.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

#: (topic, partition, offset, job id or None) of one record of a batch.
Record = tuple[str, int, int, str | None]


class InFlight:
    """Batches being handled by this worker's agents."""

    def __init__(self) -> None:
        self._jobs: Counter[str] = Counter()
        self._topic_batches: Counter[str] = Counter()
        self._finished: dict[tuple[str, int], int] = {}  # highest offset handled

    @contextmanager
    def batch(self, records: Iterable[Record]) -> Iterator[None]:
        """Mark ``records`` in flight for the duration of the block; on a normal exit,
        their offsets count as handled."""
        records = list(records)
        jobs = [job_id for *_, job_id in records if job_id]
        topics = {topic for topic, *_ in records}
        self._jobs.update(jobs)
        self._topic_batches.update(topics)
        ok = False
        try:
            yield
            ok = True
        finally:
            self._jobs.subtract(jobs)
            self._jobs += Counter()  # drop zero counts
            self._topic_batches.subtract(topics)
            self._topic_batches += Counter()
            if ok:
                for topic, partition, offset, _ in records:
                    key = (topic, partition)
                    self._finished[key] = max(self._finished.get(key, -1), offset)

    def running(self, job_id: str) -> bool:
        """True if a batch here is handling ``job_id``."""
        return self._jobs[job_id] > 0

    def busy(self, topic: str) -> bool:
        """True if a batch of ``topic`` is being handled here."""
        return self._topic_batches[topic] > 0

    def finished_through(self, topic: str, partition: int) -> int | None:
        """The highest offset of ``topic``/``partition`` this worker has handled."""
        return self._finished.get((topic, partition))

    def forget_except(self, partitions: set[tuple[str, int]]) -> None:
        """Drop handled offsets of partitions no longer assigned here."""
        for key in set(self._finished) - partitions:
            del self._finished[key]


#: The worker's one registry (agents write, the sweeper reads).
in_flight = InFlight()
