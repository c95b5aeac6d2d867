"""Shared fixtures: one real Kafka broker per test session, workers per test module.

A test that needs Kafka gets it from the ``kafka`` fixture, which starts a real broker
on free ports and FAILS (never skips) when it cannot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.dev import services as devservices
from pipeline.dev.workers import start_worker, stop_worker, wait_healthy
from pipeline.kafka import local as localkafka
from pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kafka(tmp_path_factory):
    """A real single-node Kafka for the whole session (shared: every test uses its own
    topic prefix and consumer group)."""
    data_dir = tmp_path_factory.mktemp("kafka")
    try:
        state = localkafka.up(localkafka.free_port(), data_dir, echo=lambda m: None)
    except Exception as exc:  # fail loudly: a skipped real test is a failure
        pytest.fail(f"could not start the test Kafka broker: {exc}", pytrace=False)
    yield state
    localkafka.down(data_dir, echo=lambda m: None)


def serve_service(name: str, start, exports) -> Iterator:
    """Start a service for the whole session, or fail loudly naming it; while it runs the
    environment holds ``exports(service)`` (what its clients read), restored after."""
    try:
        service = start()
    except Exception as exc:
        pytest.fail(f"could not start {name}: {exc}", pytrace=False)
    variables = exports(service)
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    yield service
    service.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory):
    """fake-gcs-server (built with go install on first use); fails loudly if it can't run."""
    yield from serve_service(
        "fake-gcs-server",
        lambda: devservices.start_fake_gcs(tmp_path_factory.mktemp("gcs") / "gcs.log"),
        lambda service: {"STORAGE_EMULATOR_HOST": f"http://{service.address}"})


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory):
    """The Cloud Pub/Sub emulator; fails loudly if it is not installed or can't run."""
    yield from serve_service(
        "the Cloud Pub/Sub emulator",
        lambda: devservices.start_pubsub_emulator(
            tmp_path_factory.mktemp("pubsub") / "pubsub.log"),
        lambda service: {"PUBSUB_EMULATOR_HOST": service.address})


@pytest.fixture(scope="session")
def spanner_emulator(tmp_path_factory):
    """The Cloud Spanner emulator; fails loudly if it is not installed or can't run."""
    yield from serve_service(
        "the Cloud Spanner emulator",
        lambda: devservices.start_spanner_emulator(
            tmp_path_factory.mktemp("spanner") / "spanner.log"),
        lambda service: {**devservices.SPANNER_CLIENT_ENV,
                         "SPANNER_EMULATOR_HOST": service.address})


def new_bucket(prefix: str = "t") -> str:
    """A fresh bucket on the fake GCS server (STORAGE_EMULATOR_HOST must be set)."""
    from pipeline.objects.gcs import make_client

    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    client = make_client()
    client.create_bucket(name)
    client.close()
    return name


def spanner_url() -> str:
    """A fresh, migrated database on the emulator."""
    from pipeline.metadata import open_metadata_store

    url = f"spanner://projects/imgpipe-test/instances/test/databases/d{uuid.uuid4().hex[:12]}"
    store = open_metadata_store(url)
    store.migrate()
    store.close()
    return url


@dataclass
class PipelineEnv:
    """An isolated pipeline on the shared broker: own topics, group, stores."""

    env: dict[str, str]
    root: Path
    workers: list = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def cli(self, *args: str, check: bool = False, timeout: float = 300
            ) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "pipeline.cli", *args],
                                env={**os.environ, **self.env}, capture_output=True,
                                text=True, timeout=timeout, cwd=self.root)
        if check and result.returncode != 0:
            raise AssertionError(f"imgpipe {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def cli_json(self, *args: str, timeout: float = 300):
        result = self.cli(*args, timeout=timeout)
        try:
            return result.returncode, json.loads(result.stdout)
        except ValueError:
            raise AssertionError(f"no JSON from imgpipe {' '.join(args)}:\n{result.stdout}\n"
                                 f"{result.stderr}") from None

    def start_worker(self, name: str = "w1"):
        port = localkafka.free_port()
        log = self.root / f"{name}.log"
        proc = start_worker({**self.env, "IMGPIPE_DATA_DIR": str(self.root / name)}, log, port)
        self.workers.append((proc, log))
        try:
            wait_healthy(proc, f"http://127.0.0.1:{port}", log, timeout=90)
        except Exception as exc:
            pytest.fail(f"worker {name} did not start: {exc}", pytrace=False)
        return proc, port, log


def make_env(kafka_state, root: Path, **overrides: str) -> PipelineEnv:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = {
        "IMGPIPE_BROKER": f"kafka://{kafka_state.bootstrap}",
        "IMGPIPE_APP_ID": prefix,
        "IMGPIPE_TOPIC_PREFIX": prefix,
        "IMGPIPE_PARTITIONS": "4",
        "IMGPIPE_OBJECT_STORE": f"file://{root / 'objects'}",
        "IMGPIPE_METADATA_URL": f"sqlite:///{root / 'metadata.db'}",
        "IMGPIPE_BATCH_WINDOW": "0.1",
        "IMGPIPE_RETRY_BACKOFF": "0.2",
        **overrides,
    }
    return PipelineEnv(env, root)


def running_pipeline(kafka_state, root: Path, request, **overrides: str):
    """Generator behind the pipeline fixtures: topics created, one worker running."""
    env = make_env(kafka_state, root, **overrides)
    env.cli("topics", "create", check=True)
    _, port, _ = env.start_worker()
    env.env["IMGPIPE_API_URL"] = f"http://127.0.0.1:{port}"
    yield env
    for proc, log in env.workers:
        code = stop_worker(proc)
        if request.session.testsfailed:
            sys.stderr.write(f"\n--- worker log {log} (exit {code}) ---\n"
                             + log.read_text(errors="replace")[-6000:])


@pytest.fixture(scope="module")
def pipeline(kafka, tmp_path_factory, request):
    """An isolated pipeline with its topics created and one worker running."""
    yield from running_pipeline(kafka, tmp_path_factory.mktemp("pipeline"), request)
