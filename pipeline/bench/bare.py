"""The baseline: the bench variants as a plain OpenCV loop (or, for any other workload,
the engine alone), one process per core."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import cv2

from pipeline.bench.ops import EngineBench, bare_opencv


@dataclass(frozen=True)
class BareRun:
    images_per_s: float
    cpu_s_per_image: float  # CPU seconds of the work itself (process_time in the worker)
    median_image_s: float  # wall seconds of one image on one thread


_make: Callable[[bytes], object] = bare_opencv


def _single_threaded(specs: tuple[str, ...] | None) -> None:
    """Each process: one OpenCV thread, and the task (the OpenCV loop, or the engine
    making ``specs`` in memory)."""
    global _make
    cv2.setNumThreads(1)
    if specs is not None:
        _make = _engine_task(specs)


def _engine_task(specs: tuple[str, ...]) -> Callable[[bytes], object]:
    """The engine making ``specs`` from bytes in memory: decode, every variant, encode."""
    from pipeline.ops import parse_variant_specs

    bench = EngineBench.create(parse_variant_specs(list(specs)))

    def make(data: bytes) -> object:
        return bench.engine.render(data, bench.chains)

    return make


def _timed(data: bytes) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    _make(data)
    return time.process_time() - cpu, time.perf_counter() - wall


def bare_run(images: list[bytes], processes: int, rounds: int = 2,
             specs: tuple[str, ...] | None = None) -> BareRun:
    """The baseline over ``images`` x ``rounds`` with ``processes`` single-threaded
    processes (warmed up first): the OpenCV loop, or the engine making ``specs``."""
    work = images * rounds
    with ProcessPoolExecutor(processes, initializer=_single_threaded,
                             initargs=(specs,)) as pool:
        list(pool.map(_timed, images[:processes]))
        started = time.perf_counter()
        timings = list(pool.map(_timed, work, chunksize=1))
        elapsed = time.perf_counter() - started
    return BareRun(len(work) / elapsed, sum(c for c, _ in timings) / len(work),
                   statistics.median(w for _, w in timings))
