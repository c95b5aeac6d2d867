"""Consumer lag of the worker group, computed the way Kafka tools do it: for each
partition, the log end offset minus the group's committed offset (the whole retained
log when the group has committed nothing there yet)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
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


class LagHistory:
    """Total lag per topic over time: one sample per ``every`` seconds at most, the
    newest ``keep`` kept (an hour at the defaults), so the dashboard can draw it."""

    def __init__(self, every: float = 10.0, keep: int = 360) -> None:
        self.every = every
        self.samples: deque[dict[str, Any]] = deque(maxlen=keep)

    def add(self, lags: list[PartitionLag], now: float) -> None:
        if self.samples and now - self.samples[-1]["at"] < self.every:
            return
        by_topic: dict[str, int] = {}
        for lag in lags:
            by_topic[lag.topic] = by_topic.get(lag.topic, 0) + lag.lag
        self.samples.append({"at": round(now, 1), "lag": by_topic})


class LagProbe:
    """Measures the group's lag on ``topics``; an answer is cached for ``max_age``
    seconds (dashboards poll). Every measurement also feeds ``history`` (the lag gauge
    and the sweeper measure all the time, so it fills without a dashboard open)."""

    def __init__(self, reader: KafkaReader, group_id: str, topics: list[str],
                 max_age: float = 2.0) -> None:
        self.reader = reader
        self.group_id = group_id
        self.topics = topics
        self.max_age = max_age
        self.history = LagHistory()
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
            self.history.add(result, time.time())
            return result
