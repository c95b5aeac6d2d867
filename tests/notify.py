"""Helpers of the bucket-notification tests: jobs by object, the storage-event counters."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pipeline.jobs.rules import StoredObject
from pipeline.jobs.storage_events import job_id_for
from tests.http import request, wait_terminal


def job_of(resource: dict, tenant: str = "acme") -> str:
    """The job id the pipeline gives an object (a GCS object resource)."""
    obj = StoredObject(resource["bucket"], resource["name"], str(resource["generation"]),
                       "finalize")
    return f"{tenant}:{job_id_for(obj)}"


def wait_finished(base: str, job_id: str) -> dict:
    return wait_terminal(base, job_id, timeout=180)


def write_rules(path: Path, bucket: str, content_types: tuple[str, ...] = ()) -> Path:
    """A rules file: preset ``web`` (96 px WebP thumb, 320 px JPEG) for uploads to
    ``gs://BUCKET/incoming/`` (of ``content_types`` if given), tenant acme."""
    types = f"content_types = {list(content_types)!r}\n" if content_types else ""
    path.write_text(f"""
[presets.web]
thumb = "fit:96x96,webp:q70"
large = "fit:320x320,jpeg:q80"

[[routes]]
bucket = "{bucket}"
prefix = "incoming/"
{types}preset = "web"
tenant = "acme"
""")
    return path


def storage_events(base: str) -> dict[str, float]:
    """imgpipe_storage_events_total by outcome, from a worker's /metrics."""
    _, _, body = request("GET", f"{base}/metrics")
    return {s.labels["outcome"]: s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples if s.name == "imgpipe_storage_events_total"}


def wait_counted(base: str, outcome: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while storage_events(base).get(outcome, 0) < count:
        assert time.monotonic() < deadline, (outcome, storage_events(base))
        time.sleep(0.3)
