"""imgpipe kafka (a local broker) and imgpipe topics."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from pipeline.cli.common import settings_from_env
from pipeline.kafka import local as localkafka


@click.group()
def kafka() -> None:
    """A real local Apache Kafka broker (KRaft) on 127.0.0.1."""


_data_dir = click.option("--data-dir", type=click.Path(path_type=Path),
                         default=localkafka.DEFAULT_DATA_DIR, show_default=True,
                         help="Where the broker keeps its logs, config and pid.")


@kafka.command("up")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Client port (default: the port of IMGPIPE_BROKER, else 9092).")
@click.option("--brokers", type=click.Choice(["1", "3"]), default="1", show_default=True,
              help="3: a replicated cluster (RF 3, min ISR 2) for fault tests.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve each broker's Prometheus metrics (JMX exporter) from this port "
                   "on (node 2 on the next one, ...); 0: free ports. Off by default.")
@_data_dir
def kafka_up(port: int | None, brokers: str, metrics_port: int | None, data_dir: Path
             ) -> None:
    """Start the broker(s) (downloads jars once) and wait until they answer."""
    configured = settings_from_env().bootstrap_servers.split(",")[0]
    if port is None:
        port = int(configured.rsplit(":", 1)[1])
    state = localkafka.up(port, data_dir, echo=lambda m: click.echo(m, err=True),
                          brokers=int(brokers), metrics_port=metrics_port)
    for node in state.nodes:
        if node.metrics_url:
            click.echo(f"node {node.node_id} metrics: {node.metrics_url}", err=True)
    if state.bootstrap.split(",")[0] != configured:
        click.echo(f"other imgpipe commands look for Kafka at {configured}: run "
                   f"`export IMGPIPE_BROKER=kafka://{state.bootstrap}` first", err=True)
    click.echo(state.bootstrap)


@kafka.command("down")
@_data_dir
def kafka_down(data_dir: Path) -> None:
    """Stop the broker started from --data-dir."""
    localkafka.down(data_dir, echo=lambda m: click.echo(m, err=True))


@kafka.command("status")
@_data_dir
def kafka_status(data_dir: Path) -> None:
    """Show whether the broker runs and answers (exit 1 if not)."""
    state, answering = localkafka.status(data_dir)
    if state is None:
        bootstrap = settings_from_env().bootstrap_servers
        if localkafka.cluster_size(bootstrap):
            click.echo(f"running: {bootstrap} (IMGPIPE_BROKER; not started from "
                       f"{data_dir.resolve()})")
            sys.exit(0)
        click.echo(f"not running (data dir {data_dir.resolve()}; nothing answers at "
                   f"{bootstrap} either)")
        sys.exit(1)
    click.echo(f"{'running' if answering else 'degraded or starting'}: {state.bootstrap}")
    for node in state.nodes:
        alive = localkafka.pid_alive(node.pid)
        metrics = f", metrics {node.metrics_url}" if node.metrics_url else ""
        click.echo(f"  node {node.node_id}: {node.address} pid {node.pid} "
                   f"{'up' if alive else 'DOWN'}{metrics}")
    sys.exit(0 if answering else 1)


_throttle = click.option("--throttle", type=click.IntRange(1, 10_000), default=50,
                         show_default=True,
                         help="Replication throttle while partitions move, MiB/s.")


def _echo(message: str) -> None:
    click.echo(message, err=True)


@kafka.command("rebalance")
@click.option("--exclude", "excluded", type=int, multiple=True,
              help="Move every replica off this broker id (repeatable).")
@_throttle
def kafka_rebalance(excluded: tuple[int, ...], throttle: int) -> None:
    """Spread every partition's replicas evenly over the brokers of IMGPIPE_BROKER's
    cluster with Kafka's reassignment (throttled); prints the seconds it took."""
    from pipeline.kafka import reassign
    from pipeline.kafka.security import client_options

    settings = settings_from_env()
    if client_options(settings)["security_protocol"] != "PLAINTEXT":
        raise click.ClickException(
            "rebalance talks PLAINTEXT to brokers you run yourself; on a secured cluster "
            "run kafka-reassign-partitions with --command-config, on a managed one use "
            "the platform's rebalancing (docs/deploy.md)")
    moved, keep, took = reassign.rebalance(settings.bootstrap_servers, excluded,
                                           throttle << 20, _echo)
    click.echo(f"{moved} partitions moved in {took:.1f}s onto brokers "
               f"{', '.join(map(str, keep))}")


@kafka.command("add-broker")
@click.option("--no-rebalance", is_flag=True, help="Only start it; move nothing yet.")
@_throttle
@_data_dir
def kafka_add_broker(no_rebalance: bool, throttle: int, data_dir: Path) -> None:
    """Add a broker to the local cluster of --data-dir, then move its share of the
    replicas onto it."""
    from pipeline.kafka import reassign

    node = localkafka.add_node(data_dir, echo=_echo)
    if not no_rebalance:
        reassign.rebalance(localkafka.read_state(data_dir.resolve()).bootstrap,
                           throttle=throttle << 20, echo=_echo)
    click.echo(f"broker {node.node_id} at {node.address}")


@kafka.command("remove-broker")
@click.argument("broker_id", type=int)
@_throttle
@_data_dir
def kafka_remove_broker(broker_id: int, throttle: int, data_dir: Path) -> None:
    """Move every replica off BROKER_ID, then stop it and forget it (a broker added with
    add-broker; the local cluster's first nodes are also its controllers)."""
    from pipeline.kafka import reassign

    state = localkafka.read_state(data_dir.resolve())
    node = next((n for n in state.nodes if n.node_id == broker_id), None) if state else None
    if node is None:
        raise click.ClickException(f"no broker {broker_id} in the cluster of {data_dir}: "
                                   "`imgpipe kafka status` lists them")
    if node.controller_port:
        raise click.ClickException(f"node {broker_id} is also a controller of the local "
                                   "cluster; remove a broker added with add-broker")
    reassign.rebalance(state.bootstrap, (broker_id,), throttle << 20, _echo)
    localkafka.kill_node(data_dir, broker_id, signal.SIGTERM)
    reassign.unregister_broker(state.bootstrap, broker_id)
    localkafka.forget_node(data_dir, broker_id)
    click.echo(f"broker {broker_id} emptied, stopped and unregistered")


@click.group()
def topics() -> None:
    """Source topics."""


@topics.command("create")
def topics_create() -> None:
    """Create the source topics (idempotent) with IMGPIPE_PARTITIONS partitions."""
    from pipeline.kafka.admin import create_topics

    for report in create_topics(settings_from_env()):
        click.echo(f"{report.name:32} partitions={report.partitions:<3} "
                   f"{'created' if report.created else 'exists'}")


COMMANDS = [kafka, topics]
