import json

import pytest

from pipeline.errors import InvalidRequest, SourceNotAllowed
from pipeline.jobs.admission import AdmissionPolicy
from pipeline.jobs.sources import SourcePolicy
from pipeline.objects import LocalObjectStore, MemoryObjectStore
from pipeline.ops import Limits
from pipeline.settings import Settings

STORE = MemoryObjectStore("adm")
SHARED = "file:///srv/imgpipe-shared"  # judged from the URI alone: never read here
SOURCE = f"{SHARED}/src.jpg"


def policy(**kw):
    return AdmissionPolicy(Limits(), 4, SourcePolicy(STORE, [SHARED]), **kw)


def raw(**fields):
    return json.dumps({"job_id": "j1", "source": SOURCE,
                       "variants": {"t": [{"op": "encode", "format": "webp"}]},
                       **fields}).encode()


def test_priority_from_request_then_tenant_rule_then_normal():
    p = policy(tenant_priorities={"acme": "high", "bulk": "low"})
    assert p.admit(raw(tenant="acme"))[0].priority == "high"
    assert p.admit(raw(tenant="bulk"))[0].priority == "low"
    assert p.admit(raw(tenant="bulk", priority="high"))[0].priority == "high"
    assert p.admit(raw(tenant="other"))[0].priority == "normal"


def test_tenant_and_format_filters():
    p = policy(allowed_tenants=frozenset({"acme"}), allowed_formats=frozenset({"jpeg"}))
    with pytest.raises(InvalidRequest) as info:
        p.admit(raw(tenant="acme"))
    assert info.value.code == "format_not_allowed" and "'t'" in info.value.message
    with pytest.raises(InvalidRequest) as info:
        p.admit(raw(tenant="mallory"))
    assert info.value.code == "tenant_not_allowed"


def test_watermark_overlays_obey_the_source_policy():
    p = policy()
    bad = {"t": [{"op": "watermark", "image": "file:///etc/passwd"}]}
    with pytest.raises(SourceNotAllowed):
        p.admit(raw(variants=bad))
    elsewhere_in_the_store = {"t": [{"op": "watermark", "image": STORE.uri_for("logos/l.png")}]}
    with pytest.raises(SourceNotAllowed):
        p.admit(raw(variants=elsewhere_in_the_store))
    good = {"t": [{"op": "watermark", "image": f"{SHARED}/logos/l.png"}]}
    assert p.admit(raw(variants=good))[0].job_id == "j1"


def test_settings_parse_tenant_rules():
    s = Settings.from_env({"IMGPIPE_TENANT_PRIORITIES": "acme=high, bulk=low",
                           "IMGPIPE_ALLOWED_TENANTS": "acme,bulk"})
    assert s.tenant_priority_map == {"acme": "high", "bulk": "low"}
    assert s.allowed_tenant_set == {"acme", "bulk"}
    with pytest.raises(Exception, match="IMGPIPE_TENANT_PRIORITIES"):
        Settings.from_env({"IMGPIPE_TENANT_PRIORITIES": "acme=urgent"})


def test_source_roots_may_be_folders_or_file_uris(tmp_path):
    inside = (tmp_path / "in" / "a.jpg").as_uri()
    outside = (tmp_path / "out.jpg").as_uri()
    store = LocalObjectStore(tmp_path / "objects")
    for root in (str(tmp_path / "in"), (tmp_path / "in").as_uri()):
        policy = SourcePolicy.from_settings(store, root)
        policy.check(inside, "default")
        with pytest.raises(SourceNotAllowed):
            policy.check(outside, "default")
