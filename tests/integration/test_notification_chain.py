"""The whole notification chain, every part real: fake-gcs-server publishes object events
to the Pub/Sub emulator, ``imgpipe bridge pubsub`` copies the subscription onto the
ingest topic, a worker with a rules file makes the jobs.

Uploads to the watched prefix become DONE jobs with the preset's outputs; uploads
elsewhere and the outputs the pipeline writes into the same bucket make none; the same
notification published twice makes one job; a corrupt upload is dead-lettered with its
object's name; a bridge killed mid-stream loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1, storage

from pipeline.dev import services
from pipeline.dev.samples import photo_like
from tests.conftest import running_pipeline
from tests.http import get_json
from tests.images import encode
from tests.kafkautil import read_topic
from tests.notify import (
    job_of,
    storage_events,
    wait_counted,
    wait_finished,
    write_rules,
)

pytestmark = pytest.mark.kafka

PROJECT = "imgpipe-test"


@pytest.fixture(scope="module")
def chain(kafka, pubsub_emulator, tmp_path_factory, request):
    """Topic and subscription on the emulator, a fake-gcs-server publishing every object
    event of one bucket there, and a worker reading that bucket by its rules."""
    root = tmp_path_factory.mktemp("chain")
    topic = f"projects/{PROJECT}/topics/uploads-{uuid.uuid4().hex[:8]}"
    subscription = topic.replace("/topics/", "/subscriptions/") + "-kafka"
    with pubsub_v1.PublisherClient() as publisher:
        publisher.create_topic(name=topic)
    with pubsub_v1.SubscriberClient() as subscriber:
        # 10 s (the least Pub/Sub allows): what a killed bridge had not acked comes back soon
        subscriber.create_subscription(request={"name": subscription, "topic": topic,
                                                "ack_deadline_seconds": 10})
    bucket = f"uploads-{uuid.uuid4().hex[:8]}"
    events = services.ObjectEvents(pubsub_emulator.address, PROJECT, topic.rsplit("/", 1)[1],
                                   bucket)
    gcs = services.start_fake_gcs(root / "gcs.log", events=events)
    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": f"http://{gcs.address}"})
    client.create_bucket(bucket)
    rules = write_rules(root / "rules.toml", bucket)
    gen = running_pipeline(kafka, root, request,
                           STORAGE_EMULATOR_HOST=f"http://{gcs.address}",
                           IMGPIPE_OBJECT_STORE=f"gs://{bucket}/imgpipe",
                           IMGPIPE_RULES_FILE=str(rules))
    env = next(gen)
    env.bucket, env.client, env.topic, env.subscription = bucket, client, topic, subscription
    env.base = env.env["IMGPIPE_API_URL"]
    yield env
    next(gen, None)
    client.close()
    gcs.stop()


def start_bridge(env) -> subprocess.Popen:
    log = (env.root / "bridge.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "bridge", "pubsub",
                             env.subscription], env={**os.environ, **env.env}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_bridge(proc: subprocess.Popen, sig: signal.Signals = signal.SIGTERM) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    return proc.wait(30)


def upload(env, name: str, data: bytes) -> dict:
    blob = env.client.bucket(env.bucket).blob(name)
    blob.upload_from_string(data, content_type="image/jpeg")
    return {"bucket": env.bucket, "name": name, "generation": str(blob.generation)}


def bridge_letter(env, reason: str, timeout: float = 60) -> dict:
    """The dead letter the bridge wrote for ``reason`` (Pub/Sub may deliver it after the
    uploads)."""
    deadline = time.monotonic() + timeout
    while True:
        letters = read_topic(env.settings.bootstrap_servers, env.settings.topic("dlq"))
        found = [d for d in letters if d.get("stage") == "bridge" and d["reason"] == reason]
        if found:
            return found[0]
        assert time.monotonic() < deadline, "the bridge dead-lettered nothing"
        time.sleep(0.5)


def photo(seed: int) -> bytes:
    return encode(photo_like(360, 240, seed), "JPEG", quality=85)


def test_uploads_through_pubsub_become_jobs_exactly_once(chain):
    env = chain
    bridge = start_bridge(env)
    try:
        watched = [upload(env, f"incoming/photo-{i:02d}.jpg", photo(i)) for i in range(20)]
        for i in range(5):  # outside every route
            upload(env, f"elsewhere/photo-{i}.jpg", photo(100 + i))
        broken = upload(env, "incoming/broken.jpg", photo(99)[:1200])
        # Pub/Sub delivers at least once: the first upload's notification, published again
        # exactly as Cloud Storage would send it
        first = env.client.bucket(env.bucket).get_blob(watched[0]["name"])
        with pubsub_v1.PublisherClient() as publisher:
            publisher.publish(env.topic, json.dumps({
                "kind": "storage#object", "bucket": env.bucket, "name": first.name,
                "generation": str(first.generation), "contentType": "image/jpeg",
                "size": str(first.size)}).encode(), eventType="OBJECT_FINALIZE",
                bucketId=env.bucket, objectId=first.name,
                objectGeneration=str(first.generation), payloadFormat="JSON_API_V1").result()

            # a message no ingest event may be: dead-lettered by the bridge, not stuck
            publisher.publish(env.topic, b"{" + b" " * 70_000 + b"}",
                              eventType="OBJECT_FINALIZE").result()
            # a job published by whoever may publish to the topic: the bridge signs
            # notifications only, so it never reaches ingest with the bridge's authority
            publisher.publish(env.topic, json.dumps({
                "job_id": "forged", "source": f"gs://{env.bucket}/incoming/photo-00.jpg",
                "priority": "high", "force": True,
                "variants": {"t": [{"op": "encode", "format": "png"}]}}).encode()).result()

        states = {u["name"]: wait_finished(env.base, job_of(u)) for u in (*watched, broken)}
        for upload_ in watched:
            state = states[upload_["name"]]
            assert state["status"] == "DONE", state
            assert sorted(o["variant"] for o in state["outputs"]) == ["large", "thumb"]
            assert [h["status"] for h in state["history"]].count("PROCESSING") == 1
        assert states[broken["name"]]["status"] == "FAILED"
        letters = read_topic(env.settings.bootstrap_servers, env.settings.topic("dlq"))
        [letter] = [d for d in letters if d.get("job_id") == job_of(broken)]
        assert letter["request"]["source"] == f"gs://{env.bucket}/incoming/broken.jpg"
        oversized = bridge_letter(env, "event_too_large")
        assert oversized["source_topic"] == env.subscription
        assert '"force": true' in bridge_letter(env, "not_a_notification")["raw"]
        assert get_json(f"{env.base}/api/jobs/forged")[0] == 404

        # every output lands in the watched bucket and is announced too: none makes a job
        wait_counted(env.base, "own_object", 40)
        wait_counted(env.base, "unmatched", 5)
        wait_counted(env.base, "job", 22)  # 20 photos, the broken one, the duplicate
        listed = get_json(f"{env.base}/api/jobs?limit=100")[1]
        assert listed["total"] == 21, listed
        outputs = list(env.client.list_blobs(env.bucket, prefix="imgpipe/outputs/"))
        assert len(outputs) == 40
        assert storage_events(env.base)["job"] == 22
    finally:
        assert stop_bridge(bridge) == 0  # SIGTERM: stops cleanly
    log = (env.root / "bridge.log").read_text()
    assert "stopped:" in log and "notification(s) bridged" in log


def test_a_bridge_killed_mid_stream_loses_and_duplicates_nothing(chain):
    env = chain
    uploads = []
    bridge = start_bridge(env)
    try:
        for i in range(15):
            uploads.append(upload(env, f"incoming/kill-{i:02d}.jpg", photo(200 + i)))
            if i == 7:  # some notifications bridged, others pulled but not yet acked
                wait_finished(env.base, job_of(uploads[0]))
                stop_bridge(bridge, signal.SIGKILL)
        bridge = start_bridge(env)
        states = [wait_finished(env.base, job_of(u)) for u in uploads]
    finally:
        stop_bridge(bridge)
    assert all(s["status"] == "DONE" for s in states), states
    assert all([h["status"] for h in s["history"]].count("PROCESSING") == 1 for s in states)
    names = [b.name for b in env.client.list_blobs(env.bucket, prefix="imgpipe/outputs/")
             if "kill-" in b.name]
    assert len(names) == 30 and len(set(names)) == 30  # two outputs per upload, once each
    listed = get_json(f"{env.base}/api/jobs?limit=200&q=kill")[1]
    assert listed["total"] == 15, listed
