"""The bearer token on /api/* (IMGPIPE_API_TOKEN) against a real worker."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import running_pipeline

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def secured(kafka, tmp_path_factory, request):
    yield from running_pipeline(kafka, tmp_path_factory.mktemp("auth"), request,
                                IMGPIPE_API_TOKEN="s3cret-token")


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    """GET, waiting out 503s (partitions not assigned yet right after start)."""
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for _ in range(60):
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                return exc.code, json.loads(exc.read())
        time.sleep(0.5)
    raise AssertionError(f"{url} stayed unavailable")


def test_api_requires_the_token_but_health_does_not(secured):
    base = secured.env["IMGPIPE_API_URL"]
    assert get(f"{base}/healthz")[0] == 200
    for path in ("/api/jobs", "/api/jobs/nope"):
        status, body = get(f"{base}{path}")
        assert status == 401 and "bearer token" in body["error"]
        assert get(f"{base}{path}", "wrong")[0] == 401
    assert get(f"{base}/api/jobs", "s3cret-token")[0] == 200
    assert get(f"{base}/api/jobs/nope", "s3cret-token")[0] == 404
    # the CLI sends the token it is configured with, and says so when it is refused
    code, state = secured.cli_json("status", "nope", "--json")
    assert code == 1 and state["status"] == "UNKNOWN"
    without = {**secured.env, "IMGPIPE_API_TOKEN": ""}
    secured.env, saved = without, secured.env
    try:
        result = secured.cli("status", "nope")
    finally:
        secured.env = saved
    assert result.returncode == 2 and "401" in result.stderr
