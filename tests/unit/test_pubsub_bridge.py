"""The Pub/Sub bridge's records: the connector's shape, never a forwarded signature."""

from __future__ import annotations

from pipeline.kafka.pubsub_bridge import MAX_ATTRIBUTES, record_of
from pipeline.tenancy import ANYONE, AUTH_HEADER, Principal


def test_attributes_become_headers_and_the_data_the_value():
    value, headers = record_of(b'{"kind":"storage#object"}',
                               {"eventType": "OBJECT_FINALIZE", "bucketId": "uploads"}, ANYONE)
    assert value == b'{"kind":"storage#object"}'
    assert headers == [("eventType", b"OBJECT_FINALIZE"), ("bucketId", b"uploads")]


def test_a_published_signature_is_dropped_and_the_bridge_signs_itself():
    bridge = Principal("acme", secret=b"s3cret")
    forged = {AUTH_HEADER: "v1 admin " + "0" * 64, "eventType": "OBJECT_FINALIZE"}
    value, headers = record_of(b"{}", forged, bridge)
    signatures = [v for k, v in headers if k == AUTH_HEADER]
    assert signatures == [bridge.sign(value)[0][1]]  # exactly one: the bridge's own
    # an open pipeline's bridge signs nothing, and still forwards no signature
    assert [k for k, _ in record_of(b"{}", forged, ANYONE)[1]] == ["eventType"]


def test_attributes_are_bounded():
    many = {f"a{i}": "x" * 5000 for i in range(200)}
    _, headers = record_of(b"{}", many, ANYONE)
    assert len(headers) == MAX_ATTRIBUTES and all(len(v) == 1024 for _, v in headers)
