"""ONE contract, every metadata store: SQLite and Spanner (emulator)."""

from __future__ import annotations

import pytest

from pipeline.metadata import JobRecord, MetadataStore, open_metadata_store
from pipeline.models import OutputInfo
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
