"""ONE contract, every metadata store: SQLite and Spanner (emulator)."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pipeline.imaging.decode import decode
from pipeline.imaging.phash import hamming, phash
from pipeline.metadata import JobRecord, MetadataStore, SqliteMetadataStore, open_metadata_store
from pipeline.metadata.base import DEFAULT_DISTANCE, MAX_DISTANCE, MAX_SIMILAR
from pipeline.models import OutputInfo
from tests import images
from tests.conftest import spanner_url


@pytest.fixture(params=["sqlite", "spanner"])
def store(request, tmp_path) -> MetadataStore:
    if request.param == "spanner":
        request.getfixturevalue("spanner_emulator")
        url = spanner_url()
    else:
        url = f"sqlite:///{tmp_path}/metadata.db"
    opened = open_metadata_store(url)
    yield opened
    opened.close()


def record(job_id: str, status="DONE", variants=("large", "thumb"), finished=2.0, **extra):
    outputs = tuple(OutputInfo(v, f"gs://b/outputs/{job_id}/{v}.jpg", 64, 48, "jpeg", 1000 + i)
                    for i, v in enumerate(variants))
    return JobRecord(job_id, status, "normal", "acme", f"gs://b/sources/{job_id}", 1.5,
                     finished, 1, outputs=outputs, **extra)


def test_round_trip(store):
    original = record("j1", phash="00ff00ff00ff00ff", name="IMG 0001 ☀.HEIC",
                      label="summer shoot, card 2")
    store.upsert_batch([original])
    assert store.get_job("j1") == original
    assert store.get_job("nope") is None
    assert store.list_jobs()[0].name == "IMG 0001 ☀.HEIC"


def test_replayed_batch_adds_no_rows(store):
    batch = [record("j1"), record("j2"), record("j3", status="FAILED", variants=(),
                                                   error_code="corrupt_image", error="bad")]
    store.upsert_batch(batch)
    store.upsert_batch(batch)
    store.upsert_each(batch)
    assert store.count_rows() == (3, 4)
    assert store.get_job("j3").error_code == "corrupt_image"


def test_rerun_replaces_outputs_exactly(store):
    store.upsert_batch([record("j1", variants=("a", "b", "c"))])
    store.upsert_batch([record("j1", variants=("a",), finished=3.0)])
    job = store.get_job("j1")
    assert [o.variant for o in job.outputs] == ["a"] and job.finished_at == 3.0
    assert store.count_rows() == (1, 1)


def test_list_by_status_newest_first(store):
    store.upsert_batch([record("old", finished=10.0), record("new", finished=20.0),
                        record("bad", status="FAILED", variants=(), finished=30.0)])
    assert [r.job_id for r in store.list_jobs(status="DONE")] == ["new", "old"]
    assert [r.job_id for r in store.list_jobs(limit=2)] == ["bad", "new"]
    assert store.list_jobs(status="DONE")[0].outputs[0].variant == "large"


def test_migrate_is_idempotent(store):
    store.migrate()
    store.migrate()
    store.upsert_batch([record("after-migrate")])
    assert store.get_job("after-migrate") is not None


def test_image_facts_round_trip_and_older_rows_read(store):
    facts = {"width": 4032, "height": 3024, "format": "jpeg", "bit_depth": 8,
             "alpha": False, "icc": "Display P3", "camera_make": "Apple",
             "camera_model": "iPhone 15", "taken_at": "2024-05-01T12:34:56",
             "orientation": 6, "gps": True, "frames": 1, "animated": False,
             "placeholder": "LQIzbn[VM|xv.m9[NHxaOrXSRjIo", "colour": "#0f0b0b"}
    store.upsert_batch([record("with-facts", phash="8f00ff00ff00ff01", image=facts),
                        record("before-v3")])
    assert store.get_job("with-facts").image == facts
    assert store.get_job("before-v3").image is None
    assert {r.job_id: r.image for r in store.list_jobs()}["with-facts"] == facts


@functools.lru_cache(maxsize=1)
def near_duplicate_hashes() -> dict[str, list[str]]:
    """name -> pHashes of the photo and its two derivatives, as the engine computes them
    (decoded from bytes)."""
    def fingerprint(data: bytes) -> str:
        return phash(decode(data, max_pixels=50_000_000).pixels)

    return {name: [fingerprint(data) for data in
                   (images.encode(images.photo(name), "PNG"),
                    *images.derivatives(images.photo(name)))]
            for name in images.PHOTOS}


def test_similar_finds_exactly_each_photos_own_copies_within_the_tenant(store):
    hashes = near_duplicate_hashes()
    rows = [record(f"{name}-{i}", phash=h, finished=10.0 + i)
            for name, found in hashes.items() for i, h in enumerate(found)]
    other_tenant = [replace(r, job_id=f"other-{r.job_id}", tenant="globex") for r in rows]
    store.upsert_batch(rows + other_tenant)
    for name, (original, *_copies) in hashes.items():
        found = store.similar("acme", original, DEFAULT_DISTANCE, MAX_SIMILAR,
                              exclude=f"{name}-0")
        assert sorted(r.job_id for r, _ in found) == [f"{name}-1", f"{name}-2"], name
        assert all(d == hamming(original, r.phash) <= DEFAULT_DISTANCE for r, d in found)
        assert [d for _, d in found] == sorted(d for _, d in found)  # nearest first
    astronaut = hashes["astronaut"][0]
    for distance in (0, 4):  # the database's distance is the Hamming distance
        expected = sorted(r.job_id for r in rows if r.job_id != "astronaut-0"
                          and hamming(astronaut, r.phash) <= distance)
        assert sorted(r.job_id for r, _ in store.similar(
            "acme", astronaut, distance, MAX_SIMILAR, exclude="astronaut-0")) == expected
    assert store.similar("nobody", hashes["astronaut"][0], MAX_DISTANCE, MAX_SIMILAR) == []


def write_as_before_version_3(store: MetadataStore, job_id: str, phash: str) -> None:
    """A job row as code before schema version 3 wrote it: a pHash but no PhashBits."""
    if isinstance(store, SqliteMetadataStore):
        store._conn.execute(
            "INSERT INTO jobs (job_id, status, priority, tenant, source, submitted_at, "
            "finished_at, attempts, phash) VALUES (?, 'DONE', 'normal', 'acme', 's', 1, 2, "
            "1, ?)", (job_id, phash))
        return
    from google.cloud import spanner

    with store.database.batch() as batch:
        batch.insert("Jobs", ("JobId", "Status", "Priority", "Tenant", "Source", "SubmittedAt",
                              "FinishedAt", "Attempts", "Phash", "UpdatedAt"),
                     [(job_id, "DONE", "normal", "acme", "s", datetime.now(UTC),
                       datetime.now(UTC), 1, phash, spanner.COMMIT_TIMESTAMP)])


def test_rows_from_before_version_3_become_searchable_on_migrate(store):
    write_as_before_version_3(store, "legacy", "ffff0000ffff0000")
    write_as_before_version_3(store, "garbled", "not-a-phash-16ch")  # converts to nothing
    assert store.similar("acme", "ffff0000ffff0001", 2, 10) == []
    store.migrate()  # ends although one row can never be converted
    found = store.similar("acme", "ffff0000ffff0001", 2, 10)
    assert [(r.job_id, d) for r, d in found] == [("legacy", 1)]
