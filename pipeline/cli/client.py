"""Client side of the pipeline: submit jobs (claim check + Kafka) and ask a worker's API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from pipeline.errors import ConfigError, ImageRejected, broker_unreachable
from pipeline.jobs.uploads import source_key
from pipeline.kafka.security import kafka_options
from pipeline.models import PRIORITIES, JobRequest, Status
from pipeline.objects import open_object_store
from pipeline.settings import Settings
from pipeline.tenancy import ANYONE, Principal, token_principal

_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,5}$")


@dataclass(frozen=True)
class Submission:
    job_id: str
    path: str
    source: str
    key: str = ""


def source_key_of(path: Path, job_id: str) -> str:
    """Where the claim check of ``path`` is stored for ``job_id``."""
    suffix = path.suffix.lower() if _EXTENSION.match(path.suffix) else ""
    return source_key(job_id, suffix)


def check_source_size(settings: Settings, path: Path) -> None:
    """ImageRejected ``source_too_large`` for a file over IMGPIPE_MAX_SOURCE_BYTES."""
    size = path.stat().st_size
    if size > settings.max_source_bytes:
        raise ImageRejected(f"{path} is {size} bytes, more than IMGPIPE_MAX_SOURCE_BYTES="
                            f"{settings.max_source_bytes}", "source_too_large")


def store_sources(settings: Settings, paths: Iterable[Path], job_ids: Iterable[str]
                  ) -> list[Submission]:
    """Copy each file into the object store (the claim check), in the data-lake layout
    (uploads.source_key) so raw sources are archived too."""
    store = open_object_store(settings.object_store)
    submissions = []
    for path, job_id in zip(paths, job_ids, strict=True):
        check_source_size(settings, path)
        key = source_key_of(path, job_id)
        uri = store.put_new_file(key, path, "application/octet-stream")
        submissions.append(Submission(job_id, str(path), uri, key))
    store.close()
    return submissions


def remove_sources(settings: Settings, submissions: list[Submission]) -> None:
    """Delete the claim checks of a submission that failed before any job was sent."""
    store = open_object_store(settings.object_store)
    try:
        for submission in submissions:
            store.delete(submission.key)
    finally:
        store.close()


def cli_principal(settings: Settings) -> Principal:
    """Who the CLI acts as: IMGPIPE_API_TOKEN's principal, from the tokens file when the
    CLI has it, else as the workers' API names it (GET /api/whoami); ConfigError if the
    workers do not know the token. Without a token, or with no API to ask, the token is
    taken as an admin's (ingest judges every event again either way)."""
    if not settings.api_token or settings.api_tokens_file or not settings.api_url:
        return token_principal(settings.api_token, settings.api_tokens_file)
    try:
        status, body = ApiClient(settings, timeout=10).get_json("/api/whoami")
    except ApiUnreachable:
        return token_principal(settings.api_token, "")
    if status == 401:
        raise ConfigError("the workers do not know IMGPIPE_API_TOKEN: use a token from "
                          "their tokens file (docs/api.md#tenants)")
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("tenant"), str):
        return token_principal(settings.api_token, "")  # an older worker: no whoami
    priorities = frozenset(p for p in body.get("priorities") or () if p in PRIORITIES)
    return Principal(body["tenant"], body.get("admin") is True, priorities or
                     frozenset(PRIORITIES), settings.api_token.encode())


async def _produce(settings: Settings, requests: list[JobRequest],
                   progress: Callable[[int, int], None], sender: Principal) -> None:
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all",
                                enable_idempotence=True, request_timeout_ms=30000)
    try:
        await producer.start()
    except KafkaError as exc:
        raise broker_unreachable(settings.bootstrap_servers, exc) from None
    try:
        futures = []
        for request in requests:
            value = request.to_json()
            futures.append(await producer.send(settings.topic("ingest"), value=value,
                                               key=request.job_id.encode(),
                                               headers=sender.sign(value)))
        for done, future in enumerate(futures, 1):
            await future
            progress(done, len(futures))
    finally:
        await producer.stop()


def produce_requests(settings: Settings, requests: list[JobRequest],
                     progress: Callable[[int, int], None] = lambda d, t: None,
                     sender: Principal = ANYONE) -> None:
    """Send requests to the ingest topic keyed by job_id, signed by ``sender``; returns
    once all are acked."""
    asyncio.run(_produce(settings, requests, progress, sender))


#: Answers that mean "ask again shortly": the job's owner is moving or unreachable (503),
#: or a load balancer in front of the workers lost its backend (502, 504).
RETRY_LATER = frozenset({502, 503, 504})
#: Job ids per POST /api/job-states (the server takes up to 1,000).
STATES_CHUNK = 500
#: Longest pause between two passes of wait_for while nothing finishes.
MAX_POLL = 2.0
#: Pending jobs per second of pause between passes (a 500-job wait asks once a second,
#: a few jobs every ``poll``): the workers' cost of answering stays small per job.
PENDING_PER_SECOND_OF_POLL = 500


class ApiUnreachable(Exception):
    """No API URL answered."""


class ApiClient:
    """The worker HTTP API (IMGPIPE_API_URL: one URL, or several comma-separated), with
    the bearer token when configured. A worker that stops answering is left for the next
    URL; while none answers, or the answer is "later", requests are retried within the
    caller's window."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self.bases = [u.strip().rstrip("/") for u in settings.api_url.split(",") if u.strip()]
        self.token = settings.api_token
        self.timeout = timeout
        self._current = 0

    @property
    def base(self) -> str:
        return self.bases[self._current]

    def get_json(self, path: str) -> tuple[int, Any]:
        """GET ``path`` from the first API URL that answers (starting with the last one
        that did); ApiUnreachable if none does."""
        return self._first_answer(path, None)

    def post_json(self, path: str, payload: Any) -> tuple[int, Any]:
        """POST ``payload`` as JSON to ``path``, like get_json."""
        return self._first_answer(path, payload)

    def _first_answer(self, path: str, payload: Any) -> tuple[int, Any]:
        for _ in range(len(self.bases)):
            try:
                return self._request(self.base + path, payload)
            except (urllib.error.URLError, OSError) as exc:
                last = exc
                self._current = (self._current + 1) % len(self.bases)
        raise ApiUnreachable(str(last))

    def _request(self, url: str, payload: Any) -> tuple[int, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body)
            except ValueError:
                return exc.code, {"error": body.decode(errors="replace")}

    def job(self, job_id: str, unavailable_for: float = 60.0) -> dict[str, Any] | None:
        """The job's state, None if no worker knows it. "Later" answers (503: partitions
        not assigned yet, or the job's owner died and the group is reassigning its keys;
        502/504 from a proxy) and unreachable workers are retried for up to
        ``unavailable_for`` seconds."""
        status, body = self._get_patiently(f"/api/jobs/{quote(job_id, safe=':')}",
                                            unavailable_for)
        if status == 404:
            return None
        if status != 200:
            raise ConfigError(f"worker API answered {status} for job {job_id}: {body}")
        return body

    def similar(self, job_id: str, max_distance: int, limit: int) -> dict[str, Any]:
        """The near-duplicates of a job's source (GET /api/jobs/{id}/similar)."""
        status, body = self._get_patiently(
            f"/api/jobs/{quote(job_id, safe=':')}/similar?max_distance={max_distance}"
            f"&limit={limit}", 60.0)
        if status != 200:
            detail = body.get("error") if isinstance(body, dict) else body
            raise ConfigError(f"worker API answered {status} for job {job_id}: {detail}")
        return body

    def _get_patiently(self, path: str, unavailable_for: float) -> tuple[int | None, Any]:
        """GET ``path``, retrying "later" answers and unreachable workers for up to
        ``unavailable_for`` seconds."""
        deadline = time.monotonic() + unavailable_for
        while True:
            try:
                status, body = self.get_json(path)
            except ApiUnreachable as exc:
                if time.monotonic() >= deadline:
                    raise self._unreachable(exc) from None
                status, body = None, None
            if (status not in RETRY_LATER and status is not None) \
                    or time.monotonic() >= deadline:
                return status, body
            time.sleep(0.5)

    def wait_for(self, job_ids: list[str], timeout: float,
                 progress: Callable[[int, int], None] = lambda d, t: None,
                 poll: float = 0.3, unavailable_for: float = 60.0
                 ) -> dict[str, dict[str, Any] | None]:
        """Poll until every job is terminal or ``timeout`` passes; last state of each.

        Each pass is one call for all pending jobs (POST /api/job-states, in chunks of
        STATES_CHUNK), not one per job, and the answer holds only the jobs that finished;
        the pause between passes grows with the jobs pending, and to MAX_POLL while
        nothing finishes. A worker without that endpoint is asked job by job."""
        states: dict[str, dict[str, Any] | None] = dict.fromkeys(job_ids)
        deadline = time.monotonic() + timeout
        pending = list(job_ids)
        interval, unreachable_since = poll, None
        while pending:
            before = len(pending)
            try:
                answered = self._states(pending)
                unreachable_since = None
            except ApiUnreachable as exc:
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > unavailable_for:
                    raise self._unreachable(exc) from None
                answered = {}
            states.update(answered)
            pending = [j for j in pending
                       if not (states[j] and states[j]["status"] in Status.TERMINAL)]
            progress(len(job_ids) - len(pending), len(job_ids))
            if not pending:
                break
            if time.monotonic() > deadline:  # what the unfinished ones are doing
                with contextlib.suppress(ApiUnreachable):
                    states.update(self._states(pending, view="whole"))
                break
            interval = (max(poll, min(MAX_POLL, len(pending) / PENDING_PER_SECOND_OF_POLL))
                        if len(pending) < before else min(MAX_POLL, interval * 1.5))
            time.sleep(interval)
        return states

    def _states(self, job_ids: list[str], view: str = "finished"
                ) -> dict[str, dict[str, Any] | None]:
        """The states the API gives for ``job_ids`` now (ids it says to ask again later
        are left out; with view "finished", only finished jobs come back)."""
        answered: dict[str, dict[str, Any] | None] = {}
        for start in range(0, len(job_ids), STATES_CHUNK):
            chunk = job_ids[start:start + STATES_CHUNK]
            status, body = self.post_json(f"/api/job-states?view={view}",
                                          {"job_ids": chunk})
            if status in (404, 405):  # a worker from before the endpoint: one by one
                answered.update((job_id, self.job(job_id)) for job_id in chunk)
            elif status == 200:
                later = set(body.get("later", []))
                answered.update((k, v) for k, v in body["jobs"].items() if k not in later)
            elif status not in RETRY_LATER:
                raise ConfigError(f"worker API answered {status} for the jobs' states: {body}")
        return answered

    def _unreachable(self, exc: Exception) -> ConfigError:
        return ConfigError(f"cannot reach the worker API at {', '.join(self.bases)} ({exc}); "
                           "is a worker running? (`imgpipe worker`, or set IMGPIPE_API_URL)")


def job_summary(job_id: str, state: dict[str, Any] | None) -> dict[str, Any]:
    """The stable per-job object `submit --json` and `status --json` print."""
    if state is None:
        return {"job_id": job_id, "status": "UNKNOWN", "error": "job not seen by a worker yet",
                "outputs": []}
    outputs = [{k: o[k] for k in ("variant", "uri", "width", "height", "format", "bytes")}
               for o in state.get("outputs", [])]
    return {"job_id": state.get("job_id", job_id), "status": state["status"],
            "name": state.get("name"), "label": state.get("label"),
            "error": state.get("error"),
            "error_code": state.get("error_code"), "attempts": state.get("attempts", 0),
            "priority": state.get("priority"), "outputs": outputs,
            "replays": state.get("replays", 0), "history": state.get("history", [])}
