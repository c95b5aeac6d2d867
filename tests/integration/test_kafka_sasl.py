"""Managed-Kafka style authentication for real: a local broker that only takes SASL SCRAM
logins on its client listener; topics, a worker (Faust) and the CLI (aiokafka) all log in
with IMGPIPE_KAFKA_* settings, and a wrong password is refused with a clear error."""

from __future__ import annotations

import pytest

from pipeline.dev.samples import write_samples
from pipeline.dev.workers import stop_worker
from pipeline.kafka import local as localkafka
from tests.conftest import PipelineEnv

pytestmark = pytest.mark.kafka

USER, PASSWORD = "alice", "alice-secret-1"


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kafka-sasl")
    sasl_port = localkafka.free_port()
    try:
        localkafka.up(localkafka.free_port(), data_dir, echo=lambda m: None,
                      sasl_port=sasl_port, scram_users={USER: PASSWORD})
    except Exception as exc:
        pytest.fail(f"could not start the SASL broker: {exc}", pytrace=False)
    yield f"127.0.0.1:{sasl_port}"
    localkafka.down(data_dir, echo=lambda m: None)


def sasl_env(root, bootstrap: str, mechanism: str, password: str = PASSWORD) -> PipelineEnv:
    prefix = f"sasl{mechanism[-3:]}"
    return PipelineEnv({
        "IMGPIPE_BROKER": f"kafka://{bootstrap}",
        "IMGPIPE_APP_ID": prefix, "IMGPIPE_TOPIC_PREFIX": prefix, "IMGPIPE_PARTITIONS": "2",
        "IMGPIPE_OBJECT_STORE": f"file://{root / 'objects'}",
        "IMGPIPE_METADATA_URL": f"sqlite:///{root / 'metadata.db'}",
        "IMGPIPE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "IMGPIPE_KAFKA_SASL_MECHANISM": mechanism,
        "IMGPIPE_KAFKA_USERNAME": USER, "IMGPIPE_KAFKA_PASSWORD": password,
        "IMGPIPE_BATCH_WINDOW": "0.05",
    }, root)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_worker_and_cli_log_in_with_scram(scram_broker, tmp_path, mechanism):
    env = sasl_env(tmp_path, scram_broker, mechanism)
    env.cli("topics", "create", check=True)
    proc, port, _ = env.start_worker()
    env.env["IMGPIPE_API_URL"] = f"http://127.0.0.1:{port}"
    try:
        images = write_samples(tmp_path / "in", 2, width=200, height=150)
        code, jobs = env.cli_json("submit", *map(str, images), "--variant",
                                  "t=thumbnail:64,webp:q70", "--wait", "--json",
                                  timeout=120)
    finally:
        stop_worker(proc)
    assert code == 0 and [j["status"] for j in jobs] == ["DONE", "DONE"], jobs


def test_a_wrong_password_is_refused_clearly(scram_broker, tmp_path):
    env = sasl_env(tmp_path, scram_broker, "SCRAM-SHA-256", password="wrong")
    result = env.cli("topics", "create", timeout=60)
    assert result.returncode == 2, result.stderr
    assert "authentication" in result.stderr.lower(), result.stderr
