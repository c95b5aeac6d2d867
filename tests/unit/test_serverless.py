"""The serverless handler on a Lambda MSK event in the recorded AWS format: the same
processing core, outputs and metadata written, bad records reported, transient
failures make the batch retry."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from pathlib import Path

import pytest

from pipeline.jobs import serverless
from pipeline.jobs.serverless import BatchRetry, decode_event, lambda_handler, process_records
from pipeline.metadata import open_metadata_store
from pipeline.models import JobRequest, storage_path
from pipeline.objects import open_object_store
from pipeline.settings import Settings
from pipeline.worker.runtime import Runtime
from tests.images import encode, quadrants

EVENT = json.loads((Path(__file__).parents[1] / "data" / "msk_event.json").read_text())
VARIANTS = {"thumb": [{"op": "thumbnail", "size": 32}, {"op": "encode", "format": "png"}]}


def recorded_event(values: dict[tuple[int, int], bytes]) -> dict:
    event = copy.deepcopy(EVENT)
    for batch in event["records"].values():
        for record in batch:
            value = values.get((record["partition"], record["offset"]))
            if value is not None:
                record["value"] = base64.b64encode(value).decode()
    return event


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    env = {"IMGPIPE_OBJECT_STORE": f"file://{tmp_path / 'objects'}",
           "IMGPIPE_METADATA_URL": f"sqlite:///{tmp_path / 'meta.db'}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    store = open_metadata_store(env["IMGPIPE_METADATA_URL"])
    store.migrate()
    store.close()
    return Settings.from_env(env)


def job(settings: Settings, job_id: str, image: bytes | None) -> bytes:
    store = open_object_store(settings.object_store)
    key = f"sources/dt=2026-01-01/{storage_path(job_id)}/source.png"
    if image is not None:
        store.put(key, image, "image/png")
    return JobRequest(job_id=job_id, source=store.uri_for(key), variants=VARIANTS,
                      priority="normal").to_json()


def test_decodes_the_recorded_msk_format():
    records = decode_event(recorded_event({(0, 15): b"{}", (3, 7): b"{}", (3, 8): b"{}"}))
    assert [(r.partition, r.offset) for r in records] == [(0, 15), (0, 16), (3, 7), (3, 8)]
    assert records[0].key == b"job-a" and records[1].value == b"not json at all"
    with pytest.raises(ValueError, match="not a Kafka event"):
        decode_event({"eventSource": "aws:sqs", "Records": []})


def test_handler_processes_the_batch_like_a_worker(settings):
    png = encode(quadrants(120, 80), "PNG")
    event = recorded_event({(0, 15): job(settings, "job-a", png),
                            (3, 7): job(settings, "job-b", png),
                            (3, 8): job(settings, "job-c", None)})  # source never stored
    _clear_runtime()
    result = lambda_handler(event, None)
    assert result["records"] == 4
    assert result["outcomes"] == {"done": 2, "rejected": 1, "failed": 1}
    by_offset = {(r["partition"], r["offset"]): r for r in result["results"]}
    assert by_offset[(0, 16)]["error"] == "malformed_json"
    assert by_offset[(3, 8)]["error"] == "source_not_found"
    for key in ((0, 15), (3, 7)):
        [uri] = by_offset[key]["outputs"]
        assert Path(uri.removeprefix("file://")).read_bytes()[:4] == b"\x89PNG"
    metadata = open_metadata_store(settings.metadata_url)
    assert metadata.get_job("job-a").status == "DONE"
    assert metadata.get_job("job-c").status == "FAILED"
    rows = metadata.count_rows()
    # the same batch delivered again (Lambda retries) changes nothing
    lambda_handler(event, None)
    assert metadata.count_rows() == rows
    metadata.close()


def test_a_transient_failure_makes_the_batch_retry(settings, monkeypatch):
    unreachable = "http://127.0.0.1:9"  # nothing listens on the discard port
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", unreachable)
    gs = settings.__class__(**{**settings.__dict__, "object_store": "gs://bucket/p",
                               "storage_retry_seconds": 0.3})
    request = JobRequest(job_id="job-t", source="gs://bucket/p/sources/dt=2026-01-01/job-t/x.png",
                         variants=VARIANTS, priority="normal").to_json()
    runtime = Runtime(gs)
    records = decode_event(recorded_event({(0, 15): request}))[:1]
    [entry] = asyncio.run(process_records(records, runtime))
    runtime.close()
    assert entry["outcome"] == "retry" and entry["error"] == "storage_unavailable"
    monkeypatch.setattr("pipeline.jobs.serverless._runtime", lambda: Runtime(gs))
    with pytest.raises(BatchRetry, match="transient"):
        lambda_handler(recorded_event({(0, 15): request}), None)


def _clear_runtime() -> None:
    serverless._runtime.cache_clear()
