"""Tenants and their tokens: who may submit, read and force which jobs.

A token is bound to one tenant, the priorities that tenant may ask for and whether it is
an admin (admins see and may act for every tenant). Tokens come from
IMGPIPE_API_TOKENS_FILE (JSON, below) and IMGPIPE_API_TOKEN (one admin token, tenant
"default"); with neither, the pipeline is open and every caller is an admin.

    {"tokens": [{"token": "...", "tenant": "acme", "priorities": ["normal", "low"],
                 "admin": false, "source_roots": ["gs://acme-photos/"]}]}

``source_roots`` (optional) are roots outside the object store that this tenant's jobs may
read (pipeline/jobs/sources.py).

Job ids are qualified by tenant (pipeline.models.qualify_job_id), so two tenants can
never address the same job, outputs, metadata row or state. Over HTTP the bearer token
names the caller; on the ingest topic an event carries an ``imgpipe-auth`` header, an
HMAC-SHA256 of its value keyed by the sender's token (the token itself never travels),
and an event without a valid one is dead-lettered when tokens are configured.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, InvalidRequest
from pipeline.models import DEFAULT_TENANT, PRIORITIES, TENANT_RE, qualify_job_id, tenant_of

AUTH_HEADER = "imgpipe-auth"
MIN_TOKEN_LENGTH = 12
_VERSION = "v1"
_ENTRY_KEYS = frozenset({"token", "tenant", "priorities", "admin", "source_roots"})


class NotAuthorized(InvalidRequest):
    """The caller's token does not give the right it needs (HTTP 403)."""

    default_code = "forbidden"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant, its allowed priorities, whether it is an admin."""

    tenant: str
    admin: bool = False
    priorities: frozenset[str] = frozenset(PRIORITIES)
    secret: bytes = field(default=b"", repr=False)
    source_roots: tuple[str, ...] = ()

    @property
    def key_id(self) -> str:
        """Public name of the token (a prefix of its SHA-256), carried in signatures."""
        return hashlib.sha256(self.secret).hexdigest()[:16]

    def may_see(self, job_id: str) -> bool:
        """True if this caller may read (or force) the job."""
        return self.admin or tenant_of(job_id) == self.tenant

    def may_act_for(self, tenant: str) -> bool:
        return self.admin or tenant == self.tenant

    def scope(self, job_id: str) -> str | None:
        """The qualified id a caller means by ``job_id`` (its own tenant's when bare),
        None if it names a job the caller may not see."""
        if ":" not in job_id and not self.admin:
            job_id = qualify_job_id(self.tenant, job_id)
        return job_id if self.may_see(job_id) else None

    def sign(self, value: bytes) -> list[tuple[str, bytes]]:
        """Kafka headers proving this caller sent ``value`` (none in an open pipeline)."""
        if not self.secret:
            return []
        mac = hmac.new(self.secret, value, hashlib.sha256).hexdigest()
        return [(AUTH_HEADER, f"{_VERSION} {self.key_id} {mac}".encode())]


#: The caller of an open pipeline (no tokens configured): may do everything.
ANYONE = Principal(DEFAULT_TENANT, admin=True)


class Tenancy:
    """The configured tokens; authenticates HTTP callers and signed ingest events."""

    def __init__(self, principals: Iterable[Principal] = ()) -> None:
        self._by_digest = {_digest(p.secret.decode()): p for p in principals}
        self._by_key_id = {p.key_id: p for p in self._by_digest.values()}

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def digests(self) -> list[str]:
        """The SHA-256 of every configured token (what the group key derives from)."""
        return list(self._by_digest)

    def principal_of_key(self, key_id: str) -> Principal | None:
        """The principal whose token has public name ``key_id``, if any."""
        return self._by_key_id.get(key_id)

    def source_roots(self) -> dict[str, list[str]]:
        """The roots each tenant's tokens grant its jobs (tokens file ``source_roots``)."""
        roots: dict[str, list[str]] = {}
        for principal in self._by_digest.values():
            if principal.source_roots:
                roots.setdefault(principal.tenant, []).extend(principal.source_roots)
        return roots

    @classmethod
    def from_settings(cls, api_token: str, tokens_file: str) -> Tenancy:
        """The tokens of IMGPIPE_API_TOKEN (admin) and IMGPIPE_API_TOKENS_FILE."""
        principals = []
        if api_token:
            principals.append(_principal({"token": api_token, "tenant": DEFAULT_TENANT,
                                          "admin": True}, "IMGPIPE_API_TOKEN"))
        if tokens_file:
            principals += load_tokens_file(Path(tokens_file))
        digests = [_digest(p.secret.decode()) for p in principals]
        if len(set(digests)) != len(digests):
            raise ConfigError("the same token is given twice (IMGPIPE_API_TOKEN and "
                              "IMGPIPE_API_TOKENS_FILE): give each token once")
        return cls(principals)

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The caller of an ``Authorization: Bearer <token>`` header; None if it names no
        configured token (ANYONE when the pipeline is open)."""
        if not self.enabled:
            return ANYONE
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return self._by_digest.get(_digest(token.strip()))

    def event_sender(self, headers: Any, value: bytes | None) -> Principal:
        """The principal that signed an ingest event; InvalidRequest ``unauthenticated``
        when tokens are configured and the signature is missing or wrong."""
        if not self.enabled:
            return ANYONE
        signature = header_text(headers, AUTH_HEADER)
        version, key_id, mac = (signature or "").split(" ", 2) if signature and \
            signature.count(" ") == 2 else ("", "", "")
        principal = self._by_key_id.get(key_id) if version == _VERSION else None
        if principal is None or value is None:
            raise InvalidRequest("the event carries no valid imgpipe-auth signature (sign "
                                 "it with your API token, docs/api.md#tenants)",
                                 "unauthenticated")
        expected = hmac.new(principal.secret, value, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, mac):
            raise InvalidRequest("the event's imgpipe-auth signature does not match its "
                                 "value", "unauthenticated")
        return principal


def token_principal(api_token: str, tokens_file: str) -> Principal:
    """Who a command-line user acts as: the principal of their IMGPIPE_API_TOKEN (found
    in the tokens file when there is one, else the admin token), ANYONE without one."""
    if not api_token:
        return ANYONE
    if tokens_file:
        found = Tenancy.from_settings("", tokens_file).authenticate(f"Bearer {api_token}")
        if found is not None:
            return found
    return Principal(DEFAULT_TENANT, admin=True, secret=api_token.encode())


def header_text(headers: Any, name: str, limit: int = 256) -> str | None:
    """One header's text from Faust's or aiokafka's headers (a mapping or pairs), cut at
    ``limit`` characters."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key == name and isinstance(value, bytes | str):
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
            return text[:limit]
    return None


def load_tokens_file(path: Path) -> list[Principal]:
    """Principals from a tokens file; ConfigError naming the first problem."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"IMGPIPE_API_TOKENS_FILE: cannot read {path} "
                          f"({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(f"IMGPIPE_API_TOKENS_FILE: {path} is not JSON ({exc})") from None
    entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"IMGPIPE_API_TOKENS_FILE: {path} must hold "
                          '{"tokens": [{"token": ..., "tenant": ...}, ...]}')
    return [_principal(entry, f"IMGPIPE_API_TOKENS_FILE entry {i + 1}")
            for i, entry in enumerate(entries)]


def _principal(entry: Any, where: str) -> Principal:
    if not isinstance(entry, dict) or set(entry) - _ENTRY_KEYS:
        raise ConfigError(f"{where}: an entry has token, tenant, priorities, admin and "
                          "source_roots only")
    token, tenant = entry.get("token"), entry.get("tenant")
    if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH or token != token.strip():
        raise ConfigError(f"{where}: the token must be at least {MIN_TOKEN_LENGTH} "
                          "characters without spaces (make one with `imgpipe token new`)")
    if not isinstance(tenant, str) or not TENANT_RE.match(tenant):
        raise ConfigError(f"{where}: tenant must be 1-64 letters, digits, '.', '_' or '-'")
    priorities = entry.get("priorities", list(PRIORITIES))
    if (not isinstance(priorities, list) or not priorities
            or not set(priorities) <= set(PRIORITIES)):
        raise ConfigError(f"{where}: priorities must be a non-empty list of "
                          f"{', '.join(PRIORITIES)}")
    admin = entry.get("admin", False)
    if not isinstance(admin, bool):
        raise ConfigError(f"{where}: admin must be true or false")
    roots = entry.get("source_roots", [])
    if not isinstance(roots, list) or not all(
            isinstance(r, str) and r.startswith(("gs://", "file://", "/")) for r in roots):
        raise ConfigError(f"{where}: source_roots must be a list of gs://, file:// or "
                          "absolute folder roots")
    return Principal(tenant, admin, frozenset(priorities), token.encode(), tuple(roots))


def new_token_entry(tenant: str, priorities: Iterable[str], admin: bool) -> dict[str, Any]:
    """A tokens-file entry with a fresh random token (``imgpipe token new``)."""
    import secrets

    entry = {"token": secrets.token_urlsafe(32), "tenant": tenant,
             "priorities": [p for p in PRIORITIES if p in set(priorities)], "admin": admin}
    _principal(entry, "the new entry")  # the same checks as the worker's
    return entry


def check_exposure(web_bind: str, tenancy: Tenancy, allow_open_api: bool) -> None:
    """Refuse to serve an API without any token on a non-loopback address (ConfigError),
    unless IMGPIPE_ALLOW_OPEN_API says the network is trusted."""
    import ipaddress

    if tenancy.enabled or allow_open_api:
        return
    try:
        loopback = ipaddress.ip_address(web_bind).is_loopback
    except ValueError:
        loopback = web_bind == "localhost"
    if not loopback:
        raise ConfigError(f"the API would listen on {web_bind} without a token: set "
                          "IMGPIPE_API_TOKEN or IMGPIPE_API_TOKENS_FILE (docs/api.md#tenants), "
                          "or IMGPIPE_ALLOW_OPEN_API=true on a trusted network")
