"""Giving freed image buffers back to the system.

glibc's malloc keeps freed memory for reuse: after a burst of large images (an 18 MiB
frame per 6 MP photo, several intermediates per variant) a worker's RSS stays at the
burst's high-water mark long after the burst, which autoscaling on memory reads as load
(measured: a worker that took over a drained worker's partitions stayed 15 % larger; a
process that had decoded a few 6 MP photos held 305 MiB where 97 MiB was live). A periodic
``malloc_trim(0)`` returns the free pages; it costs one call per interval. (A fixed
``MALLOC_MMAP_THRESHOLD_`` returned them too, but cost ~50 % more CPU in page faults.)
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


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system; False where there is no glibc."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
