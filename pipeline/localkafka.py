"""A real single-node Apache Kafka (KRaft) on 127.0.0.1, for laptops and tests.

The broker's jars are resolved from Maven Central once (deploy/kafka/pom.xml) and cached
under ``~/.cache/imgpipe/kafka/<version>``; later starts never download. State (pid,
ports) lives in ``<data-dir>/broker.json`` so ``up`` is idempotent and ``down`` and
``status`` find the broker again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import ConfigError

KAFKA_VERSION = "4.1.1"
REPO_ROOT = Path(__file__).resolve().parents[1]
POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J_CONFIG = REPO_ROOT / "deploy" / "kafka" / "log4j2.yaml"
DEFAULT_DATA_DIR = Path("var/kafka")
STARTUP_TIMEOUT = 90.0


def cache_dir() -> Path:
    base = os.environ.get("IMGPIPE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "imgpipe")
    return Path(base) / "kafka" / KAFKA_VERSION


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resolve_classpath(echo=print) -> Path:
    """The folder of broker jars, resolved from Maven Central on first use."""
    lib = cache_dir() / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    if not shutil.which("mvn"):
        raise ConfigError("Maven (mvn) is needed once to fetch the Kafka jars: install it "
                          "(e.g. apt-get install maven) and run again")
    if not shutil.which("java"):
        raise ConfigError("Java 17+ is needed to run Kafka: install a JDK (e.g. "
                          "apt-get install openjdk-17-jre-headless)")
    echo(f"Resolving Apache Kafka {KAFKA_VERSION} jars from Maven Central into {lib} "
         "(first run only)...")
    tmp = lib.with_name("lib.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    result = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-Dkafka.version={KAFKA_VERSION}", f"-DoutputDirectory={tmp}"],
        capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError("could not resolve the Kafka jars with Maven:\n"
                          + (result.stdout + result.stderr)[-3000:])
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    marker.touch()
    return lib


@dataclass
class BrokerState:
    pid: int
    port: int
    controller_port: int
    data_dir: str

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def _state_file(data_dir: Path) -> Path:
    return data_dir / "broker.json"


def read_state(data_dir: Path) -> BrokerState | None:
    try:
        return BrokerState(**json.loads(_state_file(data_dir).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
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


def server_properties(port: int, controller_port: int, log_dir: Path) -> str:
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={log_dir}",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=4",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "num.network.threads=2",
        "num.io.threads=2",
        "auto.create.topics.enable=false",
        "log.retention.hours=168",
        "log.segment.bytes=67108864",
        "",
    ])


async def _broker_answers(bootstrap: str) -> bool:
    from aiokafka import AIOKafkaClient

    # Connection refusals are expected while polling for readiness: keep them quiet.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
    except Exception:
        return False
    finally:
        await client.close()


def broker_answers(bootstrap: str) -> bool:
    """True if a broker at ``bootstrap`` answers a metadata request."""
    return asyncio.run(_broker_answers(bootstrap))


def up(port: int | None = None, data_dir: Path = DEFAULT_DATA_DIR, echo=print,
       heap: str = "768m") -> BrokerState:
    """Start the broker (or find it already running) and wait until it answers."""
    data_dir = Path(data_dir).resolve()
    state = read_state(data_dir)
    if state and pid_alive(state.pid):
        if port and port != state.port:
            raise ConfigError(f"a broker from {data_dir} already runs on port {state.port}; "
                              f"run `imgpipe kafka down --data-dir {data_dir}` first")
        if broker_answers(state.bootstrap):
            echo(f"Kafka already running at {state.bootstrap} (pid {state.pid})")
            return state
    port = port or 9092
    if not _port_free(port):
        raise ConfigError(f"port {port} on 127.0.0.1 is taken by another process: pick "
                          "another with --port (and set IMGPIPE_BROKER to match)")
    lib = resolve_classpath(echo)
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    controller_port = free_port()
    props = data_dir / "server.properties"
    props.write_text(server_properties(port, controller_port, log_dir))
    java = ["java", "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile=file:{LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={data_dir}", "-cp", f"{lib}/*"]
    if not (log_dir / "meta.properties").exists():
        cluster_id = uuid.uuid4().hex[:22]
        fmt = subprocess.run([*java, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                              "-c", str(props)], capture_output=True, text=True)
        if fmt.returncode != 0:
            raise ConfigError(f"formatting Kafka storage in {log_dir} failed:\n"
                              + (fmt.stdout + fmt.stderr)[-2000:])
    server_log = data_dir / "server.log"
    started = time.monotonic()
    with server_log.open("ab") as log:
        proc = subprocess.Popen([*java, "kafka.Kafka", str(props)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    state = BrokerState(proc.pid, port, controller_port, str(data_dir))
    _state_file(data_dir).write_text(json.dumps(asdict(state)))
    echo(f"Starting Kafka {KAFKA_VERSION} on {state.bootstrap} (log: {server_log})...")
    while time.monotonic() - started < STARTUP_TIMEOUT:
        if proc.poll() is not None:
            tail = server_log.read_text(errors="replace")[-3000:]
            raise ConfigError(f"Kafka exited with code {proc.returncode} while starting; "
                              f"last log lines:\n{tail}")
        if broker_answers(state.bootstrap):
            echo(f"Kafka is up at {state.bootstrap} after "
                 f"{time.monotonic() - started:.1f}s")
            return state
        time.sleep(0.5)
    down(data_dir, echo=lambda *_: None)
    raise ConfigError(f"Kafka did not answer within {STARTUP_TIMEOUT:.0f}s; see {server_log}")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def down(data_dir: Path = DEFAULT_DATA_DIR, echo=print, timeout: float = 30.0) -> bool:
    """Stop the broker started from ``data_dir``; True if one was running."""
    data_dir = Path(data_dir).resolve()
    state = read_state(data_dir)
    if state is None or not pid_alive(state.pid):
        echo(f"No Kafka running from {data_dir}")
        _state_file(data_dir).unlink(missing_ok=True)
        return False
    echo(f"Stopping Kafka (pid {state.pid})...")
    _signal_group(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(state.pid) and time.monotonic() < deadline:
        _reap(state.pid)
        time.sleep(0.2)
    if pid_alive(state.pid):
        echo("Kafka did not stop in time; killing it")
        _signal_group(state.pid, signal.SIGKILL)
        time.sleep(0.5)
    _reap(state.pid)
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
    """(state, answering) of the broker started from ``data_dir``."""
    data_dir = Path(data_dir).resolve()
    state = read_state(data_dir)
    if state is None or not pid_alive(state.pid):
        return None, False
    return state, broker_answers(state.bootstrap)
