"""``make run``: everything on the embedded defaults, with sample images, until Ctrl-C."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import click

from pipeline.cli.client import ApiClient, job_summary, produce_requests, store_sources
from pipeline.dev.samples import write_samples
from pipeline.dev.workers import start_worker, stop_worker, wait_healthy
from pipeline.kafka import local as localkafka
from pipeline.kafka.admin import create_topics
from pipeline.kafka.preflight import check_port_free
from pipeline.models import JobRequest, readable_job_id
from pipeline.ops import parse_variant_specs
from pipeline.settings import Settings


def _say(message: str) -> None:
    click.echo(click.style("imgpipe", fg="cyan") + " " + message, err=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings, images: int, keep_running: bool) -> int:
    """Start Kafka + topics + one worker, submit samples, report; returns an exit code."""
    data_dir = Path("var/kafka")
    already_up = localkafka.status(data_dir)[1]
    port = int(settings.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
    if not already_up:
        check_port_free("127.0.0.1", port, "Kafka's",
                        f"run `IMGPIPE_BROKER=kafka://127.0.0.1:{localkafka.free_port()} "
                        "make run` (or stop what holds it)")
    check_port_free(settings.web_bind, settings.web_port, "the web",
                    f"run `IMGPIPE_WEB_PORT={localkafka.free_port()} make run` (or stop "
                    "what holds it)")
    localkafka.up(port, data_dir, echo=_say)
    worker = None
    try:
        for report in create_topics(settings):
            if report.created:
                _say(f"created topic {report.name} ({report.partitions} partitions)")
        log_path = Path("var/worker.log")
        worker = start_worker({}, log_path, settings.web_port)
        _say(f"worker starting (pid {worker.pid}, log {log_path})...")
        wait_healthy(worker, settings.api_url, log_path, timeout=90)
        samples = write_samples(Path("var/samples"), images)
        _say(f"submitting {len(samples)} sample images from var/samples/")
        variants = parse_variant_specs([])
        ids = [readable_job_id(path.name) for path in samples]
        subs = store_sources(settings, samples, ids)
        produce_requests(settings, [JobRequest(job_id=s.job_id, source=s.source,
                                               variants=variants, name=path.name,
                                               label="make run demo")
                                    for s, path in zip(subs, samples, strict=True)])
        states = ApiClient(settings).wait_for(ids, timeout=180, progress=lambda d, t: None)
        rows = [job_summary(i, states[i]) for i in ids]
        done = sum(r["status"] == "DONE" for r in rows)
        _say(f"{done}/{len(rows)} jobs DONE")
        for row in rows[:3]:
            for out in row["outputs"]:
                _say(f"  {row['name']} {out['variant']}: {out['width']}x{out['height']} "
                     f"{out['format']} -> {out['uri']}")
        _say(f"outputs:   {settings.object_store}/outputs/")
        _say(f"metadata:  {settings.metadata_url}")
        _say(f"dashboard: {settings.api_url}/")
        _say(f"API:       {settings.api_url}/api/jobs  (one job: /api/jobs/{ids[0]}, "
             f"stats: /api/stats, tables: /table/jobs/, metrics: /metrics)")
        if not keep_running:
            return 0 if done == len(rows) else 1
        _say("pipeline running; submit more with `.venv/bin/imgpipe submit IMAGE --wait` "
             f"or `curl -F image=@IMAGE {settings.api_url}/api/jobs`. "
             "Ctrl-C stops the worker and the broker.")
        # Ctrl-C too, even when started from a script that ignores SIGINT in background jobs.
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        while worker.poll() is None:
            time.sleep(1)
        _say(f"worker exited with code {worker.returncode}; see {log_path}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if worker is not None:
            _say("stopping worker...")
            stop_worker(worker)
        if not already_up:
            localkafka.down(data_dir, echo=_say)
