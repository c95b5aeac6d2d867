"""Whose authority an ingest event carries: a job's principal is fixed where it enters.

An event reaches ingest in one of three ways, and its authority comes with it:

- **signed by a token** (``imgpipe-auth``, pipeline/tenancy.py): the API, the CLI, the
  bucket bridge or any producer; the job has that token's tenant and priorities;
- **attested by the group** (``imgpipe-group``, pipeline/group.py): one of our own
  records (a work, retry or dead-letter record) written after its job was admitted; the
  job keeps the tenant and priority it was admitted with;
- neither: refused ``unauthenticated`` when tokens are configured.

Replay never signs a job. It re-sends a record exactly as it was, with its original
signature or attestation, and adds ``imgpipe-replay``: where the record came from and
whether to force it, signed by the operator's token over that marker and the record.
Ingest checks the record's own authority as if it were new, and the operator's right to
replay for the job's tenant: what was refused stays refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from pipeline.errors import InvalidRequest
from pipeline.group import GROUP_HEADER, GroupKey
from pipeline.models import loads_bounded
from pipeline.tenancy import ANYONE, AUTH_HEADER, Principal, Tenancy, header_text

REPLAY_HEADER = "imgpipe-replay"
_VERSION = "v1"
#: Longest replay header a marker may have (its JSON is a handful of short fields).
MAX_MARKER_BYTES = 512


@dataclass(frozen=True)
class ReplayMarker:
    """An operator's signed instruction to replay one record."""

    operator: Principal
    origin: dict[str, Any]  # topic, partition, offset, at
    force: bool = False


@dataclass(frozen=True)
class EventAuthority:
    """What an ingest event may do: the rights of its sender (or of its admitted job, for
    one of our own records), and the replay instruction it carries, if any."""

    sender: Principal
    internal: bool = False
    replay: ReplayMarker | None = None


#: The rights of a record the group attests: its job was admitted; it keeps the tenant
#: and priority it names (ingest parses them from the record itself).
ADMITTED = Principal("default", admin=True)


class Authority:
    """Judges the authority of ingest events (tokens and the group key)."""

    def __init__(self, tenancy: Tenancy, group: GroupKey) -> None:
        self.tenancy = tenancy
        self.group = group

    def judge(self, headers: Any, value: bytes | None) -> EventAuthority:
        """The event's authority; InvalidRequest ``unauthenticated`` if it has none."""
        if header_text(headers, AUTH_HEADER) is None and self.group.attested(headers, value):
            sender, internal = ADMITTED, True
        else:
            sender, internal = self.tenancy.event_sender(headers, value), False
        return EventAuthority(sender, internal, self.replay_marker(headers, value))

    def replay_marker(self, headers: Any, value: bytes | None) -> ReplayMarker | None:
        """The event's replay instruction (None if it carries none); InvalidRequest
        ``unauthenticated`` if its signature does not hold."""
        text = header_text(headers, REPLAY_HEADER, limit=MAX_MARKER_BYTES)
        if text is None:
            return None
        parts = text.split(" ", 3)
        if len(parts) != 4 or parts[0] != _VERSION or value is None:
            raise InvalidRequest("the event's imgpipe-replay header is malformed",
                                 "unauthenticated")
        _, key_id, mac, marker = parts
        operator = self.tenancy.principal_of_key(key_id) if self.tenancy.enabled else ANYONE
        if operator is None or (self.tenancy.enabled and not hmac.compare_digest(
                mac, _marker_mac(operator.secret, marker, value))):
            raise InvalidRequest("the event's imgpipe-replay signature does not hold",
                                 "unauthenticated")
        fields = loads_bounded(marker, max_bytes=MAX_MARKER_BYTES, max_depth=2)
        if not isinstance(fields, dict):
            raise InvalidRequest("the imgpipe-replay marker is not an object", "unauthenticated")
        origin = {key: fields[key] for key in ("topic", "partition", "offset", "at")
                  if isinstance(fields.get(key), str | int | float)
                  and not isinstance(fields.get(key), bool)}
        return ReplayMarker(operator, origin, fields.get("force") is True)


def authority_headers(headers: Any) -> list[tuple[str, bytes]]:
    """The headers that carry an event's authority (signature, attestation, replay
    marker), to keep on a copy of it sent on unchanged."""
    kept = []
    for name, limit in ((AUTH_HEADER, 256), (GROUP_HEADER, 256),
                        (REPLAY_HEADER, MAX_MARKER_BYTES)):
        text = header_text(headers, name, limit=limit)
        if text is not None:
            kept.append((name, text.encode()))
    return kept


def replay_header(operator: Principal, origin: dict[str, Any], force: bool,
                  value: bytes) -> tuple[str, bytes]:
    """The ``imgpipe-replay`` header an operator adds to a record it replays (unsigned
    in an open pipeline, where the operator has no token)."""
    marker = json.dumps({**origin, "force": force}, separators=(",", ":"))
    key_id, mac = ((operator.key_id, _marker_mac(operator.secret, marker, value))
                   if operator.secret else ("-", "-"))
    return REPLAY_HEADER, f"{_VERSION} {key_id} {mac} {marker}".encode()


def _marker_mac(secret: bytes, marker: str, value: bytes) -> str:
    message = marker.encode() + b"\n" + hashlib.sha256(value).digest()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
