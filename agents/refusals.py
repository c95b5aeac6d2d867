"""One path for refused events, whichever agent refuses them."""

from __future__ import annotations

from typing import Any

from agents.context import AgentContext
from agents.events import event_fields, job_id_hint, key_text, priority_hint
from agents.routing import Delivery
from pipeline import metrics
from pipeline.errors import PermanentError
from pipeline.models import DEFAULT_TENANT, Status
from pipeline.tenancy import Principal
from tables import transitions


async def refuse(ctx: AgentContext, event: Any, exc: PermanentError, stage: str, *,
                 work_record: bool, sender: Principal | None = None) -> Delivery:
    """Count, record and dead-letter a refused event.

    The job the event names (and is keyed by) is recorded when the refusal may speak for
    it: one with no state yet becomes REJECTED if the event is a work record (only the
    pipeline writes those) or its authenticated ``sender`` may address the job; one in
    flight becomes FAILED only for a work record. At ingest a refused event therefore
    never changes an existing job, nor one of another tenant; finished jobs never change.
    """
    fields = event_fields(event)  # read once for both hints
    job_id = job_id_hint(event, fields, sender.tenant if sender is not None else DEFAULT_TENANT)
    priority = priority_hint(fields)
    metrics.REJECTED.labels(exc.code).inc()
    metrics.JOBS.labels("rejected", priority).inc()
    ctx.count_outcome(event, priority, "rejected")
    if job_id and key_text(event) == job_id:
        state = ctx.states.get(job_id)
        if state is None and (work_record or (sender is not None and sender.may_see(job_id))):
            rejected = transitions.rejected(None, job_id, exc)
            if priority != "unknown":
                rejected["priority"] = priority
            ctx.states.put(rejected, event)
        elif work_record and state and state["status"] not in Status.TERMINAL:
            ctx.states.put(transitions.failed(state, exc), event)
    return await ctx.outbox.dead_letter_event(event, exc.code, exc.message, stage, job_id,
                                              sender.tenant if sender is not None else None)
