"""Near-duplicate search: which earlier uploads of the caller's tenant look like a job's
source (pHash within a Hamming distance), answered from the metadata store."""

from __future__ import annotations

from faust.web import Request, Response, View

from pipeline.metadata.base import DEFAULT_DISTANCE, MAX_DISTANCE, MAX_SIMILAR
from pipeline.web.jobs import job_state, retry_after


class SimilarJobs(View):
    """Earlier uploads of the caller's tenant that look like this job's source: pHash
    within ``max_distance`` bits (default DEFAULT_DISTANCE), from the metadata store."""

    async def get(self, request: Request, job_id: str) -> Response:
        try:
            distance = _bounded_int(request.query.get("max_distance"), DEFAULT_DISTANCE,
                                    MAX_DISTANCE, "max_distance")
            limit = _bounded_int(request.query.get("limit"), 20, MAX_SIMILAR, "limit")
        except ValueError as exc:
            return self.json({"error": str(exc), "code": "bad_query"}, status=400)
        status, state = await job_state(self.app, request, job_id)
        if status != 200:
            return self.json(state, status=status, headers=retry_after(status))
        if not state.get("phash"):
            return self.json({"error": f"job {state['job_id']!r} has no fingerprint yet "
                                       f"(status {state['status']})", "code": "no_fingerprint"},
                             status=409)
        store = self.app.runtime.metadata
        found = await self.app.runtime.io.run(store.similar, state.get("tenant") or "",
                                              state["phash"], distance, limit,
                                              state["job_id"])
        views = self.app.job_states.record_view
        return self.json({"job_id": state["job_id"], "phash": state["phash"],
                          "max_distance": distance,
                          "similar": [{**views(record), "distance": d} for record, d in found]})


def _bounded_int(text: str | None, default: int, largest: int, name: str) -> int:
    if text is None:
        return default
    if not text.isdigit() or int(text) > largest:
        raise ValueError(f"{name} must be a whole number from 0 to {largest}")
    return int(text)


ROUTES = {"/api/jobs/{job_id}/similar": SimilarJobs}
