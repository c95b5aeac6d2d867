"""Priority on the real broker: jobs are queued while no worker runs, then one starts."""

from __future__ import annotations

import json
import time

import pytest

from pipeline.dev.samples import write_samples
from pipeline.dev.workers import stop_worker
from pipeline.objects import open_object_store
from tests.conftest import make_env
from tests.kafkautil import produce_raw, read_topic
from tests.runtimes import SOURCES

pytestmark = pytest.mark.kafka

VARIANTS = {"large": [{"op": "resize", "width": 800}, {"op": "encode", "format": "webp"}],
            "thumb": [{"op": "thumbnail", "size": 160}, {"op": "encode", "format": "jpeg"}]}


def queue_then_run(kafka, tmp_path, counts: dict[str, int], **overrides):
    """Produce jobs to ingest with no worker running, start one, wait for all results;
    returns result records in completion order."""
    env = make_env(kafka, tmp_path, IMGPIPE_LOW_SHARE="0.1", IMGPIPE_NORMAL_SHARE="0.2",
                   **overrides)
    env.cli("topics", "create", check=True)
    settings = env.settings
    store = open_object_store(settings.object_store)
    sources = [store.put(f"{SOURCES}/s{i}/src.jpg", p.read_bytes(), "image/jpeg")
               for i, p in enumerate(write_samples(tmp_path / "in", 8, 1280, 960))]
    records = []
    for priority, count in counts.items():
        for i in range(count):
            job_id = f"{priority}-{i:03d}"
            body = {"job_id": job_id, "source": sources[i % len(sources)],
                    "variants": VARIANTS, "priority": priority}
            records.append((job_id.encode(), json.dumps(body).encode()))
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"), records)
    proc, _, log = env.start_worker()
    total = sum(counts.values())
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            results = read_topic(settings.bootstrap_servers, settings.topic("results"))
            if len({r["job_id"] for r in results}) >= total:
                break
            time.sleep(1)
        else:
            pytest.fail(f"only {len(results)}/{total} jobs finished; log tail:\n"
                        + log.read_text(errors="replace")[-3000:])
    finally:
        stop_worker(proc)
    assert {r["status"] for r in results} == {"DONE"}
    return sorted(results, key=lambda r: r["updated_at"])


def test_high_priority_overtakes_a_low_backlog(kafka, tmp_path):
    done = queue_then_run(kafka, tmp_path, {"low": 300, "high": 20})
    lows = [r for r in done if r["priority"] == "low"]
    highs = [r for r in done if r["priority"] == "high"]
    assert len(lows) == 300 and len(highs) == 20
    sixtieth_low = lows[59]["updated_at"]
    last_high = max(r["updated_at"] for r in highs)
    lows_before = sum(r["updated_at"] < last_high for r in lows)
    t0 = done[0]["updated_at"]
    assert last_high < sixtieth_low, (
        f"{lows_before} low jobs finished before the last high one; completions: "
        + " ".join(f"{r['job_id'][0]}{r['updated_at'] - t0:.2f}" for r in done[:100]))


def test_starvation_guard_lets_low_priority_progress(kafka, tmp_path):
    done = queue_then_run(kafka, tmp_path, {"high": 300, "low": 50})
    last_high = max(r["updated_at"] for r in done if r["priority"] == "high")
    before = [r for r in done if r["updated_at"] < last_high]
    low_before = sum(r["priority"] == "low" for r in before)
    share = low_before / len(before)
    print(f"low jobs done while high work remained: {low_before} ({share:.1%})")
    assert low_before >= 16, "low priority starved"
    assert 0.04 <= share <= 0.25, share
