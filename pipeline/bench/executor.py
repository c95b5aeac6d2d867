"""``imgpipe bench executor``: threads vs processes for image work, on this machine."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from pipeline.bench.ops import VARIANTS, EngineBench

_bench: EngineBench | None = None
_requests: list = []


def _init(images: list[bytes]) -> None:
    global _bench, _requests
    _bench = EngineBench.create(VARIANTS)
    _requests = _bench.load(images)


def _run(index: int) -> int:
    assert _bench is not None
    return _bench.run(_requests[index])


def measure(images: list[bytes], workers: int) -> dict[str, float]:
    """images/s serial, with a thread pool and with a process pool of ``workers``."""
    _init(images)
    indexes = list(range(len(images)))
    _run(0)  # warm up caches and lazy imports
    started = time.perf_counter()
    for i in indexes:
        _run(i)
    serial = len(images) / (time.perf_counter() - started)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(_run, indexes[:workers]))
        started = time.perf_counter()
        list(pool.map(_run, indexes))
        threads = len(images) / (time.perf_counter() - started)
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(images,)) as pool:
        list(pool.map(_run, indexes[:workers]))
        started = time.perf_counter()
        list(pool.map(_run, indexes, chunksize=1))
        processes = len(images) / (time.perf_counter() - started)
    return {"serial": serial, "threads": threads, "processes": processes}
