"""The benchmarks run to completion and report what they claim (small sizes; the
figures themselves are in docs/performance.md, never asserted as timings)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.kafka


def bench(tmp_path, *args: str) -> dict:
    out = tmp_path / "result.json"
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "bench", *args,
                             "--json", str(out)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def test_full_bench_runs_abab_and_reports_every_figure(tmp_path):
    # The group option must precede --json, which belongs to the same command here.
    r = bench(tmp_path, "--images", "4", "--rounds", "1", "--profile",
              str(tmp_path / "worker.raw"))
    assert r["benchmark"] == "pipeline" and r["machine"]["cpus"] >= 1
    assert r["bare_a_images_per_s"] > 0 and r["bare_b_images_per_s"] > 0
    assert r["efficiency"] == pytest.approx(r["pipeline_images_per_s"]
                                            / r["bare_images_per_s"])
    assert r["pipeline_cpu_s_per_image"] > 0 and r["bare_cpu_s_per_image"] > 0
    assert len(r["peak_rss_mb_per_worker"]) == 1 and r["peak_rss_mb_per_worker"][0] > 50
    # Every topic the pipeline wrote was scanned: requests, work, results, job state.
    topics = r["largest_record_by_topic"]
    assert any(t.endswith(".ingest") for t in topics)
    assert any(t.endswith(".results") for t in topics)
    assert any(t.endswith("-jobs-changelog") for t in topics)
    assert r["largest_record_bytes"] == max(topics.values())
    # Claim check: no image bytes in Kafka (a 1080p JPEG here is ~200 kB).
    assert r["largest_record_bytes"] < 4096
    # The profile saw the worker's image threads at work.
    assert r["profile"]["image work (OpenCV, Pillow, ops)"] > 0.2


def test_ingest_bench_routes_every_event(tmp_path):
    r = bench(tmp_path, "ingest", "--events", "600")
    assert r["events"] == 600 and r["routed"] == 600
    assert r["raw_events_per_s"] > r["ingest_events_per_s"] > 0


def test_ops_bench_reports_the_engine_ratio_and_the_cost_of_colour_conversion(tmp_path):
    r = bench(tmp_path, "ops", "--images", "2", "--size", "640x480", "--rounds", "1")
    assert r["engine_vs_bare"] == pytest.approx(r["engine_images_per_s"]
                                                / r["bare_images_per_s"])
    assert r["p3_tagged_vs_untagged"] == pytest.approx(r["engine_p3_tagged_per_s"]
                                                       / r["engine_images_per_s"])
    assert r["engine_p3_tagged_per_s"] > 0 and r["fast_path_speedup"] > 0


def test_a_cheap_workload_reports_its_fixed_cost_per_job(tmp_path):
    r = bench(tmp_path, "--preset", "fit512", "--images", "3", "--rounds", "1",
              "--timeline", str(tmp_path / "timeline"))
    assert r["workload"] == "fit512" and r["variants"] == {"fit": 2}  # resize, encode
    assert r["baseline"] == "engine alone"
    assert r["fixed_cpu_ms_per_job"] == pytest.approx(
        (r["pipeline_cpu_s_per_image"] + r["broker_cpu_s_per_image"]
         - r["bare_cpu_s_per_image"]) * 1000)
    # What worker and broker burn idle is measured and taken out separately.
    assert r["idle_cpu_ms_per_s"] > 0
    assert r["fixed_cpu_ms_per_job_beyond_idle"] < r["fixed_cpu_ms_per_job"]
    assert 0 <= r["machine_idle_share"] <= 1 and r["client_cpu_s_per_image"] > 0
    # The image threads' CPU is part of the worker's, and the share is theirs over all.
    assert 0 < r["image_cpu_s_per_image"] < r["pipeline_cpu_s_per_image"]
    assert r["image_share_of_pipeline_cpu"] == pytest.approx(r["image_cpu_s_per_image"] / (
        r["pipeline_cpu_s_per_image"] + r["broker_cpu_s_per_image"]))
    for thread in r["worker_threads"]:
        assert thread["on_cpu"] + thread["waiting_for_core"] + thread["blocked"] \
            == pytest.approx(1, abs=0.05)
    # The timeline traced worker 1's renders during phase B (3 jobs).
    traced = r["timeline"]
    assert 0 < traced["thread_utilisation"] <= 1
    assert 0 < traced["render_cpu_ms"] <= traced["render_wall_ms"] * 1.05
    assert (tmp_path / "timeline" / f"{r['worker_pids'][0]}.tsv").exists()
    custom = bench(tmp_path, "--variant", "t=thumbnail:64,png", "--images", "2",
                   "--rounds", "1")
    assert custom["workload"] == "custom" and set(custom["variants"]) == {"t"}


def _processes_naming(text: str) -> list[int]:
    """PIDs whose command line or environment mentions ``text`` (the bench's folder)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f, \
                    open(f"/proc/{entry}/environ", "rb") as g:
                if text.encode() in f.read() + g.read():
                    found.append(int(entry))
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return found


def test_a_terminated_bench_stops_its_broker_and_workers(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "bench", "--preset",
                             "thumb", "--images", "2", "--size", "320x240", "--rounds",
                             "500"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        root = None
        for line in proc.stderr:
            if found := re.search(r"data in (\S+)", line):
                root = found.group(1)
            if line.startswith("B: pipeline"):
                break
        assert root, "the bench never said where its data is"
        # The worker is up once a second process (besides the broker) names the folder.
        deadline = time.monotonic() + 120
        while len(_processes_naming(root)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_processes_naming(root)) >= 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=180) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    _assert_nothing_left(root)


def test_a_bench_terminated_while_its_broker_starts_stops_it(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "bench", "--images", "1",
                             "--size", "64x64", "--rounds", "1"],
                            env={**os.environ, "TMPDIR": str(tmp_path)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # The broker is launched once a process names the bench's folder; it takes
        # seconds more to answer, and the signal lands in that window.
        deadline = time.monotonic() + 120
        roots: list = []
        while time.monotonic() < deadline and not (
                roots and _processes_naming(str(roots[0]))):
            roots = sorted(tmp_path.glob("imgpipe-bench-*"))
            time.sleep(0.05)
        assert roots and _processes_naming(str(roots[0])), "the broker never started"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=180) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    _assert_nothing_left(str(roots[0]))


def _assert_nothing_left(root: str) -> None:
    """No process names the bench's folder any more, and the folder is gone."""
    left = {pid: _command(pid) for pid in _processes_naming(root)}
    assert left == {}
    assert not os.path.exists(root)


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "(gone)"
