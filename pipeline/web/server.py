"""The worker's web server: Faust's aiohttp driver with our auth, limits and dashboard.

- The dashboard is served at ``/`` (Faust's placeholder index there is dropped) and its
  files under ``/static/``.
- With IMGPIPE_API_TOKEN set, every path but the health probes, ``/metrics`` and the
  dashboard's own files needs ``Authorization: Bearer <token>`` — Faust's ``/table/`` and
  ``/router/`` pages included. Peers forward the header when they route a request.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from faust.web.drivers.aiohttp import Web as AiohttpWeb

STATIC_DIR = Path(__file__).parent / "static"
#: Paths anyone may GET: orchestrator probes, the Prometheus scrape, the dashboard shell
#: (its data calls carry the token).
OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics"})
OPEN_PREFIXES = ("/static/",)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, content_type="application/json",
                        text=json.dumps({"error": message}))


def token_middleware(token: str) -> Any:
    """aiohttp middleware: 401 without the bearer token, except on open paths."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
            return await handler(request)
        supplied = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(supplied, expected):
            return _error(401, "missing or wrong bearer token (Authorization: Bearer ...)")
        return await handler(request)

    return require_token


class PipelineWeb(AiohttpWeb):
    """Faust's aiohttp web driver, configured from the app's pipeline settings."""

    production_blueprints: list = []  # "/" is our dashboard, not Faust's {"status": "OK"}

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        settings = app.pipeline_settings
        if settings.api_token:
            self.web_app.middlewares.append(token_middleware(settings.api_token))
        self.web_app.router.add_static("/static/", STATIC_DIR, append_version=False)
        self.web_app.router.add_get("/", self._dashboard)

    async def _dashboard(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html",
                                headers={"Cache-Control": "no-cache"})
