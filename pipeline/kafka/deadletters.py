"""The newest records of the dead-letter topic, for the dashboard (read without a group,
so reading never moves anybody's offsets)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pipeline.kafka.reader import KafkaReader
from pipeline.models import MAX_EVENT_BYTES, loads_bounded

#: Most records one answer reads, per partition, looking for those a caller may see.
SCAN_PER_PARTITION = 5000
#: Records read per step back through a partition.
STEP = 500


class DeadLetterReader:
    """Reads the newest records of ``topic`` (newest first) that a caller may see;
    answers are cached for ``max_age`` seconds per caller and limit."""

    def __init__(self, reader: KafkaReader, topic: str, max_age: float = 3.0) -> None:
        self.reader = reader
        self.topic = topic
        self.max_age = max_age
        self._cached: dict[Any, tuple[float, list[dict[str, Any]]]] = {}
        self._lock = asyncio.Lock()

    async def recent(self, limit: int, shown: Callable[[dict[str, Any]], bool] | None = None,
                     cache_key: Any = None) -> list[dict[str, Any]]:
        """Up to ``limit`` newest records (those ``shown`` keeps) with their partition,
        offset and timestamp. Each partition is read back in steps until it holds
        ``limit`` kept records or SCAN_PER_PARTITION were read: another tenant's flood of
        dead letters cannot push a tenant's own out of its view (up to that bound)."""
        async with self._lock:
            key = (limit, cache_key)
            cached = self._cached.get(key)
            if cached and time.monotonic() - cached[0] < self.max_age:
                return cached[1]
            partitions = await self.reader.partitions([self.topic])
            begins, ends = await self.reader.offsets(partitions)
            consumer = await self.reader.consumer()
            consumer.assign(partitions)
            records: list[dict[str, Any]] = []
            step = limit if shown is None else max(STEP, limit)
            for tp in partitions:
                records += await self._newest(consumer, tp, begins[tp], ends[tp], limit,
                                              step, shown or (lambda record: True))
            records.sort(key=lambda r: r["timestamp"], reverse=True)
            result = records[:limit]
            if len(self._cached) > 256:  # one entry per caller and limit: bounded
                self._cached.clear()
            self._cached[key] = (time.monotonic(), result)
            return result

    async def _newest(self, consumer: Any, tp: Any, begin: int, end: int, limit: int,
                      step: int, shown: Callable[[dict[str, Any]], bool]
                      ) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        stop = end
        while stop > begin and len(kept) < limit and end - stop < SCAN_PER_PARTITION:
            start = max(begin, stop - step)
            kept = [r for r in await _read(consumer, tp, start, stop) if shown(r)] + kept
            stop = start
        return kept


async def _read(consumer: Any, tp: Any, start: int, stop: int) -> list[dict[str, Any]]:
    """The records of ``tp`` in [start, stop), as views (what was read within 5 s)."""
    consumer.seek(tp, start)
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        batch = await consumer.getmany(tp, timeout_ms=500)
        messages = batch.get(tp, [])
        records += [_view(m) for m in messages if m.offset < stop]
        if messages and messages[-1].offset >= stop - 1:
            break
    return records


def _view(message: Any) -> dict[str, Any]:
    try:
        record = loads_bounded(message.value, max_bytes=2 * MAX_EVENT_BYTES)
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except Exception:  # anyone who may write the topic may write anything
        record = {"error": "unreadable dead-letter record"}
    job_id = record.get("job_id")
    return {"partition": message.partition, "offset": message.offset,
            "timestamp": message.timestamp / 1000.0,
            "job_id": job_id if isinstance(job_id, str) else None,
            "reason": record.get("reason"), "stage": record.get("stage"),
            "error": record.get("error"), "attempts": record.get("attempts"),
            "sender": record.get("sender")}
