"""The one seam between imgpipe and the internals of faust-streaming and aiokafka.

Every private attribute of Faust or aiokafka that imgpipe touches is touched here, behind
a named helper, so an upgrade is checked in one file (and by tests/unit/test_faustcompat.py,
which pins each helper to the installed versions). ``install`` runs at worker start
(PipelineApp.on_first_start): it refuses versions the helpers were not written for and
applies the fixes below.

Fixes to faust-streaming 0.15.x: two in the consumer that make delivery at-least-once
again, two in the commit path, one in the partition assignor that gives every worker work,
one in stream batching that lets an idle worker sleep.

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
5. Faust commits the run of acked offsets that starts at the lowest acked one, and only
   checks that run against the committed offset when that offset is truthy and then
   allows one missing record: on a partition the group never committed (committed offset
   None or 0), records skipped at its head were committed past. Seen in the fault suite:
   the first four ingest events of a fresh partition were lost when their owner died
   during a client's run. Fix: on our source topics a commit must start exactly at the
   committed offset, or where reading started for a never-committed partition;
   otherwise it waits (the sweeper's stall check reads the partition again).
6. ``Stream.take_events(max_, within)`` wakes every ``within`` seconds whether or not
   anything arrived: with our 5-20 ms batch windows, the idle agents woke the event loop
   about 1,000 times a second (strace) and an idle worker burnt 84 ms of CPU per second.
   Fix: while the buffer is empty the stream waits for its first event without a
   timeout, and the window runs from there; a batch still closes at most ``within``
   after its first event, or when full, and acks stay after the batch is handled.
7. Recovery ends by resuming the stream partitions, seeking them to their committed
   offsets, then resuming flow control, which was running already (recovery resumed it
   to read the changelogs) and empties every stream queue anyway: records delivered
   after the seek were dropped with the fetch position past them, and waited for the
   stall check (60 s, issue 39). Fix: a resume of a running flow empties nothing (the
   clear at a rebalance's start stays). Records delivered before the seek may then be
   delivered twice; every effect is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any

import faust
from faust import streams as faust_streams
from faust.assignor import partition_assignor as faust_partition_assignor
from faust.assignor.copartitioned_assignor import CopartitionedAssignor
from faust.streams import _current_event
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import want_seconds
from mode.utils.aiter import aiter
from mode.utils.futures import notify

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)
#: The versions every helper and fix here was written and tested against.
SUPPORTED_FAUST = ("0.15.",)
SUPPORTED_AIOKAFKA = ("0.14.",)


async def _seek_to_committed(self: Any) -> dict:
    """AIOKafkaConsumerThread.seek_to_committed, seeking uncommitted partitions too."""
    consumer = self._ensure_consumer()

    async def seek() -> dict:
        committed = await consumer.seek_to_committed()
        uncommitted = [tp for tp, offset in committed.items() if not offset or offset <= 0]
        if uncommitted:
            await consumer.seek_to_beginning(*uncommitted)
            # where reading starts: the first offset a commit must include (fix 5)
            for tp, offset in (await consumer.beginning_offsets(uncommitted)).items():
                _STARTS[(tp.topic, tp.partition)] = offset
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
#: (topic, partition) -> first offset of a partition the group never committed (fix 5).
_STARTS: dict[tuple[str, int], int] = {}
_add_gap_of_faust = faust_consumer.Consumer._add_gap
_new_offset_of_faust = faust_consumer.Consumer._new_offset


def _new_offset(self: Any, tp: Any) -> int | None:
    """Consumer._new_offset, except on our source topics: commit only when the acked
    records start exactly where reading started (fix 5)."""
    if tp.topic.startswith(tuple(_GAPLESS)):
        acked = self._acked[tp]
        if acked:
            committed = self._committed_offset[tp]
            expected = committed if committed is not None else _STARTS.get(
                (tp.topic, tp.partition), 0)
            if min(acked) > expected:
                return None  # the records before the first acked one are not done
    return _new_offset_of_faust(self, tp)


async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    """Consumer._add_gap, except on our source topics (fix 3)."""
    if tp.topic.startswith(tuple(_GAPLESS)):
        log.warning("%s: records %d..%d were skipped by the fetcher; not committing past "
                    "them (they are read again)", tp, offset_from, offset_to - 1)
        return
    await _add_gap_of_faust(self, tp, offset_from, offset_to)


class TakenEvents(list):
    """The events of one ``take_events`` batch. They are acked when the agent asks for
    the next batch, unless it called ``hold()``: then it acks them itself with
    ``ack()`` once they are handled, and may take the next batch meanwhile (the commit
    never passes a record that is not acked, fix 5)."""

    def __init__(self, events: list[Any], stream: Any) -> None:
        super().__init__(events)
        self._stream = stream
        self.held = False

    def hold(self) -> None:
        """Keep these events unacked after the agent moves on to the next batch."""
        self.held = True

    async def ack(self) -> None:
        """Ack the held events (their offsets may now be committed)."""
        for event in self:
            await self._stream.ack(event)


async def _take_events(self: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
    """Faust 0.15.3's Stream.take_events with fix 6: no timed wake-ups while idle."""
    buffer: list[Any] = []
    events: list[Any] = []
    buffer_full, buffer_consumed = asyncio.Event(), asyncio.Event()
    first_arrived = asyncio.Event()
    timeout = want_seconds(within) if within else None
    stream_enable_acks = self.enable_acks
    buffer_consuming: asyncio.Future | None = None
    channel_it = aiter(self.channel)

    async def add_to_buffer(value: Any) -> Any:
        nonlocal buffer_consuming
        try:
            if buffer_consuming is not None:
                try:
                    await buffer_consuming
                finally:
                    buffer_consuming = None
            buffer.append(value)
            event = self.current_event
            if event is None:
                raise RuntimeError("Take buffer found current_event is None")
            events.append(event)
            first_arrived.set()
            if len(buffer) >= max_:
                buffer_full.set()
                buffer_consumed.clear()
                await self.wait(buffer_consumed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.exception("Error adding to take buffer: %r", exc)
            await self.crash(exc)
        return value

    self.enable_acks = False
    self.add_processor(add_to_buffer)
    self._enable_passive(channel_it)
    try:
        while not self.should_stop:
            if not buffer:  # idle: sleep until the first event, however long
                await self.wait_for_stopped(first_arrived)
            await self.wait_for_stopped(buffer_full, timeout=timeout)
            if buffer:
                buffer_consuming = self.loop.create_future()
                batch = TakenEvents(events, self)
                try:
                    yield batch
                finally:
                    buffer.clear()
                    if not batch.held:
                        await batch.ack()
                    events.clear()
                    notify(buffer_consuming)
                    buffer_full.clear()
                    first_arrived.clear()
                    buffer_consumed.set()
    finally:
        self.enable_acks = stream_enable_acks
        self._processors.remove(add_to_buffer)


def resume_empties_only_suspended_queues(app: Any) -> None:
    """Fix 7: ``app.flow_control.resume`` empties the queues only when flow control was
    suspended (a rebalance): resuming a flow that is already running drops nothing."""
    flow_control, resume_of_mode = app.flow_control, app.flow_control.resume

    def resume() -> None:
        if not flow_control.is_active():
            resume_of_mode()

    flow_control.resume = resume


def check_versions() -> None:
    """Refuse to run on a faust-streaming or aiokafka these helpers were not written for."""
    import aiokafka

    for name, version, supported in (("faust-streaming", faust.__version__, SUPPORTED_FAUST),
                                     ("aiokafka", aiokafka.__version__, SUPPORTED_AIOKAFKA)):
        if not version.startswith(supported):
            raise ConfigError(f"{name} {version} is not supported (imgpipe's Faust seam, "
                              f"pipeline/worker/faustcompat.py, is written for "
                              f"{'/'.join(s + 'x' for s in supported)}): install the "
                              "versions pinned in pyproject.toml", "unsupported_version")


_installed: list[str] = []


def install(topic_prefix: str = "") -> None:
    """Check the versions and apply the fixes (once per process); ``topic_prefix`` names
    our source topics (fix 3)."""
    check_versions()
    if topic_prefix and topic_prefix + "." not in _GAPLESS:
        _GAPLESS.append(topic_prefix + ".")
    if _installed:
        return
    faust_aiokafka.AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed
    faust_consumer.Consumer.getmany = _getmany
    faust_consumer.Consumer._add_gap = _add_gap
    faust_consumer.Consumer._new_offset = _new_offset
    faust_partition_assignor.CopartitionedAssignor = LevelledCopartitionedAssignor
    faust_streams.Stream.take_events = faust_streams._tracks_buffer_agen(_take_events)
    _installed.append(faust.__version__)


# --- Helpers: the private attributes imgpipe reads or sets outside the fixes --------------

def read_offset(consumer: Any, tp: Any) -> int | None:
    """The offset Faust's consumer last delivered on ``tp`` (None if nothing yet)."""
    return consumer._read_offset.get(tp)


def current_event_as(event: Any) -> Any:
    """Make ``event`` Faust's current event (what table writes file under); returns the
    token for ``restore_current_event``."""
    return _current_event.set(weakref.ref(event))


def restore_current_event(token: Any) -> None:
    _current_event.reset(token)


def remake_changelog_topic(table: Any) -> Any:
    """A table's changelog topic made again from its current serializers (Faust makes it
    at init, before a serializer can be changed)."""
    return table._new_changelog_topic()


def trust_source_partitions(table: Any, topics: list[str]) -> None:
    """Skip Faust's check that ``table``'s changelog has as many partitions as each of
    ``topics`` (which reads metadata that can lag for minutes after topic creation)."""
    table._verified_source_topics_for_partitions.update(topics)


def raw_producer(app: Any) -> Any:
    """The aiokafka producer under Faust's producer (created if not yet)."""
    return app.producer._ensure_producer()


def kafka_client(client: Any) -> Any:
    """The aiokafka client (cluster metadata, topic subscription) under an aiokafka
    consumer or admin client."""
    return client._client
