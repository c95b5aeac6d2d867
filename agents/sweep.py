"""sweep: re-send jobs whose work message was committed without being processed.

Delivery is at-least-once by design, but faust-streaming 0.15.3 can commit past records
during a rebalance (a recovery race, upstream issue #596): a new owner of a partition
then never sees them, and the jobs would wait in QUEUED forever. Every worker checks the
jobs of its own partitions against the group's committed offsets and re-sends a job
whose message lies below them (tables.transitions.lost_in_transit). Effects are
idempotent, so a re-sent job that did get processed meanwhile changes nothing.
"""

from __future__ import annotations

import logging
import time

from agents.routing import confirm, send
from pipeline import metrics
from pipeline.kafka.lag import PartitionLag
from pipeline.worker import consumerfix as faustfix
from pipeline.worker.app import app, lag_probe, settings
from pipeline.worker.inflight import in_flight
from pipeline.worker.stalls import StallWatch
from tables.jobs import jobs
from tables.transitions import lost_in_transit, request_of

log = logging.getLogger(__name__)

_resent: dict[str, float] = {}


@app.timer(interval=settings.sweep_interval)
async def sweep() -> None:
    """Find and re-send jobs lost in transit on this worker's partitions, then re-read
    partitions that stopped making progress."""
    if app.rebalancing:
        return
    try:  # the group's committed and end offsets of the source topics, in one probe
        lags = {(lag.topic, lag.partition): lag for lag in await lag_probe.measure()}
    except Exception as exc:  # the broker may be away; try again next time
        log.warning("sweep skipped: cannot read committed offsets (%r)", exc)
        return
    committed = {key: lag.committed for key, lag in lags.items() if lag.committed is not None}
    assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
    in_flight.forget_except(assigned)
    # Records this worker's agents handled are done too, committed or not yet; records
    # merely fetched (waiting in a stream buffer) are not: they are queued, not lost.
    for topic, partition in assigned:
        handled = in_flight.finished_through(topic, partition)
        if handled is not None:
            key = (topic, partition)
            committed[key] = max(committed.get(key, 0), handled + 1)
    now = time.time()
    for job_id, at in list(_resent.items()):  # older entries can no longer hold a job back
        if now - at > settings.sweep_stale_after:
            del _resent[job_id]
    lost = [state for state in jobs.values()
            if state and tuple(state.get("routed") or ())[:2] in assigned
            and now - _resent.get(state["job_id"], 0) > settings.sweep_stale_after
            and not in_flight.running(state["job_id"])
            and lost_in_transit(state, committed, now, settings.sweep_stale_after)]
    futures = []
    for state in lost:
        request = request_of(state)
        log.warning("job_id=%s lost in transit at %s: sending it again", request.job_id,
                    state["routed"])
        metrics.SWEPT.inc()
        _resent[request.job_id] = now
        futures.append(await send(state["routed"][0], request.job_id, request.to_json()))
    await confirm(futures)
    await unstick_partitions(lags)


_stalls = StallWatch(stale_after=settings.sweep_stale_after)


async def unstick_partitions(lags: dict[tuple[str, int], PartitionLag]) -> None:
    """Seek a source partition back to its committed offset when records wait beyond it
    but nothing has been delivered or committed for IMGPIPE_SWEEP_STALE_AFTER: the
    fetcher lost track of it (seen with RocksDB tables after a hand-over). Records are
    read again from the committed offset; effects are idempotent."""
    mine = {tp for tp in app.consumer.assignment() if (tp.topic, tp.partition) in lags}
    _stalls.forget_except(mine)
    now = time.monotonic()
    for tp in mine:
        if in_flight.busy(tp.topic):  # a long batch is running: waiting is not a stall
            continue
        lag = lags[(tp.topic, tp.partition)]
        delivered = app.consumer._read_offset.get(tp)
        if _stalls.stalled(tp, delivered, lag.committed, lag.end_offset, now):
            log.warning("%s made no progress for %.0fs with %d records waiting (delivered "
                        "up to %s, committed %s): reading it again from the committed "
                        "offset", tp, settings.sweep_stale_after, lag.lag, delivered,
                        lag.committed)
            metrics.STALLS.inc()
            await faustfix.seek_in_consumer_thread(app.consumer, tp, lag.committed or 0)
