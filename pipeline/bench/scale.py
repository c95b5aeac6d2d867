"""``imgpipe bench scale``: 1 vs 2 workers against the bare loop's own 1 vs 2 processes.

Each worker gets one image thread, so on an N-core machine adding workers is what adds
cores, exactly like adding processes to the bare loop.
"""

from __future__ import annotations

import time

from pipeline.bench.bare import bare_run
from pipeline.bench.harness import BenchPipeline
from pipeline.bench.jobs import run_jobs
from pipeline.bench.ops import VARIANTS, make_jpegs


def measure(pipe: BenchPipeline, count: int, echo) -> dict[str, float]:
    images = make_jpegs(8, 1920, 1080)
    sources = pipe.store_sources(images, "scale")
    echo("bare loop, 1 and 2 processes...")
    bare_1 = bare_run(images, 1).images_per_s
    bare_2 = bare_run(images, 2).images_per_s
    echo("pipeline, 1 worker...")
    pipe.start_worker()
    run_jobs(pipe, sources, max(8, count // 4), "warm", VARIANTS)
    one = run_jobs(pipe, sources, count, "one", VARIANTS)
    echo("pipeline, 2 workers...")
    pipe.start_worker()
    time.sleep(12)  # the group rebalances onto both workers
    run_jobs(pipe, sources, max(8, count // 4), "warm2", VARIANTS)
    two = run_jobs(pipe, sources, count, "two", VARIANTS)
    return {"bare_1": bare_1, "bare_2": bare_2, "bare_scaling": bare_2 / bare_1,
            "pipeline_1": one, "pipeline_2": two, "pipeline_scaling": two / one,
            "scaling_vs_bare": (two / one) / (bare_2 / bare_1),
            "efficiency_1": one / bare_1, "efficiency_2": two / bare_2}
