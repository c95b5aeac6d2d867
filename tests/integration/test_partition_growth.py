"""Moving to more partitions (docs/scaling.md, "More partitions: a new topic
generation"): a second generation of topics with twice the partitions under a new app
id takes new submissions while the first drains and is retired. Jobs submitted before,
during and after all end DONE exactly once, and every job's state stays readable."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from pipeline.dev.workers import stop_worker
from tests.conftest import make_env
from tests.faults.harness import assert_exactly_once_effects, submit, wait_until_finished


def job_state(port: int, job_id: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/jobs/{job_id}",
                                    timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_new_topic_generation_takes_over_without_losing_a_job(kafka, tmp_path):
    old = make_env(kafka, tmp_path, IMGPIPE_PARTITIONS="2")
    new = make_env(kafka, tmp_path, IMGPIPE_PARTITIONS="4")  # same stores, new topics
    assert old.settings.app_id != new.settings.app_id
    try:
        old.cli("topics", "create", check=True)
        old_worker, old_port, _ = old.start_worker("gen1")
        old.env["IMGPIPE_API_URL"] = f"http://127.0.0.1:{old_port}"
        before = submit(old, 60, "before")
        wait_until_finished(old, before, 5)

        new.cli("topics", "create", check=True)
        _, new_port, _ = new.start_worker("gen2")
        during = submit(new, 60, "during")  # new submissions go to the new generation
        for job_id in before:  # the old generation still answers for its jobs
            status, state = job_state(old_port, job_id)
            assert status == 200 and state["job_id"] == job_id

        waited = old.cli("drained", "--wait", "--timeout", "300", check=True)
        assert "drained" in waited.stdout
        stop_worker(old_worker)  # retired: its topics can be deleted at leisure
        after = submit(new, 60, "after")
        wait_until_finished(new, during + after, 120)

        for job_id in before:  # finished jobs of the retired generation, from the new one
            status, state = job_state(new_port, job_id)
            assert status == 200, state
            assert state["status"] == "DONE" and state["stored"]
            assert len(state["outputs"]) == 2
        for job_id in during + after:
            status, state = job_state(new_port, job_id)
            assert status == 200 and state["status"] == "DONE" and "stored" not in state
    finally:
        for proc, _ in old.workers + new.workers:
            stop_worker(proc)
    assert_exactly_once_effects(new, before + during + after)
