"""GET /api/stats (counts, throughput windows, consumer lag) and GET /api/deadletters."""

from __future__ import annotations

from collections import Counter
from typing import Any

from faust.web import Request, Response, View

from pipeline.models import Status
from pipeline.tenancy import ANYONE, Principal
from pipeline.web.answers import principal_of
from pipeline.web.peers import gather


def local_counts(app: Any, caller: Principal = ANYONE) -> dict[str, Any]:
    """Job counts by status and by (status, priority) of this worker's active partitions:
    the caller's jobs (admins: all). Throughput windows count every tenant's jobs, so
    only admins get them."""
    partitions = app.job_states.active_partitions()
    states = [s for s in app.job_states.active_states(partitions) if caller.may_see(s["job_id"])]
    by_status = Counter(s["status"] for s in states)
    by_priority = Counter(f"{s['status']}|{s.get('priority') or 'unknown'}" for s in states)
    url = app.conf.canonical_url
    return {"partitions": sorted(partitions), "by_status": dict(by_status),
            "by_status_priority": dict(by_priority),
            "worker": f"{url.host}:{url.port}",
            "throughput": app.throughput.local_windows(partitions) if caller.admin else []}


def merge_counts(parts: list[dict[str, Any]], window_seconds: int) -> dict[str, Any]:
    """Sum the local answers of several workers (their partitions do not overlap)."""
    by_status: Counter[str] = Counter()
    by_priority: Counter[str] = Counter()
    windows: Counter[tuple[float, str, str]] = Counter()
    partitions: list[int] = []
    for part in parts:
        by_status.update(part["by_status"])
        by_priority.update(part["by_status_priority"])
        partitions += part["partitions"]
        for w in part["throughput"]:
            windows[(w["start"], w["priority"], w["outcome"])] += w["count"]
    nested: dict[str, dict[str, int]] = {}
    for key, count in by_priority.items():
        status, priority = key.split("|")
        nested.setdefault(status, {})[priority] = count
    workers = sorted(({"worker": part.get("worker", "?"), "partitions": part["partitions"],
                       "in_flight": sum(n for status, n in part["by_status"].items()
                                        if status in Status.IN_FLIGHT)} for part in parts),
                     key=lambda w: w["worker"])
    return {"partitions": sorted(partitions), "jobs": dict(by_status), "jobs_by_priority": nested,
            "workers": workers,
            "throughput": {"window_seconds": window_seconds, "windows": [
                {"start": s, "priority": p, "outcome": o, "count": c}
                for (s, p, o), c in sorted(windows.items())]}}


def lag_history(app: Any) -> list[dict[str, Any]]:
    """The probe's samples with topics named as people say them (ingest, high, ...)."""
    names = app.topic_names
    short = {names.ingest: "ingest", names.retry: "retry",
             **{topic: priority for priority, topic in names.priority.items()}}
    return [{"at": sample["at"], "lag": {short.get(t, t): n for t, n in sample["lag"].items()}}
            for sample in app.lag_probe.history.samples]


class Stats(View):
    """Counts per state and priority, finished jobs per window, consumer lag per topic
    and partition, for the whole group (``?scope=local``: this worker's part only)."""

    async def get(self, request: Request) -> Response:
        app = self.app
        caller = principal_of(request)
        if request.query.get("scope") == "local":
            return self.json(local_counts(app, caller))

        async def local() -> dict[str, Any]:
            return local_counts(app, caller)

        bodies, errors = await gather(app, "/api/stats", {}, caller, local)
        answer = merge_counts(bodies, app.throughput.window_seconds)
        if not caller.admin:  # consumer lag and the workers are everyone's traffic
            answer.pop("workers")
            answer["errors"] = errors
            return self.json(answer)
        try:
            lags = await app.lag_probe.measure()
            answer["lag"] = [lag.to_dict() for lag in lags]
            by_topic = {t: sum(x.lag for x in lags if x.topic == t)
                        for t in app.lag_probe.topics}
            answer["lag_by_topic"] = by_topic
            answer["lag_by_priority"] = {p: by_topic[t]
                                         for p, t in app.topic_names.priority.items()}
            answer["lag_history"] = lag_history(app)
        except Exception as exc:  # the broker may be away; counts are still worth showing
            errors.append(f"consumer lag unavailable: {exc!r}")
        answer["errors"] = errors
        return self.json(answer)


def shown_to(caller: Principal, record: dict[str, Any]) -> bool:
    """True if a tenant may see a dead letter: one of its own jobs, and, for an event
    refused at ingest, one its own token sent (not another tenant's forged or
    unauthenticated event naming its job)."""
    job_id = record.get("job_id")
    if not isinstance(job_id, str) or not caller.may_see(job_id):
        return False
    return record.get("stage") != "ingest" or record.get("sender") == caller.tenant


class DeadLetters(View):
    """The newest dead-letter records (``?limit=``, default 50, at most 500)."""

    async def get(self, request: Request) -> Response:
        try:
            limit = max(1, min(500, int(request.query.get("limit", "50"))))
        except ValueError:
            return self.json({"error": "limit must be an integer", "code": "bad_param"},
                             status=400)
        caller = principal_of(request)
        dead_letters = self.app.dead_letters
        if caller.admin:
            records = await dead_letters.recent(limit)
        else:  # a tenant sees the newest dead letters of its own jobs
            records = await dead_letters.recent(limit, lambda r: shown_to(caller, r),
                                                cache_key=caller.tenant)
        return self.json({"topic": self.app.topic_names.dlq, "records": records})


ROUTES = {"/api/stats": Stats, "/api/deadletters": DeadLetters}
