"""What a job will cost before it runs, and a worker-wide memory budget.

The estimate comes from the source's header (pixels, bands, bytes per sample, frames)
and the job's variants (the largest image any step holds): decoding keeps the source
twice at most (the decoder's image and our 8-bit array, plus a 32-bit copy for 16-bit
sources), and each variant's steps hold a few RGBA copies of their largest image. It
errs on the high side. A job over the per-job budget fails with ``memory_budget``; the
worker's gate starts image work only while the estimates of running jobs fit its budget,
so big jobs wait for each other instead of the pod being killed.
"""

from __future__ import annotations

import asyncio
import io
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ImageRejected, PermanentError
from pipeline.imaging.decode import check_structure, open_checked
from pipeline.ops import Chain

#: Bytes per sample of Pillow modes (anything else: 1).
_SAMPLE_BYTES = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}
#: RGBA copies a variant's steps keep of their largest image (input, output, encoder).
_VARIANT_COPIES = 3
#: Python, the libraries and the worker's own tables: not part of any job's budget.
_BASE_BYTES = 300 << 20


class OverBudget(PermanentError):
    default_code = "memory_budget"


@dataclass(frozen=True)
class JobCost:
    """Estimated peak memory (bytes) of one job's image work."""

    memory: int

    @property
    def megabytes(self) -> int:
        return self.memory >> 20


def estimate_cost(data: bytes, chains: dict[str, Chain], max_pixels: int) -> JobCost:
    """Peak memory of decoding ``data`` and making every variant (header only: nothing
    is decoded; a header the decoder would refuse raises its ImageRejected here)."""
    if not data:
        raise ImageRejected("source is empty (0 bytes)", "empty_source")
    check_structure(data)  # the header parse below must not be the slow part of a bomb
    with open_checked(io.BytesIO(data), max_pixels) as image:
        width, height = image.size
        bands = len(image.getbands())
        sample = _SAMPLE_BYTES.get(image.mode, 1)
        frames = max(1, int(getattr(image, "n_frames", 1) or 1))
    pixels = width * height
    decoded = pixels * bands * sample * min(frames, 2)  # animated: current + previous
    array = pixels * 4 + (pixels * 4 if sample > 1 else 0)
    variants = max((chain.largest_pixels(width, height) for chain in chains.values()),
                   default=0) * 4 * _VARIANT_COPIES
    if frames > 1 and any(chain.animated for chain in chains.values()):
        # Kept animations: every RGBA frame decoded, and every frame of each output.
        decoded += frames * pixels * 4
        variants += frames * sum(4 * math.prod(chain.output_size(width, height))
                                 for chain in chains.values() if chain.animated)
    return JobCost(decoded + array + variants)


def memory_limit() -> int:
    """This process's memory limit: the cgroup's (a container's) if any, else the
    machine's memory."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (1 << 60):
            return int(text)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_budget(share: float = 0.6) -> int:
    """The worker's image-work budget: a share of its memory limit, above its base."""
    return max(64 << 20, int(memory_limit() * share) - _BASE_BYTES)


class MemoryGate:
    """Admits image work while the estimates of running jobs fit ``budget`` bytes.

    A job waits (in arrival order) until it fits; one alone larger than the whole
    budget is refused (OverBudget), since it could never run.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.in_use = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, cost: JobCost) -> AsyncIterator[None]:
        if cost.memory > self.budget:
            raise OverBudget(f"the job needs about {cost.megabytes} MiB, more than this "
                             f"worker's image budget of {self.budget >> 20} MiB")
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_use + cost.memory <= self.budget)
            self.in_use += cost.memory
        try:
            yield
        finally:
            async with self._changed:
                self.in_use -= cost.memory
                self._changed.notify_all()
