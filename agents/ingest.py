"""ingest: validate raw requests, dedupe, mark QUEUED and route by priority."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from agents.events import job_id_hint, key_text, origin, raw_value
from agents.routing import confirm, dead_letter, send, topic
from pipeline import metrics
from pipeline.app import app, runtime, settings, topic_names
from pipeline.errors import PermanentError
from pipeline.models import Status
from pipeline.models import dead_letter as dead_letter_record
from tables import transitions
from tables.jobs import get_state, put_state
from tables.stats import count_outcome

log = logging.getLogger(__name__)


async def admit(event, routed: list) -> list[Awaitable]:
    """Route or reject one ingest event; returns the delivery futures to confirm and
    appends (request, delivery, event, state seen) to ``routed`` for each job sent."""
    raw = raw_value(event)
    try:
        request, _ = runtime.admission.admit(raw)
    except PermanentError as exc:
        job_id = job_id_hint(event)
        metrics.REJECTED.labels(exc.code).inc()
        metrics.JOBS.labels("rejected", "unknown").inc()
        count_outcome(event, "unknown", "rejected")
        if job_id and key_text(event) == job_id:
            state = get_state(job_id)
            if state is None or state["status"] != Status.DONE:
                put_state(transitions.rejected(state, job_id, exc), event)
        return [await dead_letter(dead_letter_record(
            job_id, exc.code, exc.message, stage="ingest", raw=raw,
            source_topic=origin(event)))]
    if key_text(event) != request.job_id:
        # Re-key so every event and the state of this job share one partition.
        log.info("re-keying job_id=%s (event key %r)", request.job_id, event.key)
        return [await send(topic_names.ingest, request.job_id, raw)]
    state = get_state(request.job_id)
    event_origin = origin(event)
    duplicate = transitions.is_duplicate_submission(state, request, event_origin)
    if request.replayed_from:
        metrics.REPLAYED.labels(str(request.replayed_from.get("topic")),
                                "skipped" if duplicate else "queued").inc()
    if duplicate:
        metrics.DUPLICATES.labels("ingest").inc()
        log.info("duplicate submission job_id=%s status=%s: not queued again",
                 request.job_id, state["status"])
        return []
    delivery = await send(topic_names.priority[request.priority], request.job_id,
                          request.to_json())
    routed.append((request, delivery, event, state["updated_at"] if state else None))
    return [delivery]


@app.agent(topic(topic_names.ingest), name="ingest", concurrency=1)
async def ingest(stream):
    """Admit ingest events in batches; acks follow confirmed delivery of every route."""
    async for events in stream.take_events(settings.ingest_batch_size,
                                           within=settings.ingest_window):
        pending: list[Awaitable] = []
        routed: list = []
        for event in events:
            try:
                pending += await admit(event, routed)
            except Exception:
                # Faust would log, ack and lose the event: keep it in the DLQ instead.
                log.exception("unexpected error admitting %s", origin(event))
                pending.append(await dead_letter(dead_letter_record(
                    job_id_hint(event), "internal_error", "unexpected error at ingest",
                    stage="ingest", raw=raw_value(event), source_topic=origin(event))))
        await confirm(pending)
        for request, delivery, event, seen_at in routed:
            record_queued(request, delivery, event, seen_at)


def record_queued(request, delivery, event, seen_at: float | None) -> None:
    """Mark the job QUEUED once its work message is delivered, noting where it landed
    (the sweeper, agents/sweep.py, needs it). One table write per job; if processing
    already moved the job on meanwhile, only the pointer is added."""
    metadata = delivery.result()
    pointer = (metadata.topic, metadata.partition, metadata.offset)
    state = get_state(request.job_id)
    if state is None or state.get("updated_at") == seen_at:
        put_state(transitions.queued(state, request, origin(event), routed_to=pointer), event)
    else:
        put_state(transitions.routed(state, *pointer, request=request), event)
