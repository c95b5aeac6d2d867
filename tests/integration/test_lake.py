"""The event archive on the real broker, on both object stores: every processed job is
archived exactly once across archiver crashes, DuckDB answers analytics over the files,
and retention removes only old partitions."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from pipeline.dev.samples import write_samples
from pipeline.lake.files import parse_key
from pipeline.objects import open_object_store
from tests.conftest import new_bucket, running_pipeline

pytestmark = pytest.mark.kafka

LAKE = {"IMGPIPE_LAKE_TABLES": "results,dlq,ingest", "IMGPIPE_LAKE_ROLL_RECORDS": "5",
        "IMGPIPE_LAKE_ROLL_SECONDS": "1"}


@pytest.fixture(scope="module", params=["file", "gs"])
def lake_env(request, kafka, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"lake-{request.param}")
    extra = dict(LAKE)
    if request.param == "gs":
        request.getfixturevalue("fake_gcs")
        extra["IMGPIPE_OBJECT_STORE"] = f"gs://{new_bucket('lake')}/p"
    gen = running_pipeline(kafka, root, request, **extra)
    env = next(gen)
    env.archivers = []
    yield env
    for proc in env.archivers:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    next(gen, None)


def start_archiver(env) -> subprocess.Popen:
    log = (env.root / "archiver.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "archive"],
                            env={**os.environ, **env.env}, stdout=log,
                            stderr=subprocess.STDOUT, cwd=env.root, start_new_session=True)
    env.archivers.append(proc)
    return proc


def archived(env, table: str) -> list[str]:
    store = open_object_store(env.settings.object_store)
    try:
        return store.list_keys(f"lake/{table}")
    finally:
        store.close()


def archived_rows(env, table: str) -> list[dict]:
    store = open_object_store(env.settings.object_store)
    rows = []
    try:
        for key in store.list_keys(f"lake/{table}"):
            data = store.get(store.uri_for(key), 1 << 30)
            rows += pq.read_table(pa.BufferReader(data)).to_pylist()
    finally:
        store.close()
    return rows


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value


def submit(env, tmp_path: Path, ids: list[str], priority: str) -> None:
    images = write_samples(tmp_path / priority, len(ids), width=320, height=240)
    args = ["submit", *map(str, images), "--variant", "t=thumbnail:64,webp:q70",
            "--priority", priority, "--wait", "--json"]
    for job_id in ids:
        args += ["--job-id", job_id]
    code, jobs = env.cli_json(*args)
    assert code == 0, jobs


def forget_commits(env) -> None:
    """Commit offset 0 for every archived partition: as if every file had been stored
    but no commit had reached Kafka (a crash between the two). Kafka takes such a commit
    once the killed archiver's session has expired and the group is empty."""
    group = f"{env.settings.app_id}-archive"
    topics = [env.settings.topic(t) for t in ("results", "dlq", "ingest")]

    async def run() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=env.settings.bootstrap_servers,
                                    group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in topics for p in range(env.settings.partitions)]
            consumer.assign(tps)
            deadline = time.monotonic() + 30
            while True:
                try:
                    await consumer.commit({tp: OffsetAndMetadata(0, "") for tp in tps})
                    return
                except KafkaError:
                    assert time.monotonic() < deadline, "the archiver group never emptied"
                    await asyncio.sleep(1)
        finally:
            await consumer.stop()

    asyncio.run(run())


def test_every_job_is_archived_exactly_once_across_crashes(lake_env, tmp_path):
    env = lake_env
    first = [f"lake-a{i}" for i in range(12)]
    second = [f"lake-b{i}" for i in range(9)]
    archiver = start_archiver(env)
    submit(env, tmp_path, first, "high")
    wait_for(lambda: len(archived_rows(env, "results")) >= 5, 60, "the first results file")
    archiver.send_signal(signal.SIGKILL)  # buffered records are lost with it, not committed
    archiver.wait(10)

    submit(env, tmp_path, second, "low")
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    code, jobs = env.cli_json("submit", str(bad), "--job-id", "lake-bad", "--wait", "--json")
    assert code == 1 and jobs[0]["status"] == "FAILED"
    reason = jobs[0]["error_code"]

    forget_commits(env)  # the restarted archiver must trust its files, not the offsets
    start_archiver(env)
    expected = set(first) | set(second) | {"lake-bad"}
    rows = wait_for(lambda: (r := archived_rows(env, "results")) and {x["job_id"] for x in r}
                    >= expected and r, 90, "every job in the archive")
    time.sleep(2.5)  # anything still buffered would be written by now
    rows = archived_rows(env, "results")
    ids = [row["job_id"] for row in rows]
    assert sorted(ids) == sorted(expected), "each finished job exactly once"
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in rows}) == len(rows)
    [failed] = [r for r in rows if r["job_id"] == "lake-bad"]
    assert failed["status"] == "FAILED" and failed["error_code"] == reason
    dlq = archived_rows(env, "dlq")
    assert [r["job_id"] for r in dlq] == ["lake-bad"] and dlq[0]["reason"] == reason
    assert {r["job_id"] for r in archived_rows(env, "ingest")} >= expected

    for key in archived(env, "results"):  # names carry partition and offsets; hive layout
        span = parse_key(key)
        assert span and "/dt=" in key and "/hour=" in key and span.first <= span.last
    env.archivers[-1].send_signal(signal.SIGTERM)
    assert env.archivers[-1].wait(30) == 0


def test_duckdb_query_over_the_archive(lake_env):
    env = lake_env
    code, per_priority = env.cli_json(
        "lake", "query", "--json",
        "SELECT priority, status, count(*) AS jobs, quantile_cont(latency_seconds, 0.95) "
        "AS p95_latency FROM results GROUP BY ALL ORDER BY priority, status")
    assert code == 0, per_priority
    counts = {(r["priority"], r["status"]): r["jobs"] for r in per_priority}
    assert counts == {("high", "DONE"): 12, ("low", "DONE"): 9, ("normal", "FAILED"): 1}
    assert all(r["p95_latency"] is not None and r["p95_latency"] > 0 for r in per_priority)

    code, reasons = env.cli_json("lake", "query", "--json",
                                 "SELECT reason, count(*) AS n FROM dlq GROUP BY reason")
    [failed] = env.cli_json("status", "lake-bad", "--json")[1:]
    assert reasons == [{"reason": failed["error_code"], "n": 1}]
    code, hours = env.cli_json("lake", "query", "--json",
                               "SELECT dt, hour, count(*) AS n FROM results GROUP BY ALL")
    assert sum(r["n"] for r in hours) == 22 and all(len(str(r["dt"])) == 10 for r in hours)

    bad = env.cli("lake", "query", "SELECT * FROM nope")
    assert bad.returncode == 2 and "tables: results, dlq, ingest" in bad.stderr


def test_prune_removes_only_partitions_past_retention(lake_env):
    env = lake_env
    store = open_object_store(env.settings.object_store)
    old = "lake/results/dt=2020-01-01/hour=00/results-p0000-000000000000-000000000000.parquet"
    store.put(old, b"old", "application/octet-stream")
    before = store.list_keys("lake")
    store.close()
    dry = env.cli("lake", "prune", "--keep-days", "30", "--dry-run", check=True)
    assert dry.stdout.strip() == f"would delete {old}"
    env.cli("lake", "prune", "--keep-days", "30", check=True)
    store = open_object_store(env.settings.object_store)
    after = store.list_keys("lake")
    store.close()
    assert sorted(after) == sorted(k for k in before if k != old) and len(after) > 5
    assert json.loads(env.cli("lake", "query", "--json",
                              "SELECT count(*) AS n FROM results").stdout)[0]["n"] == 22
