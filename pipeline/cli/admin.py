"""imgpipe db, config, token, drained: schema, effective settings, API tokens, whether a
topic generation has finished its work."""

from __future__ import annotations

import json
import sys
import time

import click

from pipeline.cli.common import settings_from_env
from pipeline.models import Status


@click.group()
def db() -> None:
    """The metadata store's schema."""


@db.command("migrate")
def db_migrate() -> None:
    """Apply pending schema versions to IMGPIPE_METADATA_URL (idempotent)."""
    from pipeline.metadata import open_metadata_store

    settings = settings_from_env()
    store = open_metadata_store(settings.metadata_url)
    try:
        applied = store.migrate()
        store.check_schema()
    finally:
        store.close()
    click.echo(f"applied schema version(s) {applied}" if applied else "schema is up to date")


@click.command("config")
def config() -> None:
    """Print the effective configuration (secrets masked)."""
    rows = settings_from_env().describe()
    name_width = max(len(name) for name, _, _ in rows)
    value_width = min(48, max(len(value) for _, value, _ in rows))
    for name, value, help_text in rows:
        shown = value or "(empty)"
        shown = shown if len(shown) <= value_width else shown[:value_width - 1] + "…"
        click.echo(f"{name:{name_width}}  {shown:{value_width}}  {help_text}")


@click.group()
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


def drain_state(stats: dict) -> tuple[int, dict[str, int]]:
    """(records not yet consumed, unfinished jobs by status) from GET /api/stats (whose
    merged answer counts jobs by status under ``jobs``)."""
    lag = sum((stats.get("lag_by_topic") or {}).values())
    counts = stats.get("jobs") or {}
    return lag, {status: n for status, n in sorted(counts.items())
                 if status not in Status.TERMINAL and n}


def lagging_partitions(stats: dict, most: int = 8) -> list[str]:
    """``topic/partition (n)`` of the partitions with records left, most first."""
    lags = [entry for entry in stats.get("lag") or [] if entry.get("lag")]
    lags.sort(key=lambda e: -e["lag"])
    return [f"{e['topic']}/{e['partition']} ({e['lag']})" for e in lags[:most]]


def unfinished_jobs(client, statuses: list[str], most: int = 5) -> list[str]:
    """Up to ``most`` ids of jobs in each unfinished status (GET /api/jobs)."""
    names = []
    for status in statuses:
        code, body = client.get_json(f"/api/jobs?status={status}&limit={most}")
        if code == 200:
            names += [f"{job['job_id']} ({status})" for job in body.get("jobs", [])]
    return names


@click.command()
@click.option("--wait", is_flag=True, help="Wait until drained, showing what is left.")
@click.option("--timeout", type=float, default=3600.0, show_default=True,
              help="Seconds --wait gives up after (exit 1).")
def drained(wait: bool, timeout: float) -> None:
    """Exit 0 once the workers at IMGPIPE_API_URL have consumed every record and finished
    every job (the step before retiring a topic generation, docs/scaling.md); needs an
    admin token."""
    from pipeline.cli.client import ApiClient, ApiUnreachable

    client = ApiClient(settings_from_env())
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, stats = client.get_json("/api/stats")
        except ApiUnreachable as exc:
            raise click.ClickException(
                f"cannot reach the worker API at {', '.join(client.bases)} ({exc}): set "
                "IMGPIPE_API_URL to the generation's workers") from None
        if status != 200:
            raise click.ClickException(f"the worker API answered {status}: {stats}")
        if "lag_by_topic" not in stats:
            raise click.ClickException("consumer lag is not in the answer: use an admin "
                                       "token (IMGPIPE_API_TOKEN) or check the broker "
                                       f"({'; '.join(stats.get('errors', []))})")
        lag, unfinished = drain_state(stats)
        if lag == 0 and not unfinished and not stats.get("errors"):
            click.echo("drained: every record consumed, every job finished")
            return
        counted = ", ".join(f"{n} {status}" for status, n in unfinished.items())
        message = (f"not drained: {lag} records to consume, {sum(unfinished.values())} jobs "
                   f"unfinished{f' ({counted})' if counted else ''}")
        if lag:
            message += f"; partitions behind: {', '.join(lagging_partitions(stats))}"
        if unfinished:
            message += f"; jobs: {', '.join(unfinished_jobs(client, list(unfinished)))}"
        if stats.get("errors"):  # a worker that did not answer may still hold work
            message += f"; not every worker answered: {'; '.join(stats['errors'])}"
        if not wait or time.monotonic() > deadline:
            click.echo(message)
            sys.exit(1)
        click.echo(message, err=True)
        time.sleep(2)


COMMANDS = [db, config, token, drained]
