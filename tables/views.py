"""HTTP views of the tables, served by every worker's Faust web server.

GET /api/jobs/{job_id} is routed (table_route) to the worker that owns the key, so it
answers the same from any worker behind a load balancer.
"""

from __future__ import annotations

import hmac

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.app import app, settings
from tables.jobs import jobs, local_states
from tables.transitions import public_view


def unauthorized(view: View, request: Request) -> Response | None:
    """A 401 response unless the request carries IMGPIPE_API_TOKEN (when one is set)."""
    if not settings.api_token:
        return None
    supplied = request.headers.get("Authorization", "")
    if hmac.compare_digest(supplied.encode(), f"Bearer {settings.api_token}".encode()):
        return None
    return view.json({"error": "missing or wrong bearer token (Authorization: Bearer ...)"},
                     status=401)


@app.page("/healthz")
class Health(View):
    async def get(self, request: Request) -> Response:
        return self.json({"status": "ok"})


@app.page("/metrics")
class Metrics(View):
    async def get(self, request: Request) -> Response:
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


@app.page("/api/jobs")
class JobList(View):
    """Jobs held by this worker's table partitions, most recently updated first."""

    async def get(self, request: Request) -> Response:
        if denied := unauthorized(self, request):
            return denied
        status = request.query.get("status")
        try:
            limit = max(1, min(1000, int(request.query.get("limit", "100"))))
        except ValueError:
            return self.json({"error": "limit must be an integer"}, status=400)
        states = [s for s in local_states() if not status or s["status"] == status]
        states.sort(key=lambda s: s.get("updated_at") or 0, reverse=True)
        return self.json({"jobs": [public_view(s) for s in states[:limit]]})


async def _load_changelog_metadata() -> None:
    """Routing hashes the key with the producer's metadata for the changelog topic,
    which a worker that has not yet written to it lacks: fetch it first."""
    producer = app.producer._ensure_producer()
    await producer.partitions_for(jobs.changelog_topic.get_topic_name())


@app.page("/api/jobs/{job_id}")
class JobDetail(View):
    async def get(self, request: Request, job_id: str) -> Response:
        if denied := unauthorized(self, request):
            return denied
        await _load_changelog_metadata()
        return await self.get_from_owner(request, job_id=job_id)

    @app.table_route(table=jobs, match_info="job_id")
    async def get_from_owner(self, request: Request, job_id: str) -> Response:
        state = jobs.get(job_id)
        if state is None:
            return self.json({"error": f"no job {job_id!r}", "job_id": job_id}, status=404)
        return self.json(public_view(state))
