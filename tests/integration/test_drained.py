"""`imgpipe drained` against a real worker with work in flight: it says not drained and
names the jobs holding it back, then drained once they finish (issue 39)."""

from __future__ import annotations

import json
import time

import pytest

from pipeline.dev.samples import write_samples
from pipeline.objects import open_object_store
from tests.conftest import running_pipeline
from tests.kafkautil import produce_raw
from tests.runtimes import SOURCES

pytestmark = pytest.mark.kafka
SLOW = 4  # seconds each slow job's image work sleeps (IMGPIPE_FAULT_ACTION)


@pytest.fixture(scope="module")
def slow(kafka, tmp_path_factory, request):
    yield from running_pipeline(kafka, tmp_path_factory.mktemp("drained"), request,
                                IMGPIPE_IMAGE_THREADS="1", IMGPIPE_FAULT_JOBS="slow-",
                                IMGPIPE_FAULT_ACTION=f"sleep:{SLOW}")


def test_drained_names_the_unfinished_jobs_then_says_drained(slow, tmp_path):
    settings = slow.settings
    store = open_object_store(settings.object_store)
    [photo] = write_samples(tmp_path, 1, 320, 240)
    source = store.put(f"{SOURCES}/drained/p.jpg", photo.read_bytes(), "image/jpeg")
    ids = [f"slow-{i}" for i in range(3)]
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"), [
        (j.encode(), json.dumps({"job_id": j, "source": source, "variants": {
            "t": [{"op": "encode", "format": "png"}]}}).encode()) for j in ids])
    deadline = time.monotonic() + 60
    while True:  # until the first slow job runs and the others wait behind it
        _, stats = slow.cli_json("status", ids[0], "--json")
        if stats["status"] == "PROCESSING" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    busy = slow.cli("drained")
    assert busy.returncode == 1, busy.stdout + busy.stderr
    assert "not drained" in busy.stdout and "jobs unfinished (" in busy.stdout
    assert "slow-0 (PROCESSING)" in busy.stdout, busy.stdout
    done = slow.cli("drained", "--wait", "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "drained: every record consumed, every job finished" in done.stdout
    assert all(slow.cli_json("status", j, "--json")[1]["status"] == "DONE" for j in ids)
