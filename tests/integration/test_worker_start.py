"""The README's order, many times over: start a worker and submit at once. Jobs that
arrive while a worker joins and recovers must never wait for the stall check (issue 39:
records delivered during recovery were dropped when flow control resumed; fix 7 in
pipeline/worker/faustcompat.py)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from pipeline.dev.samples import write_samples
from pipeline.dev.workers import start_worker, stop_worker
from pipeline.kafka.local import free_port
from pipeline.objects import open_object_store
from tests.conftest import make_env
from tests.kafkautil import produce_raw
from tests.runtimes import SOURCES

pytestmark = pytest.mark.kafka
ROUNDS = 20
JOBS = 8
SLOWEST = 15.0  # seconds from the first produce to the last DONE


def _done_after(base: str, ids: list[str], started: float, timeout: float) -> dict[str, float]:
    """Seconds after ``started`` at which each job was first seen DONE (polls the API)."""
    done: dict[str, float] = {}
    while len(done) < len(ids) and time.monotonic() - started < timeout:
        for job_id in (j for j in ids if j not in done):
            try:
                with urllib.request.urlopen(f"{base}/api/jobs/{job_id}", timeout=5) as reply:
                    if json.loads(reply.read()).get("status") == "DONE":
                        done[job_id] = time.monotonic() - started
            except OSError:
                pass  # not up yet, or not routed yet: ask again
        time.sleep(0.2)
    return done


def _rescues(base: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("imgpipe_stall_rescues_total "):
                return float(line.split()[1])
    raise AssertionError("imgpipe_stall_rescues_total is not exported")


def test_jobs_sent_while_a_worker_starts_never_wait_for_the_stall_check(kafka, tmp_path):
    env = make_env(kafka, tmp_path, IMGPIPE_SWEEP_STALE_AFTER=str(SLOWEST))
    env.cli("topics", "create", check=True)
    store = open_object_store(env.settings.object_store)
    sources = [store.put(f"{SOURCES}/start/{i}.jpg", p.read_bytes(), "image/jpeg")
               for i, p in enumerate(write_samples(tmp_path / "in", 2, 480, 320))]
    variants = {"t": [{"op": "thumbnail", "size": 64}, {"op": "encode", "format": "png"}]}
    slowest = []
    for round_ in range(ROUNDS):
        port = free_port()
        proc, log = _start(env, round_, port)
        ids = [f"start-{round_}-{i}" for i in range(JOBS)]
        started = time.monotonic()
        for half in (ids[:JOBS // 2], ids[JOBS // 2:]):  # while it joins, and a bit later
            produce_raw(env.settings.bootstrap_servers, env.settings.topic("ingest"), [
                (j.encode(), json.dumps({"job_id": j, "source": sources[i % 2],
                                         "variants": variants}).encode())
                for i, j in enumerate(half)])
        done = _done_after(f"http://127.0.0.1:{port}", ids, started, timeout=90)
        rescues = _rescues(f"http://127.0.0.1:{port}")
        stop_worker(proc)
        assert len(done) == JOBS, f"round {round_}: {sorted(set(ids) - set(done))} not DONE"
        assert rescues == 0 and "made no progress" not in log.read_text(), round_
        slowest.append(max(done.values()))
    assert max(slowest) <= SLOWEST, slowest


def _start(env, round_: int, port: int):
    log = env.root / f"w{round_}.log"
    return start_worker({**env.env, "IMGPIPE_DATA_DIR": str(env.root / f"w{round_}")},
                        log, port), log
