"""The jobs API: submit (POST /api/jobs), list, one job, and its output files.

Submission is stateless (any worker behind a load balancer accepts it). A job's state
lives on the worker owning its key: GET /api/jobs/{id} and output reads ask that worker
(job_state), lists are gathered from every worker (see peers).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import BodyPartReader, web
from faust.web import Request, Response, View

from pipeline import metrics
from pipeline.errors import ImgpipeError, InvalidRequest
from pipeline.jobs.uploads import SUBMIT_FIELDS, build_request, check_upload, source_key
from pipeline.models import QUALIFIED_JOB_ID_RE, display_name, expand_outputs, loads_bounded
from pipeline.ops.encode import CONTENT_TYPES
from pipeline.settings import Settings
from pipeline.web.answers import (
    UploadTooLarge,
    error_response,
    hide_folders,
    principal_of,
    public_message,
    without_folders,
)
from pipeline.web.bodies import read_body
from pipeline.web.health import not_ready
from pipeline.web.peers import fetch_json, gather, is_self
from pipeline.worker import faustcompat

log = logging.getLogger(__name__)
MAX_FIELD_BYTES = 64 * 1024
#: All the form fields of one submission together (besides the image).
MAX_FORM_BYTES = 256 * 1024


async def read_form(request: web.Request, folder: Path, settings: Settings
                    ) -> tuple[dict[str, Any], Path | None]:
    """Fields of a multipart form, the ``image`` part streamed to a file in ``folder``
    and cut off at IMGPIPE_MAX_SOURCE_BYTES."""
    try:
        return await _read_form(request, folder, settings)
    except ImgpipeError:
        raise
    except Exception as exc:  # aiohttp's parser on a malformed body (bad boundary, NUL...)
        raise InvalidRequest(f"the multipart body is malformed ({type(exc).__name__})",
                             "bad_form") from None


async def _read_form(request: web.Request, folder: Path, settings: Settings
                     ) -> tuple[dict[str, Any], Path | None]:
    fields: dict[str, Any] = {}
    image: Path | None = None
    form_bytes = 0
    max_parts = len(SUBMIT_FIELDS) + settings.max_variants + 1
    reader = await request.multipart()
    for _ in range(max_parts + 1):
        part = await reader.next()
        if part is None:
            return fields, image
        if not isinstance(part, BodyPartReader):
            raise InvalidRequest("nested multipart bodies are not accepted", "bad_form")
        if part.name == "image":
            if image is not None:
                raise InvalidRequest("one image per job", "bad_form")
            image = folder / "upload"
            await _save_part(part, image, settings.max_source_bytes)
            if part.filename:  # the client's file name, unless a name field says otherwise
                fields.setdefault("name", display_name(part.filename))
        elif part.name in SUBMIT_FIELDS:
            value = (await part.read_chunk(MAX_FIELD_BYTES + 1)).decode("utf-8", "replace")
            form_bytes += len(value)
            if len(value) > MAX_FIELD_BYTES or form_bytes > MAX_FORM_BYTES:
                raise UploadTooLarge(f"field {part.name!r} is too long (fields may hold "
                                     f"{MAX_FIELD_BYTES} bytes each, {MAX_FORM_BYTES} in all)",
                                     "form_too_large")
            if part.name == "variant":
                fields.setdefault("variant", []).append(value)
            else:
                fields[part.name] = value
        else:
            raise InvalidRequest(f"unknown form field {part.name!r} (accepted: image, "
                                 f"{', '.join(sorted(SUBMIT_FIELDS))})", "unknown_field")
    raise InvalidRequest(f"the form has more than {max_parts} parts", "bad_form")


async def _save_part(part: BodyPartReader, path: Path, limit: int) -> None:
    size = 0
    with path.open("wb") as out:
        while chunk := await part.read_chunk(1 << 20):
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(f"the image is larger than IMGPIPE_MAX_SOURCE_BYTES="
                                     f"{limit} bytes")
            out.write(chunk)


async def _json_body(request: web.Request) -> dict[str, Any]:
    body = loads_bounded(await read_body(request, MAX_FORM_BYTES), max_bytes=MAX_FORM_BYTES)
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object", "malformed_event")
    if not isinstance(body.get("source"), str) or not body["source"]:
        raise InvalidRequest("a JSON submission needs \"source\": a URI in an allowed store "
                             "or root (or upload the image as multipart/form-data)",
                             "missing_field")
    return body


async def submit(app: Any, request: web.Request) -> dict[str, Any]:
    """Validate, store the upload (claim check), produce the JobRequest; ImgpipeError
    for anything refused, before anything is produced."""
    settings, runtime = app.pipeline_settings, app.runtime
    limit = settings.max_source_bytes + (1 << 20)
    if request.content_length is not None and request.content_length > limit:
        raise UploadTooLarge(f"the request is {request.content_length} bytes; images may "
                             f"be at most IMGPIPE_MAX_SOURCE_BYTES={settings.max_source_bytes}")
    loop = asyncio.get_running_loop()
    caller = principal_of(request)
    if request.content_type == "multipart/form-data":
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=settings.data_dir))
        try:
            fields, image = await read_form(request, folder, settings)
            if image is None:
                raise InvalidRequest("the form has no \"image\" file part", "missing_field")
            extension = await loop.run_in_executor(
                None, check_upload, image, settings.max_source_pixels)
            # every field checked (and the id qualified) before the source's key is made
            shaped = build_request(fields, "-", caller.tenant)
            key = source_key(shaped.job_id, f".{extension}")
            job, _ = runtime.admission.admit_request(
                replace(shaped, source=runtime.object_store.uri_for(key)), caller)
            await loop.run_in_executor(None, runtime.object_store.put_new_file, key, image,
                                       "application/octet-stream")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    elif request.content_type == "application/json":
        body = await _json_body(request)
        job, _ = runtime.admission.admit_request(build_request(
            {k: v for k, v in body.items() if k != "source"}, body["source"], caller.tenant),
            caller)
    else:
        raise InvalidRequest("send multipart/form-data with an \"image\" file part, or "
                             "application/json with a \"source\" URI", "unsupported_media_type")
    value = job.to_json()
    ingest = app.source_topic(app.topic_names.ingest)
    await (await ingest.send(key=job.job_id.encode(), value=value,
                              headers=caller.sign(value)))
    metrics.API_SUBMISSIONS.labels("accepted").inc()
    return {"job_id": job.job_id, "status": "SUBMITTED", "source": hide_folders(app, job.source),
            "priority": job.priority, "status_url": f"/api/jobs/{job.job_id}"}


class JobList(View):
    """POST submits a job; GET lists recent jobs of every worker (``?scope=local``: this
    worker's active partitions only), newest first, filtered by status and priority."""

    async def post(self, request: Request) -> Response:
        try:
            accepted = await submit(self.app, request)
        except ImgpipeError as exc:
            return error_response(self, exc)
        return self.json(accepted, status=202,
                         headers={"Location": accepted["status_url"]})

    async def get(self, request: Request) -> Response:
        try:
            page = JobQuery.from_query(request.query)
        except InvalidRequest as exc:
            return self.json({"error": exc.message, "code": exc.code}, status=400)
        caller = principal_of(request)
        job_states = self.app.job_states

        async def local() -> dict[str, Any]:
            states = [s for s in job_states.active_states(job_states.active_partitions())
                      if caller.may_see(s["job_id"]) and page.matches(s)]
            states.sort(key=_newest_first)
            return {"jobs": [without_folders(self.app, job_states.public_view(s))
                             for s in states[:page.end]],
                    "total": len(states)}

        if request.query.get("scope") == "local":
            return self.json(await local())
        bodies, errors = await gather(self.app, "/api/jobs", dict(request.query),
                                      caller, local)
        merged = sorted((job for body in bodies for job in body["jobs"]), key=_newest_first)
        return self.json({"jobs": merged[page.offset:page.end],
                          "total": sum(body.get("total", 0) for body in bodies),
                          "offset": page.offset, "errors": errors})


def _newest_first(state: dict[str, Any]) -> tuple[float, str]:
    return -(state.get("updated_at") or 0), state["job_id"]


@dataclass(frozen=True)
class JobQuery:
    """Filters and the page of GET /api/jobs: ``status``, ``priority``, ``q`` (words
    found, case-insensitively, in the job id, file name, label or tenant), ``limit``
    (1..1000) and ``offset`` (0..MAX_OFFSET)."""

    status: str | None
    priority: str | None
    words: tuple[str, ...]
    limit: int
    offset: int

    MAX_OFFSET: ClassVar[int] = 10_000
    MAX_QUERY_CHARS: ClassVar[int] = 200

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> JobQuery:
        try:
            limit = max(1, min(1000, int(query.get("limit", "100"))))
            offset = int(query.get("offset", "0"))
        except ValueError:
            raise InvalidRequest("limit and offset must be integers", "bad_param") from None
        if not 0 <= offset <= cls.MAX_OFFSET:
            raise InvalidRequest(f"offset must be 0..{cls.MAX_OFFSET}", "bad_param")
        text = query.get("q", "")
        if len(text) > cls.MAX_QUERY_CHARS:
            raise InvalidRequest(f"q must be at most {cls.MAX_QUERY_CHARS} characters",
                                 "bad_param")
        return cls(query.get("status") or None, query.get("priority") or None,
                   tuple(text.lower().split()), limit, offset)

    @property
    def end(self) -> int:
        return self.offset + self.limit

    def matches(self, state: dict[str, Any]) -> bool:
        if self.status and state["status"] != self.status:
            return False
        if self.priority and state.get("priority") != self.priority:
            return False
        if not self.words:
            return True
        text = " ".join(str(state.get(k) or "") for k in ("job_id", "name", "label",
                                                           "tenant")).lower()
        return all(word in text for word in self.words)


def scoped_job_id(request: web.Request, job_id: str) -> str | None:
    """The qualified id the caller means by ``job_id``; None for a malformed id or a job
    the caller may not see (both answer as if it did not exist)."""
    return principal_of(request).scope(job_id) if QUALIFIED_JOB_ID_RE.match(job_id) \
        else None


async def load_changelog_metadata(app: Any) -> None:
    """Routing hashes the key with the producer's metadata for the changelog topic,
    which a worker that has not yet written to it lacks: fetch it first."""
    producer = faustcompat.raw_producer(app)
    await producer.partitions_for(app.job_states.changelog_topic_name())


async def job_state(app: Any, request: Request, job_id: str) -> tuple[int, Any]:
    """A job's public state from whichever worker owns its key: (HTTP status, body).
    Another worker is asked over HTTP (its GET /api/jobs/{id}), with the caller's token.
    A caller addresses its own tenant's jobs (admins: any); others' do not exist."""
    scoped = scoped_job_id(request, job_id)
    if scoped is None:
        return 404, {"error": f"no job {job_id[:200]!r}", "code": "not_found"}
    job_id = scoped
    await load_changelog_metadata(app)
    try:
        owner = app.router.key_store(app.job_states.name, job_id.encode())
    except KeyError:
        return 503, {"error": "partitions are being assigned; try again shortly",
                     "code": "rebalancing"}
    if is_self(app, owner):
        state = app.job_states.get(job_id)
        if state is not None:
            return 200, without_folders(app, app.job_states.public_view(state))
        waiting = not_ready(app)
        if waiting:  # the table may not hold the key *yet*: neither absent nor stored
            return 503, {"error": f"this worker is {', '.join(waiting)}; try again "
                                  "shortly", "code": "recovering"}
        # Not in the table: a finished job of a retired topic generation (or one the
        # table lost) is still in the metadata store.
        record = await app.runtime.io.run(app.runtime.metadata.get_job, job_id)
        if record is not None:
            return 200, without_folders(app, app.job_states.record_view(record))
        return 404, {"error": f"no job {job_id!r}", "code": "not_found", "job_id": job_id}
    status, body = await fetch_json(app, owner.with_path(f"/api/jobs/{job_id}"),
                                    principal_of(request))
    if status == 502:  # the owner died or is moving: the group will reassign its keys
        return 503, {**body, "code": "owner_unavailable"}
    return status, body


class JobDetail(View):
    async def get(self, request: Request, job_id: str) -> Response:
        status, body = await job_state(self.app, request, job_id)
        return self.json(body, status=status, headers=retry_after(status))


def retry_after(status: int) -> dict[str, str]:
    """A 503 tells clients when to ask again (a rebalance takes seconds)."""
    return {"Retry-After": "1"} if status == 503 else {}


class JobOutput(View):
    """The bytes of one output variant, read from the object store by any worker."""

    async def get(self, request: Request, job_id: str, variant: str) -> Response:
        status, state = await job_state(self.app, request, job_id)
        if status != 200:
            return self.json(state, status=status, headers=retry_after(status))
        output = next((o for o in expand_outputs(state) if o["variant"] == variant), None)
        if output is None:
            return self.json({"error": f"job {state['job_id']!r} has no output "
                                       f"{variant[:64]!r}", "code": "not_found"}, status=404)
        loop = asyncio.get_running_loop()
        try:
            store = self.app.runtime.object_store
            data = await loop.run_in_executor(None, store.get, output["uri"],
                                              output["bytes"] + 1)
        except ImgpipeError as exc:
            return self.json({"error": public_message(self.app, exc), "code": exc.code},
                             status=503 if exc.retryable else 404)
        return self.bytes(data, content_type=CONTENT_TYPES.get(output["format"],
                                                               "application/octet-stream"),
                          headers={"Cache-Control": "max-age=300"})


ROUTES = {"/api/jobs": JobList, "/api/jobs/{job_id}": JobDetail,
          "/api/jobs/{job_id}/outputs/{variant}": JobOutput}
