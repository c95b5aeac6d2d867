"""``imgpipe bench priority``: high-priority latency idle vs under a low-priority backlog."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from pipeline.bench.harness import BenchPipeline
from pipeline.bench.jobs import clients, submit
from pipeline.bench.ops import make_jpegs
from pipeline.models import JobRequest

HIGH = {"thumb": [{"op": "thumbnail", "size": 256}, {"op": "encode", "format": "webp"}],
        "large": [{"op": "resize", "width": 1280}, {"op": "encode", "format": "jpeg"}]}
LOW = {**HIGH, "web": [{"op": "resize", "width": 1280},
                       {"op": "encode", "format": "webp", "quality": 80}]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _phase(pipe: BenchPipeline, sources: list[str], highs: int, interval: float,
                 backlog: int, tag: str, echo) -> dict[str, Any]:
    submitted: dict[str, float] = {}
    done: dict[str, float] = {}
    low_done = 0
    async with clients(pipe, tag) as (producer, consumer):

        async def collect() -> None:
            nonlocal low_done
            async for message in consumer:
                result = json.loads(message.value)
                if result["job_id"] in submitted:
                    done[result["job_id"]] = time.time()
                elif result["job_id"].startswith(f"{tag}-low-"):
                    low_done += 1

        collector = asyncio.ensure_future(collect())
        try:
            for i in range(backlog):
                await submit(producer, pipe, JobRequest(
                    f"{tag}-low-{i}", sources[i % len(sources)], LOW, "low"))
            await producer.flush()
            if backlog:
                await asyncio.sleep(2.0)  # the backlog is queued and the threads are busy
            low_before = low_done
            for i in range(highs):
                request = JobRequest(f"{tag}-high-{i}", sources[i % len(sources)], HIGH,
                                     "high")
                submitted[request.job_id] = time.time()
                await (await submit(producer, pipe, request))
                await asyncio.sleep(interval)
            deadline = time.monotonic() + 120
            while len(done) < highs and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            low_during = low_done - low_before
        finally:
            collector.cancel()
    latencies = [done[j] - submitted[j] for j in done]
    if len(latencies) < highs:
        raise RuntimeError(f"only {len(latencies)}/{highs} high jobs finished")
    echo(f"{tag}: {highs} high jobs, p50 {statistics.median(latencies) * 1000:.0f} ms")
    return {"p50": statistics.median(latencies), "p99": percentile(latencies, 0.99),
            "max": max(latencies), "low_done_during": low_during}


def measure(pipe: BenchPipeline, highs: int, interval: float, backlog: int, echo) -> dict:
    sources = pipe.store_sources(make_jpegs(8, 1920, 1080), "bench")
    idle = asyncio.run(_phase(pipe, sources, highs, interval, 0, "idle", echo))
    loaded = asyncio.run(_phase(pipe, sources, highs, interval, backlog, "backlog", echo))
    return {"idle": idle, "backlog": loaded, "backlog_jobs": backlog,
            "p99_backlog_over_p99_idle": loaded["p99"] / idle["p99"],
            "p99_backlog_over_p50_idle": loaded["p99"] / idle["p50"]}
