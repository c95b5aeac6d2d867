"""Poison ingest events: parsing and every probe of a raw event are total.

Anything an event holds either parses or becomes an InvalidRequest with a reason; the
job-id probe the agents use for dead letters never raises at all.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.events import job_id_hint
from pipeline.errors import InvalidRequest
from pipeline.jobs.processing import RETRY_DELAY_CAP, retry_hold
from pipeline.models import (
    MAX_EVENT_DEPTH,
    QUALIFIED_JOB_ID_RE,
    loads_bounded,
    parse_job_request,
)
from tests.hostile import VALID_EVENT as VALID
from tests.hostile import poison_events as poison
from tests.hostile import raw_event as raw


@pytest.mark.parametrize("name", sorted(poison()))
def test_each_poison_event_is_refused_with_its_reason(name):
    payload, code = poison()[name]
    with pytest.raises(InvalidRequest) as info:
        parse_job_request(payload)
    assert info.value.code == code, info.value.message
    assert len(info.value.message) < 400


@pytest.mark.parametrize("name", sorted(poison()))
def test_the_job_id_probe_never_raises(name):
    payload, _ = poison()[name]
    for key in (b"job-1", None, b"\xff\xfe" * 600, "k"):
        hint = job_id_hint(SimpleNamespace(value=payload, key=key))
        assert hint in (None, "job-1", "k", "acme:x")


def test_nesting_inside_strings_does_not_count():
    text = json.dumps({**VALID, "source": "file:///" + "[{" * 500 + "\\\"]"})
    assert parse_job_request(text.encode()).source.startswith("file:///[{")
    assert loads_bounded(b"[" * MAX_EVENT_DEPTH + b"]" * MAX_EVENT_DEPTH) is not None


def test_job_ids_are_qualified_by_tenant():
    assert parse_job_request(raw()).job_id == "job-1"  # tenant "default": bare
    acme = parse_job_request(raw(tenant="acme"))
    assert (acme.job_id, acme.tenant) == ("acme:job-1", "acme")
    named = parse_job_request(raw(job_id="acme:job-1"))
    assert (named.job_id, named.tenant) == ("acme:job-1", "acme")
    assert parse_job_request(raw(), default_tenant="bulk").job_id == "bulk:job-1"
    assert parse_job_request(acme.to_json()) == acme


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_parse_or_are_refused(data):
    try:
        parse_job_request(data)
    except InvalidRequest as exc:
        assert exc.code
    hint = job_id_hint(SimpleNamespace(value=data, key=data[:40]))
    assert hint is None or QUALIFIED_JOB_ID_RE.match(hint)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["job_id", "source", "variants", "tenant", "priority", "attempt",
                         "submitted_at", "force", "replayed_from", "x"]), children, max_size=6),
    max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_arbitrary_json_parses_or_is_refused(value):
    payload = json.dumps(value).encode()
    try:
        request = parse_job_request(payload)
    except InvalidRequest as exc:
        assert exc.code and exc.message
    else:
        assert request.job_id and request.tenant
    hint = job_id_hint(SimpleNamespace(value=payload, key=None))
    assert hint is None or QUALIFIED_JOB_ID_RE.match(hint)


def test_retry_records_are_held_at_most_the_largest_backoff():
    now = 1_800_000_000.0
    assert retry_hold(now + 2.5, now) == 2.5
    assert retry_hold(now - 10, now) == 0.0
    assert retry_hold(now + 30 * 365 * 86400, now) == RETRY_DELAY_CAP
    for bad in (float("nan"), float("inf"), "soon", None, True, [1]):
        assert retry_hold(bad, now) == 0.0


@pytest.mark.parametrize("name", sorted(poison()))
def test_every_internal_consumer_survives_each_poison_record(name):
    """Replay, the archiver and the bridge read records with the same bounds as ingest:
    each poison kind is skipped (replay), archived by position (lake) or dead-lettered
    (bridge); none raises anything but InvalidRequest, and none recurses."""
    from pipeline.kafka.pubsub_bridge import refusal_of
    from pipeline.kafka.replay import record_view, resend_of
    from pipeline.lake.schema import dead_letter_row, ingest_row, results_row

    payload, _ = poison()[name]
    for wrapped in (payload, _as_dead_letter(payload)):
        for read in (record_view, lambda v: resend_of(v, [])):
            try:
                read(wrapped)
            except InvalidRequest as exc:
                assert exc.code
        for row in (results_row, dead_letter_row, ingest_row):
            assert isinstance(row(wrapped), dict)
        refused = refusal_of(wrapped or b"", {})
        assert refused is None or refused[0]


def _as_dead_letter(payload: bytes | None) -> bytes:
    """The poison as a dead letter's raw event (what replay of the DLQ reads)."""
    text = (payload or b"").decode("utf-8", errors="replace")
    return json.dumps({"job_id": None, "reason": "malformed_json", "stage": "ingest",
                       "request": None, "raw": text}).encode()
