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
from yarl import URL

from pipeline.errors import InvalidRequest
from pipeline.models import Status, loads_bounded
from pipeline.web.answers import http_status, principal_of, without_folders
from pipeline.web.bodies import read_body
from pipeline.web.jobs import MAX_FORM_BYTES, load_changelog_metadata, scoped_job_id
from pipeline.web.peers import fetch_json, is_self

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


#: How a job-states answer shows each job: its whole state; jobs in flight as
#: ``brief_view``; or only finished jobs (in flight and unknown ones left out, which
#: keeps a poller's answers as small as what changed).
WHOLE, BRIEF, FINISHED = "whole", "brief", "finished"


def brief_view(state: dict[str, Any]) -> dict[str, Any]:
    """A job still in flight as a poller needs it: its id, status and last change (the
    whole state, history and all, comes once the job is finished)."""
    return {"job_id": state["job_id"], "status": state["status"],
            "updated_at": state.get("updated_at")}


def _shown(state: dict[str, Any] | None, table: Any, view: str) -> Any:
    """How ``view`` shows ``state``; ``_LEFT_OUT`` if not at all."""
    if state is None:
        return _LEFT_OUT if view == FINISHED else None
    if state["status"] in Status.TERMINAL:
        return table.public_view(state)
    if view == FINISHED:
        return _LEFT_OUT
    return brief_view(state) if view == BRIEF else table.public_view(state)


_LEFT_OUT = object()


def owners_by_partition(app: Any) -> dict[int, str]:
    """partition of the jobs table -> URL of the worker holding it (Faust's current
    assignment; a partition being moved is missing)."""
    topic = app.job_states.changelog_topic_name()
    return {partition: url
            for url, topics in app.assignor.changelog_distribution.items()
            for partition in topics.get(topic, ())}


async def job_states(app: Any, request: Request, ids: list[str], local_only: bool,
                     view: str = WHOLE) -> dict[str, Any]:
    """``{"jobs": {id: state or None}, "later": [ids to ask again]}`` for the ids as the
    caller wrote them; jobs the caller may not see are None, like unknown ones. ``view``
    says how jobs are shown (WHOLE, BRIEF, FINISHED)."""
    await load_changelog_metadata(app)
    jobs: dict[str, Any] = {}
    later: list[str] = []
    table = app.job_states
    owners = owners_by_partition(app)
    by_owner: dict[str, list[tuple[str, str]]] = {}
    for asked in ids:
        scoped = scoped_job_id(request, asked)
        if scoped is None:
            if view != FINISHED:
                jobs[asked] = None
            continue
        owner = owners.get(table.partition_of(scoped))
        if owner is None:  # partitions are being assigned
            later.append(asked)
        else:
            by_owner.setdefault(owner, []).append((asked, scoped))
    caller = principal_of(request)

    async def ask(owner: str, pairs: list[tuple[str, str]]) -> None:
        if is_self(app, owner):
            for asked, scoped in pairs:
                if (shown := _shown(table.get(scoped), table, view)) is not _LEFT_OUT:
                    jobs[asked] = without_folders(app, shown) if shown else shown
            return
        if local_only:  # the asker's view of the owners is older than ours
            later.extend(asked for asked, _ in pairs)
            return
        status, body = await fetch_json(
            app, URL(owner).with_path("/api/job-states").with_query(
                {"scope": "local", "view": view}),
            caller, {"job_ids": [scoped for _, scoped in pairs]})
        if status != 200:  # the owner died or is moving: ask again shortly
            later.extend(asked for asked, _ in pairs)
            return
        answered, again = body.get("jobs", {}), set(body.get("later", []))
        for asked, scoped in pairs:
            if scoped in again or (scoped not in answered and view != FINISHED):
                later.append(asked)
            elif scoped in answered:
                jobs[asked] = answered[scoped]

    await asyncio.gather(*(ask(owner, pairs) for owner, pairs in by_owner.items()))
    return {"jobs": jobs, "later": later}


def requested_view(query: Any) -> str:
    """``?view=whole|brief|finished`` (``?brief=1``: the older spelling of brief)."""
    view = query.get("view") or (BRIEF if query.get("brief") == "1" else WHOLE)
    if view not in (WHOLE, BRIEF, FINISHED):
        raise InvalidRequest(f"view must be {WHOLE}, {BRIEF} or {FINISHED}, not {view!r}",
                             "bad_param")
    return view


class JobStates(View):
    async def post(self, request: Request) -> Response:
        try:
            body = loads_bounded(await read_body(request, MAX_FORM_BYTES),
                                 max_bytes=MAX_FORM_BYTES)
            ids = requested_ids(body)
            view = requested_view(request.query)
        except InvalidRequest as exc:
            return self.json({"error": exc.message, "code": exc.code},
                             status=http_status(exc))
        local_only = request.query.get("scope") == "local"
        return self.json(await job_states(self.app, request, ids, local_only, view))


ROUTES = {"/api/job-states": JobStates}
