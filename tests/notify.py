"""Helpers of the bucket-notification tests: jobs by object, the storage-event counters."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from pipeline.jobs.rules import StoredObject
from pipeline.jobs.storage_events import job_id_for
from tests.http import get_json, request


def job_of(resource: dict, tenant: str = "acme") -> str:
    """The job id the pipeline gives an object (a GCS object resource)."""
    obj = StoredObject(resource["bucket"], resource["name"], str(resource["generation"]),
                       "finalize")
    return f"{tenant}:{job_id_for(obj)}"


def wait_finished(base: str, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, body = get_json(f"{base}/api/jobs/{job_id}")
        if status == 200 and body["status"] in ("DONE", "FAILED", "REJECTED"):
            return body
        assert time.monotonic() < deadline, (job_id, status, body)
        time.sleep(0.3)


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
