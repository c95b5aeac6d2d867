"""Isolated runs: a child process the job cannot take the worker down from."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from pipeline.errors import ImageRejected
from pipeline.jobs.isolation import ChildDied, DeadlineExceeded, run_isolated
from pipeline.jobs.processing import DONE, run_batch
from pipeline.models import JobRequest
from pipeline.ops import compile_variants, parse_variant_specs
from tests.images import encode, quadrants
from tests.runtimes import SOURCES, local_runtime


def test_results_and_errors_come_back_from_the_child():
    assert run_isolated(len, b"abcd", deadline=30) == 4
    with pytest.raises(ValueError):
        run_isolated(int, "not a number", deadline=30)
    with pytest.raises(ImageRejected) as info:
        run_isolated(_raise_rejected, deadline=30)
    assert info.value.code == "corrupt_image"


def _raise_rejected() -> None:
    raise ImageRejected("bad pixels", "corrupt_image")


def test_a_child_that_dies_is_a_crash_of_the_job_not_of_the_worker():
    with pytest.raises(ChildDied) as info:
        run_isolated(os.abort, deadline=30)
    assert info.value.code == "worker_crashed" and "SIGABRT" in info.value.message
    assert run_isolated(len, b"still fine", deadline=30) == 10  # and the next one runs


def test_a_child_over_its_deadline_is_stopped():
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        run_isolated(time.sleep, 600, deadline=2)
    assert info.value.code == "deadline_exceeded"
    assert time.monotonic() - started < 300  # stopped, not waited out


def test_a_child_over_its_memory_budget_fails_alone():
    with pytest.raises(Exception) as info:
        run_isolated(bytearray, 4 << 30, deadline=60, memory_bytes=1536 << 20)
    assert getattr(info.value, "code", None) in ("memory_budget", "worker_crashed")


def test_an_isolated_job_makes_the_same_outputs(tmp_path):
    with local_runtime(tmp_path) as runtime:
        source = runtime.object_store.put(f"{SOURCES}/s/a.png", encode(quadrants(160, 80), "PNG"),
                                          "image/png")
        chains = compile_variants(parse_variant_specs(["t=w:40,png"]), runtime.limits, 4)
        work = [(JobRequest(job_id, source, {"t": []}, "normal"), chains)
                for job_id in ("in", "out")]
        outcomes = asyncio.run(run_batch(work, runtime, isolated={"out"}))
        assert [o.kind for o in outcomes] == [DONE, DONE]
        inside, outside = (o.outputs[0] for o in outcomes)
        assert (inside.width, inside.height, inside.bytes) == (
            outside.width, outside.height, outside.bytes)
