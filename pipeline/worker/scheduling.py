"""Priority scheduling of image work, at the granularity of one job.

Each priority class has its own Faust agent and topic; all three hand jobs to one
:class:`PriorityExecutor`, whose threads always take the highest-priority waiting job,
except that a class that has waited while getting less than its guaranteed share of
recent work goes first (the starvation guard). Because the choice is made per job, a
high-priority job waits at most for the jobs already on the threads, never for a whole
low-priority batch; and because each agent awaits its batch before taking the next,
unserved classes stop consuming (Faust stops fetching full buffers), which survives
rebalances where pausing partitions does not (see docs/priority.md).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import cv2

from pipeline.models import PRIORITIES

T = TypeVar("T")


class PriorityPicker:
    """Chooses which waiting class runs next. Pure logic, no I/O.

    ``shares`` maps a class to the least fraction of the last ``window`` picks it gets
    while it has work waiting (0 for none). A class only counts as starved once
    ``window // 4`` picks of history exist, so a fresh worker starts with its highest
    class.
    """

    def __init__(self, shares: Mapping[str, float], window: int = 40) -> None:
        self.shares = dict(shares)
        self.recent: deque[str] = deque(maxlen=window)

    def share(self, priority: str) -> float:
        return self.recent.count(priority) / len(self.recent) if self.recent else 0.0

    def pick(self, waiting: list[str]) -> str:
        """The class to serve next among ``waiting`` (non-empty)."""
        ordered = [p for p in PRIORITIES if p in waiting]
        if len(self.recent) >= max(1, self.recent.maxlen // 4):
            for priority in reversed(ordered):  # the lowest starved class first
                if self.shares.get(priority, 0.0) > self.share(priority):
                    self.recent.append(priority)
                    return priority
        self.recent.append(ordered[0])
        return ordered[0]


class PriorityExecutor:
    """A thread pool whose queue is ordered by priority class (see the module doc)."""

    def __init__(self, threads: int, shares: Mapping[str, float]) -> None:
        self.threads = threads
        self.picker = PriorityPicker(shares)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imgpipe-img")
        self._queues: dict[str, deque] = {p: deque() for p in PRIORITIES}
        self._running = 0
        if threads > 1:
            # The pool is the parallelism; OpenCV's own threads would oversubscribe the
            # cores (measured: 2 pool threads scale 1.89x with this, 1.72x without).
            cv2.setNumThreads(1)

    def queued(self, priority: str) -> int:
        return len(self._queues[priority])

    async def run(self, priority: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a pool thread when its class's turn comes."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._queues[priority].append((fn, args, future))
        self._pump(loop)
        return await future

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._running < self.threads:
            waiting = [p for p in PRIORITIES if self._queues[p]]
            if not waiting:
                return
            fn, args, future = self._queues[self.picker.pick(waiting)].popleft()
            if future.cancelled():
                continue
            self._running += 1
            task = loop.run_in_executor(self._pool, fn, *args)
            task.add_done_callback(lambda done, f=future: self._finished(loop, done, f))

    def _finished(self, loop, done: asyncio.Future, future: asyncio.Future) -> None:
        self._running -= 1
        if not future.cancelled():
            if done.exception() is not None:
                future.set_exception(done.exception())
            else:
                future.set_result(done.result())
        self._pump(loop)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
