"""The worker group's own credential: what workers prove to each other.

Two things carry it, both an HMAC-SHA256 keyed by a secret every worker shares and no
tenant holds (IMGPIPE_GROUP_KEY, or else one derived from every configured token):

- **Attested records.** Every record an agent writes to our topics (work, retry, dead
  letters, results) carries ``imgpipe-group: v1 <mac of the value>``. Such a record was
  written by a worker after the job in it was admitted, so it keeps the authority it
  was admitted with when replay sends it back to ingest unchanged (pipeline/authority.py).
- **Peer requests.** A worker asking another for its part of a list or stats signs the
  request (method, the peer's own address, path, time, the caller's tenant and rights,
  the body) instead of passing on the caller's bearer token, and asks only peers whose
  address the group trusts (IMGPIPE_PEER_HOSTS).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Iterable
from typing import Any

from pipeline.models import PRIORITIES, TENANT_RE
from pipeline.tenancy import Principal, header_text

GROUP_HEADER = "imgpipe-group"
PEER_HEADER = "X-Imgpipe-Peer"
_VERSION = "v1"
#: How old (or how far ahead of this clock) a signed peer request may be, in seconds.
PEER_REQUEST_MAX_AGE = 30.0


class GroupKey:
    """The group secret, and what it signs and checks."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def derive(cls, group_key: str, token_digests: Iterable[str]) -> GroupKey:
        """IMGPIPE_GROUP_KEY if set, else a key derived from every configured token's
        digest (all workers read the same tokens; no single token yields it)."""
        if group_key:
            return cls(group_key.encode())
        material = "\n".join(sorted(token_digests)).encode()
        return cls(hmac.new(b"imgpipe-group-v1", material, hashlib.sha256).digest())

    def _mac(self, *parts: bytes) -> str:
        return hmac.new(self._secret, b"\n".join(parts), hashlib.sha256).hexdigest()

    def attest(self, value: bytes) -> list[tuple[str, bytes]]:
        """The header that marks ``value`` as written by a worker of this group."""
        return [(GROUP_HEADER, f"{_VERSION} {self._mac(b'record', value)}".encode())]

    def attested(self, headers: Any, value: bytes | None) -> bool:
        """True if ``value`` carries this group's attestation."""
        text = header_text(headers, GROUP_HEADER)
        if not text or value is None or not text.startswith(_VERSION + " "):
            return False
        return hmac.compare_digest(text[len(_VERSION) + 1:], self._mac(b"record", value))

    def peer_headers(self, method: str, peer: tuple[str, int], path_qs: str,
                     principal: Principal, body: bytes = b"") -> dict[str, str]:
        """Headers that let the worker at ``peer`` (host, port) answer as ``principal``
        would be answered, for this one request, for a short while."""
        now = f"{time.time():.3f}"
        rights = _rights(principal)
        mac = self._mac(method.upper().encode(), _ident(peer), path_qs.encode(),
                        now.encode(), rights.encode(), hashlib.sha256(body).digest())
        return {PEER_HEADER: f"{_VERSION} {now} {rights} {mac}"}

    def peer_principal(self, value: str, method: str, me: tuple[str, int], path_qs: str,
                       body: bytes = b"", now: float | None = None) -> Principal | None:
        """The principal a signed peer request speaks for, if it was signed by this
        group for this worker (``me``) within PEER_REQUEST_MAX_AGE; else None."""
        parts = value.split(" ")
        if len(parts) != 4 or parts[0] != _VERSION:
            return None
        _, stamp, rights, mac = parts
        try:
            age = abs((time.time() if now is None else now) - float(stamp))
        except ValueError:
            return None
        expected = self._mac(method.upper().encode(), _ident(me), path_qs.encode(),
                             stamp.encode(), rights.encode(), hashlib.sha256(body).digest())
        if not age <= PEER_REQUEST_MAX_AGE or not hmac.compare_digest(mac, expected):
            return None
        return _principal_of(rights)


def _ident(peer: tuple[str, int]) -> bytes:
    return f"{peer[0].lower()}:{peer[1]}".encode()


def _rights(principal: Principal) -> str:
    return (f"{principal.tenant};{int(principal.admin)};"
            f"{','.join(p for p in PRIORITIES if p in principal.priorities)}")


def _principal_of(rights: str) -> Principal | None:
    tenant, _, rest = rights.partition(";")
    admin, _, priorities = rest.partition(";")
    chosen = frozenset(p for p in priorities.split(",") if p)
    if not TENANT_RE.match(tenant) or admin not in ("0", "1") or not chosen <= set(PRIORITIES):
        return None
    return Principal(tenant, admin == "1", chosen)


class PeerHosts:
    """The addresses the group trusts as peers: networks (CIDR) and host-name patterns."""

    def __init__(self, spec: str) -> None:
        self.networks = []
        self.patterns = []
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.patterns.append(item.lower())

    def trusts(self, host: str) -> bool:
        """True if a peer at ``host`` (an address or a name) may be asked."""
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return any(fnmatch.fnmatchcase(host.lower(), p) for p in self.patterns)
        return any(address in network for network in self.networks)
