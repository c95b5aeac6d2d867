import json

import pytest

from pipeline.errors import ConfigError, InvalidRequest
from pipeline.kafka.replay import ReplayRange, parse_filter, parse_time, record_view


def test_time_parsing():
    assert parse_time("1970-01-01T00:01:00Z") == 60.0
    assert parse_time("1970-01-01T00:01:00") == 60.0  # naive means UTC
    assert parse_time("1970-01-01T01:01:00+01:00") == 60.0
    assert parse_time("12.5") == 12.5
    with pytest.raises(ConfigError, match="bad time"):
        parse_time("yesterday")


@pytest.mark.parametrize(("span", "message"), [
    (ReplayRange(), "exactly one"),
    (ReplayRange(from_beginning=True, from_offset=3), "exactly one"),
    (ReplayRange(from_offset=10, to_offset=5), "after --to-offset"),
    (ReplayRange(from_time=10.0, to_time=5.0), "after --to-time"),
    (ReplayRange(from_offset=-1), ">= 0"),
    (ReplayRange(from_beginning=True, to_offset=1, to_time=2.0), "at most one"),
])
def test_bad_ranges_are_refused(span, message):
    with pytest.raises(ConfigError, match=message):
        span.validate()


def test_filters():
    match = parse_filter("tenant=acme,priority=high|normal,job_id=batch-*")
    assert match({"tenant": "acme", "priority": "high", "job_id": "batch-7"})
    assert not match({"tenant": "acme", "priority": "low", "job_id": "batch-7"})
    assert not match({"tenant": "other", "priority": "high", "job_id": "batch-7"})
    assert parse_filter(None)({})
    assert parse_filter("reason=storage_*")({"reason": "storage_unavailable"})
    for bad in ["tenant", "colour=red", "tenant="]:
        with pytest.raises(ConfigError, match="bad filter"):
            parse_filter(bad)


def test_record_views_of_each_topic_kind():
    request = {"job_id": "j1", "source": "s", "variants": {}, "tenant": "acme",
               "priority": "low"}
    view, found = record_view(json.dumps(request).encode())
    assert found == request and view["tenant"] == "acme" and view["reason"] is None
    dlq = {"job_id": "j1", "reason": "corrupt_image", "stage": "process", "request": request}
    view, found = record_view(json.dumps(dlq).encode())
    assert found == request and view["reason"] == "corrupt_image"
    raw_dlq = {"job_id": None, "reason": "unknown_op", "stage": "ingest", "request": None,
               "raw": json.dumps(request)}
    assert record_view(json.dumps(raw_dlq).encode())[1] == request
    garbage = {"job_id": None, "reason": "malformed_json", "request": None, "raw": "{nope"}
    assert record_view(json.dumps(garbage).encode())[1] is None
    with pytest.raises(InvalidRequest):  # a poison record: replay counts and skips it
        record_view(b"\x00\xff")
    retry = {"retry_at": 1.0, "request": request}
    assert record_view(json.dumps(retry).encode())[1] == request
