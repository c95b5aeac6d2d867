"""imgpipe replay."""

from __future__ import annotations

import json

import click

from pipeline.cli.common import settings_from_env


@click.command()
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
                       f"skipped {stats.skipped}  refused {stats.refused}  unreadable "
                       f"{stats.unreadable}  {stats.rate:,.0f} rec/s", nl=final, err=True)

    replayer = Replayer(settings_from_env(), topic, span, list(partitions) or None, filter_expr,
                        target, rate, dry_run, force, progress)
    stats = replayer.run()
    summary = {"topic": replayer.topic, "target": replayer.target, "dry_run": dry_run,
               **stats.to_dict()}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        note = f" (dry run: {stats.would_send} would be sent)" if dry_run else ""
        click.echo(f"replayed {replayer.topic} -> {replayer.target}: read {stats.read}, "
                   f"matched {stats.matched}, sent {stats.sent}, skipped {stats.skipped}, "
                   f"refused for their authority {stats.refused}, unreadable "
                   f"{stats.unreadable}{note}")


COMMANDS = [replay]
