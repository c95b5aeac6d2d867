"""An optional timeline of a worker's batches and jobs, for finding idle image threads.

Set IMGPIPE_TIMELINE to a folder and each process writes ``<pid>.tsv`` there: one line
per mark (monotonic seconds, stage, key, thread, batch[, value]), where batch is the
``b<n>`` the marking task works for ('' outside a batch, e.g. on the image threads).
``imgpipe bench --timeline`` sets it and summarises the file (pipeline/bench/timeline.py).
Unset, a mark costs one None check.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

_FOLDER = os.environ.get("IMGPIPE_TIMELINE")
_out: TextIO | None = None
_lock = threading.Lock()
_batches = itertools.count(1)
#: The batch the current asyncio task works for (set by the process agent).
_current_batch: contextvars.ContextVar[str] = contextvars.ContextVar("timeline_batch",
                                                                     default="")


def _open() -> TextIO:
    global _out
    with _lock:
        if _out is None:
            folder = Path(_FOLDER or ".")
            folder.mkdir(parents=True, exist_ok=True)
            _out = (folder / f"{os.getpid()}.tsv").open("a", buffering=1 << 16)
    return _out


def mark(stage: str, key: str = "", value: float | None = None) -> None:
    """Record that ``key`` reached ``stage`` now, with an optional measured ``value``
    (no-op unless IMGPIPE_TIMELINE is set)."""
    if _FOLDER is None:
        return
    out = _out or _open()
    fields = [f"{time.monotonic():.6f}", stage, key, threading.current_thread().name,
              _current_batch.get()]
    if value is not None:
        fields.append(f"{value:.6f}")
    line = "\t".join(fields) + "\n"
    with _lock:
        out.write(line)


def start_batch() -> None:
    """Give the current task a fresh batch key; its later marks carry it."""
    if _FOLDER is not None:
        _current_batch.set(f"b{next(_batches)}")


@contextmanager
def rendering(job_id: str) -> Iterator[None]:
    """Mark ``render_start`` and ``render_end`` (with the thread's CPU seconds) around
    the block."""
    if _FOLDER is None:
        yield
        return
    mark("render_start", job_id)
    cpu = time.thread_time()
    try:
        yield
    finally:
        mark("render_end", job_id, time.thread_time() - cpu)


def flush() -> None:
    """Push buffered marks to the file (the bench reads it while the worker runs)."""
    if _out is not None:
        with _lock:
            _out.flush()
