"""The Kafka records imgpipe writes besides JobRequest (pipeline.models): dead letters,
retry records and results, and the fields of a job's state.

Each record is written with ``to_dict`` and read with ``from_dict``, which also reads
the older forms still found on long-retention topics. Agents, replay and the lake use
these instead of building or parsing dicts by hand.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

from pipeline.errors import InvalidRequest
from pipeline.models import loads_bounded

#: Characters of an unparsable event kept in its dead letter.
MAX_RAW_CHARS = 4096
#: A signed event is kept whole up to this size (an ingest event's own limit).
MAX_SIGNED_RAW_BYTES = 64 * 1024


class JobState(TypedDict, total=False):
    """A job's state in the jobs table (tables/transitions.py makes every change).

    In flight, the state keeps what its request needs beyond these fields (``source``,
    ``variants``...; see transitions.request_of); finished states drop it.
    """

    job_id: str
    status: str  # pipeline.models.Status
    priority: str | None
    tenant: str | None
    name: str | None  # the submitted file's name
    label: str | None  # the client's label
    attempts: int
    error: dict[str, str] | None  # {"code", "message"}
    outputs_at: str | None  # the outputs' folder; each output names its ``file``
    outputs: list[dict[str, Any]]
    history: list[dict[str, Any]]  # {"status", "at", ...}, oldest first, bounded
    submitted_at: float | None
    updated_at: float
    replays: int
    phash: str | None
    image: dict[str, Any] | None  # facts about the source (pipeline/imaging/facts.py)
    routed: list[Any] | None  # [topic, partition, offset] of the work message
    origin: str | None  # topic/partition/offset of the ingest event
    open: int  # runs started and not finished (crash accounting)
    crashes: int


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


@dataclass(frozen=True)
class DeadLetter:
    """A job or event given up on: enough to understand the failure and to replay it."""

    job_id: str | None
    reason: str
    error: str
    stage: str  # ingest, process, retry
    attempts: int = 0
    failed_at: float = field(default_factory=time.time)
    source_topic: str | None = None  # topic/partition/offset of the event
    request: dict[str, Any] | None = None
    raw: str | None = None  # the event's first characters, when it had no usable request
    auth: str | None = None  # the raw event's imgpipe-auth signature (replay re-sends it)
    sender: str | None = None  # tenant of the token that signed a refused event, if any

    @classmethod
    def of_event(cls, job_id: str | None, reason: str, message: str, *, stage: str,
                 raw: bytes | None = None, source_topic: str | None = None,
                 auth: str | None = None, sender: str | None = None) -> DeadLetter:
        """For an event that could not be used: its raw value travels with it, whole
        and with its signature (``auth``) if it was signed, so replay can send it again
        with the authority it had and no more; else its first characters."""
        whole = auth is not None and raw is not None and len(raw) <= MAX_SIGNED_RAW_BYTES
        text = (raw if whole else raw[:MAX_RAW_CHARS]).decode("utf-8", errors="replace") \
            if raw else None
        return cls(job_id, reason, message, stage, source_topic=source_topic, raw=text,
                   auth=auth if whole else None, sender=sender)

    @classmethod
    def of_request(cls, job_id: str, reason: str, message: str, *, stage: str,
                   request: dict[str, Any], attempts: int) -> DeadLetter:
        """For a job that failed: its request travels with it (replay sends it again)."""
        return cls(job_id, reason, message, stage, attempts=attempts, request=request)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        if record["raw"] is None or self.request is not None:
            del record["raw"]
        if record.get("raw") is None or self.auth is None:
            del record["auth"]
        if self.sender is None:
            del record["sender"]
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeadLetter:
        """Read a dead letter, whatever its age (missing fields read as empty)."""
        request = data.get("request")
        return cls(job_id=_text(data.get("job_id")), reason=str(data.get("reason") or ""),
                   error=str(data.get("error") or ""), stage=str(data.get("stage") or ""),
                   attempts=data.get("attempts") if isinstance(data.get("attempts"), int)
                   else 0,
                   failed_at=_number(data.get("failed_at")) or 0.0,
                   source_topic=_text(data.get("source_topic")),
                   request=request if isinstance(request, dict) else None,
                   raw=_text(data.get("raw")), auth=_text(data.get("auth")),
                   sender=_text(data.get("sender")))


#: Where a retry record goes when its time comes.
TO_PRIORITY, TO_WORK_TOPIC, TO_INGEST = "priority", "work_topic", "ingest"


@dataclass(frozen=True)
class RetryRecord:
    """A job waiting out its backoff on the retry topic.

    Two forms: a failed attempt (``request``, the next attempt's JobRequest as a dict,
    and its ``error``), or a salvaged work record (``raw``, the event as it was, and the
    work ``topic`` it came from). Records without either topic or request (an older
    salvage) go back to ingest, which judges them again.
    """

    retry_at: float | None
    request: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    topic: str | None = None
    raw: str | None = None

    @property
    def destination(self) -> str:
        if self.request is not None:
            return TO_PRIORITY
        return TO_WORK_TOPIC if self.topic else TO_INGEST

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Any) -> RetryRecord:
        """Read a retry record; InvalidRequest if it can send nothing anywhere."""
        if not isinstance(data, dict):
            raise InvalidRequest("a retry record must be a JSON object", "bad_retry_record")
        request, raw = data.get("request"), data.get("raw")
        if not isinstance(request, dict) and not isinstance(raw, str):
            raise InvalidRequest("a retry record needs a request or a raw event",
                                 "bad_retry_record")
        error = data.get("error")
        return cls(retry_at=_number(data.get("retry_at")),
                   request=request if isinstance(request, dict) else None,
                   error=error if isinstance(error, dict) else None,
                   topic=_text(data.get("topic")),
                   raw=raw if isinstance(raw, str) else None)


@dataclass(frozen=True)
class ResultRecord:
    """A finished job (DONE or FAILED) as announced on the results topic: the public
    view, outputs compact as in the state (``outputs_at`` + each ``file``)."""

    job_id: str
    status: str
    priority: str | None = None
    tenant: str | None = None
    name: str | None = None
    label: str | None = None
    attempts: int = 0
    error: str | None = None
    error_code: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    outputs_at: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    submitted_at: float | None = None
    updated_at: float | None = None
    replays: int = 0
    phash: str | None = None
    image: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict, for JSON; nested lists and dicts are shared, not copied
        (``asdict``'s deep copy of the history was 3 % of the event loop's time)."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRecord:
        """Read a result, whatever its age (older ones carry full ``uri`` outputs)."""
        outputs, history = data.get("outputs"), data.get("history")
        return cls(job_id=str(data.get("job_id") or ""), status=str(data.get("status") or ""),
                   priority=_text(data.get("priority")), tenant=_text(data.get("tenant")),
                   name=_text(data.get("name")), label=_text(data.get("label")),
                   attempts=data.get("attempts") if isinstance(data.get("attempts"), int)
                   else 0,
                   error=_text(data.get("error")), error_code=_text(data.get("error_code")),
                   outputs=[o for o in outputs if isinstance(o, dict)]
                   if isinstance(outputs, list) else [],
                   outputs_at=_text(data.get("outputs_at")),
                   history=[h for h in history if isinstance(h, dict)]
                   if isinstance(history, list) else [],
                   submitted_at=_number(data.get("submitted_at")),
                   updated_at=_number(data.get("updated_at")),
                   replays=data.get("replays") if isinstance(data.get("replays"), int) else 0,
                   phash=_text(data.get("phash")),
                   image=data.get("image") if isinstance(data.get("image"), dict) else None)


def embedded_request(data: Any) -> dict[str, Any] | None:
    """The JobRequest (as a dict) any of our records carries: a request itself, a retry
    record's, a dead letter's (or the request in its ``raw`` event); None if none."""
    if not isinstance(data, dict):
        return None
    request = data.get("request") if "request" in data or "reason" in data else data
    if request is None and isinstance(data.get("raw"), str):
        try:
            request = loads_bounded(data["raw"])
        except InvalidRequest:
            request = None
    return request if isinstance(request, dict) and "job_id" in request else None
