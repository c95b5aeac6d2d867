"""Fail fast: a worker whose stores are misconfigured stops with a clear message."""

from __future__ import annotations

import asyncio
import logging

from pipeline.errors import ImgpipeError
from pipeline.worker.app import app

log = logging.getLogger(__name__)


@app.task
async def check_stores() -> None:
    """Open the object and metadata stores (and check the schema) before real work."""
    try:
        await asyncio.to_thread(app.runtime.check)
    except ImgpipeError as exc:
        log.error("worker cannot start: %s", exc.message)
        await app.crash(exc)
