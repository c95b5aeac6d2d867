"""imgpipe db, config, token: schema, effective settings, API tokens."""

from __future__ import annotations

import json

import click

from pipeline.cli.common import settings_from_env


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


COMMANDS = [db, config, token]
