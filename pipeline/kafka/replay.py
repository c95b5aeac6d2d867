"""Topic replay: re-send a slice of a topic's history back into the pipeline.

Reads with an independent consumer (no group: nothing is ever committed on the source),
stops at the end offsets captured when it starts, and re-sends each matching record to
ingest exactly as it was, with the authority it had (its token signature or the group's
attestation, pipeline/authority.py) and an ``imgpipe-replay`` marker signed by the
operator: where it came from and whether to force it. Replay signs no job: ingest checks
the record as if it were new, and what was refused for its authority stays refused
(replay skips those dead letters and counts them). Idempotency comes from the pipeline
itself: replayed jobs that are already DONE are answered from the jobs table unless
forced, and forced ones overwrite their outputs and rows in place.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.authority import REPLAY_HEADER, replay_header
from pipeline.errors import ConfigError, InvalidRequest, broker_unreachable
from pipeline.jobs.storage_events import header_pairs
from pipeline.kafka.security import kafka_options
from pipeline.kafka.topics import SOURCE_TOPICS
from pipeline.models import MAX_EVENT_BYTES, loads_bounded
from pipeline.records import DeadLetter, embedded_request
from pipeline.settings import Settings
from pipeline.tenancy import AUTH_HEADER, token_principal
from pipeline.worker import faustcompat

log = logging.getLogger(__name__)
FILTER_FIELDS = ("job_id", "tenant", "priority", "reason", "stage")


@dataclass(frozen=True)
class ReplayRange:
    """Where to start and stop, per partition (all optional but one start)."""

    from_beginning: bool = False
    from_offset: int | None = None
    from_time: float | None = None
    to_offset: int | None = None  # inclusive
    to_time: float | None = None  # inclusive

    def validate(self) -> None:
        starts = [self.from_beginning, self.from_offset is not None, self.from_time is not None]
        if sum(starts) != 1:
            raise ConfigError("give exactly one of --from-beginning, --from-offset, --from-time")
        if self.to_offset is not None and self.to_time is not None:
            raise ConfigError("give at most one of --to-offset and --to-time")
        if self.from_offset is not None and self.from_offset < 0:
            raise ConfigError("--from-offset must be >= 0")
        if (self.from_offset is not None and self.to_offset is not None
                and self.from_offset > self.to_offset):
            raise ConfigError(f"--from-offset {self.from_offset} is after --to-offset "
                              f"{self.to_offset}: nothing to replay")
        if (self.from_time is not None and self.to_time is not None
                and self.from_time > self.to_time):
            raise ConfigError("--from-time is after --to-time: nothing to replay")


def parse_time(text: str) -> float:
    """ISO 8601 (naive means UTC) or epoch seconds -> epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"bad time {text!r}: use ISO 8601 like 2026-11-27T10:00:00Z or "
                          "epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_filter(expr: str | None) -> Callable[[dict[str, Any]], bool]:
    """``tenant=acme,priority=high|normal,job_id=batch-*`` -> predicate over a record view.

    Clauses are ANDed; ``|`` separates alternatives; ``*`` and ``?`` are wildcards.
    """
    if not expr:
        return lambda view: True
    clauses = []
    for clause in expr.split(","):
        name, sep, values = clause.partition("=")
        name = name.strip()
        if not sep or name not in FILTER_FIELDS or not values.strip():
            raise ConfigError(f"bad filter clause {clause!r}: use FIELD=VALUE[|VALUE] with "
                              f"FIELD one of {', '.join(FILTER_FIELDS)}")
        clauses.append((name, [v.strip() for v in values.split("|")]))

    def matches(view: dict[str, Any]) -> bool:
        return all(any(fnmatch.fnmatchcase(str(view.get(name) or ""), pattern)
                       for pattern in patterns) for name, patterns in clauses)

    return matches


#: Dead letters of events refused for their authority: replay never sends them again.
REFUSED_FOR_AUTHORITY = frozenset({"unauthenticated", "tenant_not_allowed",
                                   "priority_not_allowed", "forbidden", "no_admitted_job"})


def record_view(value: bytes | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(fields for filtering, the job request the record names or None) of one record;
    InvalidRequest if it is not a record replay can read (bounded like ingest's parse).

    Understands job requests (ingest, priority topics), retry records (``request``) and
    dead-letter records (``request``, or the ``raw`` event that did not parse).
    """
    return _view_of(loads_bounded(value, max_bytes=2 * MAX_EVENT_BYTES))


def _view_of(data: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    if not isinstance(data, dict):
        return {}, None
    request = embedded_request(data)
    source = request or {}
    view = {key: _text(value) for key, value in (
        ("job_id", data.get("job_id") or source.get("job_id")),
        ("tenant", source.get("tenant", "default")), ("priority", source.get("priority")),
        ("reason", data.get("reason")), ("stage", data.get("stage")))}
    return view, request


def _text(value: Any) -> str | None:
    return value[:256] if isinstance(value, str) else None


def resend_of(value: bytes | None, headers: Any) -> tuple[bytes, list[tuple[str, bytes]]] | None:
    """What replay sends for one record: (value, headers) with the authority it had,
    never more; None if it holds nothing to send. A dead letter of an event that did not
    parse is its raw event with that event's own signature; any other record is sent
    as it is, with its headers (signature, the group's attestation, a notification's
    attributes), less an older replay marker."""
    return _resend_of(loads_bounded(value, max_bytes=2 * MAX_EVENT_BYTES), value, headers)


def _resend_of(data: Any, value: bytes | None, headers: Any
               ) -> tuple[bytes, list[tuple[str, bytes]]] | None:
    if isinstance(data, dict) and "reason" in data and data.get("request") is None:
        letter = DeadLetter.from_dict(data)
        if not letter.raw:
            return None
        return letter.raw.encode(), [(AUTH_HEADER, letter.auth.encode())] if letter.auth \
            else []
    if value is None:
        return None
    return value, [(k, v) for k, v in header_pairs(headers) if k != REPLAY_HEADER]


@dataclass
class ReplayStats:
    read: int = 0
    matched: int = 0
    sent: int = 0
    would_send: int = 0
    skipped: int = 0
    refused: int = 0  # dead letters refused for their authority: never sent again
    unreadable: int = 0  # records no parser of ours can read
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        return self.read / max(1e-6, time.monotonic() - self.started)

    def to_dict(self) -> dict[str, int]:
        return {"read": self.read, "matched": self.matched, "sent": self.sent,
                "would_send": self.would_send, "skipped": self.skipped,
                "refused": self.refused, "unreadable": self.unreadable}


def resolve_topic(settings: Settings, name: str) -> str:
    """Short names (ingest, jobs.high, dlq, ...) map to the configured prefix."""
    return settings.topic(name) if name in SOURCE_TOPICS else name


class Replayer:
    def __init__(self, settings: Settings, topic: str, span: ReplayRange,
                 partitions: list[int] | None = None, filter_expr: str | None = None,
                 target: str | None = None, rate: float | None = None, dry_run: bool = False,
                 force: bool = False,
                 progress: Callable[[ReplayStats, bool], None] = lambda s, d: None) -> None:
        span.validate()
        if rate is not None and rate <= 0:
            raise ConfigError("--rate must be > 0 records per second")
        self.settings = settings
        self.topic = resolve_topic(settings, topic)
        self.target = resolve_topic(settings, target or "ingest")
        self.span = span
        self.partitions = partitions
        self.matches = parse_filter(filter_expr)
        self.rate = rate
        self.dry_run = dry_run
        self.force = force
        self.progress = progress
        self.stats = ReplayStats()
        # The operator signs only the replay marker: ingest lets it replay jobs of the
        # tenants its token may act for (all, for an admin token).
        self.sender = token_principal(settings.api_token, settings.api_tokens_file)

    def run(self) -> ReplayStats:
        return asyncio.run(self._run())

    async def _run(self) -> ReplayStats:
        consumer = AIOKafkaConsumer(**kafka_options(self.settings),
                                    group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        try:
            await consumer.start()
        except KafkaError as exc:
            raise broker_unreachable(self.settings.bootstrap_servers, exc) from None
        producer = None
        try:
            tps = await self._assign(consumer)
            bounds = await self._bounds(consumer, tps)
            if not self.dry_run:
                producer = AIOKafkaProducer(**kafka_options(self.settings),
                                            acks="all", enable_idempotence=True)
                await producer.start()
            for tp, (start, stop) in bounds.items():
                if start <= stop:
                    consumer.seek(tp, start)
                    await self._drain(consumer, producer, tp, stop)
            if producer:
                await producer.flush()
        finally:
            if producer:
                await producer.stop()
            await consumer.stop()
        self.progress(self.stats, True)
        return self.stats

    async def _assign(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        await faustcompat.kafka_client(consumer).set_topics([self.topic, self.target])
        available = consumer.partitions_for_topic(self.topic)
        if not available:
            raise ConfigError(f"topic {self.topic!r} does not exist (known short names: "
                              f"{', '.join(SOURCE_TOPICS)})")
        if not consumer.partitions_for_topic(self.target):
            raise ConfigError(f"target topic {self.target!r} does not exist")
        chosen = sorted(available) if not self.partitions else self.partitions
        missing = sorted(set(chosen) - set(available))
        if missing:
            raise ConfigError(f"topic {self.topic} has no partition(s) {missing}; it has "
                              f"{len(available)}")
        tps = [TopicPartition(self.topic, p) for p in chosen]
        consumer.assign(tps)
        return tps

    async def _bounds(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]
                      ) -> dict[TopicPartition, tuple[int, int]]:
        """[first, last] offsets to read per partition; the end is fixed now."""
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        span = self.span
        if span.from_time is not None:
            found = await consumer.offsets_for_times({tp: int(span.from_time * 1000)
                                                      for tp in tps})
            starts = {tp: found[tp].offset if found[tp] else end[tp] for tp in tps}
        elif span.from_offset is not None:
            starts = {tp: max(begin[tp], span.from_offset) for tp in tps}
        else:
            starts = dict(begin)
        stops = {tp: end[tp] - 1 for tp in tps}
        if span.to_offset is not None:
            stops = {tp: min(stops[tp], span.to_offset) for tp in tps}
        return {tp: (starts[tp], stops[tp]) for tp in tps}

    async def _drain(self, consumer: AIOKafkaConsumer, producer, tp: TopicPartition,
                     stop: int) -> None:
        while True:
            batch = await consumer.getmany(tp, timeout_ms=5000, max_records=500)
            messages = batch.get(tp, [])
            if not messages:
                if await consumer.position(tp) > stop:
                    return
                continue
            for message in messages:
                if message.offset > stop:
                    return
                if (self.span.to_time is not None
                        and message.timestamp > self.span.to_time * 1000):
                    return
                await self._handle(producer, message)
                if message.offset >= stop:
                    return

    async def _handle(self, producer, message) -> None:
        self.stats.read += 1
        try:
            data = loads_bounded(message.value, max_bytes=2 * MAX_EVENT_BYTES)  # once
            view, request = _view_of(data)
            resend = _resend_of(data, message.value, message.headers)
        except InvalidRequest as exc:  # a poison record: counted, logged once, skipped
            self.stats.unreadable += 1
            if self.stats.unreadable == 1:
                log.warning("skipping unreadable record %s/%d@%d (%s); further ones are "
                            "only counted", message.topic, message.partition,
                            message.offset, exc.code)
            self.progress(self.stats, False)
            return
        if not self.matches(view):
            self.progress(self.stats, False)
            return
        self.stats.matched += 1
        if view.get("reason") in REFUSED_FOR_AUTHORITY or resend is None:
            # refused for its authority: it stays refused; or nothing to send
            if resend is None:
                self.stats.skipped += 1
            else:
                self.stats.refused += 1
            self.progress(self.stats, False)
            return
        value, headers = resend
        origin = {"topic": message.topic, "partition": message.partition,
                  "offset": message.offset, "at": round(time.time(), 3)}
        headers.append(replay_header(self.sender, origin, self.force, value))
        key = str(request["job_id"]).encode() if request and isinstance(
            request.get("job_id"), str) else message.key
        await self._send(producer, key, value, headers)

    async def _send(self, producer, key: bytes | None, value: bytes,
                    headers: list[tuple[str, bytes]]) -> None:
        """Send one record at the rate asked, or count it."""
        self.stats.would_send += 1
        if producer is not None:
            if self.rate:
                await asyncio.sleep(max(0.0, self.stats.sent / self.rate
                                        - (time.monotonic() - self.stats.started)))
            await producer.send(self.target, value, key=key, headers=headers)
            self.stats.sent += 1
        self.progress(self.stats, False)
