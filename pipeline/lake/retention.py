"""Age-based deletion of archived partitions (for stores without lifecycle rules)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

from pipeline.objects import ObjectStore

_DT = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/")


def expired_keys(keys: list[str], keep_days: int, today: date) -> list[str]:
    """Keys in dt= partitions older than ``keep_days`` days before ``today``."""
    cutoff = (today - timedelta(days=keep_days)).isoformat()
    return [key for key in keys if (m := _DT.search(key)) and m.group(1) < cutoff]


def prune(store: ObjectStore, prefix: str, keep_days: int, today: date,
          dry_run: bool = False, progress: Callable[[int, int], None] = lambda d, t: None
          ) -> list[str]:
    """Delete (or with ``dry_run`` only list) the archive files past retention."""
    doomed = expired_keys(store.list_keys(prefix), keep_days, today)
    for done, key in enumerate(doomed, 1):
        if not dry_run:
            store.delete(key)
        progress(done, len(doomed))
    return doomed
