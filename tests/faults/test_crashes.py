"""Jobs that kill their worker, and jobs that run long (marker: faults).

An env-guarded hook (pipeline/worker/faults.py) makes the image work of marked jobs abort the
process, exceed memory, or run long and fail. The worker is restarted whenever it dies,
as Kubernetes would; nothing may crash-loop, and every other job finishes exactly once.
"""

from __future__ import annotations

import json
import time

import pytest
from aiokafka.partitioner import murmur2

from pipeline.dev.samples import write_samples
from pipeline.objects import open_object_store
from tests.conftest import make_env
from tests.faults.harness import VARIANTS, assert_exactly_once_effects
from tests.http import get_json
from tests.kafkautil import produce_raw, read_topic
from tests.runtimes import SOURCES

pytestmark = [pytest.mark.kafka, pytest.mark.faults]


def same_partition_ids(prefix: str, count: int, partitions: int, partition: int = 1
                       ) -> list[str]:
    ids, n = [], 0
    while len(ids) < count:
        candidate = f"{prefix}{n:04d}"
        if (murmur2(candidate.encode()) & 0x7FFFFFFF) % partitions == partition:
            ids.append(candidate)
        n += 1
    return ids


def produce_jobs(env, ids: list[str]) -> None:
    settings = env.settings
    store = open_object_store(settings.object_store)
    [photo] = write_samples(env.root / "in", 1, 640, 480)
    source = store.put(f"{SOURCES}/crash/p.jpg", photo.read_bytes(), "image/jpeg")
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"), [
        (j.encode(), json.dumps({"job_id": j, "source": source, "variants": VARIANTS}).encode())
        for j in ids])


class Supervisor:
    """Keeps one worker running: restarts it whenever it exits, counting restarts."""

    def __init__(self, env) -> None:
        self.env = env
        self.restarts = 0
        self.proc, self.port, _ = env.start_worker("w1")

    def check(self) -> None:
        if self.proc.poll() is not None:
            self.restarts += 1
            assert self.restarts <= 3, "the worker is crash-looping"
            self.proc, self.port, _ = self.env.start_worker("w1")

    def states(self, ids: list[str]) -> dict[str, dict]:
        found = {}
        for job_id in ids:
            self.check()
            try:
                status, body = get_json(f"http://127.0.0.1:{self.port}/api/jobs/{job_id}")
            except OSError:
                continue
            if status == 200:
                found[job_id] = body
        return found

    def wait_terminal(self, ids: list[str], timeout: float = 300) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while True:
            states = self.states(ids)
            if all(s.get("status") in ("DONE", "FAILED") for s in states.values()) \
                    and len(states) == len(ids):
                return states
            assert time.monotonic() < deadline, {j: s["status"] for j, s in states.items()}
            time.sleep(1)

    def stop(self) -> None:
        from pipeline.dev.workers import stop_worker

        for proc, _ in self.env.workers:
            stop_worker(proc)


def run_supervised(kafka, tmp_path, marked: str, others: str, count: int, **settings: str
                   ) -> tuple[object, Supervisor, list[str], list[str], dict[str, dict]]:
    """One marked job among ``count`` others on one partition, under a supervisor:
    (env, supervisor, marked ids, other ids, final states)."""
    env = make_env(kafka, tmp_path, IMGPIPE_FAULT_JOBS=marked, **settings)
    env.cli("topics", "create", check=True)
    partitions = env.settings.partitions
    [bad] = same_partition_ids(f"{marked}-", 1, partitions)
    rest = same_partition_ids(f"{others}-", count, partitions)
    supervisor = Supervisor(env)
    try:
        produce_jobs(env, [*rest[:3], bad, *rest[3:]])
        states = supervisor.wait_terminal([bad, *rest])
    finally:
        supervisor.stop()
    return env, supervisor, [bad], rest, states


@pytest.mark.parametrize(("action", "codes"), [
    ("abort", {"worker_crashed"}),
    ("crash-then-oom", {"memory_budget", "worker_crashed"}),
])
def test_a_job_that_kills_its_worker_fails_within_two_crashes(kafka, tmp_path, action, codes):
    env, supervisor, poison, valid, states = run_supervised(
        kafka, tmp_path, "poison", "valid", 7, IMGPIPE_FAULT_ACTION=action,
        IMGPIPE_ISOLATED_MEMORY_MB="768", IMGPIPE_BATCH_SIZE="16", IMGPIPE_BATCH_WINDOW="0.5")
    [bad] = poison
    assert states[bad]["status"] == "FAILED" and states[bad]["error_code"] in codes, states[bad]
    assert supervisor.restarts == 1, "one crash in-process, then the job runs isolated"
    assert {states[j]["status"] for j in valid} == {"DONE"}
    assert_exactly_once_effects(env, valid)
    dlq = [r for r in read_topic(env.settings.bootstrap_servers, env.settings.topic("dlq"))
           if r["job_id"] == bad]
    assert len(dlq) == 1 and dlq[0]["reason"] in codes


def test_a_long_job_that_fails_runs_once(kafka, tmp_path):
    env, supervisor, slow, behind, states = run_supervised(
        kafka, tmp_path, "slow", "behind", 6, IMGPIPE_FAULT_ACTION="fail-after:15",
        IMGPIPE_SWEEP_INTERVAL="1", IMGPIPE_SWEEP_STALE_AFTER="3", IMGPIPE_IMAGE_THREADS="1")
    [long_job] = slow
    assert states[long_job]["status"] == "FAILED"
    runs = {j: [h["status"] for h in s["history"]].count("PROCESSING")
            for j, s in states.items()}
    assert runs == dict.fromkeys([long_job, *behind], 1), runs  # never re-sent or re-run
    dlq = [r for r in read_topic(env.settings.bootstrap_servers, env.settings.topic("dlq"))
           if r["job_id"] == long_job]
    assert len(dlq) == 1 and supervisor.restarts == 0
