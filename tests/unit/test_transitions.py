import json

import pytest

from pipeline.errors import InvalidRequest, StorageUnavailable
from pipeline.models import JobRequest, OutputInfo, Status, expand_outputs
from tables import transitions as t

REQ = JobRequest("j1", "file:///s", {"v": []}, priority="high", submitted_at=5.0)


def test_happy_path_history():
    s = t.queued(None, REQ, "ingest/0/1", now=1)
    s = t.processing(s, REQ, now=2)
    s = t.done(s, [OutputInfo("v", "file:///o", 1, 1, "png", 9)], now=3)
    assert s["status"] == Status.DONE and s["attempts"] == 1
    assert [h["status"] for h in s["history"]] == ["QUEUED", "PROCESSING", "DONE"]
    view = t.public_view(s)
    assert view["outputs"][0]["uri"] == "file:///o" and view["error"] is None


def test_retry_then_fail_records_errors():
    s = t.processing(t.queued(None, REQ, "o"), REQ)
    s = t.retrying(s, StorageUnavailable("disk gone"), retry_at=99.0)
    assert s["status"] == Status.RETRYING and s["history"][-1]["error"] == "storage_unavailable"
    s = t.failed(s, InvalidRequest("nope", "bad_param"))
    assert t.public_view(s)["error_code"] == "bad_param"


def test_duplicate_submissions():
    queued = t.queued(None, REQ, "ingest/0/1")
    # the same event redelivered after a crash is routed again
    assert not t.is_duplicate_submission(queued, REQ, "ingest/0/1")
    # a second submission while in flight is not
    assert t.is_duplicate_submission(queued, REQ, "ingest/0/7")
    done = t.done(t.processing(queued, REQ), [])
    assert t.is_duplicate_submission(done, REQ, "ingest/0/1")
    forced = JobRequest(**{**REQ.to_dict(), "force": True})
    assert not t.is_duplicate_submission(done, forced, "ingest/0/9")
    failed = t.failed(queued, InvalidRequest("x"))
    assert not t.is_duplicate_submission(failed, REQ, "ingest/0/9")
    assert t.should_skip_processing(done, REQ) and not t.should_skip_processing(done, forced)
    assert not t.should_skip_processing(queued, REQ)


def test_history_is_bounded():
    s = t.queued(None, REQ, "o")
    for _ in range(200):
        s = t.processing(s, REQ)
    assert len(s["history"]) == t.HISTORY_LIMIT


def test_lost_in_transit_only_when_committed_past_and_stale():
    s = t.routed(t.queued(None, REQ, "ingest/0/1", now=100.0), "jobs.high", 2, 40)
    committed = {("jobs.high", 2): 41}
    assert t.lost_in_transit(s, committed, now=130.0, stale_after=20)
    assert not t.lost_in_transit(s, committed, now=110.0, stale_after=20)  # too fresh
    assert not t.lost_in_transit(s, {("jobs.high", 2): 40}, now=130.0, stale_after=20)
    assert not t.lost_in_transit(s, {}, now=130.0, stale_after=20)  # nothing committed
    done = t.done(t.processing(s, REQ, now=101.0), [], now=102.0)
    assert not t.lost_in_transit(done, committed, now=500.0, stale_after=20)
    assert t.lost_in_transit(t.processing(s, REQ, now=101.0), committed, 130.0, 20)
    assert not t.lost_in_transit(t.queued(None, REQ, "o"), committed, 999.0, 20)  # no route


def test_finished_state_and_result_keep_outputs_compact_and_expand_exactly():
    request = JobRequest("job-9", "file:///src.jpg", {"a": []}, "normal")
    folder = "file:///tmp/objects/outputs/dt=2026-11-27/job-9/"
    outputs = [OutputInfo(v, f"{folder}{v}.{ext}", 10, 8, fmt, 99)
               for v, ext, fmt in [("large", "jpg", "jpeg"), ("thumb", "webp", "webp")]]
    s = t.done(t.processing(t.queued(None, request, "i/0/1"), request), outputs)
    assert s["outputs_at"] == folder and "request" not in s
    assert [o["file"] for o in s["outputs"]] == ["large.jpg", "thumb.webp"]
    assert all("uri" not in o for o in s["outputs"])
    view = t.public_view(s)
    assert [o["uri"] for o in view["outputs"]] == [o.uri for o in outputs]
    assert view["outputs"][0] == outputs[0].to_dict()
    record = t.result_record(s).to_dict()
    assert record["outputs"] == s["outputs"] and record["outputs_at"] == folder
    assert len(json.dumps(record)) < len(json.dumps(view))


def test_older_states_with_full_uris_still_expand():
    old = {"outputs": [{"variant": "a", "uri": "gs://b/x/a.png", "width": 1}]}
    assert expand_outputs(old) == old["outputs"]


@pytest.mark.parametrize("request_", [
    JobRequest("j2", "file:///s.jpg", {"v": [{"op": "grayscale"}]}, "low", "acme", 7.5, 2),
    JobRequest("j3", "gs://b/s.jpg", {"v": []}, "high", "t", 1.0, 0, True, {"topic": "dlq"}),
])
def test_a_job_in_flight_keeps_just_enough_to_send_it_again(request_):
    queued = t.queued(None, request_, "ingest/0/1", routed_to=("jobs.low", 0, 4))
    assert t.request_of(queued) == request_
    processing = t.processing(queued, request_)
    assert t.request_of(processing) == request_  # attempts moved on, the request did not
    assert "job_id" not in processing["request"] and "source" not in processing["request"]
    older = {**processing, "request": request_.to_dict()}
    assert t.request_of(older) == request_


def test_a_run_that_never_finished_counts_as_a_crash_however_the_job_comes_back():
    from pipeline.errors import PermanentError
    from pipeline.models import JobRequest
    from tables import transitions as t

    request = JobRequest("j", "file:///s", {"v": []}, "normal")
    started = t.processing(t.queued(None, request, "ingest/0/1"), request)
    assert t.unfinished_runs(started) == 1
    # the worker died; ingest saw its event again and queued the job again
    requeued = t.queued(started, request, "ingest/0/1")
    assert t.unfinished_runs(requeued) == 1
    counted = t.crashed(requeued)
    assert counted["crashes"] == 1 and t.unfinished_runs(counted) == 0
    assert counted["history"][-1]["status"] == "CRASHED"
    again = t.processing(counted, request)
    assert t.unfinished_runs(t.failed(again, PermanentError("x"))) == 0
    assert t.unfinished_runs(t.retrying(again, PermanentError("x"), 0.0)) == 0
    assert t.unfinished_runs(t.done(again, [])) == 0
    assert t.unfinished_runs(None) == 0


def test_a_job_only_the_metadata_store_holds_reads_like_a_finished_state():
    from pipeline.metadata import JobRecord

    outputs = [OutputInfo("thumb", "file:///out/j1/thumb.webp", 64, 48, "webp", 900)]
    state = t.done(t.processing(t.queued(None, REQ, "ingest/0/1"), REQ), outputs)
    record = JobRecord("j1", Status.DONE, "high", None, "file:///s", 5.0, 9.0, 1,
                       outputs=tuple(outputs), name="cat.jpg")
    stored = t.record_view(record)
    assert set(stored) == set(t.public_view(state)) | {"stored"}
    assert stored["outputs"] == t.public_view(state)["outputs"]
    assert (stored["status"], stored["name"], stored["updated_at"]) == ("DONE", "cat.jpg", 9.0)
    failed = t.record_view(JobRecord("j2", Status.FAILED, "normal", None, "file:///s", 5.0,
                                     6.0, 3, error_code="corrupt_image", error="truncated"))
    assert (failed["error_code"], failed["error"], failed["outputs"]) == (
        "corrupt_image", "truncated", [])
