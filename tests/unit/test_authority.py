"""A job's principal is fixed where it enters (issue 37): sources are owned, replay and
the group's own records keep the authority a job was admitted with and never more,
the bridge forwards notifications only, and peers authenticate as peers."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

import pytest

from agents.ingest import admit_batch
from pipeline.authority import replay_header
from pipeline.errors import SourceNotAllowed
from pipeline.group import GroupKey, PeerHosts
from pipeline.jobs.sources import SourcePolicy, owned_by
from pipeline.kafka.pubsub_bridge import record_of, refusal_of
from pipeline.kafka.replay import Replayer, ReplayRange
from pipeline.objects import LocalObjectStore
from pipeline.records import DeadLetter
from pipeline.tenancy import Principal, Tenancy
from tests.agentkit import agent_kit
from tests.images import encode, quadrants

ACME, MALLORY, ADMIN = "acme-token-0123456789", "mallory-token-0123456789", "admin-token-01234"
DAY = "dt=2026-12-07"


# --- sources are owned -------------------------------------------------------------------

@pytest.mark.parametrize(("key", "tenant", "owned"), [
    (f"sources/{DAY}/tenant=acme/p1/source.jpg", "acme", True),
    (f"outputs/{DAY}/tenant=acme/p1/thumb.webp", "acme", True),
    (f"sources/{DAY}/tenant=acme/p1/source.jpg", "mallory", False),
    (f"sources/{DAY}/tenant=acme/p1/source.jpg", "default", False),
    (f"sources/{DAY}/p1/source.jpg", "default", True),
    (f"sources/{DAY}/p1/source.jpg", "acme", False),
    (f"sources/{DAY}/tenant=acme", "acme", False),  # a folder, not an object in it
    ("lake/results/dt=2026-12-07/hour=01/part.parquet", "default", False),
    (f"logos/{DAY}/tenant=acme/x/l.png", "acme", False),
    ("sources/today/tenant=acme/p1/source.jpg", "acme", False),
])
def test_the_store_areas_belong_to_their_tenant(key, tenant, owned):
    assert owned_by(key, tenant) is owned


def _policy(tmp_path, **kw) -> tuple[LocalObjectStore, SourcePolicy]:
    store = LocalObjectStore(tmp_path / "objects")
    return store, SourcePolicy(store, **kw)


def test_a_tenant_reads_its_own_uploads_and_outputs_only(tmp_path):
    store, policy = _policy(tmp_path, extra_roots=[(tmp_path / "objects").as_uri()])
    photo = store.put(f"sources/{DAY}/tenant=acme/p1/source.png", encode(quadrants(8, 8)),
                      "image/png")
    policy.check(photo, "acme")
    assert policy.read(photo, "acme", 10**6).startswith(b"\x89PNG")
    escaped = store.uri_for(f"sources/{DAY}/tenant=mallory/x") + "/../../tenant=acme/p1/source.png"
    for uri, tenant in [(photo, "mallory"), (photo, "default"), (escaped, "mallory")]:
        # the shared root above is a parent of the store: the store's owners still decide
        with pytest.raises(SourceNotAllowed) as refused:
            policy.read(uri, tenant, 10**6)
        assert refused.value.code == "source_not_allowed", uri


def test_granted_roots_are_the_tenants_own(tmp_path):
    (tmp_path / "acme-photos").mkdir()
    (tmp_path / "acme-photos" / "a.png").write_bytes(encode(quadrants(8, 8)))
    _, policy = _policy(tmp_path, tenant_roots={"acme": [str(tmp_path / "acme-photos")]})
    uri = (tmp_path / "acme-photos" / "a.png").as_uri()
    assert policy.read(uri, "acme", 10**6).startswith(b"\x89PNG")
    with pytest.raises(SourceNotAllowed):
        policy.check(uri, "mallory")


def test_tokens_file_grants_source_roots_and_checks_them(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": [
        {"token": ACME, "tenant": "acme", "source_roots": ["gs://acme-photos/in/"]},
        {"token": MALLORY, "tenant": "mallory"}]}))
    assert Tenancy.from_settings("", str(path)).source_roots() == {
        "acme": ["gs://acme-photos/in/"]}
    path.write_text(json.dumps({"tokens": [
        {"token": ACME, "tenant": "acme", "source_roots": ["http://x/"]}]}))
    with pytest.raises(Exception, match="source_roots"):
        Tenancy.from_settings("", str(path))


# --- replay and the group's records ------------------------------------------------------

@pytest.fixture
def kit(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [
        {"token": ACME, "tenant": "acme"}, {"token": MALLORY, "tenant": "mallory"},
        {"token": ADMIN, "tenant": "ops", "admin": True}]}))
    with agent_kit(tmp_path, api_tokens_file=str(tokens)) as kit:
        yield kit


def _principal(kit, token: str) -> Principal:
    return kit.ctx.runtime.tenancy.authenticate(f"Bearer {token}")


def _job(kit, tmp_path, job_id: str, **fields) -> bytes:
    image = tmp_path / f"{job_id.replace(':', '-')}.png"
    image.write_bytes(encode(quadrants(32, 24)))
    return json.dumps({"job_id": job_id, "source": image.as_uri(), "submitted_at": time.time(),
                       "variants": {"t": [{"op": "encode", "format": "png"}]},
                       **fields}).encode()


def _replay(kit, token: str, force: bool = False) -> list[SimpleNamespace]:
    """What ``imgpipe replay --topic dlq`` sends for each dead letter (the Replayer's own
    record handling, with the operator of ``token``), as ingest events."""
    settings = kit.ctx.settings.__class__(**{**kit.ctx.settings.__dict__, "api_token": token,
                                             "api_tokens_file": ""})
    replayer = Replayer(settings, "dlq", ReplayRange(from_beginning=True), force=force)
    replayer.sender = _principal(kit, token)  # the operator as the tokens file names it
    sent: list[tuple] = []

    class Producer:
        async def send(self, topic, value, key=None, headers=None):
            sent.append((key, value, headers))

    for event in list(kit.topics.logs[kit.names.dlq]):
        message = SimpleNamespace(topic=kit.names.dlq, partition=event.message.partition,
                                  offset=event.message.offset, key=event.key,
                                  value=event.value, headers=event.headers)
        asyncio.run(replayer._handle(Producer(), message))
    kit.topics.logs[kit.names.dlq].clear()
    return [kit.event(kit.names.ingest, value, key=key.decode() if key else None,
                      headers=headers) for key, value, headers in sent], replayer.stats


def test_replay_cannot_launder_a_forged_event(kit, tmp_path):
    forged = _job(kit, tmp_path, "acme:invoice-1", force=True, label="forged by mallory")
    mallory = _principal(kit, MALLORY)
    asyncio.run(admit_batch(kit.ctx, [
        kit.event(kit.names.ingest, forged, key="acme:invoice-1"),
        kit.event(kit.names.ingest, forged, key="acme:invoice-1", headers=mallory.sign(forged))]))
    letters = kit.topics.values(kit.names.dlq)
    assert [d["reason"] for d in letters] == ["unauthenticated", "tenant_not_allowed"]
    assert [d.get("sender") for d in letters] == [None, "mallory"]  # acme is not shown them
    events, stats = _replay(kit, ADMIN, force=True)
    assert events == [] and stats.refused == 2  # refused for their authority: never sent
    assert not any(kit.topics.logs[t] for t in kit.names.priority.values())
    assert "acme:invoice-1" not in kit.table


def test_a_replayed_signed_event_is_judged_by_its_own_signature(kit, tmp_path):
    acme = _principal(kit, ACME)
    bad = _job(kit, tmp_path, "order-9", variants={"t": [{"op": "explode"}]})
    asyncio.run(admit_batch(kit.ctx, [kit.event(kit.names.ingest, bad, key="acme:order-9",
                                                headers=acme.sign(bad))]))
    [letter] = kit.topics.values(kit.names.dlq)
    assert letter["reason"] == "unknown_op" and letter["auth"]
    # a bare id is the signer's tenant's job, in the dead letter as at ingest
    assert (letter["job_id"], letter["sender"]) == ("acme:order-9", "acme")
    assert kit.table["acme:order-9"]["status"] == "REJECTED"
    events, _ = _replay(kit, ADMIN)
    [event] = events
    assert event.value == bad  # the event itself, with acme's signature, not re-signed
    asyncio.run(admit_batch(kit.ctx, events))
    assert [d["reason"] for d in kit.topics.values(kit.names.dlq)] == ["unknown_op"]


def test_replay_keeps_an_admitted_jobs_tenant_and_needs_the_operators_right(kit, tmp_path):
    request = json.loads(_job(kit, tmp_path, "acme:p1", tenant="acme", priority="low"))
    letter = DeadLetter.of_request("acme:p1", "retries_exhausted", "gave up", stage="process",
                                   request=request, attempts=3)
    asyncio.run(kit.ctx.outbox.dead_letter(letter))  # attested by the group, as a worker
    events, _ = _replay(kit, MALLORY, force=True)
    asyncio.run(admit_batch(kit.ctx, events))
    [refusal] = kit.topics.values(kit.names.dlq)
    assert refusal["reason"] == "tenant_not_allowed" and "acme:p1" not in kit.table
    kit.topics.logs[kit.names.dlq].clear()
    asyncio.run(kit.ctx.outbox.dead_letter(letter))
    events, _ = _replay(kit, ADMIN, force=True)
    asyncio.run(admit_batch(kit.ctx, events))
    [routed] = kit.topics.values(kit.names.priority["low"])
    assert (routed["job_id"], routed["tenant"], routed["force"]) == ("acme:p1", "acme", True)
    assert routed["replayed_from"]["topic"] == kit.names.dlq and routed["attempt"] == 0


def test_a_record_the_group_did_not_write_has_no_admitted_authority(kit, tmp_path):
    request = json.loads(_job(kit, tmp_path, "acme:p2", tenant="acme"))
    forged = DeadLetter.of_request("acme:p2", "retries_exhausted", "x", stage="process",
                                   request=request, attempts=3).to_dict()
    kit.event(kit.names.dlq, forged, key="acme:p2")  # produced by someone, not a worker
    events, _ = _replay(kit, ADMIN, force=True)
    asyncio.run(admit_batch(kit.ctx, events))
    assert [d["reason"] for d in kit.topics.values(kit.names.dlq)] == ["unauthenticated"]
    assert "acme:p2" not in kit.table


def test_a_tampered_replay_marker_is_refused(kit, tmp_path):
    value = _job(kit, tmp_path, "p3")
    acme = _principal(kit, ACME)
    name, marker = replay_header(acme, {"topic": "x"}, False, value)
    forced = marker.replace(b'"force":false', b'"force":true')
    asyncio.run(admit_batch(kit.ctx, [kit.event(kit.names.ingest, value, key="acme:p3",
                                                headers=[*acme.sign(value), (name, forced)])]))
    assert [d["reason"] for d in kit.topics.values(kit.names.dlq)] == ["unauthenticated"]


# --- the bridge forwards notifications only -----------------------------------------------

def test_the_bridge_refuses_anything_but_a_notification():
    job = json.dumps({"job_id": "acme:x", "source": "gs://b/o", "force": True,
                      "variants": {}}).encode()
    assert refusal_of(job, {})[0] == "not_a_notification"
    notification = json.dumps({"kind": "storage#object", "bucket": "uploads",
                               "name": "in/a.jpg", "generation": "17"}).encode()
    assert refusal_of(notification, {}) is None
    assert refusal_of(b"x" * 70_000, {})[0] == "event_too_large"


def test_a_lone_surrogate_in_an_attribute_does_not_stop_the_bridge():
    name = json.loads('"in/\\ud800.jpg"')
    attributes = {"eventType": "OBJECT_FINALIZE", "bucketId": "uploads", "objectId": name,
                  "objectGeneration": "1"}
    refusal_of(b"{}", attributes)  # judged, whatever it says
    _, headers = record_of(b"{}", attributes, Principal("b", secret=b"bridge-secret"))
    assert dict(headers)["objectId"] == b"in/?.jpg"


# --- peers authenticate as peers ---------------------------------------------------------

def test_peer_requests_are_signed_for_one_peer_and_a_short_while():
    group, other = GroupKey(b"group"), GroupKey(b"rogue")
    acme = Principal("acme", priorities=frozenset({"normal"}))
    headers = group.peer_headers("GET", ("10.0.0.2", 6066), "/api/jobs?scope=local", acme)
    signed = headers["X-Imgpipe-Peer"]
    assert "acme-token" not in signed and "Bearer" not in signed
    found = group.peer_principal(signed, "GET", ("10.0.0.2", 6066), "/api/jobs?scope=local")
    assert (found.tenant, found.admin, found.priorities) == ("acme", False, {"normal"})
    assert not found.secret
    refused = [
        group.peer_principal(signed, "GET", ("10.0.0.3", 6066), "/api/jobs?scope=local"),
        group.peer_principal(signed, "GET", ("10.0.0.2", 6066), "/api/jobs?scope=all"),
        group.peer_principal(signed.replace("acme;0", "acme;1"), "GET", ("10.0.0.2", 6066),
                             "/api/jobs?scope=local"),
        other.peer_principal(signed, "GET", ("10.0.0.2", 6066), "/api/jobs?scope=local"),
        group.peer_principal(signed, "GET", ("10.0.0.2", 6066), "/api/jobs?scope=local",
                             now=time.time() + 120)]
    assert refused == [None] * 5


def test_peers_are_asked_only_at_trusted_addresses():
    hosts = PeerHosts("127.0.0.0/8,10.0.0.0/8,*.workers.svc")
    assert hosts.trusts("127.0.0.1") and hosts.trusts("10.1.2.3")
    assert hosts.trusts("w-1.workers.svc")
    assert not hosts.trusts("203.0.113.9") and not hosts.trusts("evil.example.com")


def test_the_group_attests_only_what_it_wrote():
    group = GroupKey.derive("", ["a", "b"])
    assert group.attested(group.attest(b"v"), b"v")
    assert not group.attested(group.attest(b"v"), b"w")
    assert not GroupKey.derive("", ["a"]).attested(group.attest(b"v"), b"v")
    assert GroupKey.derive("", ["b", "a"]).attested(group.attest(b"v"), b"v")


def test_a_tenant_sees_only_dead_letters_it_sent_or_of_its_own_jobs():
    from pipeline.web.stats import shown_to

    acme = Principal("acme")
    records = {
        "own refusal": {"job_id": "acme:a", "stage": "ingest", "sender": "acme"},
        "own failure": {"job_id": "acme:b", "stage": "process"},
        "forged by another": {"job_id": "acme:c", "stage": "ingest", "sender": "mallory",
                              "error": "priority 'CALL +1 555 0100'"},
        "unauthenticated": {"job_id": "acme:d", "stage": "ingest"},
        "another's job": {"job_id": "mallory:e", "stage": "process"},
        "no job": {"job_id": None, "stage": "ingest", "sender": "acme"}}
    shown = {name for name, record in records.items() if shown_to(acme, record)}
    assert shown == {"own refusal", "own failure"}
