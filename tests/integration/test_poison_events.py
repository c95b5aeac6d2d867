"""Poison events on the real broker: no event can lose other jobs or grow /metrics.

Every kind of poison (tests/hostile.py) is produced between valid jobs on ONE ingest
partition, so a crash of the ingest agent would count valid jobs of the same batch as
consumed. Every valid job must end DONE and every poison event must be dead-lettered
with its reason.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest
from aiokafka.partitioner import murmur2

from pipeline.dev.samples import write_samples
from pipeline.objects import open_object_store
from tests.conftest import running_pipeline
from tests.hostile import poison_events
from tests.http import request
from tests.kafkautil import produce_raw, read_topic
from tests.runtimes import SOURCES

pytestmark = pytest.mark.kafka
VARIANTS = {"t": [{"op": "resize", "width": 48}, {"op": "encode", "format": "webp"}]}


@pytest.fixture(scope="module")
def poisoned(kafka, tmp_path_factory, request):
    yield from running_pipeline(kafka, tmp_path_factory.mktemp("poison"), request)


def ids_on_partition(partition: int, count: int, partitions: int, tag: str) -> list[str]:
    """Job ids that Kafka's default partitioner puts on ``partition``."""
    ids = []
    while len(ids) < count:
        candidate = f"{tag}-{uuid.uuid4().hex[:10]}"
        if (murmur2(candidate.encode()) & 0x7FFFFFFF) % partitions == partition:
            ids.append(candidate)
    return ids


def stored_sample(env, tmp_path, name: str, width: int, height: int) -> str:
    """A generated photo in the pipeline's object store; its URI."""
    store = open_object_store(env.settings.object_store)
    return store.put(f"{SOURCES}/poison/{name}.jpg", write_samples(
        tmp_path, 1, width, height)[0].read_bytes(), "image/jpeg")


def wait_done(env, job_ids: list[str], timeout: float = 240) -> dict[str, dict]:
    base = env.env["IMGPIPE_API_URL"]
    states: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    pending = set(job_ids)
    while pending and time.monotonic() < deadline:
        for job_id in sorted(pending):
            status, _, body = request("GET", f"{base}/api/jobs/{job_id}")
            if status == 200:
                states[job_id] = json.loads(body)
                if states[job_id]["status"] in ("DONE", "FAILED", "REJECTED"):
                    pending.discard(job_id)
        time.sleep(0.3)
    return states


def test_poison_between_valid_jobs_loses_none_of_them(poisoned, tmp_path):
    env = poisoned
    settings = env.settings
    source = stored_sample(env, tmp_path, "ok", 160, 120)
    valid = ids_on_partition(0, 24, settings.partitions, "valid")
    poison = poison_events()
    records, expected = [], Counter()
    valid_iter = iter(valid)
    for name, (payload, code) in sorted(poison.items()):
        job_id = next(valid_iter)
        records.append((job_id.encode(), json.dumps({"job_id": job_id, "source": source,
                                                     "variants": VARIANTS}).encode()))
        records.append((name.encode(), payload))
        expected[code] += 1
    # keys no job id can have: invalid UTF-8 and 10 KB long
    for key in (b"\xff\xfe\x00", b"k" * 10_000):
        records.append((key, b"[" * 3000))
        expected["too_deep"] += 1
    for job_id in valid_iter:
        records.append((job_id.encode(), json.dumps({"job_id": job_id, "source": source,
                                                     "variants": VARIANTS}).encode()))
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"), records, partition=0)

    states = wait_done(env, valid)
    assert {j: s["status"] for j, s in states.items()} == dict.fromkeys(valid, "DONE")
    dlq = read_topic(settings.bootstrap_servers, settings.topic("dlq"))
    assert Counter(r["reason"] for r in dlq if r["stage"] == "ingest") == expected
    assert all(r["error"] for r in dlq)


def test_a_retry_record_from_the_far_future_does_not_hold_retries(poisoned, tmp_path):
    env = poisoned
    settings = env.settings
    source = stored_sample(env, tmp_path, "late", 120, 90)
    job_id = f"late-{uuid.uuid4().hex[:8]}"
    job = {"job_id": job_id, "source": source, "variants": VARIANTS, "priority": "normal",
           "tenant": "default", "submitted_at": time.time(), "attempt": 1}
    far = {"retry_at": time.time() + 30 * 365 * 86400, "request": job}
    produce_raw(settings.bootstrap_servers, settings.topic("retry"),
                [(job_id.encode(), json.dumps(far).encode())])
    # the hold is capped at the policy's longest backoff (0.2 s * 2^3 here), not 30 years
    assert wait_done(env, [job_id], timeout=120)[job_id]["status"] == "DONE"


def test_metrics_stay_bounded_whatever_events_carry(poisoned, tmp_path):
    env = poisoned
    settings = env.settings
    base = env.env["IMGPIPE_API_URL"]
    source = stored_sample(env, tmp_path, "m", 64, 48)
    done_id = f"metric-{uuid.uuid4().hex[:8]}"
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"), [(
        done_id.encode(), json.dumps({"job_id": done_id, "source": source,
                                      "variants": VARIANTS}).encode())])
    assert wait_done(env, [done_id])[done_id]["status"] == "DONE"
    before = len(request("GET", f"{base}/metrics")[2])
    unique = []
    for i in range(500):  # replays of a DONE job from 500 made-up topics: skipped
        unique.append((done_id.encode(), json.dumps({
            "job_id": done_id, "source": source, "variants": VARIANTS,
            "replayed_from": {"topic": f"t-{i}-" + "x" * 2000}}).encode()))
    for i in range(500):  # refused with 500 made-up priorities, op names and tenants
        unique.append((f"bad-{i}".encode(), json.dumps({
            "job_id": f"bad-{i}", "source": source, "priority": f"p{i}" * 100,
            "variants": {"t": [{"op": f"op{i}" * 50}]}}).encode()))
    last = f"metric-last-{uuid.uuid4().hex[:8]}"
    unique.append((last.encode(), json.dumps({"job_id": last, "source": source,
                                              "variants": VARIANTS}).encode()))
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"), unique)
    assert wait_done(env, [last])[last]["status"] == "DONE"
    wanted = ['imgpipe_replayed_total{outcome="skipped",source_topic="other"} 500.0',
              'imgpipe_rejected_total{reason="bad_priority"} 500.0']
    deadline = time.monotonic() + 120
    metrics = ""
    while time.monotonic() < deadline:  # every one of the 1,000 events counted
        metrics = request("GET", f"{base}/metrics")[2].decode()
        if all(line in metrics for line in wanted):
            break
        time.sleep(0.5)
    assert all(line in metrics for line in wanted), [
        line for line in metrics.splitlines() if "replayed_total" in line or "rejected_t" in line]
    assert len(metrics) - before < 20_000, len(metrics) - before
    assert "xxxxxxxx" not in metrics and "op1op1" not in metrics
