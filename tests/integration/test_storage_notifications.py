"""Bucket notifications through the real pipeline: uploads to fake-gcs-server, their
notifications on the ingest topic as Google's Pub/Sub source connector writes them
(attributes as headers, the object resource as the value), a worker with a rules file.

Uploads a route takes become jobs with the preset's outputs; uploads outside every route,
delete events and the pipeline's own outputs make none; a notification delivered twice
makes one job; a corrupt upload ends in the dead-letter topic with its object's name."""

from __future__ import annotations

import json

import pytest

from pipeline.dev.samples import photo_like
from pipeline.objects.gcs import make_client
from tests.conftest import new_bucket, running_pipeline
from tests.http import get_json, post_form
from tests.images import encode
from tests.kafkautil import produce_raw, read_topic
from tests.notify import (
    job_of,
    storage_events,
    wait_counted,
    wait_finished,
    write_rules,
)

pytestmark = pytest.mark.kafka



@pytest.fixture(scope="module")
def watched(kafka, fake_gcs, tmp_path_factory, request):
    bucket = new_bucket("uploads")
    root = tmp_path_factory.mktemp("notify")
    rules = write_rules(root / "rules.toml", bucket, ("image/jpeg",))
    gen = running_pipeline(kafka, root, request,
                           IMGPIPE_OBJECT_STORE=f"gs://{bucket}/imgpipe",
                           IMGPIPE_SOURCE_ROOTS=f"gs://{bucket}/incoming/",
                           IMGPIPE_RULES_FILE=str(rules))
    env = next(gen)
    env.bucket = bucket
    env.client = make_client()
    yield env
    env.client.close()
    next(gen, None)


def upload(env, name: str, data: bytes, content_type: str = "image/jpeg") -> dict:
    """Store an object and return its resource, as GCS would put it in a notification."""
    blob = env.client.bucket(env.bucket).blob(name)
    blob.upload_from_string(data, content_type=content_type)
    blob.reload()
    return {"kind": "storage#object", "bucket": env.bucket, "name": name,
            "generation": str(blob.generation), "contentType": content_type,
            "size": str(blob.size), "timeCreated": blob.time_created.isoformat()}


def notification(resource: dict, event_type: str = "OBJECT_FINALIZE") -> tuple:
    headers = [("eventType", event_type.encode()), ("bucketId", resource["bucket"].encode()),
               ("objectId", resource["name"].encode()),
               ("objectGeneration", resource["generation"].encode()),
               ("payloadFormat", b"JSON_API_V1")]
    # The connector keys records by the Pub/Sub message id (or not at all).
    return None, json.dumps(resource).encode(), headers


def test_uploads_become_jobs_once_and_nothing_else_does(watched):
    env = watched
    base = env.env["IMGPIPE_API_URL"]
    photos = [upload(env, f"incoming/photo-{i}.jpg",
                     encode(photo_like(480, 320, i), "JPEG", quality=85)) for i in range(8)]
    outside = [upload(env, f"private/photo-{i}.jpg", encode(photo_like(200, 100, i), "JPEG"))
               for i in range(3)]
    wrong_type = upload(env, "incoming/notes.txt", b"not an image", "text/plain")
    broken = upload(env, "incoming/broken.jpg",
                    encode(photo_like(400, 300, 9), "JPEG")[:1500])
    records = [notification(r) for r in (*photos, *outside, wrong_type, broken)]
    records += [notification(photos[0]),  # Pub/Sub delivers at least once
                notification(photos[1], "OBJECT_METADATA_UPDATE"),
                notification(photos[2], "OBJECT_DELETE")]
    produce_raw(env.settings.bootstrap_servers, env.settings.topic("ingest"), records)

    states = {r["name"]: wait_finished(base, job_of(r)) for r in (*photos, broken)}
    for photo in photos:
        state = states[photo["name"]]
        assert state["status"] == "DONE", state
        assert state["name"] == photo["name"].rsplit("/", 1)[1] and state["tenant"] == "acme"
        sizes = {o["variant"]: (o["width"], o["height"]) for o in state["outputs"]}
        assert sizes == {"thumb": (96, 64), "large": (320, 213)}
    first = states[photos[0]["name"]]
    assert [h["status"] for h in first["history"]].count("PROCESSING") == 1

    assert states[broken["name"]]["status"] == "FAILED"
    letters = read_topic(env.settings.bootstrap_servers, env.settings.topic("dlq"))
    [letter] = [d for d in letters if d.get("job_id") == job_of(broken)]
    assert letter["request"]["source"] == f"gs://{env.bucket}/incoming/broken.jpg"

    wait_counted(base, "job", 10)  # 8 photos, the broken one, the duplicate
    wait_counted(base, "unmatched", 4)  # three outside the prefix, one of another type
    wait_counted(base, "ignored_event", 2)
    # the pipeline's own outputs land in the same bucket: their notifications make no job
    outputs = [b for b in env.client.list_blobs(env.bucket, prefix="imgpipe/outputs/")]
    assert len(outputs) == 16  # 8 jobs x 2 variants, the duplicate wrote nothing more
    produce_raw(env.settings.bootstrap_servers, env.settings.topic("ingest"),
                [notification({"kind": "storage#object", "bucket": env.bucket,
                               "name": b.name, "generation": str(b.generation),
                               "contentType": b.content_type, "size": str(b.size)})
                 for b in outputs[:3]])
    wait_counted(base, "own_object", 3)
    listed = get_json(f"{base}/api/jobs?limit=100")[1]
    assert listed["total"] == 9, listed  # 8 photos + the broken one: nothing else
    counts = storage_events(base)
    assert counts == {"job": 10, "unmatched": 4, "ignored_event": 2, "own_object": 3}


def test_the_cli_and_the_api_name_a_preset(watched, tmp_path):
    env = watched
    base = env.env["IMGPIPE_API_URL"]
    path = tmp_path / "beach.jpg"
    path.write_bytes(encode(photo_like(600, 400, 3), "JPEG"))
    code, [job] = env.cli_json("submit", str(path), "--preset", "web", "--tenant", "acme",
                               "--wait", "--json")
    assert code == 0 and job["status"] == "DONE", job
    assert {o["variant"]: (o["width"], o["height"]) for o in job["outputs"]} == {
        "thumb": (96, 64), "large": (320, 213)}
    refused = env.cli("submit", str(path), "--preset", "nope")
    assert refused.returncode != 0 and "no preset 'nope'" in refused.stderr, refused.stderr
    assert "web" in refused.stderr  # the known ones are named

    status, _, body = post_form(f"{base}/api/jobs", {"preset": "web"},
                                {"image": ("city.jpg", encode(photo_like(300, 300, 4), "JPEG"))})
    assert status == 202, body
    done = wait_finished(base, body["job_id"])
    assert sorted(o["variant"] for o in done["outputs"]) == ["large", "thumb"]
    status, _, body = post_form(f"{base}/api/jobs", {"preset": "nope"},
                                {"image": ("city.jpg", encode(photo_like(300, 300, 4), "JPEG"))})
    assert (status, body["code"]) == (400, "unknown_preset"), body
    status, _, body = post_form(f"{base}/api/jobs", {"preset": "web", "variant": "t=png"},
                                {"image": ("city.jpg", encode(photo_like(300, 300, 4), "JPEG"))})
    assert (status, body["code"]) == (400, "bad_variants"), body


def test_replaying_the_ingest_topic_makes_no_job_twice(watched):
    """Notifications are replayed as they came (attributes included): ingest names the
    same jobs, finds them DONE and makes nothing new."""
    env = watched
    base = env.env["IMGPIPE_API_URL"]
    uploads = [upload(env, f"incoming/replay-{i}.jpg", encode(photo_like(300, 200, 40 + i),
                                                              "JPEG")) for i in range(2)]
    elsewhere = upload(env, "private/replay.jpg", encode(photo_like(100, 100, 49), "JPEG"))
    produce_raw(env.settings.bootstrap_servers, env.settings.topic("ingest"),
                [notification(r) for r in (*uploads, elsewhere)]
                + [notification(uploads[0], "OBJECT_DELETE")])
    for made in uploads:
        assert wait_finished(base, job_of(made))["status"] == "DONE"
    wait_counted(base, "ignored_event", 1)
    wait_counted(base, "unmatched", 1)
    jobs_before = get_json(f"{base}/api/jobs?limit=200")[1]["jobs"]
    outputs_before = sorted(b.name for b in env.client.list_blobs(
        env.bucket, prefix="imgpipe/outputs/"))
    counted = storage_events(base)
    code, summary = env.cli_json("replay", "--topic", "ingest", "--from-beginning", "--json")
    assert code == 0 and summary["sent"] > 0 and summary["skipped"] == 0, summary
    # the replayed notifications that make no job are judged again, as before
    for outcome in ("unmatched", "ignored_event"):
        wait_counted(base, outcome, 2 * counted[outcome])
    wait_counted(base, "job", 2 * counted["job"])
    jobs_after = get_json(f"{base}/api/jobs?limit=200")[1]["jobs"]
    assert sorted(j["job_id"] for j in jobs_after) == sorted(j["job_id"] for j in jobs_before)
    # DONE jobs are not run again (a FAILED one is tried again, as any replayed job is)
    twice = [(j["job_id"], [h["status"] for h in j["history"]]) for j in jobs_after
             if j["status"] == "DONE"
             and [h["status"] for h in j.get("history", [])].count("PROCESSING") > 1]
    assert twice == [], twice
    assert sorted(b.name for b in env.client.list_blobs(
        env.bucket, prefix="imgpipe/outputs/")) == outputs_before
