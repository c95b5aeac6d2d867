"""The HTTP API over real HTTP: two workers on the real broker, submissions to one and
queries to the other, bad requests refused with nothing produced, and stats, lag,
dead letters and /metrics that match what was processed."""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from pathlib import Path

import pytest
import yaml
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from pipeline.cli.client import store_sources
from tests import http, images
from tests.conftest import running_pipeline
from tests.hostile import png_bomb
from tests.http import get_json, post_form, post_json, request
from tests.images import encode, quadrants
from tests.kafkautil import read_topic
from tests.runtimes import SOURCES

pytestmark = pytest.mark.kafka

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MAX_BYTES = 400_000
SPECS = ["thumb=fit:64x64,webp:q70", "large=fit:160x160,jpeg:q85"]


@pytest.fixture(scope="module")
def cluster(kafka, tmp_path_factory, request):
    """Two workers of one group; ``urls`` are their API bases."""
    gen = running_pipeline(kafka, tmp_path_factory.mktemp("http"), request,
                           IMGPIPE_MAX_SOURCE_BYTES=str(MAX_BYTES),
                           IMGPIPE_MAX_SOURCE_PIXELS="4000000")
    env = next(gen)
    _, port, _ = env.start_worker("w2")
    env.urls = [env.env["IMGPIPE_API_URL"], f"http://127.0.0.1:{port}"]
    for url in env.urls:  # both members of the group, partitions assigned
        deadline = time.monotonic() + 60
        while get_json(f"{url}/readyz", wait_503=0)[0] != 200:
            assert time.monotonic() < deadline, f"{url} never became ready"
            time.sleep(0.5)
    yield env
    next(gen, None)  # stops the workers


def wait_terminal(url: str, job_id: str) -> dict:
    return http.wait_terminal(url, job_id, timeout=90)


def photo(width: int = 240, height: int = 160) -> bytes:
    return encode(quadrants(width, height), "JPEG", quality=90)


def ingest_count(env) -> int:
    return len(read_topic(env.settings.bootstrap_servers, env.settings.topic("ingest")))


def test_upload_is_processed_and_any_worker_answers(cluster):
    first, second = cluster.urls
    status, headers, body = post_form(f"{first}/api/jobs",
                                      {"variant": SPECS, "priority": "high",
                                       "label": "from the API test"},
                                      {"image": ("beach photo.jpg", photo())})
    assert status == 202, body
    job_id = body["job_id"]
    assert job_id.startswith("beach-photo-")  # readable: the file's stem and a random part
    assert headers["Location"] == f"/api/jobs/{job_id}" == body["status_url"]
    assert "/sources/dt=" in body["source"] and body["source"].endswith("/source.jpg")

    states = [wait_terminal(url, job_id) for url in cluster.urls]
    assert states[0] == states[1]  # same answer whichever worker is asked
    assert states[0]["status"] == "DONE" and states[0]["priority"] == "high"
    assert states[0]["name"] == "beach photo.jpg"  # the uploaded file's name, kept
    assert states[0]["label"] == "from the API test"
    sizes = {o["variant"]: (o["width"], o["height"], o["format"]) for o in states[0]["outputs"]}
    assert sizes == {"thumb": (64, 43, "webp"), "large": (160, 107, "jpeg")}

    for url in (first, second):
        for variant, (width, height, fmt) in sizes.items():
            status, headers, data = request("GET", f"{url}/api/jobs/{job_id}/outputs/{variant}")
            assert status == 200 and headers["Content-Type"] == f"image/{fmt}"
            image = Image.open(io.BytesIO(data))
            assert image.size == (width, height) and image.format.lower() == fmt
    status, _, _ = request("GET", f"{second}/api/jobs/{job_id}/outputs/nope")
    assert status == 404


def test_json_submission_by_uri_is_idempotent(cluster, tmp_path):
    path = tmp_path / "in.png"
    path.write_bytes(encode(quadrants(120, 80), "PNG"))
    job_id = f"json-{uuid.uuid4().hex[:8]}"
    [stored] = store_sources(cluster.settings, [path], [f"acme:{job_id}"])  # acme's area
    payload = {"source": stored.source, "job_id": job_id, "tenant": "acme",
               "variants": {"small": [{"op": "resize", "width": 30},
                                      {"op": "encode", "format": "png"}]}}
    status, body = post_json(f"{cluster.urls[1]}/api/jobs", payload)
    assert status == 202 and body["job_id"] == f"acme:{job_id}"  # qualified by tenant
    job_id = body["job_id"]
    done = wait_terminal(cluster.urls[0], job_id)
    assert done["status"] == "DONE" and done["tenant"] == "acme"
    assert [(o["width"], o["height"]) for o in done["outputs"]] == [(30, 20)]

    # the same submission again is accepted and answered from the table: no second run
    assert post_json(f"{cluster.urls[0]}/api/jobs", payload)[0] == 202
    time.sleep(2)
    again = wait_terminal(cluster.urls[1], job_id)
    assert again["history"] == done["history"] and again["attempts"] == done["attempts"]
    outputs = list((cluster.root / "objects" / "outputs").rglob(
        f"tenant=acme/{job_id.split(':')[1]}/*"))
    assert [p.name for p in outputs] == ["small.png"]


def test_bad_requests_get_a_clear_4xx_and_produce_nothing(cluster):
    url = f"{cluster.urls[0]}/api/jobs"
    objects = cluster.root / "objects"
    before = ingest_count(cluster)
    image = {"image": ("p.jpg", photo())}
    form_cases = [
        ({}, {"image": ("x.txt", b"#!/bin/sh\necho hi\n")}, 422, "not_an_image"),
        ({}, {"image": ("bomb.png", png_bomb(30000, 30000))}, 422, "decompression_bomb"),
        ({}, {"image": ("big.jpg", b"\xff" * (MAX_BYTES + 10))}, 413, "upload_too_large"),
        ({}, {"image": ("e.jpg", b"")}, 422, "empty_source"),
        ({}, {}, 400, "missing_field"),
        ({"variant": "t=blurry:3"}, image, 400, "bad_spec"),
        ({"variants": "{not json"}, image, 400, "bad_variants"),
        ({"priority": "urgent"}, image, 400, "bad_priority"),
        ({"job_id": "../../etc"}, image, 400, "bad_job_id"),
        ({"colour": "red"}, image, 400, "unknown_field"),
        ({"variant": "t=fit:64x64,tiff"}, image, 400, "bad_spec"),
    ]
    for fields, files, status, code in form_cases:
        got, _, body = post_form(url, fields, files)
        assert (got, body.get("code")) == (status, code), (fields, list(files), body)
        assert body["error"]  # a sentence for the user, not just a code
    json_cases = [
        ({"source": "file:///etc/passwd"}, 403, "source_not_allowed"),
        ({"source": f"file://{objects}/../metadata.db"}, 403, None),
        ({"source": "http://169.254.169.254/latest/meta-data"}, 403, None),
        ({"variants": {}}, 400, "missing_field"),
        ({"source": f"file://{objects}/a.jpg", "variants": {"x": [{"op": "resize",
                                                                    "width": -5}]}},
         400, None),
    ]
    for payload, status, code in json_cases:
        got, body = post_json(url, payload)
        assert got == status and body["error"], (payload, body)
        assert code is None or body["code"] == code, body
    got, _, reply = request("POST", url, b"hello", {"Content-Type": "text/plain"})
    assert got == 400 and b"multipart/form-data" in reply
    got, _, reply = request("POST", url, b"{", {"Content-Type": "application/json"})
    assert got == 400 and b"malformed_json" in reply

    assert ingest_count(cluster) == before  # nothing reached Kafka
    assert not list(objects.rglob("upload*")) and not list(
        (cluster.root / "w1").rglob("upload-*"))  # temp files cleaned up
    metrics = scrape(cluster.urls[0])
    refused = metrics.get(("imgpipe_api_submissions_total", (("outcome", "not_an_image"),)))
    assert refused == 1


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    status, _, body = request("GET", f"{url}/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == x for k, x in labels.items()))


def test_stats_lag_deadletters_and_metrics_match_the_work(cluster):
    first, second = cluster.urls
    accepted_before = sum(total(scrape(url), "imgpipe_api_submissions_total",
                                outcome="accepted") for url in cluster.urls)
    job_ids = []
    for i in range(6):
        status, _, body = post_form(f"{first if i % 2 else second}/api/jobs",
                                    {"variant": SPECS[0], "priority": "low"},
                                    {"image": (f"{i}.jpg", photo(200 + i, 150))})
        assert status == 202
        job_ids.append(body["job_id"])
    missing = f"missing-{uuid.uuid4().hex[:6]}"
    status, body = post_json(f"{first}/api/jobs", {
        "source": f"file://{cluster.root / 'objects'}/{SOURCES}/{missing}/nothing-here.jpg",
        "job_id": missing})
    assert status == 202
    for job_id in job_ids:
        assert wait_terminal(first, job_id)["status"] == "DONE"
    assert wait_terminal(second, missing)["error_code"] == "source_not_found"

    status, listed = get_json(f"{second}/api/jobs?limit=1000")
    assert status == 200 and not listed["errors"]
    by_status: dict[str, int] = {}
    for job in listed["jobs"]:
        by_status[job["status"]] = by_status.get(job["status"], 0) + 1
    assert len({j["job_id"] for j in listed["jobs"]}) == len(listed["jobs"])  # no doubles
    assert {j["job_id"] for j in listed["jobs"]} >= set(job_ids) | {missing}
    status, lows = get_json(f"{first}/api/jobs?priority=low&status=DONE")
    assert {j["job_id"] for j in lows["jobs"]} == set(job_ids)

    low_topic = cluster.settings.priority_topic("low")

    def current_stats(url: str) -> tuple[int, dict]:
        # Lag answers are cached for 2 s (dashboards poll): wait out a cached answer
        # from before the last jobs, then assert on a fresh one.
        deadline = time.monotonic() + 10
        while True:
            status, stats = get_json(f"{url}/api/stats")
            fresh = status == 200 and sum(lag["end_offset"] for lag in stats.get("lag", [])
                                          if lag["topic"] == low_topic) >= 6
            if fresh or time.monotonic() > deadline:
                return status, stats
            time.sleep(0.5)

    for url in cluster.urls:
        status, stats = current_stats(url)
        assert status == 200 and not stats["errors"], stats
        assert stats["jobs"] == by_status
        assert stats["partitions"] == [0, 1, 2, 3]  # both workers' parts, once each
        assert stats["jobs_by_priority"]["DONE"]["low"] == 6
        windows = stats["throughput"]["windows"]
        assert sum(w["count"] for w in windows if w["outcome"] == "done") == by_status["DONE"]
        assert sum(w["count"] for w in windows if w["outcome"] == "failed") == 1
        topics = {lag["topic"] for lag in stats["lag"]}
        assert topics == {cluster.settings.topic(t) for t in ("ingest", "retry")} | {
            cluster.settings.priority_topic(p) for p in ("high", "normal", "low")}
        assert len(stats["lag"]) == 5 * 4
        assert set(stats["lag_by_priority"]) == {"high", "normal", "low"}
        assert all(lag["end_offset"] >= (lag["committed"] or 0) for lag in stats["lag"])
        assert sum(lag["end_offset"] for lag in stats["lag"] if lag["topic"] == low_topic) >= 6

    status, dlq = get_json(f"{second}/api/deadletters")
    [record] = [r for r in dlq["records"] if r["job_id"] == missing]
    assert record["reason"] == "source_not_found" and record["stage"] == "process"

    # /metrics of both workers add up to what was processed, and faust's sensor is there
    deadline = time.monotonic() + 30
    while True:
        samples = [scrape(url) for url in cluster.urls]
        lag_series = sum(1 for s in samples for (name, _) in s if name == "imgpipe_consumer_lag")
        if lag_series == 5 * 4 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert lag_series == 5 * 4  # each partition exported by exactly one worker
    done = sum(total(s, "imgpipe_jobs_total", outcome="done") for s in samples)
    assert done == by_status["DONE"]
    assert sum(total(s, "imgpipe_jobs_total", outcome="failed") for s in samples) == 1
    assert sum(total(s, "imgpipe_dead_letters_total", reason="source_not_found")
               for s in samples) == 1
    accepted = sum(total(s, "imgpipe_api_submissions_total", outcome="accepted")
                   for s in samples)
    assert accepted - accepted_before == 7
    assert sum(total(s, "imgpipe_op_seconds_count", op="encode") for s in samples) >= done
    assert any(total(s, "faust_messages_received_total") > 0 for s in samples)


def test_probes_and_dashboard_are_served(cluster):
    for url in cluster.urls:
        assert get_json(f"{url}/healthz")[1] == {"status": "ok"}
        status, ready = get_json(f"{url}/readyz", wait_503=0)
        assert status == 200 and ready["ready"] and ready["partitions"] > 0
        status, _, page = request("GET", f"{url}/")
        assert status == 200 and b"<title>imgpipe</title>" in page
        status, _, script = request("GET", f"{url}/static/dashboard.js")
        assert status == 200 and b"/api/stats" in script


def exported_names(url: str) -> set[str]:
    """Every series name /metrics can carry, from its TYPE lines (a labelled metric is
    declared before its first sample)."""
    _, _, body = request("GET", f"{url}/metrics")
    names = set()
    suffixes = {"counter": ("", "_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("", "_sum", "_count", "_created"), "untyped": ("",)}
    for line in body.decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            base = name.removesuffix("_total") if kind == "counter" else name
            names.update(base + suffix for suffix in suffixes.get(kind, ("",)))
    return names


def referenced_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:imgpipe|faust)_[a-z_]+)\b", expr))


def test_grafana_dashboard_and_alert_rules_use_exported_metrics(cluster):
    exported = exported_names(cluster.urls[0])
    dashboard = json.loads((DEPLOY / "grafana" / "imgpipe-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10 and {p["id"] for p in dashboard["panels"]} == set(
        range(1, len(dashboard["panels"]) + 1))
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = [r for group in rules["groups"] for r in group["rules"]]
    assert {"ImgpipeWorkerDown", "ImgpipeConsumerLagGrowing", "ImgpipeNoProgress",
            "ImgpipeDeadLetterRate"} <= {a["alert"] for a in alerts}
    for alert in alerts:
        assert alert["expr"] and alert["for"] and alert["annotations"]["summary"], alert
        exprs.append(alert["expr"])
    used = set().union(*(referenced_metrics(e) for e in exprs))
    assert {"imgpipe_consumer_lag", "imgpipe_job_latency_seconds_bucket",
            "imgpipe_dead_letters_total"} <= used
    assert used - exported == set(), "referenced but never exported"


def test_many_job_states_in_one_call_from_any_worker(cluster):
    first, second = cluster.urls
    ids = []
    for i in range(8):  # keys spread over both workers' partitions
        status, _, body = post_form(f"{first}/api/jobs", {"variant": SPECS[:1]},
                                    {"image": (f"many-{i}.png", encode(quadrants(40, 30)))})
        assert status == 202, body
        ids.append(body["job_id"])
    for job_id in ids:
        wait_terminal(first, job_id)
    asked = [*ids, "no-such-job", "other:tenant-job", "../bad"]
    for url in (first, second):  # each answers for the whole group in one call
        status, body = post_json(f"{url}/api/job-states", {"job_ids": asked})
        assert status == 200, body
        assert body["later"] == []
        assert all(body["jobs"][j]["status"] == "DONE" for j in ids)
        assert {body["jobs"][j]["name"] for j in ids} == {f"many-{i}.png" for i in range(8)}
        assert body["jobs"]["no-such-job"] is None and body["jobs"]["../bad"] is None
    # brief: finished jobs whole, as above (a job in flight would come as id and status)
    status, body = post_json(f"{second}/api/job-states?brief=1", {"job_ids": ids})
    assert status == 200 and all(body["jobs"][j]["outputs"] for j in ids)
    # finished: only finished jobs, whole (unknown and unseeable ids left out, from both
    # workers: half of the ids are forwarded to the other one)
    for url in (first, second):
        status, body = post_json(f"{url}/api/job-states?view=finished", {"job_ids": asked})
        assert status == 200 and body["later"] == [], body
        assert set(body["jobs"]) == set(ids) and all(body["jobs"][j]["outputs"] for j in ids)
    status, body = post_json(f"{first}/api/job-states?view=everything", {"job_ids": ids})
    assert status == 400 and body["code"] == "bad_param"
    status, body = post_json(f"{first}/api/job-states", {"job_ids": ["x"] * 1001})
    assert status == 400 and body["code"] == "bad_param"
    status, body = post_json(f"{first}/api/job-states", {"ids": []})
    assert status == 400


def test_facts_placeholders_and_similar_uploads_through_the_pipeline(cluster):
    """A photograph and two near copies (resized, cropped) become jobs whose state,
    result record and metadata row carry the source's facts; asking for the original's
    near-duplicates finds exactly the copies, from either worker."""
    first, second = cluster.urls
    portrait = images.photo("astronaut")
    uploads = {"astronaut.webp": encode(portrait, "WEBP", quality=95),  # < MAX_BYTES
               **dict(zip(("smaller.jpg", "cropped.jpg"), images.derivatives(portrait),
                          strict=True)),
               "coffee.webp": encode(images.photo("coffee"), "WEBP", quality=95)}
    ids = {}
    for name, data in uploads.items():
        status, _, body = post_form(f"{first}/api/jobs", {"variant": SPECS},
                                    {"image": (name, data)})
        assert status == 202, body
        ids[name] = body["job_id"]
    states = {name: wait_terminal(second, job_id) for name, job_id in ids.items()}
    assert all(s["status"] == "DONE" for s in states.values()), states
    original = states["astronaut.webp"]["image"]
    assert {k: original[k] for k in ("width", "height", "format", "alpha", "frames")} == {
        "width": 512, "height": 512, "format": "webp", "alpha": False, "frames": 1}
    assert len(original["placeholder"]) == 28 and re.fullmatch(r"#[0-9a-f]{6}",
                                                               original["colour"])
    assert states["smaller.jpg"]["image"]["width"] == 307
    assert states["smaller.jpg"]["image"]["format"] == "jpeg"

    results = {r["job_id"]: r for r in read_topic(cluster.settings.bootstrap_servers,
                                                  cluster.settings.topic("results"))}
    assert results[ids["astronaut.webp"]]["image"] == original
    from pipeline.metadata import open_metadata_store

    store = open_metadata_store(cluster.env["IMGPIPE_METADATA_URL"])
    try:
        assert store.get_job(ids["astronaut.webp"]).image == original
    finally:
        store.close()

    for url in (first, second):
        status, body = get_json(f"{url}/api/jobs/{ids['astronaut.webp']}/similar")
        assert status == 200, body
        assert sorted(s["job_id"] for s in body["similar"]) == sorted(
            [ids["smaller.jpg"], ids["cropped.jpg"]])
        assert all(0 <= s["distance"] <= body["max_distance"] for s in body["similar"])
    code, answer = cluster.cli_json("similar", ids["astronaut.webp"], "--json")
    assert code == 0 and {s["job_id"] for s in answer["similar"]} == {
        ids["smaller.jpg"], ids["cropped.jpg"]}
    listed = cluster.cli("similar", ids["coffee.webp"], "--max-distance", "3", check=True)
    assert listed.stdout.startswith("0 job(s) within 3 bits of")
    status, body = get_json(f"{first}/api/jobs/{ids['astronaut.webp']}/similar?max_distance=99")
    assert status == 400 and body["code"] == "bad_query"
    status, body = get_json(f"{first}/api/jobs/no-such-job/similar")
    assert status == 404
