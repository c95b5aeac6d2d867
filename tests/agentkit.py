"""Agents without a broker: an in-memory topic log behind the Outbox, a dict behind
JobStates, events shaped like Faust's. Agent logic runs unchanged on these."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.context import AgentContext
from agents.routing import Outbox
from pipeline.kafka.topics import TopicNames
from pipeline.worker.inflight import InFlight
from tables.jobs import JobStates, key_partition
from tests.runtimes import local_runtime


@dataclass
class Message:
    topic: str
    partition: int
    offset: int


@dataclass
class Event:
    """What agents read of a Faust event."""

    key: bytes | None
    value: bytes | None
    message: Message
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class Sent:
    topic: str
    partition: int
    offset: int


class MemoryTopics:
    """Topic logs in memory. ``refuse[topic] = n`` makes the next n sends to that topic
    fail as a broker outage would (a timeout), to exercise the Outbox's re-sending."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.logs: dict[str, list[Event]] = defaultdict(list)
        self.refuse: Counter[str] = Counter()

    async def produce(self, topic: str, key: bytes | None, value: bytes,
                      headers: Any) -> asyncio.Future:
        from aiokafka.errors import KafkaTimeoutError

        future = asyncio.get_running_loop().create_future()
        if self.refuse[topic] > 0:
            self.refuse[topic] -= 1
            future.set_exception(KafkaTimeoutError())
            return future
        partition = key_partition(key, self.partitions) if key else 0
        log = self.logs[topic]
        log.append(Event(key, value, Message(topic, partition, len(log)), headers or []))
        future.set_result(Sent(topic, partition, len(log) - 1))
        return future

    def values(self, topic: str) -> list[Any]:
        return [json.loads(e.value) for e in self.logs[topic]]


@dataclass
class Kit:
    ctx: AgentContext
    topics: MemoryTopics
    table: dict[str, Any]
    outcomes: Counter

    @property
    def names(self) -> TopicNames:
        return self.ctx.topics

    def event(self, topic: str, value: bytes | dict | None, key: str | None = None,
              headers: list | None = None) -> Event:
        """An event as it would arrive on ``topic`` (appended to its log)."""
        raw = json.dumps(value).encode() if isinstance(value, dict) else value
        keyb = key.encode() if key is not None else None
        partition = key_partition(keyb, self.topics.partitions) if keyb else 0
        log = self.topics.logs[topic]
        event = Event(keyb, raw, Message(topic, partition, len(log)), headers or [])
        log.append(event)
        return event


@contextmanager
def agent_kit(root: Path, **settings: str) -> Iterator[Kit]:
    """An AgentContext over a local Runtime under ``root``, memory topics and a dict
    table."""
    with local_runtime(root, source_roots=f"file://{root}", **settings) as runtime:
        s = runtime.settings
        topics = MemoryTopics(s.partitions)
        table: dict[str, Any] = {}
        outcomes: Counter = Counter()
        names = TopicNames.from_settings(s)
        ctx = AgentContext(
            settings=s, runtime=runtime, topics=names,
            states=JobStates(table, s.partitions),
            outbox=Outbox(topics.produce, names.dlq, runtime.group.attest),
            count_outcome=lambda event, priority, outcome, jobs=1: outcomes.update(
                {(priority, outcome): jobs}),
            in_flight=InFlight())
        yield Kit(ctx, topics, table, outcomes)
