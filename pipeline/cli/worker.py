"""imgpipe worker: a Faust worker, its settings checked first."""

from __future__ import annotations

import os
import sys

import click

from pipeline.cli.common import say, settings_from_env


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--web-port", type=click.IntRange(1, 65535), default=None,
              help="Overrides IMGPIPE_WEB_PORT.")
@click.option("-l", "--loglevel", default=None, help="Log level (default IMGPIPE_LOG_LEVEL).")
@click.pass_context
def worker(ctx: click.Context, web_port: int | None, loglevel: str | None) -> None:
    """Run a Faust worker (extra options go to `faust worker`)."""
    if web_port:
        os.environ["IMGPIPE_WEB_PORT"] = str(web_port)
    from pipeline.kafka.preflight import check_port_free, wait_for_topics
    from pipeline.tenancy import check_exposure
    from pipeline.worker import faustcompat
    from pipeline.worker.runtime import Runtime

    faustcompat.check_versions()  # one line now, not a traceback from inside the worker
    checked = settings_from_env()
    preflight = Runtime(checked)
    check_exposure(checked.web_bind, preflight.tenancy, checked.allow_open_api)
    preflight.check()  # stores and schema answer before the worker joins the group
    preflight.close()
    check_port_free(checked.web_bind, checked.web_port, "the web",
                    "another worker? give this one another port with --web-port P "
                    "(or IMGPIPE_WEB_PORT)")
    wait_for_topics(checked, say)
    from pipeline.worker.app import app, settings

    sys.argv = ["imgpipe", "worker", "-l", loglevel or settings.log_level,
                "--web-port", str(settings.web_port), *ctx.args]
    app.main()


COMMANDS = [worker]
