"""The archiver: sinks topics to the object store as hourly Parquet files.

It runs as its own process (``imgpipe archive``) in its own consumer group
(``<app id>-archive``), so it never competes with processing. Per partition it buffers
records and writes a file when the buffer reaches ``roll_records``, is ``roll_seconds``
old, or the next record belongs to another hour. Offsets are committed only after the
file is stored, and on every assignment a partition resumes after the last offset found
in the archive itself, so a crash at any point neither loses nor duplicates a record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from pipeline.errors import ConfigError, broker_unreachable
from pipeline.lake.files import FileSpan, encode, file_key, hour_of, parse_key
from pipeline.lake.schema import SCHEMA_VERSION, TABLES, clean
from pipeline.objects import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class _Buffer:
    table: str
    partition: int
    dt: str
    hour: str
    first: int
    last: int = -1
    rows: list[dict[str, Any]] = field(default_factory=list)
    opened: float = field(default_factory=time.monotonic)


@dataclass
class ArchiveStats:
    files: int = 0
    records: int = 0
    unreadable: int = 0  # records archived by their position only


class Archiver:
    """Archives ``tables`` (topic roles: results, dlq, ingest) of one pipeline."""

    def __init__(self, kafka: dict[str, Any], group_id: str, topics: dict[str, str],
                 store: ObjectStore, prefix: str, roll_records: int, roll_seconds: float,
                 on_file: Callable[[str, FileSpan], None] = lambda key, span: None) -> None:
        unknown = set(topics) - set(TABLES)
        if unknown:
            raise ConfigError(f"cannot archive {', '.join(sorted(unknown))}: known tables are "
                              f"{', '.join(TABLES)}")
        self.kafka = kafka  # bootstrap_servers and security (kafkasecurity.kafka_options)
        self.group_id = group_id
        self.table_of = {topic: table for table, topic in topics.items()}
        self.store = store
        self.prefix = prefix.strip("/")
        self.roll_records = roll_records
        self.roll_seconds = roll_seconds
        self.on_file = on_file
        self.stats = ArchiveStats()
        self._buffers: dict[TopicPartition, _Buffer] = {}
        # The next offset each partition may archive. aiokafka can still hand over
        # records fetched from the committed offset after a resume seek past them (seen on
        # a restart: offsets 0-4 archived again, and again inside a later file), so every
        # record below it is dropped here rather than trusted to the seek.
        self._next: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self, stop: asyncio.Event) -> ArchiveStats:
        """Archive until ``stop`` is set, then write what is buffered and commit."""
        consumer = AIOKafkaConsumer(
            **self.kafka, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=2000, session_timeout_ms=10000, heartbeat_interval_ms=2500)
        self._consumer = consumer
        try:
            await consumer.start()
        except KafkaError as exc:
            raise broker_unreachable(self.kafka["bootstrap_servers"], exc) from None
        try:
            consumer.subscribe(list(self.table_of), listener=_Resume(self))
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500)
                for tp, messages in batch.items():
                    for message in messages:
                        await self._add(tp, message)
                for tp, buffer in list(self._buffers.items()):
                    if time.monotonic() - buffer.opened >= self.roll_seconds:
                        await self._flush(tp)
            for tp in list(self._buffers):
                await self._flush(tp)
        finally:
            await consumer.stop()
        return self.stats

    async def _add(self, tp: TopicPartition, message: Any) -> None:
        if message.offset < self._next.get(tp, 0):
            return  # already archived (or already in this partition's buffer)
        self._next[tp] = message.offset + 1
        dt, hour = hour_of(message.timestamp)
        buffer = self._buffers.get(tp)
        if buffer is not None and (buffer.dt, buffer.hour) != (dt, hour):
            await self._flush(tp)
            buffer = None
        if buffer is None:
            buffer = self._buffers[tp] = _Buffer(self.table_of[tp.topic], tp.partition, dt,
                                                 hour, first=message.offset)
        schema, make_row = TABLES[buffer.table]
        try:
            row = make_row(message.value)
        except Exception:  # a record no row can be made of: archived by its position only
            self.stats.unreadable += 1
            if self.stats.unreadable == 1:
                log.exception("cannot read %s/%d@%d; archiving its position only (further "
                              "ones are only counted)", tp.topic, tp.partition, message.offset)
            row = {}
        row.update(kafka_topic=tp.topic, kafka_partition=tp.partition,
                   kafka_offset=message.offset, kafka_timestamp=message.timestamp,
                   schema_version=SCHEMA_VERSION)
        buffer.rows.append(clean(row, schema))
        buffer.last = message.offset
        if len(buffer.rows) >= self.roll_records:
            await self._flush(tp)

    async def _flush(self, tp: TopicPartition) -> None:
        """Store the partition's buffer as one file, then commit past it."""
        buffer = self._buffers.pop(tp, None)
        if buffer is None or not buffer.rows:
            return
        span = FileSpan(buffer.table, buffer.partition, buffer.first, buffer.last)
        key = file_key(self.prefix, span, buffer.dt, buffer.hour)
        data = encode(buffer.rows, TABLES[buffer.table][0], span, tp.topic)
        await asyncio.to_thread(self.store.put, key, data, "application/vnd.apache.parquet")
        assert self._consumer is not None
        await self._consumer.commit({tp: OffsetAndMetadata(buffer.last + 1, "")})
        self.stats.files += 1
        self.stats.records += len(buffer.rows)
        log.info("archived %s offsets %d-%d (%d records) to %s", tp, span.first, span.last,
                 len(buffer.rows), key)
        self.on_file(key, span)

    async def durable_next_offsets(self, tps: set[TopicPartition]) -> dict[TopicPartition, int]:
        """For each partition, the offset after the last one already in the archive."""
        found: dict[TopicPartition, int] = {}
        for table in {self.table_of[tp.topic] for tp in tps}:
            keys = await asyncio.to_thread(self.store.list_keys, f"{self.prefix}/{table}")
            topic = next(t for t, name in self.table_of.items() if name == table)
            for key in keys:
                span = parse_key(key)
                if span is None or span.table != table:
                    continue
                tp = TopicPartition(topic, span.partition)
                if tp in tps:
                    found[tp] = max(found.get(tp, 0), span.last + 1)
        return found


class _Resume(ConsumerRebalanceListener):
    """Writes out revoked partitions' buffers; seeks assigned partitions past what the
    archive already holds (a crash between storing a file and committing is harmless)."""

    def __init__(self, archiver: Archiver) -> None:
        self.archiver = archiver

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            await self.archiver._flush(tp)
            self.archiver._next.pop(tp, None)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = self.archiver._consumer
        assert consumer is not None
        durable = await self.archiver.durable_next_offsets(set(assigned))
        for tp in assigned:
            committed = await consumer.committed(tp)
            offset = durable.get(tp, 0)
            self.archiver._next[tp] = max(offset, committed or 0)
            if tp in durable and (committed is None or committed < offset):
                log.info("resuming %s at %d (archived up to there, committed %s)", tp, offset,
                         committed)
                consumer.seek(tp, offset)
