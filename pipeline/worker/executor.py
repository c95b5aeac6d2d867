"""A bounded thread pool for blocking I/O (storage, metadata) off the asyncio loop.

Image work has its own priority-ordered pool: pipeline.worker.scheduling.PriorityExecutor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


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

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
