"""retry: hold each retried job until its backoff has passed, then requeue it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from agents.context import AgentContext, context_of
from agents.events import key_text, origin, raw_value, records_of
from pipeline.jobs.processing import longest_backoff, retry_hold
from pipeline.models import MAX_EVENT_BYTES, job_request_from_dict, loads_bounded
from pipeline.records import TO_PRIORITY, TO_WORK_TOPIC, RetryRecord
from pipeline.worker.app import app

log = logging.getLogger(__name__)


async def requeue(ctx: AgentContext, event: Any) -> None:
    """Hold one retry record until its time, then send it back to work (or dead-letter
    it if it is unusable)."""
    settings = ctx.settings
    try:
        record = RetryRecord.from_dict(loads_bounded(raw_value(event),
                                                     max_bytes=2 * MAX_EVENT_BYTES))
        longest = longest_backoff(settings.retry_backoff, settings.max_attempts)
        await asyncio.sleep(retry_hold(record.retry_at, time.time(), longest))
        if record.destination == TO_PRIORITY:
            request = job_request_from_dict(record.request)
            target, key, value = (ctx.topics.priority[request.priority], request.job_id,
                                  request.to_json())
        elif (record.destination == TO_WORK_TOPIC
              and record.topic in ctx.topics.priority.values()):
            # a salvaged work record: back to its work topic (already admitted)
            target, key, value = record.topic, key_text(event), record.raw.encode()
        else:  # an older salvaged record: let ingest judge it again
            target, key, value = ctx.topics.ingest, key_text(event), record.raw.encode()
        await ctx.outbox.confirm([await ctx.outbox.send(target, key, value)])
    except Exception as exc:
        log.warning("unusable retry record %s: %s", origin(event), exc)
        await ctx.outbox.confirm([await ctx.outbox.dead_letter_event(
            event, "bad_retry_record", str(exc), "retry")])


@app.agent(app.source_topic(app.topic_names.retry), name="retry", concurrency=1)
async def retry(stream):
    """Backoffs grow with attempts, so holding the head of a partition costs little;
    processing of every other topic goes on meanwhile."""
    ctx = context_of(app)
    async for event in stream.events():
        with ctx.in_flight.batch(records_of([event])):
            await requeue(ctx, event)
