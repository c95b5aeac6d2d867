"""The worker's web server: Faust's aiohttp driver with our auth, limits and dashboard.

- The dashboard is served at ``/`` (Faust's placeholder index there is dropped) and its
  files under ``/static/``.
- Every request but the health probes, ``/metrics`` and the dashboard's own files is
  authenticated (pipeline.tenancy): the caller's Principal is ``request["principal"]``.
  With tokens configured, ``/api/*`` needs a valid ``Authorization: Bearer <token>`` and
  everything else (Faust's ``/table/`` and ``/router/`` pages) an admin token. Peers
  ask each other with the group's signature instead (pipeline/group.py).
- Every error answer is JSON ``{"error": ..., "code": ...}``, never a traceback or HTML.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from pipeline.errors import InvalidRequest
from pipeline.group import PEER_HEADER, GroupKey
from pipeline.tenancy import Principal, Tenancy, check_exposure
from pipeline.web.bodies import BodyTooLarge, read_body
from pipeline.web.peers import own_ident

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
#: Paths anyone may GET: orchestrator probes, the Prometheus scrape, the dashboard shell
#: (its data calls carry the token).
OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics"})
OPEN_PREFIXES = ("/static/",)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_json(status: int, message: str, code: str, **extra: Any) -> web.Response:
    """The one shape of every error answer."""
    return web.Response(status=status, content_type="application/json",
                        text=json.dumps({"error": message, "code": code, **extra}))


_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp middleware: router and handler failures answer JSON, without details of
    the server (an unexpected exception is logged here and answered 500)."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_json(exc.status, exc.reason, _CODES.get(exc.status, "http_error"))
    except BodyTooLarge as exc:  # from read_body, wherever a handler let it through
        return error_json(413, exc.message, exc.code)
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return error_json(500, "internal error; the worker's log has the details",
                          "internal_error")
    if response.status >= 400 and response.content_type != "application/json":
        # Faust's own pages and aiohttp's defaults answer text: keep one error shape.
        status = response.status
        return error_json(status, response.reason or "error", _CODES.get(status, "http_error"))
    return response


#: Largest body a peer request carries (a job-states lookup of 500 ids).
MAX_PEER_BODY = 256 * 1024


def auth_middleware(tenancy: Tenancy, group: GroupKey | None = None,
                    me: Callable[[], tuple[str, int]] | None = None) -> Any:
    """aiohttp middleware: names the caller (``request["principal"]``); 401 without a
    known token, 403 for an admin page without an admin token; open paths pass. A peer
    worker's request signed with the group key (pipeline/group.py) for this worker
    (``me``: its host and port) speaks for the principal it names, on /api/ only."""

    async def peer(request: web.Request, signed: str) -> Principal | None:
        if group is None or me is None or not request.path.startswith("/api/"):
            return None
        try:
            body = await read_body(request, MAX_PEER_BODY)
        except InvalidRequest:
            return None
        return group.peer_principal(signed, request.method, me(), request.raw_path, body)

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
            return await handler(request)
        signed = request.headers.get(PEER_HEADER)
        if signed is not None and tenancy.enabled:
            principal = await peer(request, signed)
            if principal is None:
                return error_json(401, "the peer request's signature does not hold",
                                  "unauthenticated")
            request["principal"] = principal
            return await handler(request)
        principal = tenancy.authenticate(request.headers.get("Authorization"))
        if principal is None:
            return error_json(401, "missing or wrong bearer token (Authorization: Bearer ...)",
                              "unauthenticated")
        if not request.path.startswith("/api/") and not principal.admin:
            return error_json(403, "this page needs an admin token", "forbidden")
        request["principal"] = principal
        return await handler(request)

    return authenticate


class PipelineWeb(AiohttpWeb):
    """Faust's aiohttp web driver, configured from the app's pipeline settings."""

    production_blueprints: list = []  # "/" is our dashboard, not Faust's {"status": "OK"}

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        settings = app.pipeline_settings
        tenancy = app.runtime.tenancy  # the tokens the rest of the worker reads
        check_exposure(settings.web_bind, tenancy, settings.allow_open_api)
        self.web_app.middlewares.append(json_errors)
        self.web_app.middlewares.append(auth_middleware(
            tenancy, app.runtime.group, lambda: own_ident(app)))
        self.web_app.router.add_static("/static/", STATIC_DIR, append_version=False)
        self.web_app.router.add_get("/", self._dashboard)

    async def _dashboard(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html",
                                headers={"Cache-Control": "no-cache"})
