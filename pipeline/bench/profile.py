"""Sampling a worker with py-spy during a benchmark phase, summarised by category."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

# py-spy names files relative to their sys.path entry ("ops/resize.py", "faust/...").
# A thread parked in these frames is waiting, not working.
IDLE = ("_worker (concurrent/futures/thread.py", "EpollSelector.select", "Condition.wait",
        "_read_from_self")
# First match wins, checked from the innermost frame outwards.
CATEGORIES = [
    ("image work (OpenCV, Pillow, ops)", ("cv2", "PIL/", "ops/", "engine.py", "numpy/")),
    ("object store", ("objects/", "tempfile.py", "posixpath")),
    ("metadata store", ("metadata/", "sqlite3", "spanner")),
    ("kafka client (aiokafka)", ("aiokafka/",)),
    ("faust / mode (streams, tables, sensors)", ("faust/", "mode/")),
    ("agents and tables (ours)", ("agents/", "tables/", "processing.py", "scheduling.py")),
    ("web, metrics", ("aiohttp/", "prometheus_client/", "web/")),
    ("json", ("json/",)),
    ("asyncio loop", ("asyncio/",)),
]


def _category(stack: list[str]) -> str:
    if any(stack[-1].startswith(idle) for idle in IDLE):
        return "idle (waiting threads)"
    for frame in reversed(stack):
        for name, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return name
    return "other"


def summarise(raw_file: Path) -> list[tuple[str, float]]:
    """Share of the busy samples (threads not parked) per category in a py-spy
    ``--format raw`` file."""
    counts: Counter[str] = Counter()
    for line in raw_file.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[_category(stack.split(";"))] += int(count)
    counts.pop("idle (waiting threads)", None)
    total = sum(counts.values()) or 1
    return [(name, n / total) for name, n in counts.most_common()]


def py_spy() -> str:
    """The py-spy executable (the venv's first: its bin folder need not be on PATH)."""
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                      f"{os.environ.get('PATH', '')}")
    if spy is None:
        raise click.ClickException("--profile needs py-spy: pip install 'py-spy>=0.4,<0.5'")
    return spy


@contextmanager
def sampled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy records ``pid`` (all threads) while the block runs."""
    if out is None:
        yield
        return
    proc = subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--format", "raw",
                             "--rate", "100", "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        _, err = proc.communicate(timeout=60)
        if proc.returncode not in (0, -signal.SIGINT) or not out.exists():
            raise click.ClickException(f"py-spy failed: {err.decode(errors='replace')[-500:]}"
                                       " (it needs ptrace rights: run as root or set "
                                       "kernel.yama.ptrace_scope=0)")
