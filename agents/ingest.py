"""ingest: validate raw requests, dedupe, mark QUEUED and route by priority."""

from __future__ import annotations

import logging

from agents.events import job_id_hint, key_text, origin, raw_value, records_of
from agents.routing import Delivery, confirm, dead_letter_event, send, topic
from pipeline import metrics
from pipeline.errors import PermanentError
from pipeline.tenancy import Principal, signature_of
from pipeline.worker.app import app, runtime, settings, topic_names
from pipeline.worker.inflight import in_flight
from tables import transitions
from tables.jobs import get_state, put_state
from tables.stats import count_outcome

log = logging.getLogger(__name__)
#: Label values of imgpipe_replayed_total: our topics, everything else is "other".
_REPLAY_SOURCES = frozenset(topic_names.all())


async def admit(event, routed: list) -> list[Delivery]:
    """Route or reject one ingest event; returns the deliveries to confirm and appends
    (request, delivery, event, state seen) to ``routed`` for each job sent."""
    raw = raw_value(event)
    sender: Principal | None = None
    try:
        sender = runtime.tenancy.event_sender(event.headers, raw)
        request, _ = runtime.admission.admit(raw, sender)
    except PermanentError as exc:
        return [await reject(event, raw, exc, sender)]
    if key_text(event) != request.job_id:
        # Re-key so every event and the state of this job share one partition.
        log.info("re-keying job_id=%s (event key %r)", request.job_id, key_text(event))
        return [await send(topic_names.ingest, request.job_id, raw,
                           headers=signature_of(event.headers))]
    state = get_state(request.job_id)
    event_origin = origin(event)
    duplicate = transitions.is_duplicate_submission(state, request, event_origin)
    if request.replayed_from:
        source = request.replayed_from.get("topic")
        metrics.REPLAYED.labels(source if source in _REPLAY_SOURCES else "other",
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


async def reject(event, raw: bytes | None, exc: PermanentError, sender: Principal | None
                 ) -> Delivery:
    """Dead-letter a refused event. A REJECTED state is written only for a job id that
    has no state yet and that the (authenticated) sender may address: a refused event
    never changes an existing job, nor one of another tenant."""
    job_id = job_id_hint(event)
    metrics.REJECTED.labels(exc.code).inc()
    metrics.JOBS.labels("rejected", "unknown").inc()
    count_outcome(event, "unknown", "rejected")
    if (job_id and key_text(event) == job_id and sender is not None
            and sender.may_see(job_id) and get_state(job_id) is None):
        put_state(transitions.rejected(None, job_id, exc), event)
    return await dead_letter_event(event, exc.code, exc.message, "ingest", job_id)


async def admit_safely(event, routed: list) -> list[Delivery]:
    """``admit``, total: an unexpected failure dead-letters this event alone (Faust
    would otherwise log it and count the rest of the batch as consumed)."""
    try:
        return await admit(event, routed)
    except Exception:
        log.exception("unexpected error admitting %s", origin(event))
        return [await dead_letter_event(event, "internal_error", "unexpected error at ingest",
                                        "ingest")]


@app.agent(topic(topic_names.ingest), name="ingest", concurrency=1)
async def ingest(stream):
    """Admit ingest events in batches; acks follow confirmed delivery of every route."""
    async for events in stream.take_events(settings.ingest_batch_size,
                                           within=settings.ingest_window):
        with in_flight.batch(records_of(events)):
            await admit_batch(events)


async def admit_batch(events: list) -> None:
    """Admit each event; acks follow the confirmed delivery of everything routed."""
    pending: list[Delivery] = []
    routed: list = []
    for event in events:
        pending += await admit_safely(event, routed)
    await confirm(pending)
    for request, delivery, event, seen_at in routed:
        try:
            record_queued(request, delivery, event, seen_at)
        except Exception:  # the job is on its way; processing writes its state
            log.exception("could not mark job_id=%s QUEUED", request.job_id)


def record_queued(request, delivery: Delivery, event, seen_at: float | None) -> None:
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
