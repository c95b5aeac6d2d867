"""Small HTTP client for tests (stdlib only): JSON GETs and multipart POSTs."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any


def request(method: str, url: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 30
            ) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str, token: str | None = None, wait_503: float = 30) -> tuple[int, Any]:
    """GET a JSON answer, waiting out 503s (partitions being assigned)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + wait_503
    while True:
        status, _, body = request("GET", url, headers=headers)
        if status != 503 or time.monotonic() > deadline:
            return status, json.loads(body)
        time.sleep(0.5)


def wait_terminal(base: str, job_id: str, token: str | None = None, timeout: float = 120
                  ) -> dict:
    """The job's state once it is DONE, FAILED or REJECTED (asked every 0.3 s); fails
    with the last answer and the topics that still lag."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = get_json(f"{base}/api/jobs/{job_id}", token)
        if status == 200 and body["status"] in ("DONE", "FAILED", "REJECTED"):
            return body
        if time.monotonic() > deadline:
            stats = get_json(f"{base}/api/stats", token)[1]
            lags = [lag for lag in stats.get("lag", []) if lag["lag"]]
            raise AssertionError(f"job {job_id} stuck: {status} {body}; lagging: {lags}")
        time.sleep(0.3)


def multipart(fields: dict[str, str | list[str]], files: dict[str, tuple[str, bytes]]
              ) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, values in fields.items():
        for value in [values] if isinstance(values, str) else values:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
                         f"\r\n\r\n{value}\r\n".encode())
    for name, (filename, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: application/octet-stream'
                     "\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_form(url: str, fields: dict[str, str | list[str]],
              files: dict[str, tuple[str, bytes]], token: str | None = None
              ) -> tuple[int, dict[str, str], Any]:
    body, content_type = multipart(fields, files)
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, reply_headers, reply = request("POST", url, body, headers)
    return status, reply_headers, json.loads(reply)


def post_json(url: str, payload: Any, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, _, reply = request("POST", url, json.dumps(payload).encode(), headers)
    return status, json.loads(reply)
