"""Event and state models, JSON on the wire.

Models are plain frozen dataclasses so the core never depends on Faust; agents parse
raw bytes with :func:`parse_job_request`, which turns every kind of malformed event into
an :class:`~pipeline.errors.InvalidRequest` with a precise reason instead of a
deserialisation crash inside the stream.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import InvalidRequest

PRIORITIES = ("high", "normal", "low")
#: A client's own job id; the pipeline's key is the tenant-qualified id (qualify_job_id).
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Any job id the pipeline keys by: ``id`` (tenant "default") or ``tenant:id``.
QUALIFIED_JOB_ID_RE = re.compile(
    r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63}:)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
VARIANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DEFAULT_TENANT = "default"
MAX_EVENT_BYTES = 64 * 1024
#: Deepest JSON nesting an event may have (a request needs 4: object, variants, chain, op).
MAX_EVENT_DEPTH = 16
#: submitted_at must lie between 2000-01-01 and this far ahead of the receiving clock.
SUBMITTED_AT_MIN = 946_684_800.0
SUBMITTED_AT_SKEW = 86_400.0
#: Longest source file name and client label a job keeps (characters).
MAX_NAME_CHARS = 255
MAX_LABEL_CHARS = 200


class Status:
    """Job states; terminal ones never change again unless a job is forced."""

    RECEIVED = "RECEIVED"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    DONE = "DONE"
    RETRYING = "RETRYING"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    TERMINAL = frozenset({DONE, FAILED, REJECTED})
    IN_FLIGHT = frozenset({QUEUED, PROCESSING, RETRYING})


@dataclass(frozen=True)
class JobRequest:
    """One submitted job: a source image URI and the variants to make of it."""

    job_id: str
    source: str
    variants: dict[str, list[dict[str, Any]]]
    priority: str | None = None  # None: resolved at ingest (tenant rule, else normal)
    tenant: str | None = DEFAULT_TENANT  # None on the wire: the signed sender's tenant
    submitted_at: float = field(default_factory=time.time)
    attempt: int = 0
    force: bool = False
    replayed_from: dict[str, Any] | None = None
    name: str | None = None  # the submitted file's name, for people (never a path)
    label: str | None = None  # the client's own words for the job
    # A named variant set (pipeline/jobs/rules.py): ingest fills ``variants`` from it
    # when they are empty; once filled it only says where they came from.
    preset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # Shallow on purpose (dataclasses.asdict deep-copies every op of every variant,
        # a measurable share of ingest): the request is frozen and never mutated.
        data = {"job_id": self.job_id, "source": self.source, "variants": self.variants,
                "priority": self.priority, "tenant": self.tenant,
                "submitted_at": self.submitted_at, "attempt": self.attempt,
                "force": self.force, "replayed_from": self.replayed_from}
        if self.name is not None:
            data["name"] = self.name
        if self.label is not None:
            data["label"] = self.label
        if self.preset is not None:
            data["preset"] = self.preset
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    def with_attempt(self, attempt: int) -> JobRequest:
        return replace(self, attempt=attempt)

    def with_priority(self, priority: str) -> JobRequest:
        return replace(self, priority=priority)

    @property
    def submitted_date(self) -> str:
        """UTC date of submission: the dt= partition of the job's outputs."""
        return datetime.fromtimestamp(self.submitted_at, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class OutputInfo:
    """One written variant."""

    variant: str
    uri: str
    width: int
    height: int
    format: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))  # flat fields: asdict's recursive copy buys nothing


def compact_outputs(outputs: list[OutputInfo]) -> tuple[str | None, list[dict[str, Any]]]:
    """Outputs as Kafka records keep them: the folder they share once (``outputs_at``)
    and each one's file name, not five full URIs (the claim check keeps every record
    under 1 KiB, docs/performance.md). ``expand_outputs`` restores the URIs."""
    if not outputs:
        return None, []
    folder = outputs[0].uri.rsplit("/", 1)[0] + "/"
    compact = []
    for output in outputs:
        entry = output.to_dict()
        uri = entry.pop("uri")
        if uri.startswith(folder) and "/" not in uri[len(folder):]:
            entry["file"] = uri[len(folder):]
        else:  # not in the shared folder (never made so, but kept exact if it were)
            entry["uri"] = uri
        compact.append(entry)
    return folder, compact


def expand_outputs(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A state's or result's outputs with full ``uri`` each (compact or older form)."""
    folder = record.get("outputs_at") or ""
    expanded = []
    for entry in record.get("outputs") or []:
        if isinstance(entry, dict) and "uri" not in entry and "file" in entry:
            entry = {k: v for k, v in entry.items() if k != "file"} | {
                "uri": folder + entry["file"]}
        expanded.append(entry)
    return expanded


def tenant_of(job_id: str) -> str:
    """The tenant a (qualified) job id belongs to."""
    tenant, sep, _ = job_id.partition(":")
    return tenant if sep else DEFAULT_TENANT


def check_job_id(job_id: object) -> str:
    """``job_id`` if it is a well-formed (bare or qualified) job id, else InvalidRequest
    ``bad_job_id``."""
    if not isinstance(job_id, str) or not QUALIFIED_JOB_ID_RE.match(job_id):
        raise InvalidRequest("job_id must be 1-128 characters of letters, digits, '.', '_' "
                             "or '-', starting with a letter or digit", "bad_job_id")
    return job_id


def qualify_job_id(tenant: str, job_id: str) -> str:
    """The pipeline's key for a client's job id: two tenants never share one.

    ``job_id`` may already be qualified with ``tenant``; qualified with another tenant,
    it is refused (InvalidRequest ``bad_job_id``).
    """
    check_job_id(job_id)
    if ":" in job_id:
        if tenant_of(job_id) != tenant:
            raise InvalidRequest("job_id names another tenant than the request's",
                                 "bad_job_id")
        return job_id
    return job_id if tenant == DEFAULT_TENANT else f"{tenant}:{job_id}"


def storage_path(job_id: str) -> str:
    """The object-store folder part of a job: ``<id>`` for tenant "default", else
    ``tenant=<tenant>/<id>`` (no bare id contains '=', so the two never meet)."""
    tenant, sep, own = job_id.partition(":")
    return f"tenant={tenant}/{own}" if sep else job_id


_JSON_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def _too_deep(text: str, limit: int) -> bool:
    """True if JSON ``text`` nests deeper than ``limit`` (strings are skipped)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot be deeper than its number of openers: the common case
    depth, in_string, escaped_at = 0, False, -1
    for match in _JSON_STRUCTURE.finditer(text):
        at, char = match.start(), match.group()
        if at == escaped_at:
            continue
        if char == "\\":
            escaped_at = at + 1
        elif char == '"':
            in_string = not in_string
        elif not in_string:
            depth += 1 if char in "[{" else -1
            if depth > limit:
                return True
    return False


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_bounded(raw: bytes | str | None, max_bytes: int = MAX_EVENT_BYTES,
                  max_depth: int = MAX_EVENT_DEPTH) -> Any:
    """Decode untrusted JSON: size, UTF-8 and nesting depth are checked before parsing,
    NaN and Infinity are refused, and every failure is an InvalidRequest (never a
    RecursionError or a decoder's own exception)."""
    if raw is None or raw in (b"", ""):
        raise InvalidRequest("event has an empty value", "empty_event")
    if len(raw) > max_bytes:
        raise InvalidRequest(f"event is {len(raw)} bytes, more than {max_bytes}: "
                             "send image bytes by URI (claim check), not inline",
                             "event_too_large")
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("event is not UTF-8 text", "malformed_json") from None
    if _too_deep(raw, max_depth):
        raise InvalidRequest(f"event nests deeper than {max_depth} levels", "too_deep")
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"event is not valid JSON: {str(exc)[:200]}",
                             "malformed_json") from None


def parse_job_request(raw: bytes | str | None, default_tenant: str = DEFAULT_TENANT
                      ) -> JobRequest:
    """Parse and shape-check one raw ingest event (op semantics are checked elsewhere).

    ``default_tenant`` is the tenant of a request that names none (the authenticated
    sender's, at ingest).
    """
    data = loads_bounded(raw)
    if not isinstance(data, dict):
        raise InvalidRequest("event must be a JSON object", "malformed_event")
    return job_request_from_dict(data, default_tenant)


def job_request_from_dict(data: dict[str, Any], default_tenant: str = DEFAULT_TENANT
                          ) -> JobRequest:
    """Build a JobRequest from decoded JSON, naming the first bad field. The job id comes
    out tenant-qualified (qualify_job_id)."""
    known = set(JobRequest.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}", "unknown_field")
    preset = data.get("preset")
    for name in ("job_id", "source") if preset is not None else ("job_id", "source",
                                                                 "variants"):
        if name not in data:
            raise InvalidRequest(f"missing required field {name!r}", "missing_field")
    job_id = data["job_id"]
    if not isinstance(data["source"], str) or not data["source"]:
        raise InvalidRequest("source must be a non-empty URI string", "bad_source")
    if preset is not None and (not isinstance(preset, str) or not VARIANT_RE.match(preset)):
        raise InvalidRequest("preset must be a name of 1-64 letters, digits, '_' or '-'",
                             "bad_preset")
    variants = data.get("variants", {})
    if not isinstance(variants, dict) or (not variants and preset is None):
        raise InvalidRequest("variants must be a non-empty object {name: [op, ...]}",
                             "bad_variants")
    for name, chain in variants.items():
        if not VARIANT_RE.match(name):
            raise InvalidRequest(f"variant name {name!r} must be 1-64 letters, digits, "
                                 "'_' or '-'", "bad_variant_name")
        if not isinstance(chain, list) or not all(isinstance(op, dict) for op in chain):
            raise InvalidRequest(f"variant {name!r} must be a list of op objects",
                                 "bad_variants")
    priority = data.get("priority")
    if priority is not None and priority not in PRIORITIES:
        raise InvalidRequest(f"priority must be one of {', '.join(PRIORITIES)}, "
                             f"got {priority!r}", "bad_priority")
    tenant = data.get("tenant")
    if tenant is None:
        tenant = tenant_of(job_id) if isinstance(job_id, str) and ":" in job_id \
            else default_tenant
    if not isinstance(tenant, str) or not TENANT_RE.match(tenant):
        raise InvalidRequest("tenant must be 1-64 letters, digits, '.', '_' or '-'",
                             "bad_tenant")
    job_id = qualify_job_id(tenant, job_id)
    now = time.time()
    submitted_at = data.get("submitted_at", now)
    if (isinstance(submitted_at, bool) or not isinstance(submitted_at, int | float)
            or not math.isfinite(submitted_at)
            or not SUBMITTED_AT_MIN <= submitted_at <= now + SUBMITTED_AT_SKEW):
        raise InvalidRequest("submitted_at must be epoch seconds between 2000-01-01 and "
                             "now", "bad_submitted_at")
    attempt = data.get("attempt", 0)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise InvalidRequest("attempt must be a non-negative integer", "bad_attempt")
    force = data.get("force", False)
    if not isinstance(force, bool):
        raise InvalidRequest("force must be true or false", "bad_force")
    replayed_from = data.get("replayed_from")
    if replayed_from is not None and not isinstance(replayed_from, dict):
        raise InvalidRequest("replayed_from must be an object", "bad_replayed_from")
    return JobRequest(job_id=job_id, source=data["source"], variants=variants,
                      priority=priority, tenant=tenant, submitted_at=float(submitted_at),
                      attempt=attempt, force=force, replayed_from=replayed_from,
                      name=check_display_text("name", data.get("name"), MAX_NAME_CHARS),
                      label=check_display_text("label", data.get("label"), MAX_LABEL_CHARS),
                      preset=preset)


def check_display_text(field_name: str, value: object, limit: int) -> str | None:
    """``value`` if it is text people may be shown: at most ``limit`` characters, no
    control characters; a ``name`` is a file name, never a path. InvalidRequest
    ``bad_<field>`` otherwise."""
    if value is None:
        return None
    problem = None
    if not isinstance(value, str) or not value.strip():
        problem = "must be a non-empty string"
    elif len(value) > limit:
        problem = f"must be at most {limit} characters"
    elif any(map(_is_control, value)):
        problem = "must not contain control characters"
    elif field_name == "name" and ("/" in value or "\\" in value or value in (".", "..")):
        problem = "must be a file name, not a path"
    if problem:
        raise InvalidRequest(f"{field_name} {problem}", f"bad_{field_name}")
    return value


def readable_job_id(name: str | None, unique: str | None = None) -> str:
    """A job id people can read in an output's path: the file's stem (letters, digits,
    '.', '_', '-'; at most 48) and 12 characters of ``unique`` (default: random hex);
    ``unique`` alone (up to 32) when the name has nothing usable."""
    unique = unique or uuid.uuid4().hex
    stem = name.rsplit(".", 1)[0] if name and "." in name[1:] else (name or "")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem)[:48].strip("-._")
    return f"{stem}-{unique[:12]}" if stem else unique[:32]


def _is_control(char: str) -> bool:
    """C0/C1 controls and the Unicode line separators (they break logs and tables)."""
    return ord(char) < 32 or 0x7F <= ord(char) < 0xA0 or char in "\u2028\u2029"


def display_name(path_name: str) -> str:
    """A file's name as a job keeps it: control characters replaced, cut to
    MAX_NAME_CHARS (clients pass any file they can open)."""
    cleaned = "".join("?" if _is_control(c) else c
                      for c in path_name.replace("\\", "/").rsplit("/", 1)[-1])
    cleaned = cleaned.strip()[:MAX_NAME_CHARS].strip()
    return cleaned if cleaned not in ("", ".", "..") else "unnamed"
