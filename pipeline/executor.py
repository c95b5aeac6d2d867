"""The bounded executor that keeps image work off the asyncio loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import cv2

T = TypeVar("T")


class ImageExecutor:
    """A thread pool (OpenCV and Pillow release the GIL in their heavy calls) with a
    cap on queued work, so a burst cannot pile unbounded jobs into memory."""

    def __init__(self, threads: int, max_pending: int | None = None) -> None:
        self.threads = threads
        if threads > 1:
            # The pool is the parallelism; OpenCV's own threads would oversubscribe the
            # cores (measured: 2 pool threads scale 1.89x with this, 1.72x without).
            cv2.setNumThreads(1)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imgpipe-img")
        self._slots = asyncio.Semaphore(max_pending or threads * 4)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
