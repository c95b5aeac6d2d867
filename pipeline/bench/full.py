"""``imgpipe bench``: the full pipeline against the bare loop on the same cores, A/B/A.

A  the bare OpenCV loop, one single-threaded process per core, no Kafka;
B  the pipeline (real Kafka, object store, metadata store) with K workers, each with
   one image thread per core / K, fed the same images with the same variants;
A' the bare loop again (the machine's drift shows as A vs A').

Then, on the same pipeline: the latency of lone jobs against the bare single-image time,
the workers' peak memory after 12 MP inputs, and the largest record in any topic.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.bench.bare import bare_run
from pipeline.bench.harness import BenchPipeline
from pipeline.bench.jobs import one_at_a_time, run_jobs
from pipeline.bench.kafkatools import read_all
from pipeline.bench.ops import make_jpegs
from pipeline.bench.procstat import (
    busiest_threads_cpu,
    cpu_seconds,
    machine_idle_seconds,
    peak_rss_mb,
    thread_schedule,
)
from pipeline.bench.profile import sampled
from pipeline.bench.workloads import Workload, workload
from pipeline.kafka.reader import KafkaReader
from pipeline.kafka.security import kafka_options

#: The largest record the claim check allows: the finished state and the result carry the
#: source's facts (150-600 B, pipeline/imaging/facts.py) besides the outputs.
CLAIM_CHECK_BYTES = 2048


async def _pipeline_topics(pipe: BenchPipeline) -> list[str]:
    settings = pipe.settings
    reader = KafkaReader(kafka_options(settings))
    try:
        names = await (await reader.admin()).list_topics()
    finally:
        await reader.close()
    return sorted(n for n in names if n.startswith((settings.topic_prefix + ".",
                                                    settings.app_id + "-")))


def largest_records(pipe: BenchPipeline) -> dict[str, int]:
    """The largest record (key + value bytes) in each of the pipeline's topics."""

    async def scan() -> dict[str, int]:
        largest: dict[str, int] = {}
        for record in await read_all(pipe.settings, await _pipeline_topics(pipe)):
            largest[record.topic] = max(largest.get(record.topic, 0), record.size)
        return largest

    return asyncio.run(scan())


def idle_cpu_rate(pids: list[int], seconds: float = 5.0) -> float:
    """CPU seconds per second the processes ``pids`` spend with nothing to do."""
    before = sum(cpu_seconds(p) for p in pids)
    time.sleep(seconds)  # a measurement window, not a wait for a condition
    return (sum(cpu_seconds(p) for p in pids) - before) / seconds


def thread_shares(pid: int, before: dict[int, tuple[float, float]],
                  after: dict[int, tuple[float, float]], seconds: float
                  ) -> list[dict[str, Any]]:
    """The worker's busiest threads between two ``thread_schedule`` readings ``seconds``
    apart: the share of that time each spent on a core, runnable but waiting for one,
    and neither (blocked: the GIL, a lock, I/O, or no work)."""
    rows = []
    for tid, (cpu, waiting) in after.items():
        cpu0, waiting0 = before.get(tid, (0.0, 0.0))
        on_cpu, queued = (cpu - cpu0) / seconds, (waiting - waiting0) / seconds
        if on_cpu >= 0.02:
            rows.append({"thread": "main (event loop)" if tid == pid else f"thread {tid}",
                         "on_cpu": on_cpu, "waiting_for_core": queued,
                         "blocked": max(0.0, 1 - on_cpu - queued)})
    return sorted(rows, key=lambda r: -r["on_cpu"])


def measure(pipe: BenchPipeline, images: int, size: tuple[int, int], workers: int,
            rounds: int, echo: Callable[[str], None], profile: Path | None = None,
            task: Workload | None = None, image_threads: int = 1) -> dict[str, Any]:
    """Run A, B, A', then the latency, memory and record-size checks (module doc)."""
    task = task or workload("heavy")
    variants = task.variants
    cores = os.cpu_count() or 1
    data = make_jpegs(images, *size)
    sources = pipe.store_sources(data, "bench")
    jobs = images * rounds

    echo(f"A: {task.baseline}, {cores} processes, {jobs} images...")
    bare_a = bare_run(data, cores, rounds, task.specs)
    echo(f"B: pipeline, {workers} worker(s), {jobs} jobs...")
    for _ in range(workers):
        pipe.start_worker()
    if workers > 1:
        time.sleep(12)  # the group settles onto every worker before the clock starts
    run_jobs(pipe, sources, max(4, jobs // 8), "warm", variants)
    pids = [w.pid for w in pipe.workers]
    idle_rate = idle_cpu_rate([*pids, pipe.broker_pid])
    cpu_before = sum(cpu_seconds(p) for p in pids)
    broker_before = cpu_seconds(pipe.broker_pid)
    started = time.perf_counter()
    window_start = time.monotonic()  # the clock the worker's timeline marks use
    idle_before, client_before = machine_idle_seconds(), time.process_time()
    schedule_before = thread_schedule(pids[0])
    with sampled(pids[0], profile):
        pipeline_rate = run_jobs(pipe, sources, jobs, "main", variants)
    window = (window_start, time.monotonic())
    busy_seconds = time.perf_counter() - started
    schedule_after = thread_schedule(pids[0])
    threads = thread_shares(pids[0], schedule_before, schedule_after, busy_seconds)
    image_cpu = busiest_threads_cpu(pids[0], schedule_before, schedule_after,
                                    image_threads) / jobs
    client_cpu = (time.process_time() - client_before) / jobs
    machine_idle = (machine_idle_seconds() - idle_before) / (busy_seconds * cores)
    worker_cpu = (sum(cpu_seconds(p) for p in pids) - cpu_before) / jobs
    broker_cpu = (cpu_seconds(pipe.broker_pid) - broker_before) / jobs
    echo(f"A': {task.baseline} again, {jobs} images...")
    bare_b = bare_run(data, cores, rounds, task.specs)
    bare_rate = (bare_a.images_per_s + bare_b.images_per_s) / 2
    bare_cpu = (bare_a.cpu_s_per_image + bare_b.cpu_s_per_image) / 2
    bare_single = min(bare_a.median_image_s, bare_b.median_image_s)

    echo("idle latency: one job at a time...")
    latencies = one_at_a_time(pipe, sources, 15, "lone", variants)
    echo("12 MP inputs...")
    big = pipe.store_sources(make_jpegs(max(2, cores), 4000, 3000, seed=301), "big")
    run_jobs(pipe, big, 3 * len(big), "big", variants)
    rss = [peak_rss_mb(p) for p in pids]
    echo("scanning every topic for the largest record...")
    largest = largest_records(pipe)
    biggest_topic = max(largest, key=largest.get)
    return {
        "images": images, "size": f"{size[0]}x{size[1]}", "rounds": rounds,
        "workers": workers, "cores": cores, "workload": task.name,
        "variants": {name: len(ops) for name, ops in variants.items()},
        "baseline": task.baseline,
        "bare_a_images_per_s": bare_a.images_per_s, "bare_b_images_per_s": bare_b.images_per_s,
        "bare_images_per_s": bare_rate, "pipeline_images_per_s": pipeline_rate,
        "efficiency": pipeline_rate / bare_rate,
        "bare_cpu_s_per_image": bare_cpu, "pipeline_cpu_s_per_image": worker_cpu,
        "glue_cpu_share": 1 - bare_cpu / worker_cpu,
        "broker_cpu_s_per_image": broker_cpu,
        # The image threads' share of all the pipeline's CPU in phase B: what efficiency
        # would be with the cores saturated. Measured within B alone, so it does not move
        # when the machine speeds up or slows down between A and B (one worker only).
        "image_cpu_s_per_image": image_cpu if workers == 1 else None,
        "image_share_of_pipeline_cpu":
            image_cpu / (worker_cpu + broker_cpu) if workers == 1 else None,
        # The submitting client (this process) shares the cores too; and what the cores
        # left unused during B (a CPU-bound B has none).
        "client_cpu_s_per_image": client_cpu, "machine_idle_share": machine_idle,
        # What the pipeline adds to each job's image work, worker and broker together;
        # and the same without what they burn idle anyway (polls, probes, heartbeats),
        # which a short phase B spreads over few jobs.
        "fixed_cpu_ms_per_job": (worker_cpu + broker_cpu - bare_cpu) * 1000,
        "idle_cpu_ms_per_s": idle_rate * 1000,
        "fixed_cpu_ms_per_job_beyond_idle":
            (worker_cpu + broker_cpu - bare_cpu - idle_rate * busy_seconds / jobs) * 1000,
        "bare_single_image_s": bare_single, "idle_p50_s": statistics.median(latencies),
        "idle_p50_over_bare_single": statistics.median(latencies) / bare_single,
        "peak_rss_mb_per_worker": rss,
        "largest_record_bytes": largest[biggest_topic], "largest_record_topic": biggest_topic,
        "largest_record_by_topic": largest,
        "main_window": window, "worker_pids": pids, "worker_threads": threads,
    }
