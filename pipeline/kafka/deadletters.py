"""The newest records of the dead-letter topic, for the dashboard (read without a group,
so reading never moves anybody's offsets)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pipeline.kafka.reader import KafkaReader
from pipeline.models import MAX_EVENT_BYTES, loads_bounded


class DeadLetterReader:
    """Reads the last ``limit`` records of ``topic`` (newest first); answers are cached
    for ``max_age`` seconds."""

    def __init__(self, reader: KafkaReader, topic: str, max_age: float = 3.0) -> None:
        self.reader = reader
        self.topic = topic
        self.max_age = max_age
        self._cached: dict[int, tuple[float, list[dict[str, Any]]]] = {}
        self._lock = asyncio.Lock()

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` newest records with their partition, offset and timestamp."""
        async with self._lock:
            cached = self._cached.get(limit)
            if cached and time.monotonic() - cached[0] < self.max_age:
                return cached[1]
            partitions = await self.reader.partitions([self.topic])
            begins, ends = await self.reader.offsets(partitions)
            consumer = await self.reader.consumer()
            consumer.assign(partitions)
            wanted = {tp: ends[tp] for tp in partitions if ends[tp] > begins[tp]}
            for tp in wanted:
                consumer.seek(tp, max(begins[tp], ends[tp] - limit))
            records = []
            deadline = time.monotonic() + 5.0
            while wanted and time.monotonic() < deadline:
                batch = await consumer.getmany(*wanted, timeout_ms=500)
                for tp, messages in batch.items():
                    records += [_view(m) for m in messages if m.offset < wanted[tp]]
                    if messages and messages[-1].offset >= wanted[tp] - 1:
                        del wanted[tp]
            records.sort(key=lambda r: r["timestamp"], reverse=True)
            result = records[:limit]
            self._cached[limit] = (time.monotonic(), result)
            return result


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
