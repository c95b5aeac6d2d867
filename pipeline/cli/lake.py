"""imgpipe archive and imgpipe lake: the event archive."""

from __future__ import annotations

import json

import click

from pipeline.cli.common import progress, settings_from_env


@click.command()
def archive() -> None:
    """Archive results/dlq (IMGPIPE_LAKE_TABLES) as Parquet until stopped (Ctrl-C/SIGTERM)."""
    import asyncio
    import logging
    import signal

    from pipeline.kafka.security import kafka_options
    from pipeline.lake.archiver import Archiver
    from pipeline.objects import open_object_store

    settings = settings_from_env()
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
                   f"{store.uri_for(settings.lake_prefix)}/: a file per partition every "
                   f"{settings.lake_roll_seconds:.0f} s (IMGPIPE_LAKE_ROLL_SECONDS) or "
                   f"{settings.lake_roll_records} records, and the rest when stopped "
                   "(Ctrl-C/SIGTERM)", err=True)
        stats = await archiver.run(stop)
        click.echo(f"stopped: {stats.records} records in {stats.files} files", err=True)

    try:
        asyncio.run(run())
    finally:
        store.close()


@click.group()
def lake() -> None:
    """Query and prune the event archive."""


@lake.command("query")
@click.argument("sql")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON objects.")
def lake_query(sql: str, as_json: bool) -> None:
    """Run SQL (DuckDB) over the archive; tables: results, dlq, ingest (see docs/lake.md)."""
    from pipeline.lake.query import run_query
    from pipeline.objects import open_object_store

    settings = settings_from_env()
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

    settings = settings_from_env()
    store = open_object_store(settings.object_store, settings.storage_retry_seconds)
    try:
        doomed = prune(store, settings.lake_prefix, keep_days or settings.lake_retention_days,
                       datetime.now(UTC).date(), dry_run, progress("deleted"))
    finally:
        store.close()
    for key in doomed:
        click.echo(("would delete " if dry_run else "deleted ") + key)
    click.echo(f"{len(doomed)} file(s) {'past' if dry_run else 'removed after'} retention",
               err=True)


COMMANDS = [archive, lake]
