"""ingest: validate raw requests, dedupe, mark QUEUED and route by priority."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from agents.context import AgentContext, context_of
from agents.events import key_text, origin, raw_value, records_of
from agents.refusals import refuse
from agents.routing import Delivery
from pipeline import metrics
from pipeline.authority import ReplayMarker, authority_headers
from pipeline.errors import InvalidRequest, PermanentError
from pipeline.jobs.storage_events import header_pairs, storage_event
from pipeline.jobs.storage_jobs import JOB
from pipeline.models import MAX_EVENT_BYTES, JobRequest, job_request_from_dict, loads_bounded
from pipeline.tenancy import NotAuthorized, Principal
from pipeline.worker.app import app
from tables import transitions

log = logging.getLogger(__name__)


async def admit(ctx: AgentContext, event: Any, routed: list) -> list[Delivery]:
    """Route or reject one ingest event; returns the deliveries to confirm and appends
    (request, delivery, event, state seen) to ``routed`` for each job sent."""
    raw = raw_value(event)
    sender: Principal | None = None
    try:
        authority = ctx.runtime.authority.judge(event.headers, raw)
        # A refusal speaks for whoever sent the event: for a replay, its operator.
        sender = authority.replay.operator if authority.replay else authority.sender
        stored = None if authority.internal else storage_event(raw, event.headers)
        if authority.internal:  # one of our own records: its admitted job, as it was
            request, _ = ctx.runtime.admission.admit_request(admitted_request(raw),
                                                             authority.sender)
        elif stored is None:
            request, _ = ctx.runtime.admission.admit(raw, authority.sender)
        else:
            made, outcome = ctx.runtime.storage_jobs.request_for(stored)
            if made is None:
                metrics.STORAGE_EVENTS.labels(outcome).inc()
                log.info("storage event %s for %s: no job (%s)", stored.event,
                         stored.uri[:300], outcome)
                return []
            request, _ = ctx.runtime.admission.admit_request(made, authority.sender)
        if authority.replay is not None:
            request = replayed(request, authority.replay)
    except PermanentError as exc:
        return [await refuse(ctx, event, exc, "ingest", work_record=False, sender=sender)]
    if key_text(event) != request.job_id:
        # Re-key so every event and the state of this job share one partition; a
        # storage notification keeps its attributes (they say what it is).
        log.info("re-keying job_id=%s (event key %r)", request.job_id, key_text(event))
        headers = header_pairs(event.headers) if stored is not None \
            else authority_headers(event.headers)
        return [await ctx.outbox.send(ctx.topics.ingest, request.job_id, raw,
                                      headers=headers)]
    if stored is not None:  # counted once, when keyed by its job (not before a re-key)
        metrics.STORAGE_EVENTS.labels(JOB).inc()
    state = ctx.states.get(request.job_id)
    duplicate = transitions.is_duplicate_submission(state, request, origin(event))
    if request.replayed_from:
        source = request.replayed_from.get("topic")
        metrics.REPLAYED.labels(source if source in ctx.topics.names else "other",
                                "skipped" if duplicate else "queued").inc()
    if duplicate:
        metrics.DUPLICATES.labels("ingest").inc()
        log.info("duplicate submission job_id=%s status=%s: not queued again",
                 request.job_id, state["status"])
        return []
    delivery = await ctx.outbox.send(ctx.topics.priority[request.priority], request.job_id,
                                     request.to_json())
    routed.append((request, delivery, event, state["updated_at"] if state else None))
    return [delivery]


def admitted_request(raw: bytes | None) -> JobRequest:
    """The job in one of our own records (a work record, or the ``request`` of a retry
    or dead-letter record; never a dead letter's ``raw`` event, which was not admitted)."""
    data = loads_bounded(raw, max_bytes=2 * MAX_EVENT_BYTES)
    request = data.get("request") if isinstance(data, dict) and (
        "request" in data or "reason" in data or "retry_at" in data) else data
    if not isinstance(request, dict):
        raise InvalidRequest("the record carries no admitted job (a refused event stays "
                             "refused)", "no_admitted_job")
    return job_request_from_dict(request)


def replayed(request: JobRequest, marker: ReplayMarker) -> JobRequest:
    """``request`` as replayed by the operator of ``marker``, who must be allowed to act
    for the job's tenant (the job keeps its own rights; the operator adds only the
    replay and, if asked, ``force``)."""
    if not marker.operator.may_act_for(request.tenant or ""):
        raise NotAuthorized(f"this token may not replay jobs of tenant {request.tenant!r}",
                            "tenant_not_allowed")
    return replace(request, attempt=0, replayed_from=marker.origin,
                   force=request.force or marker.force)


async def admit_safely(ctx: AgentContext, event: Any, routed: list) -> list[Delivery]:
    """``admit``, total: an unexpected failure dead-letters this event alone (Faust
    would otherwise log it and count the rest of the batch as consumed)."""
    try:
        return await admit(ctx, event, routed)
    except Exception:
        log.exception("unexpected error admitting %s", origin(event))
        return [await ctx.outbox.dead_letter_event(
            event, "internal_error", "unexpected error at ingest", "ingest")]


async def admit_batch(ctx: AgentContext, events: list) -> None:
    """Admit each event; acks follow the confirmed delivery of everything routed."""
    pending: list[Delivery] = []
    routed: list = []
    for event in events:
        pending += await admit_safely(ctx, event, routed)
    await ctx.outbox.confirm(pending)
    for request, delivery, event, seen_at in routed:
        try:
            record_queued(ctx, request, delivery, event, seen_at)
        except Exception:  # the job is on its way; processing writes its state
            log.exception("could not mark job_id=%s QUEUED", request.job_id)


def record_queued(ctx: AgentContext, request: Any, delivery: Delivery, event: Any,
                  seen_at: float | None) -> None:
    """Mark the job QUEUED once its work message is delivered, noting where it landed
    (the sweeper, agents/sweep.py, needs it). One table write per job; if processing
    already moved the job on meanwhile, only the pointer is added."""
    metadata = delivery.result()
    pointer = (metadata.topic, metadata.partition, metadata.offset)
    state = ctx.states.get(request.job_id)
    if state is None or state.get("updated_at") == seen_at:
        ctx.states.put(transitions.queued(state, request, origin(event), routed_to=pointer),
                       event)
    else:
        ctx.states.put(transitions.routed(state, *pointer, request=request), event)


@app.agent(app.source_topic(app.topic_names.ingest), name="ingest", concurrency=1)
async def ingest(stream):
    """Admit ingest events in batches; acks follow confirmed delivery of every route."""
    ctx = context_of(app)
    settings = ctx.settings
    async for events in stream.take_events(settings.ingest_batch_size,
                                           within=settings.ingest_window):
        with ctx.in_flight.batch(records_of(events)):
            await admit_batch(ctx, events)
