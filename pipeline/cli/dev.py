"""imgpipe demo (what `make run` runs) and imgpipe dev (the cloud emulators, by hand)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from pipeline.cli.bridge import TOPIC_RE
from pipeline.cli.common import say, settings_from_env


@click.command()
@click.option("--images", type=int, default=12, show_default=True)
@click.option("--keep-running/--no-keep-running", default=True,
              help="Keep the worker and broker up until Ctrl-C.")
def demo(images: int, keep_running: bool) -> None:
    """`make run`: Kafka, topics, a worker with its web view, and sample jobs."""
    from pipeline.dev.demo import run_demo

    sys.exit(run_demo(settings_from_env(), images, keep_running))


@click.group()
def dev() -> None:
    """Local stand-ins for Google Cloud, started the way the tests start them."""


_port = click.option("--port", type=click.IntRange(1, 65535), default=None,
                     help="Default: a free port.")


def _serve(service, exports: dict[str, str]) -> None:
    """Print the exports (stdout, for `eval`), then run until Ctrl-C or SIGTERM."""
    for name, value in exports.items():
        click.echo(f"export {name}={value}")
    sys.stdout.flush()  # read by `eval` or a script while we keep running
    say(f"{service.name} on {service.address} (log {service.log}); Ctrl-C stops it")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        service.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()


@dev.command("gcs")
@_port
@click.option("--bucket", default="imgpipe", show_default=True,
              help="Bucket to create (the object store: gs://BUCKET/PREFIX).")
@click.option("--events-topic", default=None, metavar="projects/P/topics/T",
              help="Publish the bucket's object events to this topic of the Pub/Sub "
                   "emulator at PUBSUB_EMULATOR_HOST, as Cloud Storage does (docs/events.md).")
def dev_gcs(port: int | None, bucket: str, events_topic: str | None) -> None:
    """fake-gcs-server (built once with `go install`), with a bucket made."""
    from pipeline.dev.services import ObjectEvents, start_fake_gcs
    from pipeline.objects.gcs import make_client

    events = None
    if events_topic:
        if not TOPIC_RE.match(events_topic) or not os.environ.get("PUBSUB_EMULATOR_HOST"):
            raise click.UsageError("--events-topic needs projects/P/topics/T and "
                                   "PUBSUB_EMULATOR_HOST (the emulator's address)")
        _, project, _, topic = events_topic.split("/")
        events = ObjectEvents(os.environ["PUBSUB_EMULATOR_HOST"], project, topic, bucket)
    service = start_fake_gcs(Path("var/dev/fake-gcs.log"), port, events=events)
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://{service.address}"
    client = make_client()
    try:
        client.create_bucket(bucket)
    except Exception as exc:
        service.stop()
        raise click.ClickException(f"could not create bucket {bucket}: {exc}") from None
    finally:
        client.close()
    _serve(service, {"STORAGE_EMULATOR_HOST": f"http://{service.address}",
                     "IMGPIPE_OBJECT_STORE": f"gs://{bucket}/imgpipe"})


@dev.command("spanner")
@_port
def dev_spanner(port: int | None) -> None:
    """The Cloud Spanner emulator (from the Google Cloud SDK); then `imgpipe db migrate`."""
    from pipeline.dev.services import SPANNER_CLIENT_ENV, start_spanner_emulator

    service = start_spanner_emulator(Path("var/dev/spanner.log"), port)
    _serve(service, {"SPANNER_EMULATOR_HOST": service.address, **SPANNER_CLIENT_ENV,
                     "IMGPIPE_METADATA_URL": "spanner://projects/local/instances/local/"
                                             "databases/imgpipe"})


@dev.command("pubsub")
@_port
@click.option("--topic", default=None, metavar="projects/P/topics/T",
              help="Create this topic once the emulator is up.")
def dev_pubsub(port: int | None, topic: str | None) -> None:
    """The Cloud Pub/Sub emulator (from the Google Cloud SDK), for bucket notifications."""
    from pipeline.dev.services import start_pubsub_emulator

    service = start_pubsub_emulator(Path("var/dev/pubsub.log"), port)
    if topic:
        os.environ["PUBSUB_EMULATOR_HOST"] = service.address
        from google.cloud import pubsub_v1

        with pubsub_v1.PublisherClient() as publisher:
            publisher.create_topic(name=topic)
    _serve(service, {"PUBSUB_EMULATOR_HOST": service.address})


COMMANDS = [demo, dev]
