"""``imgpipe bench ingest``: events/s through the ingest agent vs a raw aiokafka drain.

Both sides read the same pre-produced ingest topic. The raw side is a plain aiokafka
consumer with a no-op handler; the ingest side is one worker running only the ingest
agent (IMGPIPE_AGENTS=ingest), so no image work competes for the CPU. The ingest rate
is taken from the routed records' own timestamps (first to last), which leaves the
worker's start-up out of the figure just as the raw side's connection set-up is left out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from pipeline.bench.harness import BENCH_SOURCES, BenchPipeline
from pipeline.bench.kafkatools import produce, read_all, topic_partitions, wait_for_total
from pipeline.kafka.security import kafka_options
from pipeline.models import JobRequest
from pipeline.objects import open_object_store

VARIANTS = {"thumb": [{"op": "thumbnail", "size": 256}, {"op": "encode", "format": "webp"}]}
PRIORITIES = ("high", "normal", "low")


def make_events(source: str, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` valid requests for one source, keyed by job id, priorities mixed."""
    events = []
    for i in range(count):
        request = JobRequest(f"ingest-{i}", source, VARIANTS, PRIORITIES[i % 3])
        events.append((request.job_id.encode(), request.to_json()))
    return events


async def raw_drain(pipe: BenchPipeline, topic: str, count: int) -> float:
    """events/s of a bare aiokafka consumer doing nothing with each record (partitions
    assigned directly, so the clock starts at the first fetch, not at a group join)."""
    settings = pipe.settings
    partitions = await topic_partitions(settings, [topic])
    consumer = AIOKafkaConsumer(**kafka_options(settings), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen, started = 0, time.perf_counter()
        while seen < count:
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                seen += len(messages)
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def measure(pipe: BenchPipeline, count: int, echo: Callable[[str], None]) -> dict[str, Any]:
    """Produce ``count`` requests, then raw drain (A), the ingest agent, raw drain (A')."""
    settings = pipe.settings
    store = open_object_store(settings.object_store)
    source = store.put(f"{BENCH_SOURCES}/ingest/src.jpg", b"\xff\xd8 not decoded by ingest",
                       "image/jpeg")
    echo(f"producing {count} ingest events...")
    asyncio.run(produce(settings, settings.topic("ingest"), make_events(source, count)))
    echo("raw aiokafka drain (A)...")
    raw_a = asyncio.run(raw_drain(pipe, settings.topic("ingest"), count))
    echo("ingest agent on one worker...")
    pipe.start_worker()
    work_topics = [settings.priority_topic(p) for p in PRIORITIES]
    asyncio.run(wait_for_total(settings, work_topics, count, 30 + count / 100,
                               lambda n: echo(f"  routed {n}/{count}")))
    routed = asyncio.run(read_all(settings, work_topics))
    stamps = sorted(r.timestamp_ms for r in routed)
    agent = (len(stamps) - 1) / max(1e-3, (stamps[-1] - stamps[0]) / 1000)
    echo("raw aiokafka drain (A')...")
    raw_b = asyncio.run(raw_drain(pipe, settings.topic("ingest"), count))
    raw = (raw_a + raw_b) / 2
    return {"events": count, "routed": len(routed), "raw_events_per_s": raw,
            "raw_a": raw_a, "raw_b": raw_b, "ingest_events_per_s": agent,
            "ingest_vs_raw": agent / raw}
