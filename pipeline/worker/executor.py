"""A bounded thread pool for blocking I/O (storage, metadata) off the asyncio loop.

Image work has its own priority-ordered pool: pipeline.worker.scheduling.PriorityExecutor.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BoundedExecutor:
    """A thread pool with a cap on queued work, so a burst cannot pile unbounded jobs
    into memory. Used for I/O (storage, metadata) as is."""

    def __init__(self, threads: int, max_pending: int | None = None,
                 name: str = "imgpipe-io") -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._slots = asyncio.Semaphore(max_pending or threads * 4)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def submit_each(self, fn: Callable[..., T], calls: Sequence[tuple],
                    finish: Callable[[list[T]], R]) -> Future[R]:
        """``fn(*args)`` for each ``args`` of ``calls`` on the pool, callable from any
        thread (no event loop); one future of ``finish(results)``, results in call
        order, or of the first error once every call has ended (no write is left
        running behind a failure). Not counted against the queue cap: the callers
        (the image threads, one job's outputs each) bound it themselves."""
        combined: Future[R] = Future()
        futures = [self._pool.submit(fn, *args) for args in calls]
        remaining = len(futures)
        lock = threading.Lock()

        def complete() -> None:
            try:  # result() raises the first failed call's error, in call order
                combined.set_result(finish([f.result() for f in futures]))
            except BaseException as exc:  # a call's error, or finish's own
                combined.set_exception(exc)

        def one_done(_: Future) -> None:
            nonlocal remaining
            with lock:
                remaining -= 1
                if remaining:
                    return
            complete()

        for future in futures:
            future.add_done_callback(one_done)
        if not futures:
            complete()
        return combined

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
