"""`imgpipe kafka up/down/status` and `imgpipe topics create` against real brokers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from pipeline.kafka import local as localkafka
from pipeline.kafka.nodeconfig import SINGLE_NODE_METADATA_IDLE_MS
from tests.conftest import make_env

pytestmark = pytest.mark.kafka


def imgpipe(*args, env=None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMGPIPE_")}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True,
                          text=True, env={**clean, **(env or {})}, timeout=180)


def test_up_status_down_cycle(tmp_path):
    port = localkafka.free_port()
    data_dir = str(tmp_path / "k")
    started = time.monotonic()
    up = imgpipe("kafka", "up", "--port", str(port), "--data-dir", data_dir)
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == f"127.0.0.1:{port}"
    # not where other commands look by default: say what to export
    assert f"export IMGPIPE_BROKER=kafka://127.0.0.1:{port}" in up.stderr
    first_start = time.monotonic() - started
    try:
        again = imgpipe("kafka", "up", "--port", str(port), "--data-dir", data_dir)
        assert again.returncode == 0 and "already running" in again.stderr
        pid = localkafka.read_state(tmp_path / "k").pid
        assert localkafka.pid_alive(pid)
        status = imgpipe("kafka", "status", "--data-dir", data_dir)
        assert status.returncode == 0 and f"running: 127.0.0.1:{port}" in status.stdout
    finally:
        down = imgpipe("kafka", "down", "--data-dir", data_dir)
    assert down.returncode == 0 and "stopped" in down.stderr
    assert not localkafka.pid_alive(pid)
    assert imgpipe("kafka", "status", "--data-dir", data_dir,
                   env={"IMGPIPE_BROKER": f"kafka://127.0.0.1:{port}"}).returncode == 1
    print(f"kafka cold start incl. CLI: {first_start:.1f}s")


def test_up_on_a_taken_port_explains_what_to_do(kafka, tmp_path):
    result = imgpipe("kafka", "up", "--port", str(kafka.port), "--data-dir",
                     str(tmp_path / "other"))
    assert result.returncode == 2
    assert f"port {kafka.port}" in result.stderr and "--port" in result.stderr


def _describe(bootstrap, names):
    async def run():
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(names)}
        finally:
            await admin.close()

    return asyncio.run(run())


def test_topics_create_is_idempotent(kafka, tmp_path):
    env = make_env(kafka, tmp_path, IMGPIPE_PARTITIONS="3")
    first = imgpipe("topics", "create", env=env.env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created") == 9  # 7 source topics, 2 table changelogs
    second = imgpipe("topics", "create", env=env.env)
    assert second.returncode == 0 and second.stdout.count("exists") == 9
    prefix, app = env.env["IMGPIPE_TOPIC_PREFIX"], env.env["IMGPIPE_APP_ID"]
    names = [f"{prefix}.{n}" for n in ("ingest", "jobs.high", "jobs.normal", "jobs.low",
                                       "retry", "results", "dlq")]
    names += [f"{app}-jobs-changelog", f"{app}-throughput-changelog"]
    assert _describe(kafka.bootstrap, names) == dict.fromkeys(names, 3)
    # a different partition count would break co-partitioning: refuse loudly
    mismatch = imgpipe("topics", "create", env={**env.env, "IMGPIPE_PARTITIONS": "5"})
    assert mismatch.returncode == 2 and "co-partitioning" in mismatch.stderr


def test_clear_error_when_kafka_is_not_running(tmp_path):
    env = {"IMGPIPE_BROKER": f"kafka://127.0.0.1:{localkafka.free_port()}"}
    result = imgpipe("topics", "create", env=env)
    assert result.returncode == 2 and "imgpipe kafka up" in result.stderr


def test_a_worker_started_before_its_topics_waits_visibly_and_starts_when_they_exist(
        kafka, tmp_path):
    from pipeline.dev.samples import write_samples
    from pipeline.dev.workers import start_worker, stop_worker, wait_healthy

    env = make_env(kafka, tmp_path)
    log, port = tmp_path / "w.log", localkafka.free_port()
    worker = start_worker({**env.env, "IMGPIPE_DATA_DIR": str(tmp_path / "w")}, log, port)
    try:
        deadline = time.monotonic() + 90
        while "waiting for topics" not in log.read_text(errors="replace"):
            assert worker.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.2)
        assert "imgpipe topics create" in log.read_text()
        env.cli("topics", "create", check=True)
        wait_healthy(worker, f"http://127.0.0.1:{port}", log, timeout=90)
        [image] = write_samples(tmp_path / "in", 1, 320, 240)
        env.env["IMGPIPE_API_URL"] = f"http://127.0.0.1:{port}"
        code, [job] = env.cli_json("submit", str(image), "--variant", "t=fit:32x32,png",
                                   "--wait", "--json", "--timeout", "120")
        assert code == 0 and job["status"] == "DONE"
    finally:
        stop_worker(worker)


def test_status_finds_a_broker_started_elsewhere(kafka, tmp_path):
    env = {"IMGPIPE_BROKER": f"kafka://{kafka.bootstrap}"}
    found = imgpipe("kafka", "status", "--data-dir", str(tmp_path / "none"), env=env)
    assert found.returncode == 0 and f"running: {kafka.bootstrap}" in found.stdout
    gone = imgpipe("kafka", "status", "--data-dir", str(tmp_path / "none"),
                   env={"IMGPIPE_BROKER": f"kafka://127.0.0.1:{localkafka.free_port()}"})
    assert gone.returncode == 1 and "nothing answers" in gone.stdout


def test_a_single_node_writes_idle_metadata_records_rarely(kafka):
    """The broker took the setting (an unknown or misspelt one is only logged)."""

    async def effective_config() -> dict[str, str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.BROKER, "1")])
        finally:
            await admin.close()
        [resource] = response.to_object()["resources"]
        return {entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]}

    config = asyncio.run(effective_config())
    assert config["metadata.max.idle.interval.ms"] == str(SINGLE_NODE_METADATA_IDLE_MS)


def test_rebalance_refuses_to_exclude_a_broker_the_cluster_lacks(kafka, tmp_path):
    env = make_env(kafka, tmp_path)
    result = imgpipe("kafka", "rebalance", "--exclude", "99", env=env.env)
    assert result.returncode == 2, result.stderr
    assert "--exclude 99: no such broker" in result.stderr and "moved" not in result.stdout
