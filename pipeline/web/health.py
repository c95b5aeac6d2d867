"""Probes for orchestrators and the Prometheus scrape (no auth on these)."""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


class Health(View):
    """Liveness: the worker's event loop answers."""

    async def get(self, request: Request) -> Response:
        return self.json({"status": "ok"})


def not_ready(app: Any) -> list[str]:
    """What this worker still waits for before its tables answer for its partitions
    (empty: ready)."""
    waiting = []
    if app.rebalancing:
        waiting.append("rebalancing")
    if app.in_recovery or not app.tables.recovery.completed.is_set():
        waiting.append("recovering tables")
    if not app.consumer.assignment():
        waiting.append("no partitions assigned")
    return waiting


class Ready(View):
    """Readiness: partitions assigned, tables recovered, not rebalancing. 503 otherwise
    (the server itself only starts after the first recovery)."""

    async def get(self, request: Request) -> Response:
        app = self.app
        waiting = not_ready(app)
        if waiting:
            return self.json({"ready": False, "waiting_for": waiting}, status=503)
        return self.json({"ready": True, "partitions": len(app.consumer.assignment())})


class Metrics(View):
    async def get(self, request: Request) -> Response:
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


ROUTES = {"/healthz": Health, "/readyz": Ready, "/metrics": Metrics}
