from pipeline.metadata import JobRecord, open_metadata_store
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
