"""Small helpers shared by the agents for reading Faust events."""

from __future__ import annotations

import json
from typing import Any

from pipeline.models import JOB_ID_RE


def origin(event: Any) -> str:
    """``topic/partition/offset`` of an event: its identity for redelivery checks."""
    message = event.message
    return f"{message.topic}/{message.partition}/{message.offset}"


def key_text(event: Any) -> str | None:
    key = event.key
    if isinstance(key, bytes):
        return key.decode("utf-8", errors="replace")
    return key


def job_id_hint(event: Any) -> str | None:
    """The best job_id we can name for an event that failed to parse (for the DLQ)."""
    try:
        data = json.loads(event.value)
        if isinstance(data, dict) and isinstance(data.get("job_id"), str) and JOB_ID_RE.match(
                data["job_id"]):
            return data["job_id"]
    except (TypeError, ValueError):
        pass
    key = key_text(event)
    return key if key and JOB_ID_RE.match(key) else None


def raw_value(event: Any) -> bytes | None:
    value = event.value
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode()
