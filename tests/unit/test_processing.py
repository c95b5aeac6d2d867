import asyncio

import pytest

from pipeline.errors import ImageRejected, MetadataUnavailable, StorageUnavailable
from pipeline.jobs.engine import JobResult
from pipeline.jobs.processing import DONE, FAILED, RETRY, classify, retry_delay, run_batch
from pipeline.metadata import MetadataStore
from pipeline.models import JobRequest, storage_path
from pipeline.ops import compile_variants, parse_variant_specs
from pipeline.settings import Settings
from pipeline.worker.runtime import Runtime
from tests.images import encode, quadrants
from tests.runtimes import SOURCES

REQ = JobRequest("j1", "file:///s", {"v": []})


def test_classify():
    assert classify(REQ, JobResult([], "00"), 3, 1.0).kind == DONE
    assert classify(REQ, ImageRejected("bad"), 3, 1.0).kind == FAILED
    retry = classify(REQ, StorageUnavailable("down"), 3, 1.0)
    assert retry.kind == RETRY and retry.retry_at > 0
    last = JobRequest(**{**REQ.to_dict(), "attempt": 2})
    exhausted = classify(last, StorageUnavailable("down"), 3, 1.0)
    assert exhausted.kind == FAILED and exhausted.error.code == "retries_exhausted"
    unexpected = classify(REQ, ZeroDivisionError("boom"), 3, 1.0)
    assert unexpected.kind == RETRY and unexpected.error.code == "internal_error"


def test_backoff_grows_with_jitter():
    delays = [retry_delay(a, 1.0) for a in range(5)]
    for attempt, delay in enumerate(delays):
        assert 2 ** attempt / 2 <= delay <= 2 ** attempt
    assert retry_delay(30, 1.0, cap=60) <= 60


class BrokenMetadata(MetadataStore):
    """A metadata outage (a fault we cannot cause in SQLite on demand)."""

    def upsert_batch(self, records):
        raise MetadataUnavailable("database unreachable")

    def get_job(self, job_id):
        return None

    def list_jobs(self, status=None, limit=100):
        return []

    def count_rows(self):
        return 0, 0

    def similar(self, tenant, phash, max_distance, limit, exclude=None):
        return []


@pytest.fixture
def runtime(tmp_path):
    settings = Settings.from_env({"IMGPIPE_OBJECT_STORE": f"file://{tmp_path}/objects",
                                  "IMGPIPE_METADATA_URL": f"sqlite:///{tmp_path}/m.db"})
    rt = Runtime(settings)
    yield rt
    rt.close()


def _job(runtime, job_id, data):
    uri = runtime.object_store.put(f"{SOURCES}/{storage_path(job_id)}/src", data, "image/png")
    request = JobRequest(job_id, uri, parse_variant_specs(["t=fit:50x50,png"]), "normal")
    return request, compile_variants(request.variants, runtime.limits, 4)


def test_batch_mixes_success_and_permanent_failure_in_one_commit(runtime):
    work = [_job(runtime, "good", encode(quadrants())), _job(runtime, "bad", b"not an image")]
    outcomes = asyncio.run(run_batch(work, runtime))
    assert [o.kind for o in outcomes] == [DONE, FAILED]
    assert outcomes[1].error.code == "not_an_image"
    assert runtime.metadata.count_rows() == (2, 1)
    assert runtime.metadata.get_job("bad").error_code == "not_an_image"


def test_metadata_outage_sends_the_batch_to_retry(runtime):
    runtime.__dict__["metadata"] = BrokenMetadata()
    outcomes = asyncio.run(run_batch([_job(runtime, "good", encode(quadrants()))], runtime))
    assert [o.kind for o in outcomes] == [RETRY]
    assert outcomes[0].error.code == "metadata_unavailable"


def test_a_format_pillow_knows_but_we_do_not_fails_on_the_first_attempt(runtime, caplog):
    """DDS once made Image.open raise NotImplementedError: retried three times with
    tracebacks at ERROR. Now it is a permanent, named rejection with no traceback."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format="DDS")
    outcomes = asyncio.run(run_batch([_job(runtime, "dds", buffer.getvalue())], runtime))
    assert [o.kind for o in outcomes] == [FAILED]
    assert outcomes[0].error.code == "unsupported_format"
    assert runtime.metadata.get_job("dds").attempts == 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
