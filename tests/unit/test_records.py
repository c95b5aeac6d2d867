"""The typed records: written with to_dict, read with from_dict, older forms included."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import InvalidRequest
from pipeline.models import expand_outputs
from pipeline.records import (
    MAX_RAW_CHARS,
    TO_INGEST,
    TO_PRIORITY,
    TO_WORK_TOPIC,
    DeadLetter,
    ResultRecord,
    RetryRecord,
    embedded_request,
)

REQUEST = {"job_id": "j1", "source": "file:///s.jpg", "variants": {"v": []}}


def test_a_dead_letter_of_an_event_keeps_a_bounded_raw_value():
    letter = DeadLetter.of_event("j1", "malformed_json", "bad", stage="ingest",
                                 raw=b"x" * (MAX_RAW_CHARS + 10), source_topic="t/0/5")
    record = json.loads(json.dumps(letter.to_dict()))
    assert len(record["raw"]) == MAX_RAW_CHARS and record["request"] is None
    assert DeadLetter.from_dict(record) == letter


def test_a_dead_letter_of_a_request_carries_it_and_no_raw():
    letter = DeadLetter.of_request("j1", "decode_failed", "bad", stage="process",
                                   request=REQUEST, attempts=2)
    record = letter.to_dict()
    assert "raw" not in record and record["request"] == REQUEST and record["attempts"] == 2
    assert embedded_request(record) == REQUEST


def test_older_and_damaged_dead_letters_still_read():
    old = DeadLetter.from_dict({"job_id": "j", "reason": "x", "error": "e"})
    assert (old.stage, old.attempts, old.request, old.failed_at) == ("", 0, None, 0.0)
    odd = DeadLetter.from_dict({"job_id": 5, "attempts": "3", "request": "no"})
    assert (odd.job_id, odd.attempts, odd.request) == (None, 0, None)


@pytest.mark.parametrize(("record", "destination"), [
    (RetryRecord(1.0, request=REQUEST, error={"code": "c", "message": "m"}), TO_PRIORITY),
    (RetryRecord(1.0, topic="imgpipe.jobs.normal", raw="{}"), TO_WORK_TOPIC),
    (RetryRecord(None, raw="{}"), TO_INGEST),  # a salvage written before topics were kept
])
def test_retry_records_round_trip_and_know_where_they_go(record, destination):
    again = RetryRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record and again.destination == destination


@pytest.mark.parametrize("data", [[], {"retry_at": 1}, {"request": 3, "raw": 4}])
def test_a_retry_record_that_can_send_nothing_is_refused(data):
    with pytest.raises(InvalidRequest) as refused:
        RetryRecord.from_dict(data)
    assert refused.value.code == "bad_retry_record"


def test_older_results_with_full_uris_still_read():
    old = {"job_id": "j", "status": "DONE", "attempts": 1, "outputs": [
        {"variant": "t", "uri": "gs://b/x/t.webp", "bytes": 10}, "junk"]}
    result = ResultRecord.from_dict(old)
    assert result.outputs_at is None and len(result.outputs) == 1
    assert expand_outputs(result.to_dict())[0]["uri"] == "gs://b/x/t.webp"


def test_embedded_request_finds_the_request_in_any_record():
    assert embedded_request(REQUEST) == REQUEST
    assert embedded_request(RetryRecord(1.0, request=REQUEST).to_dict()) == REQUEST
    raw = DeadLetter.of_event("j1", "r", "e", stage="ingest", raw=json.dumps(REQUEST).encode())
    assert embedded_request(raw.to_dict()) == REQUEST
    assert embedded_request({"reason": "r", "raw": "{broken"}) is None
    assert embedded_request([1]) is None
