"""Fixes to faust-streaming 0.15.x: two in the consumer that make delivery at-least-once
again, one in the partition assignor that gives every worker work.

Faust's fetch loop takes a batch of records from aiokafka (whose fetch position moves
past all of them) and then yields them one by one. It silently skips the rest of a batch
when a rebalance starts (flow stopped, generation changed) or when a partition was
paused meanwhile (a full stream buffer pauses it). Nothing re-reads those records:

1. After a rebalance Faust seeks every partition to its committed offset, but aiokafka's
   ``seek_to_committed`` only seeks partitions whose committed offset is > 0. A partition
   the group never committed (every partition of a new deployment, a quiet partition)
   keeps the position past the skipped records, which are then never delivered: a
   submitted job vanishes without a trace. Fix: such partitions are sought to their
   beginning, which is what ``auto_offset_reset=earliest`` means.
2. Records skipped because their partition was not active when the batch was handed
   out (paused by flow control, or not yet resumed after table recovery) are not re-read
   either. Fix: the partition is sought back to the first skipped record (never behind
   its committed offset), on the consumer's own thread.

Upstream: faust-streaming issue #596 (records dropped around rebalances). Effects in
this pipeline are idempotent, so reading a record twice is always safe; not reading it
is not.

3. Faust treats a jump in a partition's offsets as a gap (compaction, transaction
   markers) and commits past it. Our source topics have neither, so a jump only means
   records the fetcher skipped; committing past them lost an ingest event for good (a
   worker SIGKILLed during a rebalance, seen once in the fault suite). Fix: for our
   source topics no gap is recorded, so commits stop before the skipped records; the
   sweeper's stall check (agents/sweep.py) then reads the partition again from there.
4. With standby replicas (table_standby_replicas=1, our setting) Faust's co-partitioned
   assignor keeps every member's old partitions up to ceil(partitions / members): four
   partitions held 2 + 2 by two workers stay so when a third joins, which gets none,
   and a scaled-out worker idles. Fix: after Faust's assignment, actives are levelled
   (a partition moves from the member with the most to the one with the fewest until
   they differ by at most one), the old owner keeping a standby copy where it can.

``install(prefix)`` is called once when the app module is imported.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.assignor import partition_assignor as faust_partition_assignor
from faust.assignor.copartitioned_assignor import CopartitionedAssignor
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger(__name__)
PATCHED_VERSIONS = ("0.15.",)


async def _seek_to_committed(self: Any) -> dict:
    """AIOKafkaConsumerThread.seek_to_committed, seeking uncommitted partitions too."""
    consumer = self._ensure_consumer()

    async def seek() -> dict:
        committed = await consumer.seek_to_committed()
        uncommitted = [tp for tp, offset in committed.items() if not offset or offset <= 0]
        if uncommitted:
            await consumer.seek_to_beginning(*uncommitted)
        return committed

    return await self.call_thread(seek)


async def _getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
    """faust.transport.consumer.Consumer.getmany (0.15.3) with skipped records of paused
    partitions sought back. Rebalance skips are re-read by the seek that follows."""
    records, active_partitions = await self._wait_next_records(timeout)
    generation_id = self.app.consumer_generation_id
    if records is None or self.should_stop:
        return
    if not self.flow_active:
        try:
            await self.perform_seek()
        except Exception as exc:
            self.log.warning(f"exception performing seek when flow not active {exc}")
        return
    skipped: dict[Any, int] = {}
    for tp, record in self.scheduler.iterate(records):
        if not self.flow_active or self.app.consumer_generation_id != generation_id:
            return  # a rebalance began: the seek after it re-reads the rest
        if (active_partitions is None or tp in active_partitions
                or tp in self._buffered_partitions):
            if tp in skipped:
                continue  # keep order: this partition is re-read from its first skip
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            yield tp, self._to_message(tp, record)
        elif tp not in skipped:
            skipped[tp] = record.offset
    for tp, offset in skipped.items():
        # Never behind the committed offset: a stale batch fetched before a seek must
        # not undo that seek.
        target = max(offset, self._committed_offset.get(tp) or 0)
        log.debug("re-reading %s from %d (inactive while its records were in flight)",
                  tp, target)
        await seek_in_consumer_thread(self, tp, target)


async def seek_in_consumer_thread(self: Any, tp: Any, offset: int) -> None:
    """Consumer.seek, but run on the consumer's own thread: aiokafka's fetcher is not
    thread-safe, and Faust's seek calls it from the main thread (a fetcher woken from the
    wrong thread can sleep on with the partition never fetched again)."""
    thread = self._thread
    await thread.call_thread(thread._ensure_consumer().seek, tp, offset)
    self._read_offset[tp] = offset if offset else None


class LevelledCopartitionedAssignor(CopartitionedAssignor):
    """Faust's co-partitioned assignor, then actives levelled across members (fix 4)."""

    def get_assignment(self) -> Any:
        assignment = super().get_assignment()
        level_actives(self._client_assignments)
        return assignment


def level_actives(clients: dict[str, Any]) -> None:
    """Move active partitions from the member holding the most to the one holding the
    fewest until their counts differ by at most one. Each partition keeps exactly one
    active owner and its number of standby copies (a receiver's standby copy swaps roles
    with the giver)."""
    names = sorted(clients)
    while names:
        poorest = clients[min(names, key=lambda n: len(clients[n].actives))]
        richest = clients[max(names, key=lambda n: len(clients[n].actives))]
        if len(richest.actives) - len(poorest.actives) <= 1:
            return
        # prefer a partition the receiver already has a standby copy of (warm state)
        warm = sorted(richest.actives & poorest.standbys)
        partition = warm[0] if warm else min(richest.actives)
        richest.actives.remove(partition)
        poorest.actives.add(partition)
        if partition in poorest.standbys:
            poorest.standbys.remove(partition)
            richest.standbys.add(partition)


#: Topic-name prefixes whose offsets have no gaps (fix 3): ours.
_GAPLESS: list[str] = []
_add_gap_of_faust = faust_consumer.Consumer._add_gap


async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    """Consumer._add_gap, except on our source topics (fix 3)."""
    if tp.topic.startswith(tuple(_GAPLESS)):
        log.warning("%s: records %d..%d were skipped by the fetcher; not committing past "
                    "them (they are read again)", tp, offset_from, offset_to - 1)
        return
    await _add_gap_of_faust(self, tp, offset_from, offset_to)


def install(topic_prefix: str = "") -> None:
    """Apply the fixes (only to the faust-streaming versions they were written for);
    ``topic_prefix`` names our source topics (fix 3)."""
    if topic_prefix:
        _GAPLESS.append(topic_prefix + ".")
    if not faust.__version__.startswith(PATCHED_VERSIONS):
        log.warning("faust-streaming %s: consumer fixes not applied (written for %s); "
                    "check faustfix.py against this version", faust.__version__,
                    PATCHED_VERSIONS)
        return
    faust_aiokafka.AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed
    faust_consumer.Consumer.getmany = _getmany
    faust_consumer.Consumer._add_gap = _add_gap
    faust_partition_assignor.CopartitionedAssignor = LevelledCopartitionedAssignor
