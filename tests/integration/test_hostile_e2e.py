"""Hostile images and requests through the real pipeline: each rejected with its reason,
every one visible (job state + dead-letter topic), and the worker keeps working."""

from __future__ import annotations

import json

import pytest

from pipeline.dev.samples import write_samples
from pipeline.objects import open_object_store
from tests.conftest import running_pipeline
from tests.hostile import corpus
from tests.kafkautil import produce_raw, read_topic
from tests.runtimes import SOURCES

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def small_limits_pipeline(kafka, tmp_path_factory, request):
    yield from running_pipeline(kafka, tmp_path_factory.mktemp("hostile"), request,
                                IMGPIPE_MAX_SOURCE_BYTES=str(2 * 1024 * 1024))


def test_hostile_inputs_are_rejected_and_the_worker_survives(small_limits_pipeline, tmp_path):
    env = small_limits_pipeline
    settings = env.settings
    store = open_object_store(settings.object_store)
    images = corpus()
    expected: dict[str, str] = {}
    records = []
    variants = {"t": [{"op": "resize", "width": 64}, {"op": "encode", "format": "webp"}]}

    def job(job_id, source, code, **extra):
        expected[job_id] = code
        body = {"job_id": job_id, "source": source, "variants": variants, **extra}
        records.append((job_id.encode(), json.dumps(body).encode()))

    for name, (data, code) in images.items():
        job(f"img-{name}", store.put(f"{SOURCES}/{name}/src", data, "application/octet-stream"),
            code)
    job("too-big", store.put(f"{SOURCES}/big/src", b"\xff\xd8" + b"0" * (3 * 1024 * 1024),
                             "image/jpeg"), "source_too_large")
    job("missing-source", store.uri_for(f"{SOURCES}/nothing/here"), "source_not_found")
    job("http-source", "http://127.0.0.1:1/a.jpg", "source_not_allowed")
    job("traversal", f"{settings.object_store}/../../../etc/passwd", "source_not_allowed")
    ok_source = store.put(f"{SOURCES}/ok/src", write_samples(tmp_path, 1, 320, 240)[0].read_bytes(),
                          "image/jpeg")
    job("absurd-width", ok_source, "bad_param",
        variants={"t": [{"op": "resize", "width": 10**9}]})
    job("unknown-format", ok_source, "bad_param",
        variants={"t": [{"op": "encode", "format": "heic"}]})
    job("upscale-bomb", ok_source, "output_too_large",
        variants={"t": [{"op": "resize", "width": 16000, "height": 16000, "mode": "exact"}]})
    job("too-many-variants", ok_source, "too_many_variants",
        variants={f"v{i}": [] for i in range(40)})
    assert len(expected) >= 15 + 8
    records.append((b"after", json.dumps({"job_id": "after", "source": ok_source,
                                           "variants": variants}).encode()))
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"), records)

    code, [after] = env.cli_json("submit", "--job-id", "after-cli", str(tmp_path / next(
        p.name for p in tmp_path.iterdir())), "--wait", "--json", "--timeout", "120")
    assert code == 0 and after["status"] == "DONE"

    states = {}
    for job_id in [*expected, "after"]:
        code, state = env.cli_json("status", job_id, "--json")
        states[job_id] = state
    assert states["after"]["status"] == "DONE"
    for job_id, code in expected.items():
        assert states[job_id]["status"] in ("REJECTED", "FAILED"), (job_id, states[job_id])
        assert states[job_id]["error_code"] == code, (job_id, states[job_id])
        assert states[job_id]["error"]
    dlq = {r["job_id"]: r for r in read_topic(settings.bootstrap_servers, settings.topic("dlq"))}
    assert set(dlq) == set(expected)
    assert all(dlq[j]["reason"] == code for j, code in expected.items())
