"""Pure state transitions of a job (the values of the jobs table).

A state is a plain dict (JSON in the changelog). Every function returns a new dict and
appends to a bounded history, so the job's path through the pipeline stays visible.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.errors import ImgpipeError
from pipeline.metadata import JobRecord
from pipeline.models import JobRequest, OutputInfo, Status, compact_outputs, expand_outputs
from pipeline.records import ResultRecord

HISTORY_LIMIT = 50
IN_FLIGHT = Status.IN_FLIGHT


def _advance(state: dict[str, Any], status: str, now: float | None, **changes: Any
             ) -> dict[str, Any]:
    now = round(time.time() if now is None else now, 3)  # ms: enough, and shorter records
    entry = {"status": status, "at": now}
    if changes.get("error"):
        entry["error"] = changes["error"]["code"]
    history = [*state.get("history", []), entry][-HISTORY_LIMIT:]
    return {**state, **changes, "status": status, "updated_at": now, "history": history}


def _new(job_id: str, request: JobRequest | None) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "status": Status.RECEIVED,
        "priority": request.priority if request else None,
        "tenant": request.tenant if request else None,
        "source": request.source if request else None,
        "submitted_at": request.submitted_at if request else None,
        "attempts": 0,
        "outputs": [],
        "error": None,
        "history": [],
        "queued_by": None,
        "replays": 0,
    }


def error_dict(error: ImgpipeError) -> dict[str, str]:
    return error.to_dict()


def queued(state: dict[str, Any] | None, request: JobRequest, origin: str,
           now: float | None = None, routed_to: tuple[str, int, int] | None = None
           ) -> dict[str, Any]:
    """Admitted at ingest; ``origin`` (topic/partition/offset) identifies the event."""
    base = _new(request.job_id, request) if state is None else state
    replays = base.get("replays", 0) + (1 if request.replayed_from else 0)
    # name and label only when given: most jobs have neither, and every changelog
    # record of the job would carry the two nulls.
    shown = {key: value for key, value in (("name", request.name), ("label", request.label))
             if value is not None}
    return _advance(base, Status.QUEUED, now, priority=request.priority,
                    tenant=request.tenant, source=request.source,
                    submitted_at=request.submitted_at, attempts=request.attempt,
                    **shown, outputs=[], error=None, queued_by=origin, replays=replays,
                    request=_request_rest(request),
                    routed=list(routed_to) if routed_to else None)


def _request_rest(request: JobRequest) -> dict[str, Any]:
    # What the state does not already hold (job_id, source, priority, tenant,
    # submitted_at, name and label are top-level fields): enough for request_of().
    rest: dict[str, Any] = {"variants": request.variants, "attempt": request.attempt}
    if request.force:
        rest["force"] = True
    if request.replayed_from:
        rest["replayed_from"] = request.replayed_from
    return rest


def request_of(state: dict[str, Any]) -> JobRequest:
    """The request of a job in flight, to send it again (states written before the
    request was kept compact hold it whole)."""
    rest = state["request"]
    if "job_id" in rest:
        return JobRequest(**rest)
    return JobRequest(state["job_id"], state["source"], rest["variants"], state["priority"],
                      state["tenant"], state["submitted_at"], rest.get("attempt", 0),
                      rest.get("force", False), rest.get("replayed_from"),
                      state.get("name"), state.get("label"))


def routed(state: dict[str, Any], topic: str, partition: int, offset: int,
           request: JobRequest | None = None) -> dict[str, Any]:
    """Where the job's work message was delivered (no history entry: not a transition)."""
    extra = {"request": _request_rest(request)} if request else {}
    return {**state, **extra, "routed": [topic, partition, offset]}


def lost_in_transit(state: dict[str, Any], committed: dict[tuple[str, int], int],
                    now: float, stale_after: float) -> bool:
    """True if the job waits on a work message that its consumer group has already
    committed past: that message will never be delivered again, so the job must be
    sent again. Jobs merely queued behind a backlog are below the committed offset
    only once they have been processed, so they never qualify."""
    pointer = state.get("routed")
    if (not pointer or state["status"] not in (Status.QUEUED, Status.PROCESSING)
            or not state.get("request")):
        return False
    topic, partition, offset = pointer
    done_up_to = committed.get((topic, partition))
    return (done_up_to is not None and done_up_to > offset
            and now - state.get("updated_at", now) >= stale_after)


def rejected(state: dict[str, Any] | None, job_id: str, error: ImgpipeError,
             request: JobRequest | None = None, now: float | None = None) -> dict[str, Any]:
    base = _new(job_id, request) if state is None else state
    return _advance(base, Status.REJECTED, now, error=error_dict(error))


def processing(state: dict[str, Any] | None, request: JobRequest,
               now: float | None = None) -> dict[str, Any]:
    """Image work starts: one more run is open until the run's outcome closes it (the
    field is absent once none is). A run still open when the job comes back means the
    worker running it died (unfinished_runs)."""
    base = _new(request.job_id, request) if state is None else state
    return _advance(base, Status.PROCESSING, now, attempts=request.attempt + 1,
                    open=base.get("open", 0) + 1)


def unfinished_runs(state: dict[str, Any] | None) -> int:
    """Runs of the job that started and never reached an outcome: crashes of the worker
    that ran them (however the job came back: redelivery, re-routing, the sweeper)."""
    return int(state.get("open", 0)) if state else 0


def crashed(state: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Count the job's unfinished runs as crashes (history entry CRASHED each)."""
    lost = unfinished_runs(state)
    now = round(time.time() if now is None else now, 3)
    history = [*state.get("history", []), *[{"status": "CRASHED", "at": now}] * lost]
    return {**_finished(state), "crashes": state.get("crashes", 0) + lost,
            "history": history[-HISTORY_LIMIT:], "updated_at": now}


def _finished(state: dict[str, Any]) -> dict[str, Any]:
    # No field at all once no run is open: finished states stay as small as before.
    return {k: v for k, v in state.items() if k != "open"}


def done(state: dict[str, Any], outputs: list[OutputInfo], now: float | None = None,
         phash: str | None = None, image: dict[str, Any] | None = None) -> dict[str, Any]:
    folder, compact = compact_outputs(outputs)
    facts = {"image": image} if image else {}
    return _without_request(_advance(_finished(state), Status.DONE, now, outputs=compact,
                                     outputs_at=folder, error=None, phash=phash, **facts))


def retrying(state: dict[str, Any], error: ImgpipeError, retry_at: float,
             now: float | None = None) -> dict[str, Any]:
    return _advance(_finished(state), Status.RETRYING, now, error=error_dict(error),
                    retry_at=retry_at)


def failed(state: dict[str, Any], error: ImgpipeError, now: float | None = None
           ) -> dict[str, Any]:
    return _without_request(_advance(_finished(state), Status.FAILED, now,
                                     error=error_dict(error)))


def _without_request(state: dict[str, Any]) -> dict[str, Any]:
    # A finished job's request is only needed to send it again, which only happens to
    # jobs in flight (sweeper) or by replay, which reads the topics. Dropping it keeps
    # the largest changelog records small (docs/performance.md, claim check).
    state.pop("request", None)
    state.pop("routed", None)
    return state


def is_duplicate_submission(state: dict[str, Any] | None, request: JobRequest,
                            origin: str) -> bool:
    """True if ``request`` must not be routed again.

    Finished jobs are answered from the table unless forced; a job already in flight
    is not queued twice. The same ingest event seen again (a redelivery after a crash)
    is always routed again, so a crash between the table write and the routing send
    can never strand a job in QUEUED.
    """
    if state is None or request.force:
        return False
    if state["status"] == Status.DONE:
        return True
    return state["status"] in IN_FLIGHT and state.get("queued_by") != origin


def should_skip_processing(state: dict[str, Any] | None, request: JobRequest) -> bool:
    """True if a (re)delivered processing message has nothing left to do: the job is
    DONE, or FAILED (a second copy of its work record, e.g. one re-routed by ingest while
    the first was redelivered, must not run a failed job again). A resubmission queues
    the job again first (QUEUED), so it runs."""
    return bool(state and state["status"] in (Status.DONE, Status.FAILED)
                and not request.force)


def result_record(state: dict[str, Any]) -> ResultRecord:
    """The record announced on the results topic: the public view with the outputs
    compact as in the state (``outputs_at`` + each ``file``; see expand_outputs)."""
    return ResultRecord(**_view(state, state.get("outputs", [])),
                        outputs_at=state.get("outputs_at"))


def public_view(state: dict[str, Any]) -> dict[str, Any]:
    """The job as the API and CLI show it (every output with its full ``uri``)."""
    return _view(state, expand_outputs(state))


def record_view(record: JobRecord) -> dict[str, Any]:
    """A finished job as the API shows it, from its metadata row: what answers for a job
    the jobs table no longer holds (a retired topic generation, docs/scaling.md).
    ``stored`` says where it came from; the history is not kept there."""
    state = {"job_id": record.job_id, "status": record.status, "priority": record.priority,
             "tenant": record.tenant, "name": record.name, "label": record.label,
             "attempts": record.attempts, "submitted_at": record.submitted_at,
             "updated_at": record.finished_at, "phash": record.phash, "image": record.image,
             "error": ({"code": record.error_code or "failed", "message": record.error or ""}
                       if record.status == Status.FAILED else None)}
    return {**_view(state, [o.to_dict() for o in record.outputs]), "stored": True}


def _view(state: dict[str, Any], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    error = state.get("error")
    return {
        "job_id": state["job_id"],
        "status": state["status"],
        "priority": state.get("priority"),
        "tenant": state.get("tenant"),
        "name": state.get("name"),
        "label": state.get("label"),
        "attempts": state.get("attempts", 0),
        "error": error["message"] if error else None,
        "error_code": error["code"] if error else None,
        "outputs": outputs,
        "history": state.get("history", []),
        "submitted_at": state.get("submitted_at"),
        "updated_at": state.get("updated_at"),
        "replays": state.get("replays", 0),
        "phash": state.get("phash"),
        "image": state.get("image"),
    }
