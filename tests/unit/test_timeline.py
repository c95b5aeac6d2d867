"""The worker's optional timeline (IMGPIPE_TIMELINE) and the bench's reading of it."""

import asyncio
import os
import threading
import time

import pytest

from pipeline.bench.procstat import busiest_threads_cpu, thread_schedule
from pipeline.bench.timeline import idle_causes, read, render_ms
from pipeline.jobs.processing import DONE, FAILED, run_batch
from pipeline.worker import timeline
from tests.images import encode, quadrants
from tests.runtimes import local_runtime
from tests.unit.test_processing import _job

JOB_STAGES = ["fetch", "queued", "render_start", "render_end", "rendered", "stored"]


@pytest.fixture
def tracing(tmp_path, monkeypatch):
    folder = tmp_path / "timeline"
    monkeypatch.setattr(timeline, "_FOLDER", str(folder))
    monkeypatch.setattr(timeline, "_out", None)
    yield folder / f"{os.getpid()}.tsv"
    if timeline._out is not None:
        timeline._out.close()


@pytest.fixture
def runtime(tmp_path):
    with local_runtime(tmp_path) as rt:
        yield rt


def test_marks_cost_nothing_unless_asked(monkeypatch):
    monkeypatch.setattr(timeline, "_FOLDER", None)
    monkeypatch.setattr(timeline, "_out", None)
    timeline.start_batch()
    timeline.mark("take")
    with timeline.rendering("j1"):
        pass
    assert timeline._out is None


def test_a_traced_batch_marks_every_stage_of_every_job_in_order(runtime, tracing):
    work = [_job(runtime, "good-1", encode(quadrants())),
            _job(runtime, "good-2", encode(quadrants(120, 80))),
            _job(runtime, "bad", b"not an image")]

    async def traced() -> list:
        timeline.start_batch()
        timeline.mark("take")
        outcomes = await run_batch(work, runtime)
        timeline.mark("effects")
        return outcomes

    outcomes = asyncio.run(traced())
    timeline.flush()
    assert [o.kind for o in outcomes] == [DONE, DONE, FAILED]
    line_ = read(tracing)
    (batch,) = line_.batches.values()
    assert sorted(batch.jobs) == ["bad", "good-1", "good-2"]
    assert batch.marks["take"] <= batch.marks["metadata"] <= batch.marks["effects"]
    for job in ("good-1", "good-2"):
        marks = line_.jobs[job]
        assert list(marks) == JOB_STAGES  # every stage, written in this order
        times = [marks[s] for s in JOB_STAGES]
        assert times == sorted(times)
        assert 0 < line_.render_cpu[job] <= marks["render_end"] - marks["render_start"] + 0.01
    assert list(line_.jobs["bad"]) == ["fetch"]  # refused before any image work


def _write(path, lines):
    path.write_text("".join("\t".join(map(str, line)) + "\n" for line in lines))


def test_idle_thread_time_is_charged_to_what_the_batches_were_doing(tmp_path):
    path = tmp_path / "t.tsv"
    _write(path, [  # seconds, stage, key, thread, batch[, value]
        (0.0, "got_batch", "normal", "main", ""), (0.0, "take", "", "main", "b1"),
        (0.0, "want_batch", "normal", "main", ""),
        (0.1, "flushed", "", "main", "b1"),
        (0.1, "fetch", "j1", "main", "b1"), (0.1, "fetch", "j2", "main", "b1"),
        (0.2, "queued", "j1", "main", "b1"), (0.2, "queued", "j2", "main", "b1"),
        (0.2, "render_start", "j1", "img_0", ""), (0.2, "render_start", "j2", "img_1", ""),
        (0.4, "render_end", "j2", "img_1", "", 0.15), (0.4, "rendered", "j2", "main", "b1"),
        (0.45, "stored", "j2", "main", "b1"),
        (0.6, "render_end", "j1", "img_0", "", 0.35), (0.6, "rendered", "j1", "main", "b1"),
        (0.65, "stored", "j1", "main", "b1"), (0.65, "metadata", "", "main", "b1"),
        (0.7, "effects", "", "main", "b1"), (0.72, "applied", "", "main", "b1"),
        (0.8, "confirmed", "", "main", "b1"), (0.8, "acked", "", "main", "b1"),
        (0.9, "got_batch", "normal", "main", ""),
        (0.95, "cut", "short"),  # a line the worker did not finish writing
    ])
    line_ = read(path)
    utilisation, idle = idle_causes(line_, 0.0, 1.0, threads=2)
    assert utilisation == pytest.approx(0.6 / 2)
    waiting = " | agent waits for the stream"
    assert {k: round(v, 6) for k, v in idle.items()} == {
        "admit+flush" + waiting: 0.2, "fetch" + waiting: 0.2, "render" + waiting: 0.2,
        "store" + waiting: 0.1, "metadata" + waiting: 0.1, "apply" + waiting: 0.04,
        "confirm" + waiting: 0.16, "no batch in hand" + waiting: 0.2,
        "no batch in hand": 0.2}
    assert render_ms(line_, 0.0, 1.0) == pytest.approx((300.0, 250.0))
    assert render_ms(line_, 0.3, 1.0) == (0.0, 0.0)  # no render wholly inside


def test_thread_schedule_tells_a_busy_thread_from_a_sleeping_one_and_the_busiest():
    burnt, done = threading.Event(), threading.Event()
    tids = {}

    def burn():
        tids["busy"] = threading.get_native_id()
        started = time.thread_time()
        while time.thread_time() - started < 0.2:
            pass
        burnt.set()
        done.wait()

    def sleep():
        tids["idle"] = threading.get_native_id()
        done.wait()

    before = thread_schedule(os.getpid())
    threads = [threading.Thread(target=burn), threading.Thread(target=sleep)]
    for thread in threads:
        thread.start()
    burnt.wait()
    started = time.thread_time()
    while time.thread_time() - started < 0.4:  # the main thread, busiest of all, is left out
        pass
    seen = thread_schedule(os.getpid())
    busiest = busiest_threads_cpu(os.getpid(), before, seen, 1)
    done.set()
    for thread in threads:
        thread.join()
    assert seen[tids["busy"]][0] >= 0.18  # seconds on a core
    assert seen[tids["idle"]][0] < 0.05
    assert 0.18 <= busiest < 0.38  # the burning thread's, not the main thread's
    # Ended threads drop out (once the kernel has reaped them: join() returns a moment
    # before the OS thread is gone).
    deadline = time.monotonic() + 10
    while tids["busy"] in thread_schedule(os.getpid()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tids["busy"] not in thread_schedule(os.getpid())
