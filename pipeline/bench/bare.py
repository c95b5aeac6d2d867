"""The baseline: the bench variants as a plain OpenCV loop, one process per core."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import cv2

from pipeline.bench.ops import bare_opencv


@dataclass(frozen=True)
class BareRun:
    images_per_s: float
    cpu_s_per_image: float  # CPU seconds of the work itself (process_time in the worker)
    median_image_s: float  # wall seconds of one image on one thread


def _single_threaded() -> None:
    cv2.setNumThreads(1)


def _timed(data: bytes) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    bare_opencv(data)
    return time.process_time() - cpu, time.perf_counter() - wall


def bare_run(images: list[bytes], processes: int, rounds: int = 2) -> BareRun:
    """The bare loop over ``images`` x ``rounds`` with ``processes`` single-threaded
    processes (warmed up first)."""
    work = images * rounds
    with ProcessPoolExecutor(processes, initializer=_single_threaded) as pool:
        list(pool.map(_timed, images[:processes]))
        started = time.perf_counter()
        timings = list(pool.map(_timed, work, chunksize=1))
        elapsed = time.perf_counter() - started
    return BareRun(len(work) / elapsed, sum(c for c, _ in timings) / len(work),
                   statistics.median(w for _, w in timings))
