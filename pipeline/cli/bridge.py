"""``imgpipe bridge pubsub``: bucket notifications from Pub/Sub onto the ingest topic."""

from __future__ import annotations

import asyncio
import re
import signal

import click

from pipeline.cli.common import say, settings_from_env

SUBSCRIPTION_RE = re.compile(r"^projects/[^/]+/subscriptions/[^/]+$")
TOPIC_RE = re.compile(r"^projects/[^/]+/topics/[^/]+$")


@click.group()
def bridge() -> None:
    """Bring raw events from other systems onto the ingest topic (docs/events.md)."""


@bridge.command("pubsub")
@click.argument("subscription")
@click.option("--create-from", "topic", default=None, metavar="projects/P/topics/T",
              help="Create the subscription on this topic first if it does not exist.")
@click.option("--ack-deadline", type=click.IntRange(10, 600), default=60, show_default=True,
              help="Seconds Pub/Sub waits for an ack before redelivering (with "
                   "--create-from).")
def bridge_pubsub(subscription: str, topic: str | None, ack_deadline: int) -> None:
    """Copy SUBSCRIPTION (projects/P/subscriptions/S) onto the ingest topic, acking each
    message only after Kafka confirmed it; runs until stopped (SIGTERM, Ctrl-C)."""
    from pipeline.cli.client import cli_principal
    from pipeline.kafka.pubsub_bridge import PubSubBridge, job_keys, progress_printer
    from pipeline.worker.runtime import Runtime

    if not SUBSCRIPTION_RE.match(subscription):
        raise click.BadParameter("expected projects/PROJECT/subscriptions/NAME",
                                 param_hint="SUBSCRIPTION")
    if topic is not None and not TOPIC_RE.match(topic):
        raise click.BadParameter("expected projects/PROJECT/topics/NAME",
                                 param_hint="--create-from")
    settings = settings_from_env()
    if topic:
        _ensure_subscription(subscription, topic, ack_deadline)
    runtime = Runtime(settings)
    try:
        job_bridge = PubSubBridge(settings, subscription, cli_principal(settings),
                                  job_keys(runtime.storage_jobs))
        say(f"bridging {subscription} -> {settings.topic('ingest')} (Ctrl-C stops)")
        stats = asyncio.run(_run(job_bridge, progress_printer(say)))
    finally:
        runtime.close()
    say(f"stopped: {stats.forwarded} notification(s) bridged, {stats.dead_lettered} "
        "dead-lettered")


async def _run(job_bridge, progress):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await job_bridge.run(stop, progress)


def _ensure_subscription(subscription: str, topic: str, ack_deadline: int) -> None:
    from google.api_core import exceptions
    from google.cloud import pubsub_v1

    with pubsub_v1.SubscriberClient() as subscriber:
        try:
            subscriber.create_subscription(request={"name": subscription, "topic": topic,
                                                    "ack_deadline_seconds": ack_deadline})
            say(f"created {subscription} on {topic}")
        except exceptions.AlreadyExists:
            pass


COMMANDS = [bridge]
