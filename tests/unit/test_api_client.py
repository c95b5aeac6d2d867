"""The CLI's API client rides through a worker's death: it moves to the next API URL and
retries "later" answers (503, a proxy's 502/504) within its window. Real HTTP servers on
127.0.0.1 play the workers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.cli.client import ApiClient
from pipeline.errors import ConfigError
from pipeline.kafka.local import free_port
from pipeline.settings import Settings

DONE = {"job_id": "j1", "status": "DONE", "outputs": []}


@contextmanager
def worker_api(answers: list[int]) -> Iterator[tuple[str, list[str]]]:
    """A server answering GETs with ``answers`` in turn (then 200 DONE); yields its URL
    and the paths it was asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            status = answers.pop(0) if answers else 200
            body = json.dumps(DONE if status == 200 else {"error": "later"}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


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
