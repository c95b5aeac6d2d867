"""Sending to our topics with delivery confirmed before the source event is acked."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import errors as kafka_errors

from agents.events import job_id_hint, origin, raw_value
from pipeline import metrics
from pipeline.records import DeadLetter
from pipeline.tenancy import AUTH_HEADER, header_text

log = logging.getLogger(__name__)

#: Longest pause between two attempts to deliver a record the brokers refused.
RESEND_BACKOFF_CAP = 30.0

Headers = list[tuple[str, bytes]] | None
#: Sends one record: (topic, key, value, headers) -> the future of its acknowledgement.
Produce = Callable[[str, bytes | None, bytes, Headers], Awaitable[Any]]
#: Refusals that no amount of re-sending cures (the record or the topic is the problem).
UNDELIVERABLE = (kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordTooLargeError,
                 kafka_errors.InvalidTopicError,
                 kafka_errors.TopicAuthorizationFailedError)


#: dead_letter_event's default: name the job the event itself names.
HINT = object()


def _key(job_id: str | None) -> bytes | None:
    return job_id.encode() if job_id else None


@dataclass
class Delivery:
    """One queued record and the future of its acknowledgement (kept so a record the
    brokers refused can be sent again)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    future: Any

    def result(self) -> Any:
        """The record's metadata (topic, partition, offset) once it is confirmed."""
        return self.future.result()


class Outbox:
    """Sends records to our topics; ``confirm`` waits until the brokers have them, which
    agents do before the source events are acked.

    ``produce`` goes straight to the producer: Faust's Topic.send adds a FutureMessage,
    sensor calls and callbacks per record that nothing here uses (a fifth of ingest's
    time, measured).
    """

    def __init__(self, produce: Produce, dlq_topic: str,
                 attest: Callable[[bytes], list[tuple[str, bytes]]] | None = None) -> None:
        self._produce = produce
        self.dlq_topic = dlq_topic
        self._attest = attest

    async def send(self, topic_name: str, job_id: str | None,
                   value: dict[str, Any] | bytes, headers: Headers = None) -> Delivery:
        """Queue a record; returns its Delivery (pass it to ``confirm`` before acking).
        A record of our own (no ``headers`` given) is attested by the group key; one
        sent on with its sender's headers keeps the sender's authority only."""
        payload = value if isinstance(value, bytes) else json.dumps(
            value, separators=(",", ":")).encode()
        if headers is None and self._attest is not None:
            headers = self._attest(payload)
        key = _key(job_id)
        return Delivery(topic_name, key, payload, headers,
                        await self._produce(topic_name, key, payload, headers))

    async def dead_letter(self, record: DeadLetter) -> Delivery:
        """Queue a dead letter (and count and log it)."""
        metrics.DEAD_LETTERS.labels(record.stage, record.reason).inc()
        log.warning("dead-letter job_id=%s stage=%s reason=%s: %s", record.job_id,
                    record.stage, record.reason, record.error)
        return await self.send(self.dlq_topic, record.job_id, record.to_dict())

    async def dead_letter_event(self, event: Any, reason: str, message: str, stage: str,
                                job_id: str | object | None = HINT,
                                sender: str | None = None) -> Delivery:
        """Dead-letter an event that could not be used, with its raw value and origin, and
        ``job_id`` (None: none is known), else the best the event names; ``sender``: the
        tenant whose token signed it, if it was authenticated."""
        return await self.dead_letter(DeadLetter.of_event(
            job_id_hint(event) if job_id is HINT else job_id, reason, message,
            stage=stage, raw=raw_value(event), source_topic=origin(event),
            auth=header_text(getattr(event, "headers", None), AUTH_HEADER), sender=sender))

    async def confirm(self, deliveries: list[Delivery]) -> None:
        """Wait until every queued record is acknowledged by the brokers.

        A record the brokers refused with a retriable error (a broker outage, a leader
        moving) is sent again with backoff until it is taken: the batch waits, and its
        events are not acked, instead of being counted as consumed with their effects
        lost.
        """
        for delivery in deliveries:
            await self._confirm_one(delivery)

    async def _confirm_one(self, delivery: Delivery) -> None:
        attempt = 0
        while True:
            try:
                await delivery.future
                return
            except kafka_errors.ProducerClosed:
                raise  # shutting down: the batch stays unacked
            except UNDELIVERABLE as exc:
                log.error("record for %s (key %r) cannot be delivered: %r",
                          delivery.topic, delivery.key, exc)
                return
            except Exception as exc:  # timeouts, lost leaders, outages
                attempt += 1
                pause = min(RESEND_BACKOFF_CAP, 0.2 * 2 ** min(attempt, 10))
                log.warning("record for %s (key %r) not delivered (%r); sending it again "
                            "in %.1f s", delivery.topic, delivery.key, exc, pause)
                await asyncio.sleep(pause)
                try:
                    delivery.future = await self._produce(delivery.topic, delivery.key,
                                                          delivery.value, delivery.headers)
                except Exception as again:
                    delivery.future = asyncio.get_running_loop().create_future()
                    delivery.future.set_exception(again)
