"""One processing batch: image work in the executor, then one metadata commit.

The agent hands a batch here and applies the returned outcomes (table, topics); nothing
in this module raises for a single bad job: every failure becomes an Outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pipeline import metrics
from pipeline.errors import ImgpipeError, PermanentError, RetryableError
from pipeline.jobs.budget import JobCost, OverBudget, estimate_cost
from pipeline.jobs.engine import Engine, JobResult, SourceSummary
from pipeline.jobs.isolation import run_isolated
from pipeline.metadata import JobRecord
from pipeline.models import JobRequest, OutputInfo, Status, tenant_of
from pipeline.ops import Chain, Encoded
from pipeline.worker import timeline
from pipeline.worker.faults import job_fault
from pipeline.worker.runtime import Runtime

log = logging.getLogger(__name__)

DONE, FAILED, RETRY = "done", "failed", "retry"
#: The longest backoff a retried job waits (the retry agent holds no record longer).
RETRY_DELAY_CAP = 300.0


@dataclass
class Outcome:
    request: JobRequest
    kind: str
    outputs: list[OutputInfo] = field(default_factory=list)
    phash: str | None = None
    image: dict[str, Any] | None = None  # facts about the source (SourceSummary)
    error: ImgpipeError | None = None
    retry_at: float = 0.0


def retry_delay(attempt: int, base: float, cap: float = RETRY_DELAY_CAP) -> float:
    """Exponential backoff with full jitter: uniform in [base*2^attempt/2, base*2^attempt]."""
    ceiling = min(cap, base * (2 ** attempt))
    return random.uniform(ceiling / 2, ceiling)


def retry_hold(retry_at: object, now: float, longest: float = RETRY_DELAY_CAP) -> float:
    """Seconds the retry agent holds a record: until its retry_at, but never longer than
    ``longest``, the largest backoff the pipeline gives (a record claiming a retry 30
    years ahead must not hold up every retry behind it); not at all if retry_at is no
    number."""
    if isinstance(retry_at, bool) or not isinstance(retry_at, int | float) \
            or not math.isfinite(retry_at):
        return 0.0
    return min(max(0.0, retry_at - now), longest)


def longest_backoff(base: float, max_attempts: int) -> float:
    """The largest delay ``retry_delay`` gives under this retry policy."""
    return min(RETRY_DELAY_CAP, base * 2 ** max_attempts)


def classify(request: JobRequest, result: JobResult | BaseException,
             max_attempts: int, backoff: float) -> Outcome:
    """Turn one job's result or exception into its outcome (done / failed / retry)."""
    if not isinstance(result, BaseException):
        return Outcome(request, DONE, outputs=result.outputs, phash=result.phash,
                       image=result.image)
    error: ImgpipeError
    if isinstance(result, ImgpipeError):
        error = result
    else:
        log.error("unexpected error processing job_id=%s", request.job_id, exc_info=result)
        error = RetryableError(f"internal error: {type(result).__name__}: {result}",
                               "internal_error")
    if isinstance(error, PermanentError):
        return Outcome(request, FAILED, error=error)
    attempts_made = request.attempt + 1
    if attempts_made >= max_attempts:
        exhausted = PermanentError(f"gave up after {attempts_made} attempts: {error.message}",
                                   "retries_exhausted")
        return Outcome(request, FAILED, error=exhausted)
    delay = retry_delay(request.attempt, backoff)
    return Outcome(request, RETRY, error=error, retry_at=time.time() + delay)


def job_record(outcome: Outcome, now: float) -> JobRecord:
    request = outcome.request
    return JobRecord(
        job_id=request.job_id,
        status=Status.DONE if outcome.kind == DONE else Status.FAILED,
        priority=request.priority, tenant=request.tenant, source=request.source,
        submitted_at=request.submitted_at, finished_at=now, attempts=request.attempt + 1,
        error_code=outcome.error.code if outcome.error else None,
        error=outcome.error.message if outcome.error else None,
        phash=outcome.phash, image=outcome.image,
        outputs=tuple(outcome.outputs),
        name=request.name, label=request.label,
    )


def render_job(engine: Engine | None, job_id: str, data: bytes, chains: dict[str, Chain]
               ) -> tuple[dict[str, Encoded], SourceSummary]:
    """The image work of one job (``engine`` None: this process's own, in an isolated
    child), whose bytes passed ``estimate_cost`` (and so ``check_structure``)."""
    job_fault(job_id)
    with timeline.rendering(job_id):
        return (engine or _child_engine()).render(data, chains, tenant=tenant_of(job_id),
                                                  structure_checked=True)


def _child_engine() -> Engine:
    global _CHILD_RUNTIME
    if _CHILD_RUNTIME is None:
        from pipeline.settings import Settings

        _CHILD_RUNTIME = Runtime(Settings.from_env())
    return _CHILD_RUNTIME.engine


_CHILD_RUNTIME: Runtime | None = None


def _fetch_and_estimate(engine: Engine, request: JobRequest, chains: dict[str, Chain],
                        max_pixels: int) -> tuple[bytes, JobCost]:
    data = engine.fetch(request)
    return data, estimate_cost(data, chains, max_pixels)


async def run_job(request: JobRequest, chains: dict[str, Chain], runtime: Runtime,
                  isolated: bool = False) -> JobResult:
    """Fetch on the I/O pool, render on the image threads (``isolated``: in a child
    process with a deadline and a memory limit), store outputs concurrently on the I/O
    pool (the job's memory budget is held until they are written)."""
    engine = runtime.engine
    settings = runtime.settings
    timeline.mark("fetch", request.job_id)
    # The estimate opens the image's header (~0.5 ms): on the I/O thread, off the loop.
    data, cost = await runtime.io.run(_fetch_and_estimate, engine, request, chains,
                                      settings.max_source_pixels)
    if cost.memory > settings.max_job_memory_mb << 20:
        raise OverBudget(f"the job needs about {cost.megabytes} MiB, more than "
                         f"IMGPIPE_MAX_JOB_MEMORY_MB={settings.max_job_memory_mb}: ask for "
                         "smaller variants or send a smaller source")
    isolated = isolated or cost.memory > settings.isolate_above_mb << 20
    if isolated:
        render = partial(run_isolated, render_job, None, request.job_id, data, chains,
                         deadline=settings.job_deadline,
                         memory_bytes=max(settings.isolated_memory_mb << 20,
                                          cost.memory + (1 << 30)))
    else:
        render = partial(render_job, engine, request.job_id, data, chains)
    async with runtime.memory_gate.hold(cost), (
            runtime.isolated_slots if isolated else contextlib.nullcontext()):
        timeline.mark("queued", request.job_id)
        result: JobResult = await runtime.executor.run(
            request.priority or "normal", render,
            then=partial(_store_outputs, runtime, request))
    timeline.mark("stored", request.job_id)
    return result


def _store_outputs(runtime: Runtime, request: JobRequest,
                   rendered: tuple[dict[str, Encoded], SourceSummary]
                   ) -> Future[JobResult]:
    """On the image thread, as its render ends: the outputs' writes start on the I/O
    threads at once, without a round trip through the event loop."""
    encoded, summary = rendered
    timeline.mark("rendered", request.job_id)
    return runtime.io.submit_each(
        runtime.engine.store, [(request, name, enc) for name, enc in encoded.items()],
        lambda outputs: JobResult(outputs, summary.phash, summary.image))


async def run_batch(work: list[tuple[JobRequest, dict[str, Chain]]], runtime: Runtime,
                    isolated: frozenset[str] | set[str] = frozenset()) -> list[Outcome]:
    """Process every job of the batch concurrently (those in ``isolated`` in child
    processes), then write all metadata in one commit."""
    settings = runtime.settings
    metrics.IN_FLIGHT.inc(len(work))
    try:
        results = await asyncio.gather(
            *(run_job(request, chains, runtime, request.job_id in isolated)
              for request, chains in work),
            return_exceptions=True)
    finally:
        metrics.IN_FLIGHT.dec(len(work))
    outcomes = [classify(request, result, settings.max_attempts, settings.retry_backoff)
                for (request, _), result in zip(work, results, strict=True)]
    final = [o for o in outcomes if o.kind in (DONE, FAILED)]
    if final:
        now = time.time()
        timeline.mark("metadata")
        try:
            await runtime.io.run(runtime.metadata.upsert_batch,
                                 [job_record(o, now) for o in final])
        except Exception as exc:
            error = exc if isinstance(exc, ImgpipeError) else RetryableError(
                f"metadata write failed: {exc}", "metadata_unavailable")
            log.warning("metadata write for %d jobs failed (%s); retrying them",
                        len(final), error.message)
            outcomes = [classify(o.request, error, settings.max_attempts,
                                 settings.retry_backoff) if o.kind != RETRY else o
                        for o in outcomes]
    return outcomes
