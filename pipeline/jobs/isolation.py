"""Running one job's image work in a child process it cannot take the worker down from.

A thread cannot be stopped, and a native decoder bug or an out-of-memory kill takes the
whole worker with it. Jobs that already crashed a worker once run here instead: a fresh
child process (forkserver: the parent's threads and sockets are not inherited) with
rlimits on its address space and CPU time, killed at its deadline. The child's death is
reported as ChildDied, its overrun as DeadlineExceeded; both are permanent failures of
the job, never of the worker.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from typing import Any

from pipeline.errors import PermanentError


class ChildDied(PermanentError):
    """The isolated run ended without an answer (a crash, a signal, an OOM kill)."""

    default_code = "worker_crashed"


class DeadlineExceeded(PermanentError):
    default_code = "deadline_exceeded"


def _child_main(conn: Any, fn: Callable[..., Any], args: tuple, memory_bytes: int,
                cpu_seconds: int) -> None:
    os.environ["IMGPIPE_ISOLATED_CHILD"] = "1"
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    if cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    try:
        result = (True, fn(*args))
    except MemoryError:
        result = (False, PermanentError("the job needs more memory than its budget",
                                        "memory_budget"))
    except Exception as exc:  # the parent classifies it like an in-process failure
        result = (False, exc)
    try:
        conn.send(result)
    except Exception as exc:  # an unpicklable error: send what can be sent
        conn.send((False, PermanentError(f"{type(exc).__name__}: {exc}", "internal_error")))
    conn.close()


def run_isolated(fn: Callable[..., Any], *args: Any, deadline: float,
                 memory_bytes: int = 0) -> Any:
    """``fn(*args)`` in a fresh child process: its result, or its exception re-raised
    here; ChildDied if the child died, DeadlineExceeded (child killed) after
    ``deadline`` seconds. Blocking: call it from a pool thread."""
    context = multiprocessing.get_context("forkserver")
    if not _preloaded:
        preload()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, daemon=True,
                            args=(sender, fn, args, memory_bytes, int(deadline) + 1))
    child.start()
    sender.close()
    try:
        if not receiver.poll(deadline):
            child.kill()
            raise DeadlineExceeded(f"the job ran longer than its {deadline:.0f} s deadline "
                                   "and was stopped")
        try:
            ok, payload = receiver.recv()
        except (EOFError, OSError):
            child.join(5)
            raise ChildDied(f"the job's isolated process died ({_how(child.exitcode)})"
                            ) from None
    finally:
        receiver.close()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
    if ok:
        return payload
    raise payload


def _how(exitcode: int | None) -> str:
    if exitcode is None:
        return "no exit code"
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


_preloaded = False


def preload() -> None:
    """Load the image modules into the forkserver once, so each child starts fast."""
    global _preloaded
    multiprocessing.get_context("forkserver").set_forkserver_preload(
        ["pipeline.jobs.processing"])
    _preloaded = True
