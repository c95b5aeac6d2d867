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
from typing import Any

from agents.context import AgentContext, context_of
from pipeline import metrics
from pipeline.kafka.lag import PartitionLag
from pipeline.worker import faustcompat
from pipeline.worker.app import app
from pipeline.worker.stalls import StallWatch
from tables.transitions import lost_in_transit, request_of

log = logging.getLogger(__name__)

Partition = tuple[str, int]


class Sweeper:
    """Remembers what it re-sent (a job is not re-sent again within
    IMGPIPE_SWEEP_STALE_AFTER) and which partitions stalled."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.stale_after = ctx.settings.sweep_stale_after
        self.resent: dict[str, float] = {}
        self.stalls = StallWatch(stale_after=self.stale_after)

    def lost_jobs(self, committed: dict[Partition, int], assigned: set[Partition],
                  now: float) -> list[dict[str, Any]]:
        """States of this worker's jobs whose work message lies below what the group
        committed (or this worker finished), not running and not just re-sent."""
        in_flight = self.ctx.in_flight
        in_flight.forget_except(assigned)
        committed = dict(committed)
        # Records this worker's agents handled are done too, committed or not yet;
        # records merely fetched (waiting in a stream buffer) are queued, not lost.
        for topic, partition in assigned:
            handled = in_flight.finished_through(topic, partition)
            if handled is not None:
                key = (topic, partition)
                committed[key] = max(committed.get(key, 0), handled + 1)
        for job_id, at in list(self.resent.items()):  # older ones hold nothing back
            if now - at > self.stale_after:
                del self.resent[job_id]
        return [state for state in self.ctx.states.values()
                if tuple(state.get("routed") or ())[:2] in assigned
                and now - self.resent.get(state["job_id"], 0) > self.stale_after
                and not in_flight.running(state["job_id"])
                and lost_in_transit(state, committed, now, self.stale_after)]

    async def resend_lost(self, committed: dict[Partition, int], assigned: set[Partition],
                          now: float) -> list[str]:
        """Send every lost job again to the topic it was routed to; returns their ids."""
        futures = []
        lost = self.lost_jobs(committed, assigned, now)
        for state in lost:
            request = request_of(state)
            log.warning("job_id=%s lost in transit at %s: sending it again", request.job_id,
                        state["routed"])
            metrics.SWEPT.inc()
            self.resent[request.job_id] = now
            futures.append(await self.ctx.outbox.send(state["routed"][0], request.job_id,
                                                      request.to_json()))
        await self.ctx.outbox.confirm(futures)
        return [state["job_id"] for state in lost]

    def stalled(self, lags: dict[Partition, PartitionLag], mine: list[Any],
                delivered: dict[Any, int | None], now: float) -> list[Any]:
        """Source partitions where records wait beyond the committed offset but nothing
        was delivered or committed for IMGPIPE_SWEEP_STALE_AFTER (a long batch running
        on the topic is not a stall)."""
        self.stalls.forget_except(set(mine))
        return [tp for tp in mine if not self.ctx.in_flight.busy(tp.topic)
                and self.stalls.stalled(tp, delivered.get(tp),
                                        lags[(tp.topic, tp.partition)].committed,
                                        lags[(tp.topic, tp.partition)].end_offset, now)]


_sweepers: dict[int, Sweeper] = {}


@app.timer(interval=app.pipeline_settings.sweep_interval)
async def sweep() -> None:
    """Find and re-send jobs lost in transit on this worker's partitions, then re-read
    partitions that stopped making progress."""
    if app.rebalancing:
        return
    sweeper = _sweepers.setdefault(id(app), Sweeper(context_of(app)))
    try:  # the group's committed and end offsets of the source topics, in one probe
        lags = {(lag.topic, lag.partition): lag for lag in await app.lag_probe.measure()}
    except Exception as exc:  # the broker may be away; try again next time
        log.warning("sweep skipped: cannot read committed offsets (%r)", exc)
        return
    committed = {key: lag.committed for key, lag in lags.items() if lag.committed is not None}
    assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
    await sweeper.resend_lost(committed, assigned, time.time())
    await unstick_partitions(sweeper, lags)


async def unstick_partitions(sweeper: Sweeper, lags: dict[Partition, PartitionLag]) -> None:
    """Seek a stalled source partition back to its committed offset: the fetcher lost
    track of it (seen with RocksDB tables after a hand-over). Records are read again
    from the committed offset; effects are idempotent."""
    mine = [tp for tp in app.consumer.assignment() if (tp.topic, tp.partition) in lags]
    delivered = {tp: faustcompat.read_offset(app.consumer, tp) for tp in mine}
    for tp in sweeper.stalled(lags, mine, delivered, time.monotonic()):
        lag = lags[(tp.topic, tp.partition)]
        log.warning("%s made no progress for %.0fs with %d records waiting (delivered "
                    "up to %s, committed %s): reading it again from the committed "
                    "offset", tp, sweeper.stale_after, lag.lag, delivered[tp], lag.committed)
        metrics.STALL_RESCUES.inc()
        await faustcompat.seek_in_consumer_thread(app.consumer, tp, lag.committed or 0)
