"""The archived tables, one per topic, and how a Kafka record becomes a row.

Versioned: ``SCHEMA_VERSION`` is stored in every row and in each file's metadata. Adding
a nullable column is a compatible change (readers use ``union_by_name``); renaming or
retyping one needs a new version and a note in docs/lake.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pyarrow as pa

from pipeline.errors import InvalidRequest
from pipeline.metadata.base import phash_bits
from pipeline.models import expand_outputs, loads_bounded
from pipeline.records import DeadLetter, ResultRecord

#: 2: results gained the source's facts, placeholder and pHash (nullable: version 1
#: files still query, their rows read null there).
SCHEMA_VERSION = 2

_KAFKA = [
    pa.field("kafka_topic", pa.string(), nullable=False),
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("kafka_offset", pa.int64(), nullable=False),
    pa.field("kafka_timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("schema_version", pa.int16(), nullable=False),
]
_TS = pa.timestamp("ms", tz="UTC")

RESULTS = pa.schema([
    pa.field("job_id", pa.string()),
    pa.field("status", pa.string()),
    pa.field("priority", pa.string()),
    pa.field("tenant", pa.string()),
    pa.field("name", pa.string()),  # the submitted file's name (added in use: nullable)
    pa.field("label", pa.string()),
    pa.field("attempts", pa.int32()),
    pa.field("error_code", pa.string()),
    pa.field("error", pa.string()),
    pa.field("submitted_at", _TS),
    pa.field("finished_at", _TS),
    pa.field("latency_seconds", pa.float64()),
    pa.field("processing_seconds", pa.float64()),
    pa.field("output_count", pa.int32()),
    pa.field("output_bytes", pa.int64()),
    pa.field("outputs_json", pa.string()),
    # version 2: what the job learnt about its source (pipeline/imaging/facts.py)
    pa.field("phash", pa.string()),
    pa.field("phash_bits", pa.int64()),  # signed: bit_count(xor(a, b)) is the distance
    pa.field("source_width", pa.int32()),
    pa.field("source_height", pa.int32()),
    pa.field("source_format", pa.string()),
    pa.field("camera_make", pa.string()),
    pa.field("camera_model", pa.string()),
    pa.field("taken_at", pa.string()),  # EXIF local time, ISO 8601 without a zone
    pa.field("placeholder", pa.string()),  # BlurHash
    pa.field("colour", pa.string()),  # #rrggbb
    pa.field("image_json", pa.string()),  # every fact
    *_KAFKA,
])

DEAD_LETTERS = pa.schema([
    pa.field("job_id", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("stage", pa.string()),
    pa.field("error", pa.string()),
    pa.field("attempts", pa.int32()),
    pa.field("failed_at", _TS),
    pa.field("source_topic", pa.string()),
    pa.field("request_json", pa.string()),
    *_KAFKA,
])

INGEST = pa.schema([
    pa.field("job_id", pa.string()),
    pa.field("valid_json", pa.bool_()),
    pa.field("tenant", pa.string()),
    pa.field("priority", pa.string()),
    pa.field("source", pa.string()),
    pa.field("variant_count", pa.int32()),
    pa.field("force", pa.bool_()),
    pa.field("replayed", pa.bool_()),
    pa.field("submitted_at", _TS),
    pa.field("event_bytes", pa.int32()),
    *_KAFKA,
])


#: Latest instant a timestamp column takes (year 9999); anything else is null.
_MAX_SECONDS = 253_402_300_799.0
#: Largest record the archive parses (results carry outputs and history; events 64 KiB).
MAX_RECORD_BYTES = 1 << 20


def _ms(seconds: Any) -> int | None:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return None
    return int(seconds * 1000) if 0 <= seconds <= _MAX_SECONDS else None


def _object(value: bytes | None) -> dict[str, Any] | None:
    """The record as a JSON object, parsed with the same bounds as ingest's (size,
    nesting, no NaN or Infinity); None for anything else."""
    try:
        data = loads_bounded(value, max_bytes=MAX_RECORD_BYTES)
    except InvalidRequest:
        return None
    return data if isinstance(data, dict) else None


def _last_at(history: list[dict[str, Any]], status: str) -> float | None:
    times = [h.get("at") for h in history if isinstance(h, dict) and h.get("status") == status]
    return times[-1] if times else None


def results_row(value: bytes | None) -> dict[str, Any]:
    result = ResultRecord.from_dict(_object(value) or {})
    outputs = expand_outputs(asdict(result))
    submitted, finished = result.submitted_at, result.updated_at
    started = _last_at(result.history, "PROCESSING")
    return {
        "job_id": result.job_id or None, "status": result.status or None,
        "priority": result.priority, "tenant": result.tenant,
        "name": result.name, "label": result.label,
        "attempts": result.attempts, "error_code": result.error_code,
        "error": result.error, "submitted_at": _ms(submitted),
        "finished_at": _ms(finished),
        "latency_seconds": finished - submitted if submitted and finished else None,
        "processing_seconds": finished - started if started and finished else None,
        "output_count": len(outputs),
        "output_bytes": sum(o.get("bytes", 0) for o in outputs),
        "outputs_json": json.dumps(outputs, separators=(",", ":")),
        **_image_columns(result.phash, result.image or {}),
    }


def _image_columns(phash: str | None, image: dict[str, Any]) -> dict[str, Any]:
    return {  # a hostile record's "pHash" is kept as text but gets no number
        "phash": phash, "phash_bits": phash_bits(phash),
        "source_width": image.get("width"), "source_height": image.get("height"),
        "source_format": image.get("format"), "camera_make": image.get("camera_make"),
        "camera_model": image.get("camera_model"), "taken_at": image.get("taken_at"),
        "placeholder": image.get("placeholder"), "colour": image.get("colour"),
        "image_json": json.dumps(image, separators=(",", ":")) if image else None,
    }


def dead_letter_row(value: bytes | None) -> dict[str, Any]:
    letter = DeadLetter.from_dict(_object(value) or {})
    return {
        "job_id": letter.job_id, "reason": letter.reason or None,
        "stage": letter.stage or None, "error": letter.error or None,
        "attempts": letter.attempts, "failed_at": _ms(letter.failed_at or None),
        "source_topic": letter.source_topic,
        "request_json": json.dumps(letter.request, separators=(",", ":"))
        if letter.request else None,
    }


def ingest_row(value: bytes | None) -> dict[str, Any]:
    data = _object(value)
    if data is None:
        return {"valid_json": False, "event_bytes": len(value or b"")}
    variants = data.get("variants")
    return {
        "job_id": data.get("job_id") if isinstance(data.get("job_id"), str) else None,
        "valid_json": True, "tenant": data.get("tenant"), "priority": data.get("priority"),
        "source": data.get("source") if isinstance(data.get("source"), str) else None,
        "variant_count": len(variants) if isinstance(variants, dict) else None,
        "force": data.get("force") if isinstance(data.get("force"), bool) else None,
        "replayed": data.get("replayed_from") is not None,
        "submitted_at": _ms(data.get("submitted_at")), "event_bytes": len(value or b""),
    }


#: Archived table name -> (schema, row builder). The table name is the topic's role.
TABLES: dict[str, tuple[pa.Schema, Callable[[bytes | None], dict[str, Any]]]] = {
    "results": (RESULTS, results_row),
    "dlq": (DEAD_LETTERS, dead_letter_row),
    "ingest": (INGEST, ingest_row),
}


def clean(row: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """Drop values whose type does not fit the column (hostile input must not stop the
    archiver): they become nulls."""
    fitted = {}
    for field in schema:
        value = row.get(field.name)
        if value is not None and not _fits(value, field.type):
            value = None
        fitted[field.name] = value
    return fitted


def _fits(value: Any, kind: pa.DataType) -> bool:
    if pa.types.is_string(kind):
        return isinstance(value, str)
    if pa.types.is_boolean(kind):
        return isinstance(value, bool)
    if pa.types.is_integer(kind) or pa.types.is_timestamp(kind):
        bits = kind.bit_width if pa.types.is_integer(kind) else 63
        return isinstance(value, int) and not isinstance(value, bool) \
            and -(1 << (bits - 1)) <= value < 1 << (bits - 1)
    if pa.types.is_floating(kind):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True
