"""The bridge from a Pub/Sub subscription (bucket notifications) onto the ingest topic.

Each message becomes one record shaped as Google's Pub/Sub source connector writes it:
the attributes as headers, the data as the value (docs/events.md). A message is acked
only after Kafka confirmed its record (acks=all), so a bridge killed at any moment loses
nothing: Pub/Sub redelivers what was not acked, and the job id derived from the object's
generation makes a redelivered notification the same job.

Google's CloudPubSubSourceConnector does the same job in Kafka Connect but speaks only
TLS with Application Default Credentials, so it cannot reach the plaintext emulator;
this bridge talks to either (PUBSUB_EMULATOR_HOST picks the emulator).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from pipeline.authority import REPLAY_HEADER
from pipeline.errors import ImgpipeError
from pipeline.group import GROUP_HEADER
from pipeline.jobs.storage_events import storage_event
from pipeline.jobs.storage_jobs import StorageJobs
from pipeline.models import MAX_EVENT_BYTES
from pipeline.records import DeadLetter
from pipeline.settings import Settings
from pipeline.tenancy import AUTH_HEADER, Principal

log = logging.getLogger(__name__)

#: Messages pulled (and confirmed, then acked) per round.
PULL_BATCH = 100
#: Attributes kept per message (Pub/Sub allows 100; notifications carry 6-8).
MAX_ATTRIBUTES = 32
#: Headers that carry authority in our pipeline: never taken from a publisher.
_OURS = frozenset({AUTH_HEADER, GROUP_HEADER, REPLAY_HEADER})


@dataclass
class BridgeStats:
    forwarded: int = 0
    dead_lettered: int = 0
    rounds: int = 0


def _utf8(text: str) -> bytes:
    # Attributes arrive as text that may hold lone surrogates (JSON-escaped by a
    # publisher): they cannot be encoded as they are, so each becomes '?'.
    return text.encode("utf-8", errors="replace")


def record_of(data: bytes, attributes: dict[str, str], sender: Principal
              ) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The Kafka value and headers of one message. Our own authority headers are
    dropped (whoever can publish to the topic must not sign for us); the bridge signs."""
    headers = [(_utf8(key[:256]).decode(), _utf8(value[:1024])) for key, value in
               list(attributes.items())[:MAX_ATTRIBUTES] if key not in _OURS]
    return data, headers + sender.sign(data)


def refusal_of(data: bytes, attributes: dict[str, str]) -> tuple[str, str] | None:
    """(reason, message) if the message is not a bucket notification the bridge may
    forward, else None. The bridge forwards notifications only: the job they make is
    decided by the route that takes them (tenant, priority, preset; never ``force``),
    so a JobRequest published to the subscription cannot borrow the bridge's token."""
    if len(data) > MAX_EVENT_BYTES:  # Kafka would refuse it and block the rest
        return "event_too_large", f"the message is {len(data)} bytes, more than " \
                                  f"{MAX_EVENT_BYTES}"
    headers = [(key, _utf8(value)) for key, value in attributes.items()]
    try:
        if storage_event(data, headers) is not None:
            return None
    except ImgpipeError as exc:
        return exc.code, exc.message
    return "not_a_notification", "the bridge forwards bucket notifications only (publish " \
                                 "jobs to the API or the ingest topic, signed)"


class PubSubBridge:
    """Copies ``subscription`` onto the ingest topic until ``stop`` is set."""

    def __init__(self, settings: Settings, subscription: str, sender: Principal,
                 key_of: Callable[[bytes, list], bytes | None] = lambda value, headers: None,
                 batch: int = PULL_BATCH) -> None:
        self.settings = settings
        self.subscription = subscription
        self.sender = sender
        self.key_of = key_of
        self.batch = batch
        self.stats = BridgeStats()

    async def run(self, stop: asyncio.Event,
                  progress: Callable[[BridgeStats], None] = lambda s: None) -> BridgeStats:
        from google.cloud import pubsub_v1

        from pipeline.kafka.security import kafka_options

        subscriber = pubsub_v1.SubscriberClient()
        producer = AIOKafkaProducer(**kafka_options(self.settings), acks="all",
                                    enable_idempotence=True, request_timeout_ms=30000)
        await producer.start()
        try:
            while not stop.is_set():
                messages = await asyncio.to_thread(self._pull, subscriber)
                if not messages:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.5)
                    continue
                await self._forward(producer, messages)
                await asyncio.to_thread(subscriber.acknowledge, request={
                    "subscription": self.subscription,
                    "ack_ids": [m.ack_id for m in messages]})
                self.stats.rounds += 1
                progress(self.stats)
        finally:
            await producer.stop()
            subscriber.close()
        return self.stats

    def _pull(self, subscriber) -> list:
        from google.api_core import exceptions

        try:
            response = subscriber.pull(request={"subscription": self.subscription,
                                                "max_messages": self.batch}, timeout=5)
        except (exceptions.DeadlineExceeded, exceptions.ServiceUnavailable):
            return []  # nothing arrived in time, or the service blinked: pull again
        return list(response.received_messages)

    async def _forward(self, producer: AIOKafkaProducer, messages: list) -> None:
        """Send every message and wait until Kafka confirmed all of them."""
        pending = []
        for received in messages:
            message = received.message
            data = bytes(message.data)
            attributes = dict(message.attributes)
            refused = refusal_of(data, attributes)
            if refused is not None:
                reason, text = refused
                letter = DeadLetter.of_event(
                    None, reason, f"Pub/Sub message {message.message_id}: {text}",
                    stage="bridge", raw=data, source_topic=self.subscription)
                pending.append(await producer.send(self.settings.topic("dlq"),
                                                   value=_json(letter.to_dict())))
                self.stats.dead_lettered += 1
                continue
            value, headers = record_of(data, attributes, self.sender)
            pending.append(await producer.send(self.settings.topic("ingest"), value=value,
                                               key=self.key_of(value, headers),
                                               headers=headers))
            self.stats.forwarded += 1
        await asyncio.gather(*pending)


def _json(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def job_keys(storage_jobs: StorageJobs) -> Callable[[bytes, list], bytes | None]:
    """Keys records by the job their notification makes (the routes of the rules file),
    so ingest need not re-key them; None for one that makes no job."""
    def key_of(value: bytes, headers: list) -> bytes | None:
        try:
            stored = storage_event(value, headers)
            request = storage_jobs.request_for(stored)[0] if stored else None
        except ImgpipeError:
            return None  # ingest dead-letters it with the reason
        return request.job_id.encode() if request else None
    return key_of


def progress_printer(echo: Callable[[str], None], every: float = 5.0
                     ) -> Callable[[BridgeStats], None]:
    """A progress hook that prints one line at most every ``every`` seconds."""
    last = [0.0]

    def report(stats: BridgeStats) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            echo(f"bridged {stats.forwarded} notification(s), {stats.dead_lettered} "
                 "dead-lettered")
    return report
