"""Tenants with their own tokens against a real worker: neither can read, force, overwrite
or list the other's jobs, outputs or rows (API, CLI, raw ingest events); every refusal
is JSON with a code and names no server folder."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest

from pipeline.imaging.phash import hamming
from pipeline.metadata.base import MAX_DISTANCE
from pipeline.models import DEFAULT_TENANT
from pipeline.objects import open_object_store
from pipeline.tenancy import Principal
from tests.conftest import running_pipeline
from tests.http import get_json, post_form, post_json, request, wait_terminal
from tests.images import encode, quadrants
from tests.kafkautil import produce_raw, read_topic

pytestmark = pytest.mark.kafka
ACME, BULK, ADMIN, MALLORY = (f"{name}-{uuid.uuid4().hex}"
                               for name in ("acme", "bulk", "admin", "mallory"))
THUMB = "thumb=w:40,png"


@pytest.fixture(scope="module")
def secured(kafka, tmp_path_factory, request):
    root = tmp_path_factory.mktemp("tenants")
    tokens = root / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [
        {"token": ACME, "tenant": "acme"},
        {"token": BULK, "tenant": "bulk", "priorities": ["normal", "low"]},
        {"token": ADMIN, "tenant": "ops", "admin": True},
        {"token": MALLORY, "tenant": "mallory"},
    ]}))
    yield from running_pipeline(kafka, root, request, IMGPIPE_API_TOKENS_FILE=str(tokens))


def submit(base: str, token: str, width: int, **fields) -> tuple[int, dict]:
    image = {"image": ("p.png", encode(quadrants(width, 60), "PNG"))}
    status, _, body = post_form(f"{base}/api/jobs", {"variant": THUMB, **fields}, image,
                                token=token)
    return status, body


def test_two_tenants_cannot_touch_each_others_jobs(secured):
    base = secured.env["IMGPIPE_API_URL"]
    job = f"shared-{uuid.uuid4().hex[:6]}"
    status, body = submit(base, ACME, 120, job_id=job)
    assert status == 202 and body["job_id"] == f"acme:{job}", body
    assert submit(base, BULK, 200, job_id=job)[1]["job_id"] == f"bulk:{job}"
    acme = wait_terminal(base, job, ACME)
    bulk = wait_terminal(base, job, BULK)
    assert acme["job_id"] == f"acme:{job}" and bulk["job_id"] == f"bulk:{job}"
    assert acme["outputs"][0]["height"] == 20 and bulk["outputs"][0]["height"] == 12

    # reads of the other tenant's job, its outputs, and by its full id: not found
    for path in (f"/api/jobs/bulk:{job}", f"/api/jobs/bulk:{job}/outputs/thumb",
                 f"/api/jobs/{job}%2F..%2F..%2Fhealthz"):
        status, body = get_json(base + path, ACME)
        assert status == 404 and body["code"] == "not_found", (path, body)
    status, _, data = request("GET", f"{base}/api/jobs/acme:{job}/outputs/thumb",
                              headers={"Authorization": f"Bearer {ACME}"})
    assert status == 200 and data.startswith(b"\x89PNG")

    # near-duplicates come from the caller's tenant only, though the other's job shows
    # the same picture
    twin = submit(base, ACME, 160)[1]["job_id"]
    wait_terminal(base, twin, ACME)
    assert hamming(acme["phash"], bulk["phash"]) <= MAX_DISTANCE
    for token in (ACME, ADMIN):
        status, body = get_json(f"{base}/api/jobs/acme:{job}/similar?max_distance="
                                f"{MAX_DISTANCE}", token)
        assert status == 200 and twin in {s["job_id"] for s in body["similar"]}, body
        assert all(s["job_id"].startswith("acme:") for s in body["similar"]), body
    assert get_json(f"{base}/api/jobs/bulk:{job}/similar", ACME)[0] == 404

    # force or overwrite the other's job: refused before anything is produced
    status, body = submit(base, ACME, 90, job_id=f"bulk:{job}", force="true")
    assert (status, body["code"]) == (400, "bad_job_id")
    status, body = submit(base, ACME, 90, job_id=job, tenant="bulk", force="true")
    assert (status, body["code"]) == (403, "tenant_not_allowed")
    assert submit(base, BULK, 90, priority="high")[1]["code"] == "priority_not_allowed"

    # lists, stats and dead letters show only the caller's own jobs (admins: all)
    listed = {t: {j["job_id"] for j in get_json(f"{base}/api/jobs?limit=1000", t)[1]["jobs"]}
              for t in (ACME, BULK, ADMIN)}
    assert f"acme:{job}" in listed[ACME] and all(j.startswith("acme:") for j in listed[ACME])
    assert all(j.startswith("bulk:") for j in listed[BULK])
    assert {f"acme:{job}", f"bulk:{job}"} <= listed[ADMIN]
    stats = get_json(f"{base}/api/stats", ACME)[1]
    assert sum(stats["jobs"].values()) == len(listed[ACME]) and "lag" not in stats
    assert "lag" in get_json(f"{base}/api/stats", ADMIN)[1]
    assert request("GET", f"{base}/table/jobs/", headers={
        "Authorization": f"Bearer {ACME}"})[0] == 403

    # one metadata row each, neither overwritten
    db = sqlite3.connect(secured.root / "metadata.db")
    rows = dict(db.execute("SELECT job_id, tenant FROM jobs WHERE job_id LIKE ?", (f"%{job}",)))
    assert rows == {f"acme:{job}": "acme", f"bulk:{job}": "bulk"}
    after = wait_terminal(base, job, BULK)
    assert after["history"] == bulk["history"] and after["outputs"] == bulk["outputs"]


def test_raw_ingest_events_need_the_senders_rights(secured, tmp_path):
    env = secured
    settings = env.settings
    base = env.env["IMGPIPE_API_URL"]
    _, body = submit(base, BULK, 100)
    victim = wait_terminal(base, body["job_id"], BULK)
    source = open_object_store(settings.object_store).put(
        "sources/dt=2026-01-01/tenant=acme/raw/p.png", encode(quadrants(64, 64), "PNG"),
        "image/png")

    def value(**fields) -> bytes:
        return json.dumps({"source": source, **fields,
                           "variants": {"t": [{"op": "encode", "format": "png"}]}}).encode()

    acme = Principal("acme", secret=ACME.encode())
    bulk_id = victim["job_id"]
    own = f"raw-{uuid.uuid4().hex[:6]}"
    forged = value(job_id=bulk_id, tenant="bulk", force=True)
    records = [
        (bulk_id.encode(), forged, acme.sign(forged)),            # acme acting for bulk
        (bulk_id.encode(), value(job_id=bulk_id, force=True)),    # unsigned
        (bulk_id.encode(), forged, [("imgpipe-auth", b"v1 0123456789abcdef " + b"0" * 64)]),
    ]
    mine = value(job_id=own)
    records.append((own.encode(), mine, acme.sign(mine)))        # acme's own: accepted
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"), records)
    assert wait_terminal(base, own, ACME)["status"] == "DONE"
    deadline = time.monotonic() + 60
    while True:
        dlq = [r for r in read_topic(settings.bootstrap_servers, settings.topic("dlq"))
               if r["job_id"] == bulk_id]
        if len(dlq) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sorted(r["reason"] for r in dlq) == ["tenant_not_allowed", "unauthenticated",
                                                "unauthenticated"]
    after = wait_terminal(base, bulk_id, BULK)
    assert after["history"] == victim["history"]  # untouched


def _dead_letters(settings, count: int, job_id: str) -> list[dict]:
    """The dead letters of ``job_id``, once there are ``count`` (or after 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        found = [r for r in read_topic(settings.bootstrap_servers, settings.topic("dlq"))
                 if r["job_id"] == job_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_mallory_cannot_obtain_one_pixel_of_acmes(secured):
    """Issue 37's two-tenant test: not through a source URI, an output URI, an overlay,
    a raw event, or the replay of forged events; and nothing she sees names a folder."""
    settings, base = secured.settings, secured.env["IMGPIPE_API_URL"]
    job = f"photo-{uuid.uuid4().hex[:6]}"
    status, accepted = submit(base, ACME, 120, job_id=job)
    assert status == 202 and str(secured.root) not in json.dumps(accepted), accepted
    done = wait_terminal(base, job, ACME)
    store = open_object_store(settings.object_store)
    [key] = [k for k in store.list_keys("sources/") if f"tenant=acme/{job}/" in k]
    stolen = [store.uri_for(key), done["outputs"][0]["uri"]]
    _, own = submit(base, MALLORY, 80)
    own_source = wait_terminal(base, own["job_id"], MALLORY)  # her own upload works
    [own_key] = [k for k in store.list_keys("sources/")
                 if f"tenant=mallory/{own['job_id'].split(':')[1]}/" in k]
    png = [{"op": "encode", "format": "png"}]
    asks = [{"source": uri, "variants": {"t": png}} for uri in stolen]
    asks += [{"source": store.uri_for(own_key), "variants": {"t": [
        {"op": "watermark", "image": uri}, *png]}} for uri in stolen]
    for ask in asks:
        status, body = post_json(f"{base}/api/jobs", ask, MALLORY)
        assert (status, body["code"]) == (403, "source_not_allowed"), (ask, body)
        assert str(secured.root) not in body["error"]
    assert own_source["status"] == "DONE"

    # a raw event she signs herself reaches ingest and is refused there
    mallory = Principal("mallory", secret=MALLORY.encode())
    raw = json.dumps({"job_id": "mallory:grab", "source": stolen[0],
                      "variants": {"t": png}}).encode()
    # and events forged for acme's next invoice, unsigned and signed by her
    forged = json.dumps({"job_id": "acme:invoice-1", "tenant": "acme", "source": stolen[0],
                         "force": True, "label": "forged by mallory",
                         "variants": {"t": png}}).encode()
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"), [
        (b"mallory:grab", raw, mallory.sign(raw)), (b"acme:invoice-1", forged),
        (b"acme:invoice-1", forged, mallory.sign(forged))])
    [grab] = _dead_letters(settings, 1, "mallory:grab")
    assert grab["reason"] == "source_not_allowed"
    status, state = get_json(f"{base}/api/jobs/grab", MALLORY)  # her REJECTED job
    assert status == 200 and state["error_code"] == "source_not_allowed", state
    assert str(secured.root) not in json.dumps(state)  # no server folder in what she sees
    assert sorted(r["reason"] for r in _dead_letters(settings, 2, "acme:invoice-1")) == [
        "tenant_not_allowed", "unauthenticated"]

    # the operator's routine replay of the dead-letter topic does not launder them
    env = {**secured.env, "IMGPIPE_API_TOKEN": ADMIN,
           "IMGPIPE_API_TOKENS_FILE": secured.env["IMGPIPE_API_TOKENS_FILE"]}
    replay = subprocess.run([sys.executable, "-m", "pipeline.cli", "replay", "--topic", "dlq",
                             "--from-beginning", "--force", "--json", "--filter",
                             "job_id=acme:invoice-1|mallory:grab"], env={**os.environ, **env},
                            capture_output=True, text=True, timeout=300, cwd=secured.root)
    assert replay.returncode == 0, replay.stderr
    summary = json.loads(replay.stdout)
    assert (summary["refused"], summary["sent"]) == (2, 1), summary
    # what replay did send comes back refused again (the grab) or is acme's own job
    assert _dead_letters(settings, 2, "mallory:grab")[-1]["reason"] == "source_not_allowed"
    assert get_json(f"{base}/api/jobs/invoice-1", ACME)[0] == 404
    again = wait_terminal(base, job, ACME)
    assert again["outputs"] == done["outputs"]


def test_a_flood_of_another_tenants_dead_letters_hides_none_of_acmes(secured):
    settings, base = secured.settings, secured.env["IMGPIPE_API_URL"]
    acme = Principal("acme", secret=ACME.encode())
    own = f"flooded-{uuid.uuid4().hex[:6]}"
    bad = json.dumps({"job_id": own, "source": "file:///nowhere.png",
                      "variants": {"t": [{"op": "explode"}]}}).encode()
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"),
                [(f"acme:{own}".encode(), bad, acme.sign(bad))])
    flood = [(f"mallory:junk-{i}".encode(), json.dumps({
        "job_id": f"mallory:junk-{i}", "reason": "unknown_op", "stage": "ingest",
        "sender": "mallory", "error": "x"}).encode()) for i in range(700)]
    _dead_letters(settings, 1, f"acme:{own}")  # acme's own refusal is in the topic
    produce_raw(settings.bootstrap_servers, settings.topic("dlq"), flood)
    deadline = time.monotonic() + 60
    while True:  # answers are cached a few seconds
        status, body = get_json(f"{base}/api/deadletters?limit=20", ACME)
        shown = [r["job_id"] for r in body.get("records", [])]
        if f"acme:{own}" in shown or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status == 200 and f"acme:{own}" in shown, body
    assert all(job.startswith("acme:") for job in shown), shown
    admin = get_json(f"{base}/api/deadletters?limit=20", ADMIN)[1]["records"]
    assert any(r["job_id"].startswith("mallory:junk-") for r in admin)  # admins: all


def test_the_cli_acts_as_its_tokens_tenant(secured, tmp_path):
    path = tmp_path / "cli.png"
    path.write_bytes(encode(quadrants(80, 40), "PNG"))
    user = {k: v for k, v in secured.env.items() if k != "IMGPIPE_API_TOKENS_FILE"}
    saved, secured.env = secured.env, {**user, "IMGPIPE_API_TOKEN": ACME}
    try:
        code, [row] = secured.cli_json("submit", str(path), "--variant", THUMB, "--wait",
                                       "--json", "--timeout", "120")
        assert code == 0 and row["status"] == "DONE" and row["job_id"].startswith("acme:")
        code, other = secured.cli_json("status", "bulk:anything", "--json")
        assert code == 1 and other["status"] == "UNKNOWN"
    finally:
        secured.env = saved
    assert get_json(f"{secured.env['IMGPIPE_API_URL']}/api/jobs/{row['job_id']}",
                    BULK)[0] == 404


def test_every_refusal_is_json_with_a_code_and_no_server_folder(secured):
    base = secured.env["IMGPIPE_API_URL"]
    auth = {"Authorization": f"Bearer {ACME}"}
    folders = [str(secured.root)]
    boundary = "b0undary"
    nul_name = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                f'filename="a\x00b.png"\r\n\r\n').encode() + encode(
        quadrants(20, 20), "PNG") + f"\r\n--{boundary}--\r\n".encode()
    many_variants = "".join(f'--{boundary}\r\nContent-Disposition: form-data; '
                            f'name="variant"\r\n\r\nv{i}=w:10,png\r\n' for i in range(5000))
    cases = [
        ("POST", "/api/jobs", nul_name, f"multipart/form-data; boundary={boundary}"),
        ("POST", "/api/jobs", b"--x\r\ngarbage", f"multipart/form-data; boundary={boundary}"),
        ("POST", "/api/jobs", many_variants.encode(), f"multipart/form-data; boundary={boundary}"),
        ("POST", "/api/jobs", b"[" * 5000 + b"]" * 5000, "application/json"),
        ("POST", "/api/jobs", json.dumps({"source": "x"}).encode("utf-16"), "application/json"),
        ("POST", "/api/jobs", json.dumps({  # the store's folder is scrubbed from the echo
            "source": secured.settings.object_store + "/../../etc/passwd"}).encode(),
         "application/json"),
        ("GET", "/api/nothing-here", None, None),
        ("DELETE", "/api/jobs", None, None),
        ("GET", "/api/jobs?limit=x", None, None),
        ("GET", "/api/jobs/..%2F..%2Fetc%2Fpasswd", None, None),
    ]
    for method, path, body, content_type in cases:
        headers = dict(auth)
        if content_type:
            headers["Content-Type"] = content_type
        status, reply_headers, reply = request(method, base + path, body, headers)
        assert 400 <= status < 500, (path, status, reply[:200])
        assert reply_headers.get("Content-Type", "").startswith("application/json"), path
        answer = json.loads(reply)
        assert answer["code"] and answer["error"], (path, answer)
        assert not any(folder in answer["error"] for folder in folders), answer
    assert request("GET", f"{base}/api/jobs")[0] == 401


def test_a_smaller_duplicate_upload_is_a_conflict(secured):
    base = secured.env["IMGPIPE_API_URL"]
    job = f"dup-{uuid.uuid4().hex[:6]}"
    assert submit(base, ACME, 300, job_id=job)[0] == 202
    status, body = submit(base, ACME, 30, job_id=job)
    assert (status, body["code"]) == (409, "source_exists"), body


def test_tokens_of_other_tenants_never_reach_a_default_tenant_job(secured):
    base = secured.env["IMGPIPE_API_URL"]
    status, body = submit(base, ADMIN, 50, tenant=DEFAULT_TENANT)
    assert status == 202 and ":" not in body["job_id"]
    assert wait_terminal(base, body["job_id"], ADMIN)["status"] == "DONE"
    assert get_json(f"{base}/api/jobs/{body['job_id']}", ACME)[0] == 404


def test_a_store_that_cannot_write_answers_503_without_details(secured):
    base = secured.env["IMGPIPE_API_URL"]
    day = time.strftime("%Y-%m-%d", time.gmtime())
    blocker = secured.root / "objects" / "sources" / f"dt={day}" / "tenant=zeta"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the tenant's folder would go")
    try:
        status, body = submit(base, ADMIN, 40, tenant="zeta")
    finally:
        blocker.unlink()
    assert (status, body["code"]) == (503, "storage_unavailable"), body
    assert str(secured.root) not in body["error"] and "try again" in body["error"]
