"""retry: hold each retried job until its backoff has passed, then requeue it."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from agents.events import job_id_hint, key_text, origin, raw_value
from agents.routing import confirm, dead_letter, send, topic
from pipeline.app import app, topic_names
from pipeline.models import dead_letter as dead_letter_record
from pipeline.models import job_request_from_dict

log = logging.getLogger(__name__)


@app.agent(topic(topic_names.retry), name="retry", concurrency=1)
async def retry(stream):
    """Backoffs grow with attempts, so holding the head of a partition costs little;
    processing of every other topic goes on meanwhile."""
    async for event in stream.events():
        try:
            data = json.loads(raw_value(event))
            delay = float(data.get("retry_at", 0)) - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if "request" in data:
                request = job_request_from_dict(data["request"])
                await confirm([await send(topic_names.priority[request.priority],
                                          request.job_id, request.to_json())])
            else:  # a salvaged raw event: let ingest judge it again
                await confirm([await send(topic_names.ingest, key_text(event),
                                          data["raw"].encode())])
        except Exception as exc:
            log.warning("unusable retry record %s: %s", origin(event), exc)
            await confirm([await dead_letter(dead_letter_record(
                job_id_hint(event), "bad_retry_record", str(exc), stage="retry",
                raw=raw_value(event), source_topic=origin(event)))])
