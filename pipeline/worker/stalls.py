"""Noticing a partition that has work but makes no progress (pure logic; agents/sweep.py
acts on it)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class StallWatch:
    """Per partition, remembers the last delivered and committed offsets and since when
    they have not moved. A partition is stalled when records wait beyond its committed
    offset and neither offset moved for ``stale_after`` seconds. After reporting a
    stall the clock restarts, so a remedy gets ``stale_after`` to work."""

    stale_after: float
    _seen: dict[Hashable, tuple[int | None, int | None, float]] = field(default_factory=dict)

    def stalled(self, partition: Hashable, delivered: int | None, committed: int | None,
                end: int, now: float) -> bool:
        if end <= (committed or 0):  # nothing waits
            self._seen.pop(partition, None)
            return False
        previous = self._seen.get(partition)
        if previous is None or previous[:2] != (delivered, committed):
            self._seen[partition] = (delivered, committed, now)
            return False
        if now - previous[2] < self.stale_after:
            return False
        self._seen[partition] = (delivered, committed, now)
        return True

    def forget_except(self, partitions: set[Hashable]) -> None:
        """Drop partitions no longer assigned here."""
        for key in set(self._seen) - partitions:
            del self._seen[key]
