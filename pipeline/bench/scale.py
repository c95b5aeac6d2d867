"""``imgpipe bench scale``: 1 vs 2 workers against the bare loop's own 1 vs 2 processes.

Each worker gets one image thread, so on an N-core machine adding workers is what adds
cores, exactly like adding processes to the bare loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ProcessPoolExecutor

import cv2
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pipeline.bench.harness import BenchPipeline
from pipeline.bench.ops import VARIANTS, bare_opencv, make_jpegs
from pipeline.kafkasecurity import kafka_options
from pipeline.models import JobRequest
from pipeline.objects import open_object_store


def _single_threaded() -> None:
    cv2.setNumThreads(1)


def bare_rate(images: list[bytes], processes: int, rounds: int = 2) -> float:
    """images/s of the bare loop with ``processes`` single-threaded processes."""
    work = images * rounds
    with ProcessPoolExecutor(processes, initializer=_single_threaded) as pool:
        list(pool.map(bare_opencv, images[:processes]))  # warm up every process
        started = time.perf_counter()
        list(pool.map(bare_opencv, work, chunksize=1))
        return len(work) / (time.perf_counter() - started)


async def _pipeline_rate(pipe: BenchPipeline, sources: list[str], count: int, tag: str
                         ) -> float:
    settings = pipe.settings
    consumer = AIOKafkaConsumer(settings.topic("results"),
                                **kafka_options(settings),
                                group_id=f"bench-{tag}-{time.time_ns()}",
                                auto_offset_reset="latest")
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all",
                                linger_ms=5)
    await consumer.start()
    await producer.start()
    await asyncio.sleep(1.0)
    try:
        started = time.perf_counter()
        for i in range(count):
            request = JobRequest(f"{tag}-{i}", sources[i % len(sources)], VARIANTS, "normal")
            await producer.send(settings.topic("ingest"), request.to_json(),
                                key=request.job_id.encode())
        await producer.flush()
        seen: set[str] = set()
        deadline = time.monotonic() + 600
        while len(seen) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for messages in batch.values():
                for message in messages:
                    job_id = json.loads(message.value)["job_id"]
                    if job_id.startswith(f"{tag}-"):
                        seen.add(job_id)
        if len(seen) < count:
            raise RuntimeError(f"only {len(seen)}/{count} jobs finished")
        return count / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await consumer.stop()


def measure(pipe: BenchPipeline, count: int, echo) -> dict[str, float]:
    images = make_jpegs(8, 1920, 1080)
    store = open_object_store(pipe.settings.object_store)
    sources = [store.put(f"sources/scale/{i}.jpg", d, "image/jpeg") for i, d in
               enumerate(images)]
    echo("bare loop, 1 and 2 processes...")
    bare_1 = bare_rate(images, 1)
    bare_2 = bare_rate(images, 2)
    echo("pipeline, 1 worker...")
    pipe.start_worker()
    asyncio.run(_pipeline_rate(pipe, sources, max(8, count // 4), "warm"))
    one = asyncio.run(_pipeline_rate(pipe, sources, count, "one"))
    echo("pipeline, 2 workers...")
    pipe.start_worker()
    time.sleep(12)  # the group rebalances onto both workers
    asyncio.run(_pipeline_rate(pipe, sources, max(8, count // 4), "warm2"))
    two = asyncio.run(_pipeline_rate(pipe, sources, count, "two"))
    return {"bare_1": bare_1, "bare_2": bare_2, "bare_scaling": bare_2 / bare_1,
            "pipeline_1": one, "pipeline_2": two, "pipeline_scaling": two / one,
            "scaling_vs_bare": (two / one) / (bare_2 / bare_1),
            "efficiency_1": one / bare_1, "efficiency_2": two / bare_2}
