"""Consumer lag of the worker group, computed the way Kafka tools do it: for each
partition, the log end offset minus the group's committed offset (the whole retained
log when the group has committed nothing there yet)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.kafka.reader import KafkaReader


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end_offset: int
    committed: int | None  # None: the group never committed this partition
    lag: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LagProbe:
    """Measures the group's lag on ``topics``; an answer is cached for ``max_age``
    seconds (dashboards poll)."""

    def __init__(self, reader: KafkaReader, group_id: str, topics: list[str],
                 max_age: float = 2.0) -> None:
        self.reader = reader
        self.group_id = group_id
        self.topics = topics
        self.max_age = max_age
        self._cached: tuple[float, list[PartitionLag]] | None = None
        self._lock = asyncio.Lock()

    async def measure(self) -> list[PartitionLag]:
        """Lag of every partition of every topic, sorted by topic and partition."""
        async with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.max_age:
                return self._cached[1]
            partitions = await self.reader.partitions(self.topics)
            begins, ends = await self.reader.offsets(partitions)
            admin = await self.reader.admin()
            committed = await admin.list_consumer_group_offsets(self.group_id,
                                                                partitions=partitions)
            result = []
            for tp in partitions:
                meta = committed.get(tp)
                offset = meta.offset if meta is not None and meta.offset >= 0 else None
                start = offset if offset is not None else begins[tp]
                result.append(PartitionLag(tp.topic, tp.partition, ends[tp], offset,
                                           max(0, ends[tp] - start)))
            self._cached = (time.monotonic(), result)
            return result
