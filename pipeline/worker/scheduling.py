"""Priority scheduling of image work, at the granularity of one job.

Each priority class has its own Faust agent and topic; all three hand jobs to one
:class:`PriorityExecutor`, whose threads always take the highest-priority waiting job,
except that a class that has waited while getting less than its guaranteed share of
recent work goes first (the starvation guard). Because the choice is made per job, a
high-priority job waits at most for the jobs already on the threads, never for a whole
low-priority batch; and because each agent holds at most two batches before taking another,
unserved classes stop consuming (Faust stops fetching full buffers), which survives
rebalances where pausing partitions does not (see docs/priority.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
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
    """Image threads that take their next job from priority-ordered queues themselves
    (see the module doc). A thread that finishes a job starts the next at once: handing
    the choice back to the event loop, as a thread pool fed by callbacks does, left each
    thread idle until the loop came round (measured: ~18 % of the cores idle under a
    full backlog of cheap jobs, docs/performance.md fix 14)."""

    def __init__(self, threads: int, shares: Mapping[str, float]) -> None:
        self.threads = threads
        self.picker = PriorityPicker(shares)
        self._queues: dict[str, deque[_Item]] = {p: deque() for p in PRIORITIES}
        self._ready = threading.Condition()
        self._stopping = False
        if threads > 1:
            # The threads are the parallelism; OpenCV's own threads would oversubscribe
            # the cores (measured: 2 threads scale 1.89x with this, 1.72x without).
            cv2.setNumThreads(1)
        self._threads = [threading.Thread(target=self._work, name=f"imgpipe-img_{i}",
                                          daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def queued(self, priority: str) -> int:
        return len(self._queues[priority])

    async def run(self, priority: str, fn: Callable[..., Any], *args: Any,
                  then: Callable[[Any], Future[T]] | None = None) -> T:
        """Run ``fn(*args)`` on an image thread when its class's turn comes.

        With ``then``, the image thread hands ``fn``'s result to ``then``, which starts
        the next step elsewhere (storing outputs on the I/O threads) and returns its
        future, and goes on to its next job; this returns that step's result. The loop
        then wakes once per job, not once for the render and again for each write."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        with self._ready:
            if self._stopping:
                raise RuntimeError("the image threads are shutting down")
            self._queues[priority].append((fn, args, then, future, loop))
            self._ready.notify()
        return await future

    def _next(self) -> _Item | None:
        with self._ready:
            while not self._stopping:
                waiting = [p for p in PRIORITIES if self._queues[p]]
                if waiting:
                    return self._queues[self.picker.pick(waiting)].popleft()
                self._ready.wait()
            return None

    def _work(self) -> None:
        while (item := self._next()) is not None:
            fn, args, then, future, loop = item
            if future.cancelled():  # its job was abandoned while it waited
                continue
            try:
                result = fn(*args)
                if then is not None:
                    _settle_when_done(loop, future, then(result))
                    continue
            except BaseException as exc:  # the caller's to handle, on its loop
                _settle(loop, future, exc, failed=True)
            else:
                _settle(loop, future, result)

    def shutdown(self) -> None:
        """Let the running jobs finish; queued ones never start."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        for thread in self._threads:
            thread.join()


_Item = tuple[Callable[..., Any], tuple, Callable[[Any], Future] | None, asyncio.Future,
              asyncio.AbstractEventLoop]


def _settle_when_done(loop: asyncio.AbstractEventLoop, future: asyncio.Future,
                      step: Future) -> None:
    """Hand ``step``'s outcome to ``future`` once it ends (on whichever thread ends it)."""

    def done(finished: Future) -> None:
        error = finished.exception()
        _settle(loop, future, error if error is not None else finished.result(),
                failed=error is not None)

    step.add_done_callback(done)


def _settle(loop: asyncio.AbstractEventLoop, future: asyncio.Future, value: Any,
            failed: bool = False) -> None:
    """Hand a job's result (or exception) to its future on the future's own loop."""

    def settle() -> None:
        if future.cancelled():
            return
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for it any more
        loop.call_soon_threadsafe(settle)
