"""Small helpers shared by the agents for reading Faust events."""

from __future__ import annotations

from typing import Any

from pipeline.models import (
    DEFAULT_TENANT,
    PRIORITIES,
    QUALIFIED_JOB_ID_RE,
    TENANT_RE,
    loads_bounded,
    qualify_job_id,
)


def origin(event: Any) -> str:
    """``topic/partition/offset`` of an event: its identity for redelivery checks."""
    message = event.message
    return f"{message.topic}/{message.partition}/{message.offset}"


def key_text(event: Any) -> str | None:
    key = event.key
    if isinstance(key, bytes):
        return key[:1024].decode("utf-8", errors="replace")
    return key if key is None or isinstance(key, str) else str(key)[:1024]


def event_fields(event: Any) -> dict[str, Any]:
    """The event's JSON object, or {} when it is anything else. Total: whatever the event
    holds, this returns (a probe that raised would escape the agent, and Faust would
    count the rest of the batch as consumed)."""
    try:
        data = loads_bounded(raw_value(event))
    except Exception:  # any event, any failure
        return {}
    return data if isinstance(data, dict) else {}


def job_id_hint(event: Any, fields: dict[str, Any] | None = None,
                default_tenant: str = DEFAULT_TENANT) -> str | None:
    """The best job_id we can name for an event that failed to parse (for the DLQ);
    ``fields``: its event_fields, when already read; ``default_tenant``: the tenant of
    an event that names none (its authenticated sender's). Total, like event_fields."""
    data = event_fields(event) if fields is None else fields
    try:
        if isinstance(data.get("job_id"), str):
            tenant = data.get("tenant")
            return qualify_job_id(tenant if isinstance(tenant, str) and TENANT_RE.match(
                tenant) else default_tenant, data["job_id"])
    except Exception:  # a malformed id: fall back to the key
        pass
    try:
        key = key_text(event)
    except Exception:
        return None
    return key if key and QUALIFIED_JOB_ID_RE.match(key) else None


def priority_hint(fields: dict[str, Any]) -> str:
    """The priority an event's fields ask for, when they name a valid one (a refused
    event is counted under it); "unknown" otherwise."""
    priority = fields.get("priority")
    return priority if isinstance(priority, str) and priority in PRIORITIES else "unknown"


def raw_value(event: Any) -> bytes | None:
    value = event.value
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode()


def records_of(events: list[Any]) -> list[tuple[str, int, int, str | None]]:
    """(topic, partition, offset, key) of each event, for pipeline.worker.inflight."""
    return [(e.message.topic, e.message.partition, e.message.offset, key_text(e))
            for e in events]
