"""Submitting benchmark jobs to a BenchPipeline and waiting for their results."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pipeline.bench.harness import BenchPipeline
from pipeline.kafka.security import kafka_options
from pipeline.models import JobRequest


@asynccontextmanager
async def clients(pipe: BenchPipeline, tag: str, linger_ms: int = 5
                  ) -> AsyncIterator[tuple[AIOKafkaProducer, AIOKafkaConsumer]]:
    """A producer, and a consumer of the results topic that is assigned before the
    block starts (so no result of a job submitted inside the block is missed)."""
    settings = pipe.settings
    consumer = AIOKafkaConsumer(settings.topic("results"), **kafka_options(settings),
                                group_id=f"bench-{tag}-{time.time_ns()}",
                                auto_offset_reset="latest")
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all", linger_ms=linger_ms)
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():  # results sent before this would be missed
            await consumer.getmany(timeout_ms=200)
        yield producer, consumer
    finally:
        await producer.stop()
        await consumer.stop()


async def _results(consumer: AIOKafkaConsumer, prefix: str, wanted: int, timeout: float
                   ) -> set[str]:
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < wanted and time.monotonic() < deadline:
        for messages in (await consumer.getmany(timeout_ms=500)).values():
            seen.update(job_id for m in messages
                        if (job_id := json.loads(m.value)["job_id"]).startswith(prefix))
    if len(seen) < wanted:
        raise RuntimeError(f"only {len(seen)}/{wanted} {prefix!r} jobs finished within "
                           f"{timeout:.0f}s")
    return seen


async def submit(producer: AIOKafkaProducer, pipe: BenchPipeline, request: JobRequest):
    """Send ``request`` to the ingest topic; returns the delivery future."""
    return await producer.send(pipe.settings.topic("ingest"), request.to_json(),
                               key=request.job_id.encode())


def run_jobs(pipe: BenchPipeline, sources: list[str], count: int, tag: str,
             variants: dict, timeout: float = 900) -> float:
    """Submit ``count`` jobs at once; jobs/s from the first submission to the last
    result."""

    async def run() -> float:
        async with clients(pipe, tag) as (producer, consumer):
            started = time.perf_counter()
            for i in range(count):
                await submit(producer, pipe, JobRequest(
                    f"{tag}-{i}", sources[i % len(sources)], variants, "normal"))
            await producer.flush()
            await _results(consumer, f"{tag}-", count, timeout)
            return count / (time.perf_counter() - started)

    return asyncio.run(run())


def one_at_a_time(pipe: BenchPipeline, sources: list[str], count: int, tag: str,
                  variants: dict, priority: str = "normal") -> list[float]:
    """End-to-end seconds of ``count`` jobs, each submitted when the previous finished
    (an idle pipeline: the latency a lone request sees)."""

    async def run() -> list[float]:
        latencies = []
        async with clients(pipe, tag, linger_ms=0) as (producer, consumer):
            for i in range(count):
                request = JobRequest(f"{tag}-{i}", sources[i % len(sources)], variants,
                                     priority)
                started = time.perf_counter()
                await (await submit(producer, pipe, request))
                await _results(consumer, request.job_id, 1, 60)
                latencies.append(time.perf_counter() - started)
        return latencies

    return asyncio.run(run())
