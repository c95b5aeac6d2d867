"""retry: hold each retried job until its backoff has passed, then requeue it."""

from __future__ import annotations

import asyncio
import logging
import time

from agents.events import key_text, origin, raw_value, records_of
from agents.routing import confirm, dead_letter_event, send, topic
from pipeline.jobs.processing import longest_backoff, retry_hold
from pipeline.models import MAX_EVENT_BYTES, job_request_from_dict, loads_bounded
from pipeline.worker.app import app, settings, topic_names
from pipeline.worker.inflight import in_flight

log = logging.getLogger(__name__)
_LONGEST_HOLD = longest_backoff(settings.retry_backoff, settings.max_attempts)


@app.agent(topic(topic_names.retry), name="retry", concurrency=1)
async def retry(stream):
    """Backoffs grow with attempts, so holding the head of a partition costs little;
    processing of every other topic goes on meanwhile."""
    async for event in stream.events():
        with in_flight.batch(records_of([event])):
            await requeue(event)


async def requeue(event) -> None:
    """Hold one retry record until its time, then send it back to work (or dead-letter
    it if it is unusable)."""
    try:
        data = loads_bounded(raw_value(event), max_bytes=2 * MAX_EVENT_BYTES)
        await asyncio.sleep(retry_hold(data.get("retry_at"), time.time(), _LONGEST_HOLD))
        if "request" in data:
            request = job_request_from_dict(data["request"])
            await confirm([await send(topic_names.priority[request.priority],
                                      request.job_id, request.to_json())])
        elif data.get("topic") in topic_names.priority.values():
            # a salvaged work record: back to its work topic (already admitted)
            await confirm([await send(data["topic"], key_text(event),
                                      data["raw"].encode())])
        else:  # an older salvaged record: let ingest judge it again
            await confirm([await send(topic_names.ingest, key_text(event),
                                      data["raw"].encode())])
    except Exception as exc:
        log.warning("unusable retry record %s: %s", origin(event), exc)
        await confirm([await dead_letter_event(event, "bad_retry_record", str(exc), "retry")])
