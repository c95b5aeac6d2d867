"""Bucket notifications at ingest: the shapes they arrive in, the routes and presets of
the rules file, and the loop and replay safety of the jobs they make."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pipeline.errors import ConfigError, InvalidRequest, SourceNotAllowed
from pipeline.jobs.admission import AdmissionPolicy
from pipeline.jobs.rules import StoredObject, load_rules
from pipeline.jobs.sources import SourcePolicy
from pipeline.jobs.storage_events import header_pairs, storage_event
from pipeline.jobs.storage_jobs import IGNORED_EVENT, JOB, OWN_OBJECT, UNMATCHED, StorageJobs
from pipeline.objects import MemoryObjectStore
from pipeline.ops import Limits

RULES = """
[presets.web]
thumb = "fit:256x256,webp:q80"
large = [{op = "resize", width = 1280}, {op = "encode", format = "jpeg", quality = 85}]

[[routes]]
bucket = "uploads"
prefix = "incoming/"
content_types = ["image/jpeg", "image/png"]
max_bytes = 1000000
preset = "web"
tenant = "acme"
priority = "high"

[[routes]]
bucket = "uploads"
prefix = "incoming/"
preset = "default"
"""


def resource(name: str = "incoming/cat.jpg", generation: str = "1700000000000001",
             **extra) -> dict:
    return {"kind": "storage#object", "bucket": "uploads", "name": name,
            "generation": generation, "contentType": "image/jpeg", "size": "52000",
            "timeCreated": "2026-12-01T10:00:00.000Z", **extra}


def notification(event_type: str = "OBJECT_FINALIZE", **extra) -> tuple[bytes, list]:
    """As the Pub/Sub source connector writes it: attributes as headers."""
    body = resource(**extra)
    headers = [("eventType", event_type.encode()), ("bucketId", b"uploads"),
               ("objectId", body["name"].encode()),
               ("objectGeneration", body["generation"].encode()),
               ("payloadFormat", b"JSON_API_V1")]
    return json.dumps(body).encode(), headers


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    return load_rules(str(path), Limits(), 16)


@pytest.fixture
def jobs(rules):
    return StorageJobs(rules, ("gs://uploads/imgpipe/outputs/", "gs://uploads/imgpipe/lake/"))


def test_the_three_shapes_name_the_same_object():
    raw, headers = notification()
    from_connector = storage_event(raw, headers)
    structured = storage_event(json.dumps({
        "specversion": "1.0", "type": "google.cloud.storage.object.v1.finalized",
        "source": "//storage.googleapis.com/projects/_/buckets/uploads", "id": "1",
        "data": resource()}).encode(), [])
    binary = storage_event(json.dumps(resource()).encode(),
                           [("ce_type", b"google.cloud.storage.object.v1.finalized"),
                            ("ce_specversion", b"1.0")])
    assert from_connector == structured == binary
    assert (from_connector.uri, from_connector.event, from_connector.size) == (
        "gs://uploads/incoming/cat.jpg", "finalize", 52000)
    # a JobRequest is none of them
    assert storage_event(json.dumps({"job_id": "a", "source": "gs://x/y",
                                     "variants": {}}).encode(), []) is None
    assert storage_event(b"not json", []) is None


def test_faust_style_header_mappings_are_read_too():
    raw, headers = notification()
    mapping = {key: value for key, value in headers}
    assert storage_event(raw, mapping).name == "incoming/cat.jpg"
    assert header_pairs(mapping) == headers


@pytest.mark.parametrize("mutate, code", [
    (lambda h: [(k, b"NOT A BUCKET!" if k == "bucketId" else v) for k, v in h],
     "bad_storage_event"),
    (lambda h: [(k, b"12ab" if k == "objectGeneration" else v) for k, v in h],
     "bad_storage_event"),
    (lambda h: [(k, b"x" * 2000 if k == "objectId" else v) for k, v in h],
     "bad_storage_event"),
])
def test_hostile_notifications_are_refused_with_a_code(mutate, code):
    raw, headers = notification()
    with pytest.raises(InvalidRequest) as refused:
        storage_event(raw, mutate(headers))
    assert refused.value.code == code


def test_a_cloudevent_of_another_kind_is_refused():
    with pytest.raises(InvalidRequest) as refused:
        storage_event(json.dumps({"specversion": "1.0", "type": "com.example.thing",
                                  "data": {}}).encode(), [])
    assert refused.value.code == "unknown_event_kind"


def test_routes_presets_and_outcomes(jobs):
    raw, headers = notification()
    request, outcome = jobs.request_for(storage_event(raw, headers))
    assert outcome == JOB and request.tenant == "acme" and request.priority == "high"
    assert list(request.variants) == ["thumb", "large"] and request.preset == "web"
    assert request.source == "gs://uploads/incoming/cat.jpg" and request.name == "cat.jpg"
    assert request.job_id.startswith("acme:cat-")
    # a type or size the first route refuses falls through to the second route
    gif = storage_event(*notification(contentType="image/gif"))
    assert jobs.request_for(gif)[0].variants.keys() == {"thumb", "large"}
    assert jobs.request_for(gif)[0].preset == "default"
    huge = storage_event(*notification(size="2000000"))
    assert jobs.request_for(huge)[0].tenant == "default"
    elsewhere = storage_event(*notification(name="private/cat.jpg"))
    assert jobs.request_for(elsewhere) == (None, UNMATCHED)
    for kind in ("OBJECT_DELETE", "OBJECT_METADATA_UPDATE", "OBJECT_ARCHIVE"):
        assert jobs.request_for(storage_event(*notification(kind))) == (None, IGNORED_EVENT)


def test_our_own_objects_never_make_jobs_even_where_a_route_watches(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[[routes]]\nbucket = "uploads"\npreset = "default"\n')  # all of it
    jobs = StorageJobs(load_rules(str(path), Limits(), 16),
                       ("gs://uploads/imgpipe/outputs/", "gs://uploads/imgpipe/sources/"))
    output = storage_event(*notification(name="imgpipe/outputs/dt=2026-12-01/a/thumb.webp"))
    assert jobs.request_for(output) == (None, OWN_OBJECT)
    upload = storage_event(*notification(name="imgpipe/uploads/a.jpg"))
    assert jobs.request_for(upload)[1] == JOB


def test_the_job_id_is_the_object_generation(jobs):
    first = jobs.request_for(storage_event(*notification()))[0]
    again = jobs.request_for(storage_event(*notification()))[0]
    overwritten = jobs.request_for(storage_event(*notification(generation="1700000000000002")))[0]
    assert first.job_id == again.job_id != overwritten.job_id
    assert first.submitted_at == again.submitted_at  # from the object, not the clock


def test_a_request_may_name_a_preset_instead_of_variants(rules):
    policy = AdmissionPolicy(Limits(), 16, SourcePolicy(MemoryObjectStore("b")), rules=rules)
    raw = json.dumps({"job_id": "p1", "source": "memory://b/sources/dt=2026-01-01/p1/x.jpg",
                      "preset": "web"}).encode()
    request, chains = policy.admit(raw)
    assert list(chains) == ["thumb", "large"] and request.variants == rules.preset("web")
    unknown = replace(request, variants={}, preset="nope")
    with pytest.raises(InvalidRequest) as refused:
        policy.admit_request(unknown)
    assert refused.value.code == "unknown_preset"


@pytest.mark.parametrize("text, says", [
    ("[[routes]]\nbucket = 'u'\npreset = 'nope'\n", "preset 'nope' is not defined"),
    ("[[routes]]\npreset = 'default'\n", "bucket is required"),
    ("[[routes]]\nbucket = 'u'\npreset = 'default'\ncolour = 1\n", "unknown key(s) colour"),
    ("[presets.x]\nt = 'fit:10x10,nosuchop'\n", "preset 'x'"),
    ("[[routes]]\nbucket = 'u'\npreset = 'default'\nmax_bytes = -1\n", "whole numbers"),
    ("[routes\n", "not valid TOML"),
    ("[other]\n", "unknown section(s) other"),
    ("[[routes]]\nbucket = 'uploads'\npreset = 'default'\nmin_bytes = 9\nmax_bytes = 1\n",
     "can never match: min_bytes 9"),
    ("[[routes]]\nbucket = 'Uploads!'\npreset = 'default'\n", "is not a bucket name"),
    ("[[routes]]\nbucket = 'uploads'\npreset = 'default'\ncontent_types = ['jpeg']\n",
     "MIME types"),
    ("[[routes]]\nbucket = 'uploads'\npreset = 'default'\n"
     "[[routes]]\nbucket = 'uploads'\nprefix = 'in/'\npreset = 'default'\n",
     "route #2 can never match: route #1 before it"),
])
def test_a_bad_rules_file_stops_the_worker_with_what_to_fix(tmp_path, text, says):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as failed:
        load_rules(str(path), Limits(), 16)
    assert says in failed.value.message and str(path) in failed.value.message


def test_a_stored_object_uri():
    assert StoredObject("b", "a/b.jpg", "1", "finalize").uri == "gs://b/a/b.jpg"


def test_a_route_grants_its_bucket_to_its_own_tenant_only(tmp_path):
    from pipeline.settings import Settings
    from pipeline.worker.runtime import Runtime

    path = tmp_path / "rules.toml"
    path.write_text('[[routes]]\nbucket = "uploads"\nprefix = "in/"\npreset = "default"\n'
                    'tenant = "acme"\n')
    settings = Settings.from_env({"IMGPIPE_RULES_FILE": str(path),
                                  "IMGPIPE_OBJECT_STORE": f"file://{tmp_path}/objects",
                                  "IMGPIPE_METADATA_URL": f"sqlite:///{tmp_path}/m.db"})
    runtime = Runtime(settings)
    try:
        runtime.sources.check("gs://uploads/in/a.jpg", "acme")
        for uri, tenant in [("gs://uploads/in/a.jpg", "mallory"),
                            ("gs://uploads/in/a.jpg", "default"),
                            ("gs://uploads/other/a.jpg", "acme")]:
            with pytest.raises(SourceNotAllowed) as refused:
                runtime.sources.check(uri, tenant)
            assert refused.value.code == "source_not_allowed"
    finally:
        runtime.close()


def test_a_route_prefix_grants_exactly_the_names_the_route_matches(tmp_path):
    from pipeline.jobs.sources import SourcePolicy
    from pipeline.objects import LocalObjectStore

    policy = SourcePolicy(LocalObjectStore(tmp_path / "objects"),
                          tenant_prefixes={"acme": ["gs://uploads/img_"]})
    policy.check("gs://uploads/img_001.jpg", "acme")  # not a folder: matched by text
    for uri, tenant in [("gs://uploads/img_001.jpg", "mallory"),
                        ("gs://uploads/other.jpg", "acme"),
                        ("gs://uploads/img_/../other.jpg", "acme")]:
        with pytest.raises(SourceNotAllowed):
            policy.check(uri, tenant)


def test_replay_resends_a_notification_with_its_attributes_and_signature():
    from pipeline.kafka.replay import resend_of

    raw, headers = notification()
    signed = [*headers, ("imgpipe-auth", b"v1 bridge " + b"0" * 64),
              ("imgpipe-replay", b"v1 old marker {}")]
    value, sent = resend_of(raw, signed)
    assert value == raw and sent == signed[:-1]  # as it was, less the older replay marker
