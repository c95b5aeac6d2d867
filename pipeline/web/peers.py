"""Asking the other workers of the group: cluster-wide answers from any worker.

Each worker holds only its partitions' table state, so list and stats endpoints ask every
member for its local part (``?scope=local``) and merge. Members are known from the
group's assignment (Faust's router). A peer is asked with the group's signature of the
request and the caller's tenant and rights (pipeline/group.py), never with the caller's
bearer token, and only at an address the group trusts (IMGPIPE_PEER_HOSTS); a member
elsewhere is reported as an error of the merged answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from yarl import URL

from pipeline.tenancy import Principal

log = logging.getLogger(__name__)
PEER_TIMEOUT = 5.0


def _ident(url: URL | str) -> tuple[str, int]:
    url = URL(str(url))
    return url.host or "", url.port or 80


def member_urls(app: Any) -> list[URL]:
    """Web URLs of every worker in the group's current assignment (this one included)."""
    hosts = {str(host) for host in app.router.tables_metadata()}
    hosts.add(str(app.conf.canonical_url))
    return sorted((URL(h) for h in hosts), key=str)


def is_self(app: Any, url: URL | str) -> bool:
    return _ident(url) == _ident(app.conf.canonical_url)


def own_ident(app: Any) -> tuple[str, int]:
    """This worker's (host, port) as its peers address it."""
    return _ident(app.conf.canonical_url)


async def fetch_json(app: Any, url: URL, caller: Principal,
                     payload: Any = None) -> tuple[int, Any]:
    """GET ``url`` from a peer (POST ``payload`` as JSON, if given) on behalf of
    ``caller``: (status, decoded JSON), or (502, error) if it is unreachable or not at an
    address the group trusts."""
    if not app.runtime.peer_hosts.trusts(url.host or ""):
        log.warning("not asking %s:%s: not in IMGPIPE_PEER_HOSTS", url.host, url.port)
        return 502, {"error": f"worker {url.host}:{url.port} is not at an address the group "
                              "trusts (IMGPIPE_PEER_HOSTS)", "code": "peer_untrusted"}
    method = "GET" if payload is None else "POST"
    body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    headers = app.runtime.group.peer_headers(method, _ident(url), url.raw_path_qs, caller,
                                             body)
    if payload is not None:
        headers["Content-Type"] = "application/json"
    try:
        async with app.http_client.request(method, url, headers=headers,
                                           data=body if payload is not None else None,
                                           timeout=PEER_TIMEOUT) as reply:
            return reply.status, await reply.json(content_type=None)
    except (TimeoutError, OSError, ValueError, aiohttp.ClientError) as exc:
        log.warning("peer %s did not answer: %r", url, exc)
        return 502, {"error": f"worker {url.host}:{url.port} did not answer "
                              f"({type(exc).__name__})", "code": "peer_unavailable"}


async def gather(app: Any, path: str, query: dict[str, str], caller: Principal,
                 local: Callable[[], Awaitable[Any]]) -> tuple[list[Any], list[str]]:
    """Every member's local answer for ``path`` as ``caller`` may see it: (bodies,
    errors of members that failed). This worker's part comes from ``local()`` directly,
    the others' over HTTP."""

    async def ask(url: URL) -> tuple[int, Any]:
        if is_self(app, url):
            return 200, await local()
        return await fetch_json(app, url.with_path(path).with_query({**query, "scope": "local"}),
                                caller)

    members = member_urls(app)
    answers = await asyncio.gather(*(ask(url) for url in members))
    bodies, errors = [], []
    for url, (status, body) in zip(members, answers, strict=True):
        if status == 200:
            bodies.append(body)
        else:
            errors.append(f"{url.host}:{url.port}: {status} {body.get('error', body)}"
                          if isinstance(body, dict) else f"{url}: {status}")
    return bodies, errors
