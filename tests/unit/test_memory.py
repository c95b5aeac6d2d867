"""Freed memory goes back to the system when the worker asks (glibc's malloc_trim)."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
from pipeline.worker.memory import release_free_memory

def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS")) // 1024

# 300 MiB in blocks below the mmap threshold (so from the heap), one kept at the top
blocks = [bytearray(100_000) for _ in range(3000)]
keep = blocks[-1]
del blocks
before = rss_mib()
released = release_free_memory()
print(released, before, rss_mib())
"""


def test_freed_memory_is_returned_to_the_system():
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                         check=True).stdout.split()
    released, before, after = out[0] == "True", int(out[1]), int(out[2])
    assert released
    assert before - after > 200, (before, after)  # most of the 300 MiB given back


KEEP_PROGRAM = """
import sys
from pipeline.worker.memory import keep_freed_memory

def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS")) // 1024

kept = keep_freed_memory() if sys.argv[1] == "keep" else None
for _ in range(3):  # an image-sized block per job, freed after it
    blocks = [bytearray(1 << 20) for _ in range(60)]
    peak = rss_mib()
    del blocks
print(kept, peak, rss_mib())
"""


def _after_freeing(mode: str) -> tuple[str, int, int]:
    out = subprocess.run([sys.executable, "-c", KEEP_PROGRAM, mode], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1]), int(out[2])


def test_kept_memory_stays_for_the_next_job_until_released():
    kept, peak, after = _after_freeing("keep")
    assert kept == "True"
    assert peak - after < 10, (peak, after)  # the 60 MiB stay for reuse
    _, peak, after = _after_freeing("default")
    assert peak - after > 40, (peak, after)  # glibc's default gives them back at once
