"""imgpipe demo: what `make run` runs."""

from __future__ import annotations

import sys

import click

from pipeline.cli.common import settings_from_env


@click.command()
@click.option("--images", type=int, default=12, show_default=True)
@click.option("--keep-running/--no-keep-running", default=True,
              help="Keep the worker and broker up until Ctrl-C.")
def demo(images: int, keep_running: bool) -> None:
    """`make run`: Kafka, topics, a worker with its web view, and sample jobs."""
    from pipeline.dev.demo import run_demo

    sys.exit(run_demo(settings_from_env(), images, keep_running))


COMMANDS = [demo]
