"""process-<priority>: batched image work for each priority topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from agents.context import AgentContext, context_of
from agents.events import key_text, origin, raw_value, records_of
from agents.refusals import refuse
from agents.routing import Delivery
from pipeline import metrics
from pipeline.errors import PermanentError, RetryableError
from pipeline.jobs.processing import DONE, FAILED, Outcome, run_batch
from pipeline.models import PRIORITIES, Status
from pipeline.records import DeadLetter, RetryRecord
from pipeline.worker import timeline
from pipeline.worker.app import app
from pipeline.worker.faults import crash_point
from tables import transitions

log = logging.getLogger(__name__)
#: Crashes of a job's worker (the first in-process, the second isolated) before it FAILs.
CRASHES_TO_FAIL = 2


class FinishedJobs:
    """A batch's finished jobs counted per partition, priority and outcome: the
    throughput table then takes one write (a changelog record) per key and batch, not
    one per job."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, str, str], list] = {}

    def add(self, event: Any, priority: str, outcome: str) -> None:
        entry = self._counts.setdefault((event.message.partition, priority, outcome),
                                        [event, 0])
        entry[1] += 1

    def record(self, count_outcome: Callable[..., None]) -> None:
        """Hand each count to ``count_outcome(event, priority, outcome, jobs)``."""
        for (_, priority, outcome), (event, jobs) in self._counts.items():
            count_outcome(event, priority, outcome, jobs)


async def apply_outcome(ctx: AgentContext, outcome: Outcome, event: Any,
                        finished: FinishedJobs) -> list[Delivery]:
    """Record one finished job in the table and announce it on results / retry / dlq."""
    request = outcome.request
    state = ctx.states.get(request.job_id) or transitions.processing(None, request)
    if outcome.kind == DONE:
        state = transitions.done(state, outcome.outputs, phash=outcome.phash,
                                     image=outcome.image)
        metrics.JOBS.labels("done", request.priority).inc()
        metrics.JOB_LATENCY.labels(request.priority).observe(
            max(0.0, time.time() - request.submitted_at))
        finished.add(event, request.priority, "done")
    elif outcome.kind == FAILED:
        state = transitions.failed(state, outcome.error)
        metrics.JOBS.labels("failed", request.priority).inc()
        finished.add(event, request.priority, "failed")
    else:
        state = transitions.retrying(state, outcome.error, outcome.retry_at)
        metrics.RETRIES.labels(outcome.error.code).inc()
    ctx.states.put(state, event)
    futures = []
    if outcome.kind == FAILED:
        futures.append(await ctx.outbox.dead_letter(DeadLetter.of_request(
            request.job_id, outcome.error.code, outcome.error.message, stage="process",
            request=request.to_dict(), attempts=request.attempt + 1)))
    if outcome.kind in (DONE, FAILED):
        futures.append(await ctx.outbox.send(ctx.topics.results, request.job_id,
                                             transitions.result_record(state).to_dict()))
    else:
        futures.append(await ctx.outbox.send(ctx.topics.retry, request.job_id, RetryRecord(
            retry_at=outcome.retry_at, error=outcome.error.to_dict(),
            request=request.with_attempt(request.attempt + 1).to_dict()).to_dict()))
    return futures


async def handle_batch(ctx: AgentContext, priority: str, events: list) -> None:
    """Process one batch; every event ends DONE, FAILED (dlq) or RETRYING (retry topic)."""
    started = time.perf_counter()
    timeline.start_batch()
    timeline.mark("take")
    pending: list[Delivery] = []
    work: dict = {}
    sources: dict = {}  # job_id -> the event it came in
    isolated: set[str] = set()  # jobs that crashed a worker before: run in a child
    with ctx.states.writes() as state_writes:
        for event in events:
            try:
                await take(ctx, event, work, sources, pending, isolated)
            except Exception:  # this event alone: the rest of the batch goes on
                log.exception("unexpected error taking %s", origin(event))
                pending.append(await ctx.outbox.dead_letter_event(
                    event, "internal_error", "unexpected error before processing",
                    "process"))
    if work:
        metrics.BATCH_SIZE.labels(priority).observe(len(work))
        # The PROCESSING states (each counting a started run) reach the changelog before
        # any image work starts: if the work kills this worker, the next owner sees it.
        # Only this batch's writes: a producer flush also waited for every record the
        # ingest agent and the other batch in flight had sent (fix 18).
        if state_writes:
            await asyncio.wait(state_writes)
        timeline.mark("flushed")
        outcomes = await run_batch(list(work.values()), ctx.runtime, isolated)
        timeline.mark("effects")
        crash_point("after_effects")  # outputs and metadata written, nothing acked
        finished = FinishedJobs()
        for outcome in outcomes:
            pending += await apply_outcome(ctx, outcome, sources[outcome.request.job_id],
                                           finished)
        finished.record(ctx.count_outcome)
    timeline.mark("applied")
    await ctx.outbox.confirm(pending)
    timeline.mark("confirmed")
    crash_point("after_results")  # table, results and DLQ sent, offsets not committed
    metrics.BATCH_SECONDS.labels(priority).observe(time.perf_counter() - started)


async def take(ctx: AgentContext, event: Any, work: dict, sources: dict,
               pending: list[Delivery], isolated: set[str]) -> None:
    """Admit one work record into the batch (``work``), or refuse it."""
    try:
        request, chains = ctx.runtime.admission.admit(raw_value(event))
    except PermanentError as exc:
        pending.append(await refuse(ctx, event, exc, "process", work_record=True))
        return
    state = ctx.states.get(request.job_id)
    if request.job_id in work or transitions.should_skip_processing(state, request):
        metrics.DUPLICATES.labels("process").inc()  # a second copy in this batch, or done
        return
    if transitions.unfinished_runs(state):
        state = transitions.crashed(state)
        metrics.CRASHES.inc()
        log.warning("job_id=%s: a run of it never finished (its worker died); crash %d",
                    request.job_id, state["crashes"])
        if state["crashes"] >= CRASHES_TO_FAIL:
            pending.extend(await give_up_crashed(ctx, request, state, event))
            return
    ctx.states.put(transitions.processing(state, request), event)
    work[request.job_id] = (request, chains)
    sources[request.job_id] = event
    if state and state.get("crashes"):
        isolated.add(request.job_id)


async def give_up_crashed(ctx: AgentContext, request: Any, state: dict, event: Any
                          ) -> list[Delivery]:
    """FAILED worker_crashed, with the evidence in the dead letter and the results."""
    error = PermanentError(f"the job's image work killed its worker {state['crashes']} "
                           "times (in-process, then isolated); it will not run again "
                           "unless forced", "worker_crashed")
    state = transitions.failed(state, error)
    ctx.states.put(state, event)
    metrics.JOBS.labels("failed", request.priority).inc()
    return [await ctx.outbox.dead_letter(DeadLetter.of_request(
        request.job_id, error.code, error.message, stage="process",
        request=request.to_dict(), attempts=state.get("attempts", 0))),
        await ctx.outbox.send(ctx.topics.results, request.job_id,
                              transitions.result_record(state).to_dict())]


async def salvage(ctx: AgentContext, events: list) -> None:
    """Best effort after an unexpected failure: hand the raw work records to the retry
    topic, which sends them back to their work topic after the backoff, and mark their
    jobs RETRYING at once (not left PROCESSING until the sweeper looks)."""
    retry_at = time.time() + ctx.settings.retry_backoff
    error = RetryableError("an unexpected error stopped its batch; it runs again",
                           "internal_error")
    try:
        await ctx.outbox.confirm([await ctx.outbox.send(
            ctx.topics.retry, key_text(e), RetryRecord(
                retry_at=retry_at, topic=e.message.topic,
                raw=(raw_value(e) or b"").decode("utf-8", errors="replace")).to_dict())
            for e in events])
    except Exception:
        log.exception("could not salvage %d events", len(events))
        return
    for event in events:
        try:
            job_id = key_text(event)
            state = ctx.states.get(job_id) if job_id else None
            if state and state["status"] not in Status.TERMINAL:
                ctx.states.put(transitions.retrying(state, error, retry_at), event)
        except Exception:  # the job runs again anyway; only its shown state lags
            log.exception("could not mark %s RETRYING", origin(event))


async def handle_safely(ctx: AgentContext, priority: str, events: list) -> None:
    """handle_batch; an exception never escapes (Faust would ack and lose it)."""
    try:
        with ctx.in_flight.batch(records_of(events)):
            await handle_batch(ctx, priority, events)
    except Exception:
        log.exception("unexpected error in %s batch; sending it to retry", priority)
        await salvage(ctx, events)


async def _handle_then_ack(ctx: AgentContext, priority: str, events: Any) -> None:
    await handle_safely(ctx, priority, events)
    await events.ack()
    timeline.mark("acked")
    timeline.flush()


async def process_batches(ctx: AgentContext, priority: str, batches: Any,
                          depth: int = 2) -> None:
    """Handle each batch, up to ``depth`` at once when the stream lets the agent hold a
    batch's acks (faustcompat.TakenEvents): the next batch's fetches and PROCESSING
    writes overlap this one's image work and confirmations, so the image threads do not
    idle through the round trips. A batch sharing a job with one still running waits for
    it (a job never runs twice at once here)."""
    running: dict[asyncio.Task, set[str]] = {}
    try:
        async for events in batches:
            timeline.mark("got_batch", priority)
            if not hasattr(events, "hold") or depth < 2:
                await handle_safely(ctx, priority, events)
                continue
            events.hold()
            jobs = {key_text(e) or "" for e in events}
            overlapping = [t for t, ids in running.items() if ids & jobs]
            if overlapping:
                await asyncio.wait(overlapping)
            task = asyncio.ensure_future(_handle_then_ack(ctx, priority, events))
            running[task] = jobs
            task.add_done_callback(running.pop)
            if len(running) >= depth:
                timeline.mark("depth_full", priority)
                await asyncio.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
            timeline.mark("want_batch", priority)
        if running:  # the stream ended: let the batches in hand finish
            await asyncio.wait(list(running))
    except BaseException:  # cancelled (the worker stops): unacked batches come back
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise


def _make_processor(priority: str):
    size, window = app.pipeline_settings.batch_shape(priority)

    async def process(stream):
        await process_batches(context_of(app), priority,
                              stream.take_events(size, within=window))

    process.__name__ = process.__qualname__ = f"process_{priority}"
    return app.agent(app.source_topic(app.topic_names.priority[priority]),
                     name=f"process-{priority}", concurrency=1)(process)


processors = {priority: _make_processor(priority) for priority in PRIORITIES}
