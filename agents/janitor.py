"""janitor: remove what crashed writes left in the object store (old temp files), and
give freed image buffers back to the system (pipeline/worker/memory.py)."""

from __future__ import annotations

import asyncio
import logging

from pipeline import metrics
from pipeline.worker.app import app
from pipeline.worker.memory import release_free_memory

log = logging.getLogger(__name__)


async def remove_leftovers() -> int:
    """One sweep of the object store for stale temp files; never fails the worker."""
    store, max_age = app.runtime.object_store, app.pipeline_settings.temp_max_age
    try:
        removed = await asyncio.to_thread(store.remove_stale_temp, max_age)
    except Exception as exc:  # the store may be away; the next sweep tries again
        log.warning("temp files not swept: %r", exc)
        return 0
    if removed:
        log.info("removed %d temp files of crashed writes", removed)
        metrics.TEMP_FILES_REMOVED.inc(removed)
    return removed


@app.task
async def sweep_leftovers_at_start() -> None:
    await remove_leftovers()


@app.timer(interval=app.pipeline_settings.temp_sweep_interval)
async def sweep_leftovers() -> None:
    await remove_leftovers()


@app.timer(interval=app.pipeline_settings.memory_trim_interval)
async def release_memory() -> None:
    """Between bursts, RSS follows the memory in use, not the last burst's peak."""
    await asyncio.to_thread(release_free_memory)
