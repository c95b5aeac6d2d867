"""POST /api/job-states: the states of many jobs in one call (``submit --wait``).

Polling one request per job per pass made a client waiting on 500 jobs cost the workers
500 table lookups *and* 500 HTTP exchanges (most of them forwarded to the key's owner)
every pass. Here the answering worker groups the ids by owner: its own come from its
table, every other owner is asked once for all of its ids.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.web import Request, Response, View

from pipeline.errors import InvalidRequest
from pipeline.models import Status, loads_bounded
from pipeline.web.jobs import MAX_FORM_BYTES, load_changelog_metadata, scoped_job_id
from pipeline.web.peers import fetch_json, forwarded, is_self

#: Most job ids one call may ask for.
MAX_IDS = 1000


def requested_ids(body: Any) -> list[str]:
    """The ``job_ids`` of a request body, checked: a list of at most MAX_IDS strings."""
    ids = body.get("job_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidRequest('the body must be {"job_ids": ["...", ...]}', "bad_param")
    if len(ids) > MAX_IDS:
        raise InvalidRequest(f"at most {MAX_IDS} job ids per call, got {len(ids)}",
                             "bad_param")
    return ids


def brief_view(state: dict[str, Any]) -> dict[str, Any]:
    """A job still in flight as a poller needs it: its id, status and last change (the
    whole state, history and all, comes once the job is finished)."""
    return {"job_id": state["job_id"], "status": state["status"],
            "updated_at": state.get("updated_at")}


async def job_states(app: Any, request: Request, ids: list[str], local_only: bool,
                     brief: bool = False) -> dict[str, Any]:
    """``{"jobs": {id: state or None}, "later": [ids to ask again]}`` for the ids as the
    caller wrote them; jobs the caller may not see are None, like unknown ones. With
    ``brief``, jobs in flight come as brief_view."""
    await load_changelog_metadata(app)
    jobs: dict[str, Any] = {}
    later: list[str] = []
    by_owner: dict[Any, list[tuple[str, str]]] = {}
    table = app.job_states
    for asked in ids:
        scoped = scoped_job_id(request, asked)
        if scoped is None:
            jobs[asked] = None
            continue
        try:
            owner = app.router.key_store(table.name, scoped.encode())
        except KeyError:  # partitions are being assigned
            later.append(asked)
            continue
        if is_self(app, owner):
            state = table.get(scoped)
            if state is None:
                jobs[asked] = None
            elif brief and state["status"] not in Status.TERMINAL:
                jobs[asked] = brief_view(state)
            else:
                jobs[asked] = table.public_view(state)
        elif local_only:  # the asker's view of the owners is older than ours
            later.append(asked)
        else:
            by_owner.setdefault(owner, []).append((asked, scoped))
    headers = forwarded(request.headers)

    async def ask(owner: Any, pairs: list[tuple[str, str]]) -> None:
        query = {"scope": "local", **({"brief": "1"} if brief else {})}
        status, body = await fetch_json(
            app, owner.with_path("/api/job-states").with_query(query),
            headers, {"job_ids": [scoped for _, scoped in pairs]})
        if status != 200:  # the owner died or is moving: ask again shortly
            later.extend(asked for asked, _ in pairs)
            return
        answered, again = body.get("jobs", {}), set(body.get("later", []))
        for asked, scoped in pairs:
            if scoped in again or scoped not in answered:
                later.append(asked)
            else:
                jobs[asked] = answered[scoped]

    await asyncio.gather(*(ask(owner, pairs) for owner, pairs in by_owner.items()))
    return {"jobs": jobs, "later": later}


class JobStates(View):
    async def post(self, request: Request) -> Response:
        try:
            body = loads_bounded(await request.content.read(MAX_FORM_BYTES + 1),
                                 max_bytes=MAX_FORM_BYTES)
            ids = requested_ids(body)
        except InvalidRequest as exc:
            return self.json({"error": exc.message, "code": exc.code}, status=400)
        local_only = request.query.get("scope") == "local"
        brief = request.query.get("brief") == "1"
        return self.json(await job_states(self.app, request, ids, local_only, brief))


ROUTES = {"/api/job-states": JobStates}
