"""Giving freed image buffers back to the system.

glibc's malloc keeps freed memory for reuse: after a burst of large images (an 18 MiB
frame per 6 MP photo, several intermediates per variant) a worker's RSS stays at the
burst's high-water mark long after the burst, which autoscaling on memory reads as load
(measured: a worker that took over a drained worker's partitions stayed 15 % larger; a
process that had decoded a few 6 MP photos held 305 MiB where 97 MiB was live). A periodic
``malloc_trim(0)`` returns the free pages; it costs one call per interval. (A fixed
``MALLOC_MMAP_THRESHOLD_`` returned them too, but cost ~50 % more CPU in page faults.)

Between those calls the allocator should keep what it freed: ``keep_freed_memory`` (at
worker start) fixes glibc's trim and mmap thresholds. Left dynamic, they follow the last
freed large block, which a read buffer shrunk after ``read`` resets to well under one
image, and each image thread's arena then gave its pages back after every job and
faulted them in again on the next (measured: ~1,200 page faults and 3.6 ms of system
time per fit-512 job, the image threads' CPU 1.65x the engine's alone).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.malloc_trim  # noqa: B018  (glibc only; musl and macOS have none)
    except (OSError, AttributeError):
        return None
    return libc


#: mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Free memory at the top of an arena kept for the next job (trimmed by the timer).
TRIM_THRESHOLD = 128 << 20
#: Blocks this large or larger are mapped and unmapped on their own (glibc's ceiling for
#: its dynamic threshold): a 12 MP frame still goes straight back when freed.
MMAP_THRESHOLD = 32 << 20


def keep_freed_memory() -> bool:
    """Fix the allocator's thresholds so image buffers are reused across jobs, not
    returned and faulted in again each time; False where there is no glibc."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system; False where there is no glibc."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
