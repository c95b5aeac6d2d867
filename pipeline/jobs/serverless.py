"""Serverless entry point: the same processing core for a batch of Kafka records that a
trigger delivers (AWS Lambda with an MSK or self-managed Kafka event source).

Handler: ``pipeline.jobs.serverless.lambda_handler``. Point the trigger at the work topics
(``<prefix>.jobs.high|normal|low``); configure the function with the usual IMGPIPE_*
variables (object store, metadata store, limits). No Faust and no job table here: every
record is admitted, processed and its outputs and metadata row written (idempotently, as
in a worker), and the function returns a per-record summary. A transient failure raises,
so Lambda retries the whole batch; permanent failures are recorded in the metadata store
as FAILED and reported in the summary (and the log).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pipeline.errors import PermanentError, RetryableError
from pipeline.jobs.processing import DONE, FAILED, run_batch
from pipeline.settings import Settings
from pipeline.worker.runtime import Runtime

log = logging.getLogger(__name__)
KAFKA_SOURCES = ("aws:kafka", "SelfManagedKafka", "aws:SelfManagedKafka")


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class BatchRetry(RetryableError):
    """Raised so the trigger redelivers the batch (effects are idempotent)."""


def decode_event(event: dict[str, Any]) -> list[KafkaRecord]:
    """The records of a Lambda Kafka event (``records``: "topic-partition" -> list of
    records with base64 key and value), in topic, partition, offset order."""
    if event.get("eventSource") not in KAFKA_SOURCES:
        raise ValueError(f"not a Kafka event (eventSource={event.get('eventSource')!r})")
    records = []
    for batch in event.get("records", {}).values():
        for item in batch:
            key, value = item.get("key"), item.get("value")
            records.append(KafkaRecord(
                item["topic"], int(item["partition"]), int(item["offset"]),
                base64.b64decode(key) if key else None,
                base64.b64decode(value) if value is not None else None))
    return sorted(records, key=lambda r: (r.topic, r.partition, r.offset))


async def process_records(records: list[KafkaRecord], runtime: Runtime
                          ) -> list[dict[str, Any]]:
    """Admit and process a batch; one summary entry per record."""
    summary: list[dict[str, Any]] = []
    work, entries = [], {}
    for record in records:
        entry: dict[str, Any] = {"topic": record.topic, "partition": record.partition,
                                 "offset": record.offset}
        summary.append(entry)
        try:
            request, chains = runtime.admission.admit(record.value)
        except PermanentError as exc:
            entry.update(outcome="rejected", error=exc.code, message=exc.message)
            log.warning("rejected %s/%d/%d: %s", record.topic, record.partition,
                        record.offset, exc.message)
            continue
        entry["job_id"] = request.job_id
        if request.job_id in entries:  # the same job twice in a batch runs once
            entry["outcome"] = "duplicate"
            continue
        entries[request.job_id] = entry
        work.append((request, chains))
    for outcome in await run_batch(work, runtime) if work else []:
        entry = entries[outcome.request.job_id]
        if outcome.kind == DONE:
            entry.update(outcome="done", outputs=[o.uri for o in outcome.outputs])
        elif outcome.kind == FAILED:
            entry.update(outcome="failed", error=outcome.error.code,
                         message=outcome.error.message)
        else:
            entry.update(outcome="retry", error=outcome.error.code,
                         message=outcome.error.message)
    return summary


@lru_cache(maxsize=1)
def _runtime() -> Runtime:
    """One runtime per warm function instance (clients and pools are reused)."""
    return Runtime(Settings.from_env())


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """AWS Lambda entry point for MSK / self-managed Kafka triggers."""
    summary = asyncio.run(process_records(decode_event(event), _runtime()))
    retry = [e for e in summary if e.get("outcome") == "retry"]
    if retry:
        raise BatchRetry(f"{len(retry)} of {len(summary)} jobs hit a transient error "
                         f"(first: {retry[0].get('message')}); the batch will be retried")
    counts: dict[str, int] = {}
    for entry in summary:
        counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    return {"records": len(summary), "outcomes": counts, "results": summary}
