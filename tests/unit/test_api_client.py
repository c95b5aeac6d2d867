"""The CLI's API client rides through a worker's death: it moves to the next API URL and
retries "later" answers (503, a proxy's 502/504) within its window. Real HTTP servers on
127.0.0.1 play the workers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline.cli.client import ApiClient
from pipeline.errors import ConfigError
from pipeline.kafka.local import free_port
from pipeline.settings import Settings

DONE = {"job_id": "j1", "status": "DONE", "outputs": []}


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that answers JSON and logs nothing."""

    def answer(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@contextmanager
def serving(handler: type[QuietHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 for the block; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def worker_api(answers: list[int]) -> Iterator[tuple[str, list[str]]]:
    """A server answering GETs with ``answers`` in turn (then 200 DONE); yields its URL
    and the paths it was asked for."""
    asked: list[str] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            status = answers.pop(0) if answers else 200
            self.answer(status, DONE if status == 200 else {"error": "later"})

    with serving(Handler) as url:
        yield url, asked


def dead_url() -> str:
    """The URL of a worker that is gone: nothing listens on its port."""
    return f"http://127.0.0.1:{free_port()}"


def client(*urls: str) -> ApiClient:
    return ApiClient(Settings.from_env({"IMGPIPE_API_URL": ",".join(urls)}), timeout=5)


def test_a_dead_worker_is_left_for_the_next_url():
    with worker_api([]) as (alive, asked):
        api = client(dead_url(), alive)
        assert api.job("j1") == DONE
        assert api.base == alive and asked == ["/api/jobs/j1"]
        assert api.job("j1") == DONE and len(asked) == 2  # stays on the one that answers


@pytest.mark.parametrize("later", [503, 502, 504])
def test_later_answers_are_retried_within_the_window(later):
    with worker_api([later, later]) as (url, asked):
        assert client(url).job("j1", unavailable_for=30) == DONE
        assert len(asked) == 3


def test_when_no_worker_answers_the_error_says_what_to_do():
    with pytest.raises(ConfigError) as failed:
        client(dead_url(), dead_url()).job("j1", unavailable_for=0.5)
    assert "is a worker running?" in failed.value.message


def test_a_refusal_is_not_retried():
    with worker_api([403]) as (url, asked), pytest.raises(ConfigError) as failed:
        client(url).job("j1", unavailable_for=30)
    assert "403" in failed.value.message and len(asked) == 1


@contextmanager
def states_api(finish_after: dict[str, int], later_once: set[str]
               ) -> Iterator[tuple[str, list[list[str]]]]:
    """A worker answering POST /api/job-states: job ``j`` is DONE from its
    ``finish_after[j]``-th call on (QUEUED before, left out of ``view=finished``
    answers); ids in ``later_once`` are "ask again later" the first time. Yields the URL
    and the ids of every call."""
    calls: list[list[str]] = []
    views: list[str] = []  # the ?view= of each call
    seen: dict[str, int] = {}

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            ids = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["job_ids"]
            calls.append(ids)
            views.append(parse_qs(urlsplit(self.path).query).get("view", ["whole"])[0])
            jobs, later = {}, []
            for job_id in ids:
                seen[job_id] = seen.get(job_id, 0) + 1
                if job_id in later_once and seen[job_id] == 1:
                    later.append(job_id)
                    continue
                status = "DONE" if seen[job_id] >= finish_after[job_id] else "QUEUED"
                if status == "DONE" or views[-1] != "finished":
                    jobs[job_id] = {"job_id": job_id, "status": status, "outputs": []}
            self.answer(200, {"jobs": jobs, "later": later})

    with serving(Handler) as url:
        yield url, calls, views


def test_waiting_on_many_jobs_asks_once_per_pass_not_once_per_job():
    ids = [f"j{i}" for i in range(1200)]
    finish = {job_id: 1 + i % 3 for i, job_id in enumerate(ids)}  # done on pass 1, 2 or 3
    with states_api(finish, later_once={"j3"}) as (url, calls, views):
        states = client(url).wait_for(ids, timeout=60, poll=0.01)
    assert all(states[j]["status"] == "DONE" for j in ids)
    # Pass 1: 1200 ids in chunks of 500 (3 calls); pass 2: the 800 not done and j3, whose
    # first answer was "later" (2 calls); pass 3: the last 400 (1 call).
    assert [len(c) for c in calls] == [500, 500, 200, 500, 301, 400]
    assert "j3" in calls[3] + calls[4] and "j3" not in calls[5]
    assert set(views) == {"finished"}  # answers hold what finished, not every job


def test_a_wait_that_times_out_reports_what_the_unfinished_jobs_are_doing():
    ids = ["quick", "stuck"]
    with states_api({"quick": 1, "stuck": 10**6}, later_once=set()) as (url, calls, views):
        states = client(url).wait_for(ids, timeout=0.2, poll=0.05)
    assert states["quick"]["status"] == "DONE"
    assert states["stuck"]["status"] == "QUEUED"  # not None ("never seen")
    assert views[-1] == "whole" and calls[-1] == ["stuck"]
    assert set(views[:-1]) == {"finished"}


def test_job_ids_are_quoted_in_the_path():
    with worker_api([]) as (url, asked):
        api = client(url)
        api.job("x#y?z")
        api.similar("acme:x#", 5, 3)
    assert asked == ["/api/jobs/x%23y%3Fz", "/api/jobs/acme:x%23/similar?max_distance=5&limit=3"]
