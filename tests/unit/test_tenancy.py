"""Tokens bound to tenants: authentication, event signatures, rights and scoping."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import ConfigError, InvalidRequest
from pipeline.jobs.admission import AdmissionPolicy
from pipeline.jobs.sources import SourcePolicy
from pipeline.models import parse_job_request
from pipeline.objects.memory import MemoryObjectStore
from pipeline.ops import Limits
from pipeline.tenancy import (
    ANYONE,
    AUTH_HEADER,
    Tenancy,
    check_exposure,
    new_token_entry,
    token_principal,
)

ACME = "acme-token-0123456789"
BULK = "bulk-token-0123456789"
ADMIN = "admin-token-0123456789"


@pytest.fixture
def tokens_file(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": [
        {"token": ACME, "tenant": "acme"},
        {"token": BULK, "tenant": "bulk", "priorities": ["low"]},
    ]}))
    return path


@pytest.fixture
def tenancy(tokens_file):
    return Tenancy.from_settings(ADMIN, str(tokens_file))


def test_bearer_tokens_name_their_tenant(tenancy):
    acme = tenancy.authenticate(f"Bearer {ACME}")
    assert (acme.tenant, acme.admin) == ("acme", False)
    admin = tenancy.authenticate(f"bearer {ADMIN}")
    assert (admin.tenant, admin.admin) == ("default", True)
    for bad in (None, "", "Bearer", f"Basic {ACME}", "Bearer nope", f"Bearer {ACME}x"):
        assert tenancy.authenticate(bad) is None
    assert Tenancy().authenticate(None) is ANYONE  # open pipeline


def test_a_caller_addresses_only_its_own_tenants_jobs(tenancy):
    acme = tenancy.authenticate(f"Bearer {ACME}")
    admin = tenancy.authenticate(f"Bearer {ADMIN}")
    assert acme.scope("x") == "acme:x" and acme.scope("acme:x") == "acme:x"
    assert acme.scope("bulk:x") is None
    assert not acme.may_see("x")  # tenant "default"'s job x
    assert admin.scope("x") == "x" and admin.scope("bulk:x") == "bulk:x"


def test_signed_events_name_their_sender_and_forgeries_are_refused(tenancy):
    acme = tenancy.authenticate(f"Bearer {ACME}")
    value = b'{"job_id": "x"}'
    headers = acme.sign(value)
    assert tenancy.event_sender(headers, value) == acme
    assert tenancy.event_sender(dict(headers), value) == acme  # Faust's mapping form
    assert ACME.encode() not in headers[0][1]  # the token itself never travels
    refusals = [
        ([], value),                                          # unsigned
        (headers, value + b" "),                              # value changed
        ([(AUTH_HEADER, b"v1 0000000000000000 " + b"0" * 64)], value),  # unknown key
        ([(AUTH_HEADER, headers[0][1][:-1] + b"0")], value),  # wrong MAC
        ([(AUTH_HEADER, b"garbage")], value),
        ([(AUTH_HEADER, b"\xff" * 5000)], value),
        (headers, None),
    ]
    for bad_headers, bad_value in refusals:
        with pytest.raises(InvalidRequest) as info:
            tenancy.event_sender(bad_headers, bad_value)
        assert info.value.code == "unauthenticated"
    assert Tenancy().event_sender([], value) is ANYONE


STORE = MemoryObjectStore("t")
SHARED = "file:///srv/imgpipe-shared"  # a root every tenant may read (never read here)


def policy() -> AdmissionPolicy:
    store = STORE
    return AdmissionPolicy(Limits(max_output_pixels=10**7), 8,
                           SourcePolicy.from_settings(store, SHARED),
                           tenant_priorities={"bulk": "normal"})


def request_for(sender, **fields):
    body = {"job_id": "j1", "source": f"{SHARED}/a.jpg",
            "variants": {"t": [{"op": "resize", "width": 10}]}, **fields}
    return parse_job_request(json.dumps(body).encode(), sender.tenant)


def test_a_sender_acts_only_for_its_tenant_and_priorities(tenancy):
    acme = tenancy.authenticate(f"Bearer {ACME}")
    bulk = tenancy.authenticate(f"Bearer {BULK}")
    admin = tenancy.authenticate(f"Bearer {ADMIN}")
    request, _ = policy().admit_request(request_for(acme), acme)
    assert (request.job_id, request.tenant, request.priority) == ("acme:j1", "acme", "normal")
    with pytest.raises(InvalidRequest) as info:
        policy().admit_request(request_for(acme, tenant="bulk"), acme)
    assert info.value.code == "tenant_not_allowed"
    with pytest.raises(InvalidRequest) as info:
        policy().admit_request(request_for(bulk, priority="high"), bulk)
    assert info.value.code == "priority_not_allowed"
    # bulk's tenant rule says normal, its token allows low only: low
    assert policy().admit_request(request_for(bulk), bulk)[0].priority == "low"
    forced, _ = policy().admit_request(request_for(admin, tenant="bulk", priority="high"), admin)
    assert (forced.job_id, forced.priority) == ("bulk:j1", "high")


def test_bad_tokens_files_name_the_problem(tmp_path):
    cases = {
        "missing.json": None,
        "notjson.json": "{",
        "shape.json": json.dumps({"tokens": {}}),
        "short.json": json.dumps({"tokens": [{"token": "short", "tenant": "a"}]}),
        "tenant.json": json.dumps({"tokens": [{"token": ACME, "tenant": "a/b"}]}),
        "prio.json": json.dumps({"tokens": [{"token": ACME, "tenant": "a",
                                             "priorities": ["urgent"]}]}),
        "extra.json": json.dumps({"tokens": [{"token": ACME, "tenant": "a", "role": "x"}]}),
        "twice.json": json.dumps({"tokens": [{"token": ADMIN, "tenant": "a"}]}),
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(ConfigError) as info:
            Tenancy.from_settings(ADMIN, str(path))
        assert "IMGPIPE_API_TOKEN" in info.value.message, name
        assert "\n" not in info.value.message


def test_new_token_entries_are_accepted_by_the_worker(tmp_path):
    entry = new_token_entry("acme", ["low", "high"], admin=False)
    assert entry["priorities"] == ["high", "low"] and len(entry["token"]) >= 32
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"tokens": [entry]}))
    principal = token_principal(entry["token"], str(path))
    assert principal.tenant == "acme" and principal.priorities == {"high", "low"}
    assert new_token_entry("acme", ["low"], False)["token"] != entry["token"]


def test_an_open_api_on_a_public_address_is_refused():
    with pytest.raises(ConfigError) as info:
        check_exposure("0.0.0.0", Tenancy(), allow_open_api=False)
    assert "IMGPIPE_API_TOKEN" in info.value.message
    check_exposure("127.0.0.1", Tenancy(), allow_open_api=False)
    check_exposure("::1", Tenancy(), allow_open_api=False)
    check_exposure("0.0.0.0", Tenancy(), allow_open_api=True)
    check_exposure("0.0.0.0", Tenancy.from_settings(ADMIN, ""), allow_open_api=False)
