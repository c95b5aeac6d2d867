"""A real Apache Kafka (KRaft: one node, or three) on 127.0.0.1, for laptops and tests.

The jars come from pipeline.kafka.jars, each node's config and command line from
pipeline.kafka.nodeconfig. State (pids, ports) lives in ``<data-dir>/broker.json`` so
``up`` is idempotent and ``down`` and ``status`` find the cluster again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.kafka.jars import KAFKA_VERSION, resolve_classpath
from pipeline.kafka.nodeconfig import SCRAM_MECHANISMS, java_command, server_properties

DEFAULT_DATA_DIR = Path("var/kafka")
STARTUP_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """One KRaft node (broker + controller) of the local cluster."""

    node_id: int
    pid: int
    port: int
    controller_port: int
    data_dir: str
    metrics_port: int | None = None  # the JMX exporter's, when the node serves metrics

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str | None:
        return f"http://127.0.0.1:{self.metrics_port}/metrics" if self.metrics_port else None


@dataclass
class BrokerState:
    """The local cluster started from one data dir: 1 node, or 3 for replication tests."""

    nodes: list[Node]
    data_dir: str

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def alive(self) -> list[Node]:
        return [node for node in self.nodes if pid_alive(node.pid)]

    def to_json(self) -> str:
        return json.dumps({"data_dir": self.data_dir, "nodes": [asdict(n) for n in self.nodes]})


def _state_file(data_dir: Path) -> Path:
    return data_dir / "broker.json"


def read_state(data_dir: Path) -> BrokerState | None:
    try:
        raw = json.loads(_state_file(Path(data_dir)).read_text())
        return BrokerState([Node(**n) for n in raw["nodes"]], raw["data_dir"])
    except (FileNotFoundError, ValueError, TypeError, KeyError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


async def _cluster_size(bootstrap: str) -> int:
    from aiokafka import AIOKafkaClient

    # Connection refusals are expected while polling for readiness: keep them quiet.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await client.bootstrap()
        return len(client.cluster.brokers())
    except Exception:
        return 0
    finally:
        await client.close()


def cluster_size(bootstrap: str) -> int:
    """How many brokers a metadata request at ``bootstrap`` reports (0: no answer)."""
    return asyncio.run(_cluster_size(bootstrap))


def up(port: int | None = None, data_dir: Path = DEFAULT_DATA_DIR, echo=print,
       heap: str | None = None, brokers: int = 1, sasl_port: int | None = None,
       scram_users: dict[str, str] | None = None, metrics_port: int | None = None
       ) -> BrokerState:
    """Start the cluster (or find it already running) and wait until every node answers.

    With ``sasl_port`` (one node only) the broker also listens there for SASL SCRAM
    logins of ``scram_users`` (name -> password, both SCRAM-SHA-256 and -512). With
    ``metrics_port`` node i serves Prometheus metrics on ``metrics_port + i - 1`` (0: on
    free ports).
    """
    data_dir = Path(data_dir).resolve()
    if brokers not in (1, 3):
        raise ConfigError("--brokers must be 1 or 3")
    if sasl_port and brokers != 1:
        raise ConfigError("a SASL listener is only offered on a single-node cluster")
    state = read_state(data_dir)
    if state and state.alive():
        if (port and port != state.port) or len(state.nodes) != brokers:
            raise ConfigError(f"a {len(state.nodes)}-node Kafka from {data_dir} already runs "
                              f"at {state.bootstrap}; run `imgpipe kafka down --data-dir "
                              f"{data_dir}` first")
        if len(state.alive()) == brokers and cluster_size(state.bootstrap) >= brokers:
            echo(f"Kafka already running at {state.bootstrap} (pid {state.pid})")
            return state
        down(data_dir, echo=lambda *_: None)  # half alive: start clean
    port = port or 9092
    if not _port_free(port):
        raise ConfigError(f"port {port} on 127.0.0.1 is taken by another process: pick "
                          "another with --port (and set IMGPIPE_BROKER to match)")
    lib = resolve_classpath(echo)
    heap = heap or ("768m" if brokers == 1 else "512m")
    ports = [port, *(free_port() for _ in range(brokers - 1))]
    metrics_ports = _metrics_ports(metrics_port, brokers)
    cports = [free_port() for _ in range(brokers)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, c in enumerate(cports))
    cluster_id = None
    nodes, procs = [], []
    started = time.monotonic()
    for i in range(brokers):
        node_dir = data_dir if brokers == 1 else data_dir / f"node-{i + 1}"
        log_dir = node_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        props = node_dir / "server.properties"
        props.write_text(server_properties(i + 1, ports[i], cports[i], voters, log_dir,
                                           brokers, sasl_port))
        java = java_command(lib, node_dir, heap, metrics_ports[i])
        if not (log_dir / "meta.properties").exists():
            cluster_id = cluster_id or uuid.uuid4().hex[:22]
            scram = [arg for name, password in (scram_users or {}).items()
                     for mechanism in SCRAM_MECHANISMS
                     for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")]
            _format(java, cluster_id, props, scram)
        procs.append(_launch(java, node_dir))
        nodes.append(Node(i + 1, procs[-1].pid, ports[i], cports[i], str(node_dir),
                          metrics_ports[i]))
    state = BrokerState(nodes, str(data_dir))
    _state_file(data_dir).write_text(state.to_json())
    echo(f"Starting Kafka {KAFKA_VERSION} ({brokers} node{'s' * (brokers > 1)}) on "
         f"{state.bootstrap} (logs: {data_dir}/**/server.log)...")
    while time.monotonic() - started < STARTUP_TIMEOUT:
        for node, proc in zip(nodes, procs, strict=True):
            if proc.poll() is not None:
                tail = (Path(node.data_dir) / "server.log").read_text(errors="replace")[-3000:]
                down(data_dir, echo=lambda *_: None)
                raise ConfigError(f"Kafka node {node.node_id} exited with code "
                                  f"{proc.returncode} while starting; last log lines:\n{tail}")
        if cluster_size(state.bootstrap) >= brokers:
            echo(f"Kafka is up at {state.bootstrap} after "
                 f"{time.monotonic() - started:.1f}s")
            return state
        time.sleep(0.5)
    down(data_dir, echo=lambda *_: None)
    raise ConfigError(f"Kafka did not answer within {STARTUP_TIMEOUT:.0f}s; see the "
                      f"server.log files under {data_dir}")


def add_node(data_dir: Path, echo=print, heap: str = "512m") -> Node:
    """Start one more broker (broker role only; the existing nodes stay the controllers)
    in the running cluster of ``data_dir`` and wait until the cluster lists it. It holds
    no replicas until they are moved to it (pipeline.kafka.reassign)."""
    data_dir = Path(data_dir).resolve()
    state = read_state(data_dir)
    if state is None or not state.alive():
        raise ConfigError(f"no Kafka running from {data_dir}: start it with `imgpipe kafka "
                          "up --brokers 3` first")
    controllers = [n for n in state.nodes if n.controller_port]
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in controllers)
    meta = Path(controllers[0].data_dir) / "logs" / "meta.properties"
    cluster_id = next(line.split("=", 1)[1].strip() for line in meta.read_text().splitlines()
                      if line.startswith("cluster.id="))
    node_id = max(n.node_id for n in state.nodes) + 1
    node_dir = data_dir / f"node-{node_id}"
    (node_dir / "logs").mkdir(parents=True, exist_ok=True)
    props = node_dir / "server.properties"
    port = free_port()
    props.write_text(server_properties(node_id, port, 0, voters, node_dir / "logs",
                                       len(state.nodes)))
    metrics = free_port() if any(n.metrics_port for n in state.nodes) else None
    java = java_command(resolve_classpath(echo), node_dir, heap, metrics)
    _format(java, cluster_id, props, ["--no-initial-controllers"])
    proc = _launch(java, node_dir)
    node = Node(node_id, proc.pid, port, 0, str(node_dir), metrics)
    state.nodes.append(node)
    _state_file(data_dir).write_text(state.to_json())
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while cluster_size(state.bootstrap) < len(state.alive()):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = (node_dir / "server.log").read_text(errors="replace")[-2000:]
            raise ConfigError(f"broker {node_id} did not join the cluster; last log lines:"
                              f"\n{tail}")
        time.sleep(0.5)
    echo(f"broker {node_id} joined at {node.address}")
    return node


def _format(java: list[str], cluster_id: str, props: Path, extra: list[str]) -> None:
    """Format a node's storage for ``cluster_id`` (once, before its first start)."""
    done = subprocess.run([*java, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                           "-c", str(props), *extra], capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"formatting Kafka storage for {props.parent} failed:\n"
                          + (done.stdout + done.stderr)[-2000:])


def _launch(java: list[str], node_dir: Path) -> subprocess.Popen:
    """Start the node configured in ``node_dir`` in its own session, logging beside it."""
    with (node_dir / "server.log").open("ab") as log:
        return subprocess.Popen([*java, "kafka.Kafka", str(node_dir / "server.properties")],
                                stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def forget_node(data_dir: Path, node_id: int) -> None:
    """Drop a stopped node from the cluster's state file (after remove-broker)."""
    data_dir = Path(data_dir).resolve()
    state = read_state(data_dir)
    if state is not None:
        state.nodes = [n for n in state.nodes if n.node_id != node_id]
        _state_file(data_dir).write_text(state.to_json())


def _metrics_ports(first: int | None, brokers: int) -> list[int | None]:
    if first is None:
        return [None] * brokers
    chosen = [first + i if first else free_port() for i in range(brokers)]
    taken = [p for p in chosen if p is not None and not _port_free(p)]
    if taken:
        raise ConfigError(f"metrics port {taken[0]} on 127.0.0.1 is taken: pick another "
                          "with --metrics-port (each node uses the next one), or 0 for "
                          "free ports")
    return chosen


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def down(data_dir: Path = DEFAULT_DATA_DIR, echo=print, timeout: float = 30.0) -> bool:
    """Stop every node started from ``data_dir``; True if one was running."""
    data_dir = Path(data_dir).resolve()
    state = read_state(data_dir)
    if state is None or not state.alive():
        echo(f"No Kafka running from {data_dir}")
        _state_file(data_dir).unlink(missing_ok=True)
        return False
    echo(f"Stopping Kafka (pids {', '.join(str(n.pid) for n in state.alive())})...")
    for node in state.alive():
        _signal_group(node.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while state.alive() and time.monotonic() < deadline:
        for node in state.nodes:
            _reap(node.pid)
        time.sleep(0.2)
    if state.alive():
        echo("Kafka did not stop in time; killing it")
        for node in state.alive():
            _signal_group(node.pid, signal.SIGKILL)
        time.sleep(0.5)
    for node in state.nodes:
        _reap(node.pid)
    _state_file(data_dir).unlink(missing_ok=True)
    echo("Kafka stopped")
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def status(data_dir: Path = DEFAULT_DATA_DIR) -> tuple[BrokerState | None, bool]:
    """(state, every node answering) of the cluster started from ``data_dir``."""
    data_dir = Path(data_dir).resolve()
    state = read_state(data_dir)
    if state is None or not state.alive():
        return None, False
    return state, cluster_size(state.bootstrap) >= len(state.nodes) == len(state.alive())


def kill_node(data_dir: Path, node_id: int, sig: signal.Signals = signal.SIGKILL) -> Node:
    """Kill one node of a running cluster (fault tests); returns it."""
    state = read_state(Path(data_dir).resolve())
    if state is None:
        raise ConfigError(f"no Kafka running from {data_dir}")
    node = next(n for n in state.nodes if n.node_id == node_id)
    _signal_group(node.pid, sig)
    deadline = time.monotonic() + 30
    while pid_alive(node.pid) and time.monotonic() < deadline:
        _reap(node.pid)
        time.sleep(0.1)
    return node


def restart_node(data_dir: Path, node_id: int, echo=print, heap: str | None = None) -> Node:
    """Start a stopped node again with its existing config and data (fault tests)."""
    data_dir = Path(data_dir).resolve()
    state = read_state(data_dir)
    if state is None:
        raise ConfigError(f"no Kafka state in {data_dir}")
    node = next(n for n in state.nodes if n.node_id == node_id)
    if pid_alive(node.pid):
        return node
    node_dir = Path(node.data_dir)
    java = java_command(resolve_classpath(echo), node_dir,
                        heap or ("768m" if len(state.nodes) == 1 else "512m"), node.metrics_port)
    proc = _launch(java, node_dir)
    node.pid = proc.pid
    _state_file(data_dir).write_text(state.to_json())
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"Kafka node {node_id} exited with code {proc.returncode}")
        if cluster_size(node.address) >= 1:
            return node
        time.sleep(0.3)
    raise ConfigError(f"Kafka node {node_id} did not come back within {STARTUP_TIMEOUT}s")
