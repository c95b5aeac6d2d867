"""The bearer token on /api/* (IMGPIPE_API_TOKEN) against a real worker."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import running_pipeline
from tests.http import post_form, request
from tests.images import encode, quadrants

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


def test_every_page_but_probes_and_dashboard_shell_needs_the_token(secured):
    base = secured.env["IMGPIPE_API_URL"]
    token = {"Authorization": "Bearer s3cret-token"}
    for path in ("/healthz", "/readyz", "/metrics", "/", "/static/dashboard.js"):
        assert request("GET", base + path)[0] in (200, 503), path  # 503: not ready yet
    for path in ("/api/stats", "/api/deadletters", "/table/jobs/", "/router/",
                 "/api/jobs/x/outputs/thumb"):
        assert request("GET", base + path)[0] == 401, path
        assert request("GET", base + path, headers=token)[0] != 401, path
    image = {"image": ("p.png", encode(quadrants(40, 30), "PNG"))}
    status, _, body = post_form(f"{base}/api/jobs", {}, image)
    assert status == 401 and "bearer token" in body["error"]
    status, _, body = post_form(f"{base}/api/jobs", {}, image, token="s3cret-token")
    assert status == 202, body
    deadline = time.monotonic() + 30
    while get(f"{base}/api/jobs/{body['job_id']}", "s3cret-token")[0] != 200:
        assert time.monotonic() < deadline, "the accepted job never appeared"
        time.sleep(0.3)
