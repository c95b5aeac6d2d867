"""The ``imgpipe`` command line."""

from __future__ import annotations

import sys

import click

from pipeline.errors import ImgpipeError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ImgpipeError as exc:
            click.echo(f"imgpipe: error: {exc.message}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="imgpipe", prog_name="imgpipe")
def cli() -> None:
    """imgpipe: a horizontally scalable image pipeline on Kafka and Faust."""


def _register() -> None:
    from pipeline.cli import admin, bench, bridge, dev, jobs, kafka, lake, replay, worker

    for module in (kafka, admin, worker, jobs, replay, lake, bench, dev, bridge):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="imgpipe")
