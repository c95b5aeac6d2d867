"""The pipeline on GCS (fake-gcs-server) and Spanner (emulator): jobs through Kafka, outputs
in the bucket, rows in Spanner, and replays that change nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.dev.samples import write_samples
from pipeline.dev.workers import start_worker
from pipeline.kafka import local as localkafka
from pipeline.metadata import open_metadata_store
from pipeline.metadata.spanner import ddl_versions
from pipeline.objects.gcs import make_client
from tests.conftest import make_env, new_bucket, running_pipeline, spanner_url

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def cloud(kafka, fake_gcs, spanner_emulator, tmp_path_factory, request):
    bucket = new_bucket("lake")
    url = spanner_url()
    env_iter = running_pipeline(kafka, tmp_path_factory.mktemp("cloud"), request,
                                IMGPIPE_OBJECT_STORE=f"gs://{bucket}/lake",
                                IMGPIPE_METADATA_URL=url)
    env = next(env_iter)
    env.bucket = bucket
    yield env
    next(env_iter, None)


def blobs(bucket: str) -> list[str]:
    client = make_client()
    names = sorted(b.name for b in client.list_blobs(bucket))
    client.close()
    return names


def test_jobs_land_in_gcs_and_spanner_and_replays_add_nothing(cloud, tmp_path):
    images = write_samples(tmp_path, 6, width=640, height=480)
    ids = [f"cloud-{i}" for i in range(6)]
    args = ["submit", *map(str, images), "--variant", "thumb=thumbnail:128,webp:q75",
            "--variant", "large=w:400,jpeg:q80", "--wait", "--json"]
    for job_id in ids:
        args += ["--job-id", job_id]
    code, jobs = cloud.cli_json(*args)
    assert code == 0 and {j["status"] for j in jobs} == {"DONE"}, jobs
    assert all(o["uri"].startswith(f"gs://{cloud.bucket}/lake/outputs/dt=")
               for j in jobs for o in j["outputs"])

    names = blobs(cloud.bucket)
    outputs = [n for n in names if n.startswith("lake/outputs/")]
    sources = [n for n in names if n.startswith("lake/sources/dt=")]
    assert len(outputs) == 12 and len(sources) == 6
    store = open_metadata_store(cloud.settings.metadata_url)
    assert store.count_rows() == (6, 12)
    row = store.get_job("cloud-0")
    assert row.status == "DONE" and {o.variant for o in row.outputs} == {"thumb", "large"}
    assert row.name == images[0].name  # Spanner keeps the file name too
    assert row.phash and len(row.phash) == 16

    # the same job submitted again: answered from the table, not reprocessed
    again = cloud.cli_json("submit", str(images[0]), "--job-id", "cloud-0", "--variant",
                           "thumb=thumbnail:128,webp:q75", "--variant", "large=w:400,jpeg:q80",
                           "--wait", "--json")[1][0]
    assert again["status"] == "DONE"
    # forced twice: reprocessed, outputs overwritten in place, rows replaced
    for _ in range(2):
        code, [forced] = cloud.cli_json(
            "submit", str(images[0]), "--job-id", "cloud-0", "--force", "--variant",
            "thumb=thumbnail:128,webp:q75", "--variant", "large=w:400,jpeg:q80", "--wait",
            "--json")
        assert code == 0 and forced["status"] == "DONE"
    history = cloud.cli_json("status", "cloud-0", "--json")[1]
    assert blobs(cloud.bucket) == names
    assert store.count_rows() == (6, 12)
    code, detail = cloud.cli_json("status", "cloud-0", "--json")
    assert detail["status"] == "DONE"
    assert history["outputs"] == detail["outputs"]
    store.close()


def test_worker_refuses_an_unmigrated_spanner_database(kafka, spanner_emulator, tmp_path):
    url = spanner_url().replace("/databases/d", "/databases/x")  # fresh, never migrated
    env = make_env(kafka, tmp_path, IMGPIPE_METADATA_URL=url)
    log = tmp_path / "worker.log"
    proc = start_worker({**env.env, "IMGPIPE_DATA_DIR": str(tmp_path / "w")}, log,
                        localkafka.free_port())
    try:
        proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("worker kept running on an unmigrated database")
    assert proc.returncode == 2  # refused before joining the group, with one line
    output = log.read_text(errors="replace")
    assert "imgpipe db migrate" in output and "Traceback" not in output


def test_db_migrate_command(spanner_emulator):
    url = spanner_url().replace("/databases/d", "/databases/m")
    run = [sys.executable, "-m", "pipeline.cli", "db", "migrate"]
    env = {**__import__("os").environ, "IMGPIPE_METADATA_URL": url}
    first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    every = sorted(version for version, _ in ddl_versions())
    assert every[:2] == [1, 2]  # jobs and outputs; the file name and label columns
    assert first.returncode == 0 and f"applied schema version(s) {every}" in first.stdout
    second = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "up to date" in second.stdout
