"""What every command group shares: settings, progress on stderr, job tables."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from pipeline.settings import Settings


def settings_from_env() -> Settings:
    """The settings of this command (IMGPIPE_* environment variables)."""
    return Settings.from_env()


def say(message: str) -> None:
    """Progress of long commands, on stderr (stdout keeps the results)."""
    click.echo(message, err=True)


def progress(label: str):
    """A progress printer on stderr (keeps stdout clean for --json): one line redrawn on a
    terminal; elsewhere (logs, CI) a line at most every 10 % and the last."""
    interactive = sys.stderr.isatty()
    shown = [-1]

    def show(done: int, total: int) -> None:
        if interactive:
            click.echo(f"\r{label}: {done}/{total}", nl=done >= total, err=True)
            return
        step = done * 10 // max(total, 1)
        if done >= total or step > shown[0]:
            shown[0] = step
            click.echo(f"{label}: {done}/{total}", err=True)

    return show


def local_time(epoch: float | None) -> str:
    """An epoch time as the user reads it: local ISO time with milliseconds."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="milliseconds")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WxH, got {text!r}") from None
    return w, h


def print_jobs(rows: list[dict], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        line = f"{row['job_id']}  {row['status']}"
        if row.get("name"):
            line += f"  {row['name']}"
        if row.get("label"):
            line += f"  [{row['label']}]"
        if row.get("error"):
            line += f"  ({row['error']})"
        click.echo(line)
        for out in row.get("outputs", []):
            click.echo(f"    {out['variant']:<10} {out['width']}x{out['height']} "
                       f"{out['format']:<5} {out['bytes']:>9} B  {out['uri']}")
