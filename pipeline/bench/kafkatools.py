"""Kafka helpers for the benchmarks: bulk producing, and reading topics back whole."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.kafka.reader import KafkaReader
from pipeline.kafka.security import kafka_options
from pipeline.settings import Settings


@dataclass(frozen=True)
class RecordInfo:
    topic: str
    partition: int
    size: int  # key + value bytes, what the claim check bounds
    timestamp_ms: int


async def topic_partitions(settings: Settings, topics: list[str]) -> list[TopicPartition]:
    """Every partition of ``topics``; raises if none of them exists."""
    reader = KafkaReader(kafka_options(settings))
    try:
        found = await reader.partitions(topics)
    finally:
        await reader.close()
    if not found:
        raise RuntimeError(f"none of {topics} exists on the broker")
    return found


async def produce(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Send (key, value) records as fast as the producer batches them; all acked."""
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all", linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def read_all(settings: Settings, topics: list[str]) -> list[RecordInfo]:
    """Every record currently in ``topics`` (no consumer group, offsets untouched)."""
    consumer = AIOKafkaConsumer(**kafka_options(settings), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, topics)
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        found: list[RecordInfo] = []
        while remaining:
            for tp, messages in (await consumer.getmany(timeout_ms=1000)).items():
                found += [RecordInfo(m.topic, m.partition,
                                     len(m.key or b"") + len(m.value or b""), m.timestamp)
                          for m in messages]
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return found
    finally:
        await consumer.stop()


async def wait_for_total(settings: Settings, topics: list[str], target: int,
                         timeout: float, progress: Callable[[int], None]) -> None:
    """Poll until ``topics`` hold ``target`` records in all; raise after ``timeout``."""
    reader = KafkaReader(kafka_options(settings))
    try:
        partitions = await reader.partitions(topics)
        deadline = time.monotonic() + timeout
        while (total := sum((await reader.offsets(partitions))[1].values())) < target:
            progress(total)
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {total}/{target} records arrived in {topics} "
                                   f"within {timeout:.0f}s")
            await asyncio.sleep(1.0)
    finally:
        await reader.close()
