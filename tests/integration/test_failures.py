"""Retries, dead letters and redelivery on the real broker, with real faults."""

from __future__ import annotations

import json
import time

import pytest

from pipeline.dev import services as devservices
from pipeline.dev.samples import write_samples
from pipeline.dev.workers import stop_worker
from pipeline.kafka.local import free_port
from pipeline.metadata import open_metadata_store
from pipeline.objects import open_object_store
from pipeline.objects.local import TEMP_PREFIX, path_from_file_uri
from tests.conftest import make_env
from tests.kafkautil import produce_raw, read_topic
from tests.runtimes import SOURCES

pytestmark = pytest.mark.kafka

VARIANTS = {"a": [{"op": "resize", "width": 200}, {"op": "encode", "format": "webp"}],
            "b": [{"op": "thumbnail", "size": 64}, {"op": "encode", "format": "png"}]}


def jobs_for(sources: list[str], prefix: str, count: int) -> list[tuple[bytes, bytes]]:
    return [(f"{prefix}-{i}".encode(), json.dumps({
        "job_id": f"{prefix}-{i}", "source": sources[i % len(sources)],
        "variants": VARIANTS}).encode()) for i in range(count)]


def wait_for(env, job_ids, statuses, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        states = {j: env.cli_json("status", j, "--json")[1] for j in job_ids}
        if all(s["status"] in statuses for s in states.values()):
            return states
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {statuses}: "
                        f"{ {j: s['status'] for j, s in states.items()} }")
        time.sleep(0.5)


def test_storage_outage_is_retried_then_succeeds(kafka, tmp_path, monkeypatch):
    port = free_port()
    gcs_dir = tmp_path / "gcs-data"
    gcs_dir.mkdir()
    gcs = devservices.start_fake_gcs(tmp_path / "gcs.log", port, data_dir=gcs_dir)
    emulator = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
    # this test's own client; undone afterwards (the session's fake_gcs lives elsewhere)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator["STORAGE_EMULATOR_HOST"])
    from pipeline.objects.gcs import make_client
    client = make_client()
    client.create_bucket("outage")
    client.close()
    env = make_env(kafka, tmp_path, IMGPIPE_OBJECT_STORE="gs://outage/lake",
                   IMGPIPE_STORAGE_RETRY_SECONDS="0.5", IMGPIPE_RETRY_BACKOFF="1.0",
                   IMGPIPE_MAX_ATTEMPTS="8", **emulator)
    env.cli("topics", "create", check=True)
    store = open_object_store("gs://outage/lake")
    sources = [store.put(f"{SOURCES}/o{i}/src.jpg", p.read_bytes(), "image/jpeg")
               for i, p in enumerate(write_samples(tmp_path / "in", 3, 320, 240))]
    store.close()
    proc, port_w, _ = env.start_worker()
    env.env["IMGPIPE_API_URL"] = f"http://127.0.0.1:{port_w}"
    try:
        gcs.stop()  # the outage starts before the jobs arrive
        produce_raw(env.settings.bootstrap_servers, env.settings.topic("ingest"),
                    jobs_for(sources, "outage", 3))
        ids = [f"outage-{i}" for i in range(3)]
        wait_for(env, ids, {"RETRYING"}, timeout=60)
        gcs = devservices.start_fake_gcs(tmp_path / "gcs.log", port, data_dir=gcs_dir)
        states = wait_for(env, ids, {"DONE", "FAILED"}, timeout=120)
        assert proc.poll() is None, "worker died"
    finally:
        stop_worker(proc)
        gcs.stop()
    for state in states.values():
        assert state["status"] == "DONE", state
        assert state["attempts"] >= 2
        assert "RETRYING" in [h["status"] for h in state["history"]]
        errors = [h.get("error") for h in state["history"]]
        assert "storage_unavailable" in errors, errors
        assert all(o["uri"].startswith("gs://outage/lake/outputs/") for o in state["outputs"])
    assert read_topic(env.settings.bootstrap_servers, env.settings.topic("dlq")) == []
    retries = read_topic(env.settings.bootstrap_servers, env.settings.topic("retry"))
    assert retries and all(r["request"]["attempt"] >= 1 for r in retries)


def test_permanent_failure_goes_to_the_dlq_with_reason_and_attempts(pipeline):
    settings = pipeline.settings
    store = open_object_store(settings.object_store)
    bad = store.put(f"{SOURCES}/bad/src.jpg", b"\xff\xd8\xff\xe0 truncated", "image/jpeg")
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"),
                jobs_for([bad], "perm", 1))
    state = wait_for(pipeline, ["perm-0"], {"FAILED"})["perm-0"]
    assert state["error_code"] == "corrupt_image" and state["attempts"] == 1
    [record] = [r for r in read_topic(settings.bootstrap_servers, settings.topic("dlq"))
                if r["job_id"] == "perm-0"]
    assert record["reason"] == "corrupt_image" and record["attempts"] == 1
    assert record["stage"] == "process" and record["request"]["source"] == bad


@pytest.mark.parametrize("point", ["after_effects", "after_results"])
def test_redelivery_after_a_crash_duplicates_nothing(kafka, tmp_path, point):
    marker = tmp_path / "crashed"
    env = make_env(kafka, tmp_path, IMGPIPE_CRASH_AT=point, IMGPIPE_CRASH_MARKER=str(marker),
                   IMGPIPE_BATCH_SIZE="5")
    env.cli("topics", "create", check=True)
    settings = env.settings
    store = open_object_store(settings.object_store)
    sources = [store.put(f"{SOURCES}/r{i}/src.jpg", p.read_bytes(), "image/jpeg")
               for i, p in enumerate(write_samples(tmp_path / "in", 4, 320, 240))]
    ids = [f"redeliver-{i}" for i in range(20)]
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"),
                jobs_for(sources, "redeliver", 20))
    first, _, _ = env.start_worker("w1")
    first.wait(120)
    assert first.returncode == 137 and marker.read_text() == point  # died mid-batch
    second, port, _ = env.start_worker("w2")
    env.env["IMGPIPE_API_URL"] = f"http://127.0.0.1:{port}"
    try:
        states = wait_for(env, ids, {"DONE"}, timeout=180)
    finally:
        stop_worker(second)
    outputs_dir = path_from_file_uri(settings.object_store) / "outputs"
    # The crash may cut another batch's writes short: their temp files are the dead
    # worker's alone (pid in the name), never outputs, and the janitor's sweep removes them.
    leftovers = [p for p in outputs_dir.rglob(f"{TEMP_PREFIX}*") if p.is_file()]
    assert all(f"-{first.pid}-" in p.name for p in leftovers), leftovers
    assert store.remove_stale_temp(max_age=0) == len(leftovers)
    files = sorted(p for p in outputs_dir.rglob("*") if p.is_file())
    assert len(files) == 40
    assert {o["uri"] for s in states.values() for o in s["outputs"]} == {
        f"file://{p}" for p in files}
    metadata = open_metadata_store(settings.metadata_url)
    assert metadata.count_rows() == (20, 40)
    results = read_topic(settings.bootstrap_servers, settings.topic("results"))
    assert {r["job_id"] for r in results} == set(ids)
