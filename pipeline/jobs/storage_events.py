"""Bucket notifications on the ingest topic, in the shapes they arrive in:

- a Cloud Storage notification as Google's Pub/Sub source connector (and imgpipe's own
  bridge) writes it: the Pub/Sub attributes (``eventType``, ``bucketId``, ``objectId``,
  ``objectGeneration``, ...) as Kafka headers, the object resource (JSON) as the value;
- a CloudEvent for Cloud Storage (``google.cloud.storage.object.v1.finalized`` and the
  other object events), structured (one JSON with ``specversion``, ``type``, ``data``)
  or binary (``ce_type``/``ce-type`` headers, the object resource as the value).

Anything else is a JobRequest (pipeline.models). Every field is hostile: names, sizes
and generations are checked before a job is made of them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pipeline.errors import InvalidRequest
from pipeline.jobs.rules import BUCKET_RE, StoredObject
from pipeline.models import loads_bounded, readable_job_id

#: Notification event types -> what happened to the object.
_GCS_EVENTS = {"OBJECT_FINALIZE": "finalize", "OBJECT_DELETE": "delete",
               "OBJECT_METADATA_UPDATE": "metadata_update", "OBJECT_ARCHIVE": "archive"}
_CLOUDEVENT_PREFIX = "google.cloud.storage.object.v1."
_CLOUDEVENTS = {"finalized": "finalize", "deleted": "delete",
                "metadataUpdated": "metadata_update", "archived": "archive"}
#: GCS object names are at most 1024 bytes of UTF-8; buckets 3-222 characters.
_MAX_NAME_BYTES = 1024


def header_pairs(headers: Any) -> list[tuple[str, bytes]]:
    """A record's headers (Faust's mapping or aiokafka's pairs) as (name, bytes) pairs."""
    items = headers.items() if hasattr(headers, "items") else (headers or ())
    pairs = []
    for key, value in items:
        if isinstance(key, bytes):
            key = key.decode("utf-8", errors="replace")
        if isinstance(value, str):
            value = value.encode()
        if isinstance(key, str) and isinstance(value, bytes):
            pairs.append((key, value))
    return pairs


def _headers(headers: Any) -> dict[str, str]:
    return {key: value.decode("utf-8", errors="replace")
            for key, value in header_pairs(headers)}


def storage_event(raw: bytes | None, headers: Any) -> StoredObject | None:
    """The object a storage notification in this ingest event announces; None if the
    event is no storage notification; InvalidRequest if it is one we cannot use."""
    attributes = _headers(headers)
    if "eventType" in attributes and "bucketId" in attributes:
        event = _GCS_EVENTS.get(attributes["eventType"], "other")
        return _object(event, _resource(raw), attributes)
    ce_type = attributes.get("ce_type") or attributes.get("ce-type")
    if ce_type is not None:
        return _object(_cloudevent_kind(ce_type), _resource(raw), {})
    if not raw or raw.lstrip()[:1] != b"{" or (b'"specversion"' not in raw
                                               and b'"storage#object"' not in raw):
        return None
    data = loads_bounded(raw)
    if isinstance(data, dict) and "specversion" in data:
        payload = data.get("data")
        return _object(_cloudevent_kind(str(data.get("type", ""))),
                       payload if isinstance(payload, dict) else {}, {})
    if isinstance(data, dict) and data.get("kind") == "storage#object":
        return _object("finalize", data, {})  # a bare object resource: it exists
    return None


def _cloudevent_kind(ce_type: str) -> str:
    if not ce_type.startswith(_CLOUDEVENT_PREFIX):
        raise InvalidRequest(f"CloudEvent type {ce_type[:100]!r} is not a Cloud Storage "
                             "object event", "unknown_event_kind")
    return _CLOUDEVENTS.get(ce_type.removeprefix(_CLOUDEVENT_PREFIX), "other")


def _resource(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    data = loads_bounded(raw)
    return data if isinstance(data, dict) else {}


def _object(event: str, resource: dict[str, Any], attributes: dict[str, str]
            ) -> StoredObject:
    bucket = attributes.get("bucketId") or resource.get("bucket")
    name = attributes.get("objectId") or resource.get("name")
    generation = attributes.get("objectGeneration") or resource.get("generation")
    if not isinstance(bucket, str) or not BUCKET_RE.match(bucket):
        raise InvalidRequest("storage notification without a valid bucket", "bad_storage_event")
    if (not isinstance(name, str) or not name or "\x00" in name
            or len(name.encode()) > _MAX_NAME_BYTES):
        raise InvalidRequest("storage notification without a valid object name",
                             "bad_storage_event")
    generation = str(generation) if isinstance(generation, str | int) else ""
    if not generation.isdigit() or len(generation) > 20:
        raise InvalidRequest(f"storage notification for {name[:200]!r} has no valid object "
                             "generation", "bad_storage_event")
    return StoredObject(bucket, name, generation, event,
                        _text(resource.get("contentType")), _size(resource.get("size")),
                        _time(resource.get("timeCreated")))


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None


def _size(value: Any) -> int | None:
    """GCS writes sizes as decimal strings (they may exceed 2^53)."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return int(text) if text.isdigit() and len(text) <= 20 else None


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def job_id_for(obj: StoredObject) -> str:
    """The job an object generation makes: the same for every redelivery and replay of
    its notification, another for a new generation (an overwrite is a new upload)."""
    digest = hashlib.sha256(f"{obj.bucket}/{obj.name}#{obj.generation}".encode()).hexdigest()
    return readable_job_id(obj.name.rsplit("/", 1)[-1], digest)
