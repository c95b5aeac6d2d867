"""`imgpipe dev gcs|spanner|pubsub`: the emulators by hand, started as the tests start them,
with the exports a shell needs printed first."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from pipeline.kafka import local as localkafka
from pipeline.objects import open_object_store


def serve(tmp_path, *args: str, last: str = "IMGPIPE_", env: dict | None = None
          ) -> tuple[subprocess.Popen, dict[str, str]]:
    """Start `imgpipe dev ARGS`; its process and the exports it printed (up to the one
    whose name contains ``last``)."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "dev", *args],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "",
                                            **(env or {})})
    exports = {}
    while last not in "".join(exports):
        line = proc.stdout.readline()
        assert line, proc.stderr.read()[-2000:]
        name, _, value = line.strip().removeprefix("export ").partition("=")
        exports[name] = value
    return proc, exports


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


def test_dev_gcs_serves_a_bucket_the_object_store_can_use(fake_gcs, tmp_path, monkeypatch):
    port = localkafka.free_port()
    proc, exports = serve(tmp_path, "gcs", "--port", str(port), "--bucket", "walk")
    try:
        assert exports == {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
                           "IMGPIPE_OBJECT_STORE": "gs://walk/imgpipe"}
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", exports["STORAGE_EMULATOR_HOST"])
        store = open_object_store(exports["IMGPIPE_OBJECT_STORE"])
        uri = store.put("a/b.txt", b"hello", "text/plain")
        assert store.get(uri, 10) == b"hello"
        store.close()
    finally:
        assert stop(proc) == 0
    with socket.socket() as probe:  # stopped with it
        assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.usefixtures("spanner_emulator")  # fails loudly if the SDK lacks it
def test_dev_spanner_prints_what_db_migrate_needs(tmp_path):
    port = localkafka.free_port()
    proc, exports = serve(tmp_path, "spanner", "--port", str(port))
    try:
        assert exports["SPANNER_EMULATOR_HOST"] == f"127.0.0.1:{port}"
        assert exports["IMGPIPE_METADATA_URL"].startswith("spanner://projects/local/")
        env = {**os.environ, **exports}
        migrate = subprocess.run([sys.executable, "-m", "pipeline.cli", "db", "migrate"],
                                 env=env, capture_output=True, text=True, timeout=120)
        assert migrate.returncode == 0, migrate.stderr[-2000:]
    finally:
        assert stop(proc) == 0


def test_dev_pubsub_and_gcs_publish_object_events_like_cloud_storage(tmp_path, monkeypatch):
    from google.cloud import pubsub_v1

    from pipeline.objects.gcs import make_client

    topic = "projects/local/topics/uploads"
    pubsub, exports = serve(tmp_path, "pubsub", "--topic", topic, last="PUBSUB_")
    gcs = None
    try:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", exports["PUBSUB_EMULATOR_HOST"])
        subscription = "projects/local/subscriptions/uploads-test"
        with pubsub_v1.SubscriberClient() as subscriber:
            subscriber.create_subscription(name=subscription, topic=topic)
        gcs, gcs_exports = serve(tmp_path, "gcs", "--bucket", "uploads", "--events-topic",
                                 topic, env=exports)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_exports["STORAGE_EMULATOR_HOST"])
        client = make_client()
        client.bucket("uploads").blob("incoming/a.jpg").upload_from_string(b"x")
        client.close()
        with pubsub_v1.SubscriberClient() as subscriber:
            received = []
            while not received:  # published asynchronously: pull until it is there
                received = subscriber.pull(subscription=subscription, max_messages=1,
                                           timeout=30).received_messages
        attributes = dict(received[0].message.attributes)
        assert (attributes["eventType"], attributes["bucketId"], attributes["objectId"]) == (
            "OBJECT_FINALIZE", "uploads", "incoming/a.jpg")
    finally:
        if gcs is not None:
            assert stop(gcs) == 0
        assert stop(pubsub) == 0
