"""The ``imgpipe`` command line."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import click

from pipeline.errors import ImgpipeError
from pipeline.kafka import local as localkafka
from pipeline.settings import Settings


def _settings() -> Settings:
    return Settings.from_env()


def _say(message: str) -> None:
    """Progress of long commands, on stderr (stdout keeps the results)."""
    click.echo(message, err=True)


def _progress(label: str):
    """A one-line progress printer on stderr (keeps stdout clean for --json)."""

    def show(done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        click.echo(f"\r{label}: {done}/{total}", nl=False, err=True)
        if end:
            click.echo("", err=True)

    return show


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ImgpipeError as exc:
            click.echo(f"imgpipe: error: {exc.message}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
def cli() -> None:
    """imgpipe: a horizontally scalable image pipeline on Kafka and Faust."""


# --- Kafka -------------------------------------------------------------------------------

@cli.group()
def kafka() -> None:
    """A real local Apache Kafka broker (KRaft) on 127.0.0.1."""


_data_dir = click.option("--data-dir", type=click.Path(path_type=Path),
                         default=localkafka.DEFAULT_DATA_DIR, show_default=True,
                         help="Where the broker keeps its logs, config and pid.")


@kafka.command("up")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Client port (default: the port of IMGPIPE_BROKER, else 9092).")
@click.option("--brokers", type=click.Choice(["1", "3"]), default="1", show_default=True,
              help="3: a replicated cluster (RF 3, min ISR 2) for fault tests.")
@_data_dir
def kafka_up(port: int | None, brokers: str, data_dir: Path) -> None:
    """Start the broker(s) (downloads jars once) and wait until they answer."""
    if port is None:
        port = int(_settings().bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
    state = localkafka.up(port, data_dir, echo=lambda m: click.echo(m, err=True),
                          brokers=int(brokers))
    click.echo(state.bootstrap)


@kafka.command("down")
@_data_dir
def kafka_down(data_dir: Path) -> None:
    """Stop the broker started from --data-dir."""
    localkafka.down(data_dir, echo=lambda m: click.echo(m, err=True))


@kafka.command("status")
@_data_dir
def kafka_status(data_dir: Path) -> None:
    """Show whether the broker runs and answers (exit 1 if not)."""
    state, answering = localkafka.status(data_dir)
    if state is None:
        click.echo(f"not running (data dir {data_dir.resolve()})")
        sys.exit(1)
    click.echo(f"{'running' if answering else 'degraded or starting'}: {state.bootstrap}")
    for node in state.nodes:
        alive = localkafka.pid_alive(node.pid)
        click.echo(f"  node {node.node_id}: {node.address} pid {node.pid} "
                   f"{'up' if alive else 'DOWN'}")
    sys.exit(0 if answering else 1)


# --- Topics and config -------------------------------------------------------------------

@cli.group()
def topics() -> None:
    """Source topics."""


@topics.command("create")
def topics_create() -> None:
    """Create the source topics (idempotent) with IMGPIPE_PARTITIONS partitions."""
    from pipeline.kafka.admin import create_topics

    for report in create_topics(_settings()):
        click.echo(f"{report.name:32} partitions={report.partitions:<3} "
                   f"{'created' if report.created else 'exists'}")


@cli.group()
def db() -> None:
    """The metadata store's schema."""


@db.command("migrate")
def db_migrate() -> None:
    """Apply pending schema versions to IMGPIPE_METADATA_URL (idempotent)."""
    from pipeline.metadata import open_metadata_store

    settings = _settings()
    store = open_metadata_store(settings.metadata_url)
    try:
        applied = store.migrate()
        store.check_schema()
    finally:
        store.close()
    click.echo(f"applied schema version(s) {applied}" if applied else "schema is up to date")


@cli.command("config")
def config() -> None:
    """Print the effective configuration (secrets masked)."""
    for name, value, help_text in _settings().describe():
        click.echo(f"{name:28} {value:40} {help_text}")


# --- Worker ------------------------------------------------------------------------------

@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--web-port", type=click.IntRange(1, 65535), default=None,
              help="Overrides IMGPIPE_WEB_PORT.")
@click.option("-l", "--loglevel", default=None, help="Log level (default IMGPIPE_LOG_LEVEL).")
@click.pass_context
def worker(ctx: click.Context, web_port: int | None, loglevel: str | None) -> None:
    """Run a Faust worker (extra options go to `faust worker`)."""
    if web_port:
        os.environ["IMGPIPE_WEB_PORT"] = str(web_port)
    from pipeline.tenancy import check_exposure
    from pipeline.worker.runtime import Runtime

    checked = _settings()
    preflight = Runtime(checked)
    check_exposure(checked.web_bind, preflight.tenancy, checked.allow_open_api)
    preflight.check()  # stores and schema answer before the worker joins the group
    preflight.close()
    from pipeline.worker.app import app, settings

    sys.argv = ["imgpipe", "worker", "-l", loglevel or settings.log_level,
                "--web-port", str(settings.web_port), *ctx.args]
    app.main()


# --- Jobs --------------------------------------------------------------------------------

@cli.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--variant", "variants", multiple=True, metavar="NAME=SPEC",
              help="e.g. thumb=fit:256x256,webp:q80 (repeatable; default thumb + large).")
@click.option("--priority", type=click.Choice(["high", "normal", "low"]), default=None,
              help="Default: the tenant's rule (IMGPIPE_TENANT_PRIORITIES), else normal.")
@click.option("--tenant", default=None,
              help="Default: the tenant of IMGPIPE_API_TOKEN's token (admins: any).")
@click.option("--force", is_flag=True, help="Reprocess even if the job is already DONE.")
@click.option("--job-id", "job_ids", multiple=True,
              help="Job id per path, in order (default: random).")
@click.option("--wait", is_flag=True, help="Wait for every job to finish.")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds --wait waits.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of jobs.")
def submit(paths, variants, priority, tenant, force, job_ids, wait, timeout, as_json) -> None:
    """Store images in the object store and submit one job per image."""
    from pipeline.cli.client import (
        ApiClient,
        cli_principal,
        job_summary,
        produce_requests,
        store_sources,
    )
    from pipeline.models import TENANT_RE, JobRequest, Status, qualify_job_id
    from pipeline.ops import parse_variant_specs

    settings = _settings()
    if job_ids and len(job_ids) != len(paths):
        raise click.UsageError(f"--job-id given {len(job_ids)} times for {len(paths)} paths")
    if tenant is not None and not TENANT_RE.match(tenant):
        raise click.BadParameter("1-64 letters, digits, '.', '_' or '-'", param_hint="--tenant")
    parsed = parse_variant_specs(variants)
    # Without --tenant the jobs are the token's tenant's: ingest qualifies their ids and
    # the API scopes the bare ids --wait asks for to the same tenant.
    ids = [j if tenant is None else qualify_job_id(tenant, j)
           for j in (job_ids or [uuid.uuid4().hex for _ in paths])]
    submissions = store_sources(settings, paths, ids)
    requests = [JobRequest(job_id=s.job_id, source=s.source, variants=parsed,
                           priority=priority, tenant=tenant, force=force)
                for s in submissions]
    produce_requests(settings, requests, _progress("submitted"), cli_principal(settings))
    if not wait:
        rows = [{"job_id": s.job_id, "path": s.path, "status": "SUBMITTED", "error": None,
                 "outputs": []} for s in submissions]
        _print_jobs(rows, as_json)
        return
    states = ApiClient(settings).wait_for(ids, timeout, _progress("finished"))
    rows = [job_summary(job_id, states[job_id]) for job_id in ids]
    _print_jobs(rows, as_json)
    if any(row["status"] != Status.DONE for row in rows):
        sys.exit(1)


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
def status(job_id: str, as_json: bool) -> None:
    """Show one job's state (asks a worker's API)."""
    from pipeline.cli.client import ApiClient, job_summary

    state = ApiClient(_settings()).job(job_id)
    row = job_summary(job_id, state)
    if as_json:
        click.echo(json.dumps(row, indent=2))
    else:
        _print_jobs([row], False)
        for entry in (state or {}).get("history", []):
            click.echo(f"    {entry['status']:<11} at {entry['at']:.3f}")
    sys.exit(0 if row["status"] == "DONE" else 1)


def _print_jobs(rows: list[dict], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        line = f"{row['job_id']}  {row['status']}"
        if row.get("error"):
            line += f"  ({row['error']})"
        click.echo(line)
        for out in row.get("outputs", []):
            click.echo(f"    {out['variant']:<10} {out['width']}x{out['height']} "
                       f"{out['format']:<5} {out['bytes']:>9} B  {out['uri']}")


@cli.group()
def token() -> None:
    """API tokens bound to tenants (IMGPIPE_API_TOKENS_FILE, docs/api.md#tenants)."""


@token.command("new")
@click.option("--tenant", required=True, help="The tenant the token acts for.")
@click.option("--priority", "priorities", multiple=True,
              type=click.Choice(["high", "normal", "low"]),
              help="Priorities it may use (repeatable; default: all).")
@click.option("--admin", is_flag=True, help="May see and act for every tenant.")
def token_new(tenant: str, priorities: tuple[str, ...], admin: bool) -> None:
    """Print a tokens-file entry with a fresh random token (add it to the file)."""
    from pipeline.tenancy import new_token_entry

    entry = new_token_entry(tenant, priorities or ("high", "normal", "low"), admin)
    click.echo(json.dumps(entry))


# --- Replay ------------------------------------------------------------------------------

@cli.command()
@click.option("--topic", required=True,
              help="Topic to read: ingest, jobs.high|normal|low, retry, dlq, or a full name.")
@click.option("--from-beginning", is_flag=True)
@click.option("--from-offset", type=int, default=None, help="First offset (per partition).")
@click.option("--from-time", default=None, help="ISO 8601 time (UTC if no zone) or epoch s.")
@click.option("--to-offset", type=int, default=None, help="Last offset, inclusive.")
@click.option("--to-time", default=None, help="Last record time, inclusive.")
@click.option("--partition", "partitions", type=int, multiple=True, help="Repeatable.")
@click.option("--filter", "filter_expr", default=None,
              help="e.g. tenant=acme,priority=high|normal,reason=storage_*,job_id=batch-*")
@click.option("--target", default=None, help="Where to send (default: ingest).")
@click.option("--rate", type=float, default=None, help="At most N records per second.")
@click.option("--dry-run", is_flag=True, help="Read and count, send nothing.")
@click.option("--force", is_flag=True, help="Reprocess jobs that are already DONE.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def replay(topic, from_beginning, from_offset, from_time, to_offset, to_time, partitions,
           filter_expr, target, rate, dry_run, force, as_json) -> None:
    """Re-send a slice of a topic's history into the pipeline (never commits on it)."""
    from pipeline.kafka.replay import Replayer, ReplayRange, parse_time

    span = ReplayRange(from_beginning=from_beginning, from_offset=from_offset,
                       from_time=parse_time(from_time) if from_time else None,
                       to_offset=to_offset, to_time=parse_time(to_time) if to_time else None)

    def progress(stats, final: bool) -> None:
        if final or stats.read % 200 == 0:
            click.echo(f"\rread {stats.read}  matched {stats.matched}  sent {stats.sent}  "
                       f"skipped {stats.skipped}  {stats.rate:,.0f} rec/s", nl=final, err=True)

    replayer = Replayer(_settings(), topic, span, list(partitions) or None, filter_expr,
                        target, rate, dry_run, force, progress)
    stats = replayer.run()
    summary = {"topic": replayer.topic, "target": replayer.target, "dry_run": dry_run,
               **stats.to_dict()}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        note = f" (dry run: {stats.would_send} would be sent)" if dry_run else ""
        click.echo(f"replayed {replayer.topic} -> {replayer.target}: read {stats.read}, "
                   f"matched {stats.matched}, sent {stats.sent}, skipped {stats.skipped}{note}")


# --- Event archive -----------------------------------------------------------------------

@cli.command()
def archive() -> None:
    """Archive results/dlq (IMGPIPE_LAKE_TABLES) as Parquet until stopped (Ctrl-C/SIGTERM)."""
    import asyncio
    import logging
    import signal

    from pipeline.kafka.security import kafka_options
    from pipeline.lake.archiver import Archiver
    from pipeline.objects import open_object_store

    settings = _settings()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(message)s")
    store = open_object_store(settings.object_store, settings.storage_retry_seconds)
    archiver = Archiver(kafka_options(settings), f"{settings.app_id}-archive",
                        {t: settings.topic(t) for t in settings.lake_table_list}, store,
                        settings.lake_prefix, settings.lake_roll_records,
                        settings.lake_roll_seconds)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        click.echo(f"archiving {', '.join(settings.lake_table_list)} to "
                   f"{store.uri_for(settings.lake_prefix)}/", err=True)
        stats = await archiver.run(stop)
        click.echo(f"stopped: {stats.records} records in {stats.files} files", err=True)

    try:
        asyncio.run(run())
    finally:
        store.close()


@cli.group()
def lake() -> None:
    """Query and prune the event archive."""


@lake.command("query")
@click.argument("sql")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON objects.")
def lake_query(sql: str, as_json: bool) -> None:
    """Run SQL (DuckDB) over the archive; tables: results, dlq, ingest (see docs/lake.md)."""
    from pipeline.lake.query import run_query
    from pipeline.objects import open_object_store

    settings = _settings()
    store = open_object_store(settings.object_store, settings.storage_retry_seconds)
    try:
        columns, rows = run_query(store, settings.lake_prefix, sql)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([dict(zip(columns, row, strict=True)) for row in rows],
                              default=str, indent=2))
        return
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join("" if v is None else str(v) for v in row))


@lake.command("prune")
@click.option("--keep-days", type=int, default=None,
              help="Default: IMGPIPE_LAKE_RETENTION_DAYS.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted.")
def lake_prune(keep_days: int | None, dry_run: bool) -> None:
    """Delete archived partitions (dt=...) older than the retention period."""
    from datetime import UTC, datetime

    from pipeline.lake.retention import prune
    from pipeline.objects import open_object_store

    settings = _settings()
    store = open_object_store(settings.object_store, settings.storage_retry_seconds)
    try:
        doomed = prune(store, settings.lake_prefix, keep_days or settings.lake_retention_days,
                       datetime.now(UTC).date(), dry_run, _progress("deleted"))
    finally:
        store.close()
    for key in doomed:
        click.echo(("would delete " if dry_run else "deleted ") + key)
    click.echo(f"{len(doomed)} file(s) {'past' if dry_run else 'removed after'} retention",
               err=True)


# --- Benchmarks --------------------------------------------------------------------------

@cli.group(invoke_without_command=True)
@click.option("--images", type=click.IntRange(min=1), default=48, show_default=True,
              help="Generated photos (each processed --rounds times per phase).")
@click.option("--size", default="1920x1080", show_default=True, help="Photo size WxH.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Pipeline workers; each gets cores/K image threads.")
@click.option("--rounds", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
@click.option("--profile", type=click.Path(path_type=Path), default=None,
              help="py-spy the first worker during B into this raw file and summarise.")
@click.pass_context
def bench(ctx: click.Context, images: int, size: str, workers: int, rounds: int,
          json_path: Path | None, profile: Path | None) -> None:
    """Benchmarks that print ratios against a baseline from the same run.

    Without a subcommand: the full pipeline against the bare OpenCV loop on the same
    cores (A/B/A), with CPU per image, idle latency, peak memory and record sizes.
    """
    if ctx.invoked_subcommand is None:
        _bench_full(images, _size(size), workers, rounds, json_path, profile)


def _bench_full(images: int, size: tuple[int, int], workers: int, rounds: int,
                json_path: Path | None, profile: Path | None) -> None:
    from pipeline.bench.full import CLAIM_CHECK_BYTES, measure
    from pipeline.bench.harness import bench_pipeline
    from pipeline.bench.report import finish, print_table

    if profile:
        from pipeline.bench.profile import py_spy

        py_spy()  # fail before starting anything
    threads = max(1, (os.cpu_count() or 1) // workers)
    with bench_pipeline(echo=_say, IMGPIPE_IMAGE_THREADS=str(threads)) as pipe:
        r = measure(pipe, images, size, workers, rounds, _say, profile)
    mb = ", ".join(f"{v:.0f}" for v in r["peak_rss_mb_per_worker"])
    print_table(f"pipeline vs bare loop: {r['images']} x {r['size']} photos x {rounds}, "
                f"5 variants, {r['cores']} cores, {workers} worker(s) x {threads} threads", [
        ("bare loop (A, A')", f"{r['bare_images_per_s']:8.2f} images/s  "
                              f"(A {r['bare_a_images_per_s']:.2f}, "
                              f"A' {r['bare_b_images_per_s']:.2f})"),
        ("pipeline (B)", f"{r['pipeline_images_per_s']:8.2f} images/s"),
        ("efficiency B / A", f"{r['efficiency']:8.3f}  (goal >= 0.90, stretch 0.95)"),
        ("CPU s/image bare / workers", f"{r['bare_cpu_s_per_image']:8.4f} / "
                                       f"{r['pipeline_cpu_s_per_image']:.4f}"),
        ("glue share of worker CPU", f"{r['glue_cpu_share']:8.1%}  (goal <= 5%)"),
        ("broker CPU s/image", f"{r['broker_cpu_s_per_image']:8.4f}  (not in the glue)"),
        ("idle p50 / bare single image", f"{r['idle_p50_s'] * 1000:8.0f} / "
                                         f"{r['bare_single_image_s'] * 1000:.0f} ms  "
                                         f"= {r['idle_p50_over_bare_single']:.2f}x "
                                         "(goal <= 1.25x)"),
        ("peak RSS per worker (12 MP)", f"{mb:>8} MiB  (goal <= 400)"),
        ("largest Kafka record", f"{r['largest_record_bytes']:8d} B  in "
                                 f"{r['largest_record_topic']}  "
                                 f"(claim check: <= {CLAIM_CHECK_BYTES})"),
    ])
    if profile:
        from pipeline.bench.profile import summarise

        shares = summarise(profile)
        r["profile"] = dict(shares)
        print_table(f"where worker 1's time went during B (py-spy, {profile})",
                    [(name, f"{share:6.1%}") for name, share in shares])
    finish("pipeline", r, json_path)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WxH, got {text!r}") from None
    return w, h


@bench.command("ops")
@click.option("--images", type=int, default=12, show_default=True)
@click.option("--size", default="1920x1080", show_default=True, help="Source size WxH.")
@click.option("--rounds", type=int, default=2, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def bench_ops(images: int, size: str, rounds: int, json_path: Path | None) -> None:
    """Engine vs a bare OpenCV loop (goal >= 0.95), and the 12 MP thumbnail fast path."""
    from pipeline.bench.ops import (
        VARIANTS,
        EngineBench,
        bare_opencv,
        fast_path_speedup,
        images_per_second,
        make_jpegs,
    )
    from pipeline.bench.report import finish, print_table

    width, height = _size(size)
    click.echo(f"generating {images} {width}x{height} photos...", err=True)
    data = make_jpegs(images, width, height)
    engine = EngineBench.create(VARIANTS)
    requests = engine.load(data)
    engine.run(requests[0]), bare_opencv(data[0])  # warm up
    click.echo("running bare / engine / bare ...", err=True)
    bare_a = images_per_second(bare_opencv, data, rounds)
    engine_rate = images_per_second(engine.run, requests, rounds)
    bare_b = images_per_second(bare_opencv, data, rounds)
    bare = (bare_a + bare_b) / 2
    click.echo("running the 12 MP thumbnail fast path ...", err=True)
    full, fast = fast_path_speedup((4000, 3000), max(3, images // 3))
    results = {"bare_images_per_s": bare, "engine_images_per_s": engine_rate,
               "engine_vs_bare": engine_rate / bare, "thumb_12mp_full_decode_per_s": full,
               "thumb_12mp_fast_path_per_s": fast, "fast_path_speedup": fast / full}
    print_table(f"ops: {len(VARIANTS)} variants per {width}x{height} JPEG, one thread", [
        ("bare OpenCV loop", f"{bare:7.2f} images/s  (A {bare_a:.2f}, A' {bare_b:.2f})"),
        ("imgpipe engine", f"{engine_rate:7.2f} images/s"),
        ("engine / bare", f"{engine_rate / bare:7.3f}  (goal >= 0.95)"),
        ("12 MP thumbnail, full decode", f"{full:7.2f} images/s"),
        ("12 MP thumbnail, fast path", f"{fast:7.2f} images/s"),
        ("fast-path speedup", f"{fast / full:7.2f}x  (goal >= 3x)"),
    ])
    finish("ops", results, json_path)


@bench.command("metadata")
@click.option("--jobs", type=int, default=400, show_default=True)
@click.option("--batch", type=int, default=16, show_default=True,
              help="Jobs per processing batch (one commit each when batched).")
def bench_metadata(jobs: int, batch: int) -> None:
    """Metadata writes: one commit per job vs one per batch, SQLite and Spanner."""
    from pipeline.bench.metadata import measure
    from pipeline.bench.report import finish, print_table

    results = measure(jobs, batch)
    rows = []
    for backend, r in results.items():
        rows += [(f"{backend} per-row commits", f"{r['per_row']:9.1f} jobs/s"),
                 (f"{backend} one commit per batch", f"{r['batched']:9.1f} jobs/s  "
                  f"({r['batched'] / r['per_row']:.1f}x)")]
    print_table(f"metadata: {jobs} jobs with 2 outputs each, batches of {batch}", rows)
    finish("metadata", results, None)


@bench.command("priority")
@click.option("--high", "highs", type=int, default=40, show_default=True,
              help="High-priority jobs per phase.")
@click.option("--interval", type=float, default=0.25, show_default=True,
              help="Seconds between high-priority submissions.")
@click.option("--backlog", type=int, default=600, show_default=True,
              help="Low-priority jobs queued for the second phase.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def bench_priority(highs: int, interval: float, backlog: int, json_path: Path | None) -> None:
    """High-priority latency on an idle worker vs under a low-priority backlog."""
    from pipeline.bench.harness import bench_pipeline
    from pipeline.bench.priority import measure
    from pipeline.bench.report import finish, print_table

    with bench_pipeline(echo=_say) as pipe:
        pipe.start_worker()
        results = measure(pipe, highs, interval, backlog, _say)
    idle, loaded = results["idle"], results["backlog"]
    print_table(f"priority: {highs} high jobs every {interval}s, idle vs {backlog} low queued", [
        ("idle p50 / p99", f"{idle['p50'] * 1000:7.0f} / {idle['p99'] * 1000:.0f} ms"),
        ("backlog p50 / p99", f"{loaded['p50'] * 1000:7.0f} / {loaded['p99'] * 1000:.0f} ms"),
        ("p99 backlog / p99 idle", f"{results['p99_backlog_over_p99_idle']:7.2f}  (goal <= 2)"),
        ("p99 backlog / p50 idle", f"{results['p99_backlog_over_p50_idle']:7.2f}  "
                                   "(issue 10 goal <= 2)"),
        ("low jobs done meanwhile", f"{loaded['low_done_during']:7d}  (starvation guard)"),
    ])
    finish("priority", results, json_path)


@bench.command("scale")
@click.option("--jobs", type=int, default=120, show_default=True,
              help="Jobs per measured phase (1920x1080 sources, 5 variants each).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def bench_scale(jobs: int, json_path: Path | None) -> None:
    """Throughput with 1 vs 2 workers, against the bare loop's 1 vs 2 processes."""
    from pipeline.bench.harness import bench_pipeline
    from pipeline.bench.report import finish, print_table
    from pipeline.bench.scale import measure

    with bench_pipeline(echo=_say, IMGPIPE_IMAGE_THREADS="1",
                        IMGPIPE_PARTITIONS="8") as pipe:
        r = measure(pipe, jobs, _say)
    print_table(f"scale: {jobs} jobs per phase, one image thread per worker", [
        ("bare loop 1 / 2 processes", f"{r['bare_1']:6.2f} / {r['bare_2']:.2f} images/s  "
                                      f"({r['bare_scaling']:.2f}x)"),
        ("pipeline 1 / 2 workers", f"{r['pipeline_1']:6.2f} / {r['pipeline_2']:.2f} jobs/s  "
                                   f"({r['pipeline_scaling']:.2f}x, goal >= 1.7)"),
        ("pipeline scaling / bare scaling", f"{r['scaling_vs_bare']:6.3f}  (goal >= 0.95)"),
        ("efficiency 1 / 2 (pipeline / bare)",
         f"{r['efficiency_1']:6.3f} / {r['efficiency_2']:.3f}"),
    ])
    finish("scale", r, json_path)


@bench.command("ingest")
@click.option("--events", type=click.IntRange(min=2), default=20000, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def bench_ingest(events: int, json_path: Path | None) -> None:
    """Events/s through the ingest agent vs a raw aiokafka consumer (no image work)."""
    from pipeline.bench.harness import bench_pipeline
    from pipeline.bench.ingest import measure
    from pipeline.bench.report import finish, print_table

    with bench_pipeline(echo=_say, IMGPIPE_AGENTS="ingest") as pipe:
        r = measure(pipe, events, _say)
    print_table(f"ingest: {events} valid requests, one worker running only ingest", [
        ("raw aiokafka, no-op handler", f"{r['raw_events_per_s']:9.0f} events/s  "
                                        f"(A {r['raw_a']:.0f}, A' {r['raw_b']:.0f})"),
        ("ingest agent", f"{r['ingest_events_per_s']:9.0f} events/s  (goal >= 10000)"),
        ("ingest / raw", f"{r['ingest_vs_raw']:9.3f}  (goal >= 0.25)"),
    ])
    finish("ingest", r, json_path)


@bench.command("executor")
@click.option("--images", type=int, default=16, show_default=True)
@click.option("--size", default="1920x1080", show_default=True)
@click.option("--workers", type=int, default=0, help="Pool size (default: CPU count).")
def bench_executor(images: int, size: str, workers: int) -> None:
    """Threads vs processes for image work: which executor the worker should use."""
    from pipeline.bench.executor import measure
    from pipeline.bench.ops import make_jpegs
    from pipeline.bench.report import finish, print_table

    workers = workers or os.cpu_count() or 1
    rates = measure(make_jpegs(images, *_size(size)), workers)
    print_table(f"executor: engine over {images} images, {workers} workers", [
        ("serial", f"{rates['serial']:6.2f} images/s"),
        ("threads", f"{rates['threads']:6.2f} images/s  "
                    f"({rates['threads'] / rates['serial']:.2f}x serial)"),
        ("processes", f"{rates['processes']:6.2f} images/s  "
                      f"({rates['processes'] / rates['serial']:.2f}x serial)"),
        ("threads / processes", f"{rates['threads'] / rates['processes']:6.3f}"),
    ])
    finish("executor", rates, None)


# --- Demo --------------------------------------------------------------------------------

@cli.command()
@click.option("--images", type=int, default=12, show_default=True)
@click.option("--keep-running/--no-keep-running", default=True,
              help="Keep the worker and broker up until Ctrl-C.")
def demo(images: int, keep_running: bool) -> None:
    """`make run`: Kafka, topics, a worker with its web view, and sample jobs."""
    from pipeline.dev.demo import run_demo

    sys.exit(run_demo(_settings(), images, keep_running))


def main() -> None:
    cli(prog_name="imgpipe")


if __name__ == "__main__":
    main()
