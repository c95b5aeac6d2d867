import dataclasses
import json

import pytest

from pipeline.errors import InvalidRequest
from pipeline.models import JobRequest, parse_job_request

VALID = {"job_id": "job-1", "source": "file:///x/a.jpg",
         "variants": {"thumb": [{"op": "resize", "width": 10}]}}


def raw(**changes):
    return json.dumps({**VALID, **changes}).encode()


def test_round_trip():
    request = parse_job_request(raw(priority="high", tenant="acme"))
    assert request.priority == "high" and request.tenant == "acme"
    assert parse_job_request(request.to_json()) == request


@pytest.mark.parametrize(("payload", "code"), [
    (b"", "empty_event"),
    (None, "empty_event"),
    (b"\xff\x00", "malformed_json"),
    (b"{not json", "malformed_json"),
    (b"[1, 2]", "malformed_event"),
    (json.dumps({"job_id": "a"}).encode(), "missing_field"),
    (raw(job_id="../etc"), "bad_job_id"),
    (raw(job_id=""), "bad_job_id"),
    (raw(job_id=7), "bad_job_id"),
    (raw(priority="urgent"), "bad_priority"),
    (raw(variants={}), "bad_variants"),
    (raw(variants={"a/b": []}), "bad_variant_name"),
    (raw(variants={"a": "resize"}), "bad_variants"),
    (raw(attempt=-1), "bad_attempt"),
    (raw(force="yes"), "bad_force"),
    (raw(extra=1), "unknown_field"),
    (raw(tenant="a b"), "bad_tenant"),
    (b"{" + b" " * 70000 + b"}", "event_too_large"),
])
def test_malformed_events_have_precise_reasons(payload, code):
    with pytest.raises(InvalidRequest) as info:
        parse_job_request(payload)
    assert info.value.code == code
    assert info.value.message


def test_output_date_comes_from_submission_time():
    request = JobRequest("j", "file:///a", {"t": []}, submitted_at=0.0)
    assert request.submitted_date == "1970-01-01"


def test_request_to_dict_names_every_field_and_round_trips():
    request = JobRequest("acme:job-1", "file:///x.jpg", {"t": [{"op": "encode", "format": "png"}]},
                         "high", "acme", 1.7e9, 2, True, {"topic": "dlq"}, "IMG 1.jpg", "shoot",
                         "web")
    assert set(request.to_dict()) == {f.name for f in dataclasses.fields(JobRequest)}
    assert parse_job_request(request.to_json()) == request
    # A request without a name or label does not spend bytes on them.
    bare = dataclasses.replace(request, name=None, label=None, preset=None)
    assert {"name", "label", "preset"}.isdisjoint(bare.to_dict())
    assert parse_job_request(bare.to_json()) == bare
    assert request.with_attempt(3).attempt == 3 and request.with_attempt(3).job_id == "acme:job-1"
    assert request.with_priority("low").priority == "low"
