"""Shared machinery of the fault scenarios: submit many jobs, watch them, count effects."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.dev.samples import write_samples
from pipeline.kafka import local as localkafka
from pipeline.objects import open_object_store
from pipeline.objects.local import TEMP_PREFIX, path_from_file_uri
from tests.kafkautil import produce_raw, read_topic
from tests.runtimes import SOURCES


@contextmanager
def three_brokers(tmp_path: Path, **options) -> Iterator[tuple[localkafka.BrokerState, Path]]:
    """A three-node KRaft cluster of its own (RF 3, min ISR 2) and its data folder."""
    cluster_dir = tmp_path / "cluster"
    cluster = localkafka.up(localkafka.free_port(), cluster_dir, echo=lambda m: None,
                            brokers=3, **options)
    try:
        yield cluster, cluster_dir
    finally:
        localkafka.down(cluster_dir, echo=lambda m: None)


VARIANTS = {"small": [{"op": "resize", "width": 320}, {"op": "encode", "format": "jpeg"}],
            "thumb": [{"op": "thumbnail", "size": 96}, {"op": "encode", "format": "webp"}]}


def submit(env, count: int, prefix: str) -> list[str]:
    """Produce ``count`` jobs straight onto ingest (sources uploaded first)."""
    settings = env.settings
    store = open_object_store(settings.object_store)
    sources = [store.put(f"{SOURCES}/{prefix}/{i}.jpg", p.read_bytes(), "image/jpeg")
               for i, p in enumerate(write_samples(env.root / "in", 6, 800, 600))]
    ids = [f"{prefix}-{i:04d}" for i in range(count)]
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"), [
        (j.encode(), json.dumps({"job_id": j, "source": sources[n % len(sources)],
                                 "variants": VARIANTS}).encode()) for n, j in enumerate(ids)])
    return ids


def finished(env, ids: list[str]) -> set[str]:
    wanted = set(ids)
    return {r["job_id"] for r in read_topic(env.settings.bootstrap_servers,
                                             env.settings.topic("results"))} & wanted


def wait_until_finished(env, ids: list[str], at_least: int, timeout: float = 300) -> float:
    """Block until ``at_least`` of ``ids`` have a result; seconds it took."""
    started = time.monotonic()
    while len(finished(env, ids)) < at_least:
        if time.monotonic() - started > timeout:
            logs = "\n".join(f"--- {log}\n" + log.read_text(errors="replace")[-2500:]
                             for _, log in env.workers)
            pytest.fail(f"only {len(finished(env, ids))}/{at_least} jobs finished in "
                        f"{timeout}s\n{logs}")
        time.sleep(0.3)
    return time.monotonic() - started


def assert_exactly_once_effects(env, ids: list[str]) -> None:
    """Every job DONE in the metadata, exactly its outputs in rows and in the store."""
    settings = env.settings
    with sqlite3.connect(path_from_file_uri("file://" + settings.metadata_url.removeprefix(
            "sqlite:///"))) as conn:
        jobs = dict(conn.execute("SELECT job_id, status FROM jobs").fetchall())
        outputs = conn.execute("SELECT job_id, variant FROM outputs").fetchall()
    assert {j: jobs.get(j) for j in ids} == dict.fromkeys(ids, "DONE")
    assert len(outputs) == len(set(outputs)) == 2 * len(ids)
    # A worker killed in the middle of a write may leave its temp file behind (never
    # visible as an output: outputs appear only by rename); count the real outputs.
    files = [p for p in (path_from_file_uri(settings.object_store) / "outputs").rglob("*")
             if p.is_file() and not p.name.startswith(TEMP_PREFIX)]
    assert len(files) == 2 * len(ids), len(files)


def api_states(port: int, ids: list[str]) -> dict[str, dict]:
    """Each job's state as a worker's API serves it (routed to the key's owner)."""
    states = {}
    for job_id in ids:
        last_error = None
        for _ in range(60):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/jobs/{job_id}",
                                            timeout=10) as response:
                    states[job_id] = json.loads(response.read())
                    break
            except urllib.error.HTTPError as exc:
                last_error = f"{exc.code} {exc.read()[:300]!r}"
                time.sleep(0.5)  # 503 during a rebalance
            except OSError as exc:
                last_error = repr(exc)
                time.sleep(0.5)
        else:
            pytest.fail(f"worker on {port} never answered for {job_id}: {last_error}")
    return states


def local_job_ids(port: int) -> set[str]:
    """Jobs in the partitions this worker actively owns (no standby copies)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/jobs?scope=local&limit=1000",
                                timeout=10) as response:
        return {j["job_id"] for j in json.loads(response.read())["jobs"]}


def processing_counts(states: dict[str, dict]) -> dict[str, int]:
    return {j: [h["status"] for h in s["history"]].count("PROCESSING")
            for j, s in states.items()}

