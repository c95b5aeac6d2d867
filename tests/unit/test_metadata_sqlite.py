"""The embedded SQLite metadata store: idempotent upserts, and upgrades of older databases."""

import sqlite3

from pipeline.metadata import JobRecord, SqliteMetadataStore, open_metadata_store
from pipeline.models import OutputInfo


def record(job_id, status="DONE", variants=("a", "b")):
    outputs = tuple(OutputInfo(v, f"file:///o/{job_id}/{v}.jpg", 10, 10, "jpeg", 5)
                    for v in variants)
    return JobRecord(job_id, status, "normal", "t", "file:///s", 1.0, 2.0, 1, outputs=outputs)


def test_upsert_is_idempotent(tmp_path):
    store = open_metadata_store(f"sqlite:///{tmp_path}/m.db")
    batch = [record("j1"), record("j2")]
    store.upsert_batch(batch)
    store.upsert_batch(batch)  # a replayed batch
    assert store.count_rows() == (2, 4)
    assert store.get_job("j1") == batch[0]


def test_rerun_with_fewer_variants_leaves_exactly_the_new_outputs(tmp_path):
    store = open_metadata_store(f"sqlite:///{tmp_path}/m.db")
    store.upsert_batch([record("j1", variants=("a", "b", "c"))])
    store.upsert_batch([record("j1", variants=("a",))])
    assert [o.variant for o in store.get_job("j1").outputs] == ["a"]
    assert store.count_rows() == (1, 1)


def test_list_by_status(tmp_path):
    store = open_metadata_store(f"sqlite:///{tmp_path}/m.db")
    store.upsert_batch([record("j1"), record("j2", status="FAILED", variants=())])
    assert [r.job_id for r in store.list_jobs(status="FAILED")] == ["j2"]
    assert store.get_job("missing") is None


#: The jobs table as schema version 1 made it (before name, label, image, phash_bits).
VERSION_1_JOBS = """CREATE TABLE jobs (job_id TEXT PRIMARY KEY, status TEXT NOT NULL,
    priority TEXT NOT NULL, tenant TEXT NOT NULL, source TEXT NOT NULL,
    submitted_at REAL NOT NULL, finished_at REAL NOT NULL, attempts INTEGER NOT NULL,
    error_code TEXT, error TEXT, phash TEXT)"""


def test_a_version_1_database_is_upgraded_and_its_rows_still_read(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute(VERSION_1_JOBS)
        old.execute("INSERT INTO jobs VALUES ('old', 'DONE', 'normal', 'acme', 'gs://b/s', "
                    "1.0, 2.0, 1, NULL, NULL, 'ffff0000ffff0000')")
    store = SqliteMetadataStore(path)
    try:
        before = store.get_job("old")
        assert before.phash == "ffff0000ffff0000" and before.image is None
        assert before.name is None and before.outputs == ()
        # the upgrade gave the old row its searchable pHash; new rows have theirs
        store.upsert_batch([JobRecord("new", "DONE", "normal", "acme", "gs://b/n", 1.0, 3.0, 1,
                                      phash="ffff0000ffff0001", image={"width": 1})])
        found = store.similar("acme", "ffff0000ffff0003", 4, 10)
        assert [(r.job_id, d) for r, d in found] == [("new", 1), ("old", 2)]
        assert store.get_job("new").image == {"width": 1}
    finally:
        store.close()
