"""Test hooks to make a worker fail at an exact place (never armed in production).

Crash points: A SIGKILL from outside cannot be timed between "outputs written" and
"offsets committed"; this can. Set IMGPIPE_CRASH_AT to a point's name (and
IMGPIPE_CRASH_MARKER to a file path, so it fires once across restarts). Unset, it costs
one dict lookup.

Job faults: IMGPIPE_FAULT_JOBS (a substring of job ids) and IMGPIPE_FAULT_ACTION make
the image work of a matching job abort the process (``abort``), allocate memory until it
is killed (``oom``), abort in a worker but run out of memory when isolated
(``crash-then-oom``), sleep (``sleep:SECONDS``) or sleep and then fail
(``fail-after:SECONDS``), wherever that work runs (worker thread or isolated child).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline.errors import PermanentError

POINTS = ("after_effects", "after_results")


def crash_point(name: str) -> None:
    """Exit the process at once (no cleanup, like SIGKILL) if this point is armed."""
    if os.environ.get("IMGPIPE_CRASH_AT") != name:
        return
    marker = os.environ.get("IMGPIPE_CRASH_MARKER")
    if marker:
        if Path(marker).exists():
            return
        Path(marker).write_text(name)
    os._exit(137)


def job_fault(job_id: str) -> None:
    """Act out IMGPIPE_FAULT_ACTION if ``job_id`` matches IMGPIPE_FAULT_JOBS."""
    marker = os.environ.get("IMGPIPE_FAULT_JOBS")
    if not marker or marker not in job_id:
        return
    action, _, arg = os.environ.get("IMGPIPE_FAULT_ACTION", "abort").partition(":")
    if action == "abort" or (action == "crash-then-oom"
                             and not os.environ.get("IMGPIPE_ISOLATED_CHILD")):
        os.abort()
    if action in ("oom", "crash-then-oom"):
        hog = []
        while True:
            hog.append(bytearray(64 << 20))
    if action in ("sleep", "fail-after"):
        time.sleep(float(arg or 1))
    if action == "fail-after":
        raise PermanentError("injected failure (IMGPIPE_FAULT_ACTION)", "injected")
