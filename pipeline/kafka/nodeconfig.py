"""How one local KRaft node is configured and launched: its server.properties and its
java command line (with the JMX exporter agent when it serves metrics)."""

from __future__ import annotations

from pathlib import Path

from pipeline.kafka.jars import REPO_ROOT, agent_jar

LOG4J_CONFIG = REPO_ROOT / "deploy" / "kafka" / "log4j2.yaml"
#: What the JMX exporter exports (docs/runbook.md#broker-metrics names them).
JMX_RULES = REPO_ROOT / "deploy" / "kafka" / "jmx-exporter.yml"

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
#: The local broker shares its cores with the workers: C1 code only. C2's compiler
#: threads cost a fresh broker ~20 ms of CPU per second idle and ~3.8 ms per job under
#: load for minutes, more than its faster code saves at a laptop's load
#: (docs/performance.md, fix 13).
LOCAL_JIT = ("-XX:TieredStopAtLevel=1",)
#: How often a single node's controller appends a no-op record to the metadata log
#: when nothing else changes (Kafka's default: 500 ms).
SINGLE_NODE_METADATA_IDLE_MS = 5000


def server_properties(node_id: int, port: int, controller_port: int, voters: str,
                      log_dir: Path, cluster_size: int, sasl_port: int | None = None) -> str:
    """KRaft combined-mode config; with 3 nodes: RF 3, min ISR 2, fast failure detection.
    ``sasl_port`` adds a SASL_PLAINTEXT listener taking SCRAM logins (managed-Kafka tests).
    ``controller_port`` 0: a broker-only node (one added to a running cluster), whose
    controllers are the ``voters``."""
    rf, isr = (3, 2) if cluster_size >= 3 else (1, 1)
    listeners = [f"PLAINTEXT://127.0.0.1:{port}"]
    security = ["CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT"]
    sasl: list[str] = []
    if sasl_port:
        listeners.append(f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}")
        security.append("SASL_PLAINTEXT:SASL_PLAINTEXT")
        sasl = [f"sasl.enabled.mechanisms={','.join(SCRAM_MECHANISMS)}"] + [
            f"listener.name.sasl_plaintext.{m.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            for m in SCRAM_MECHANISMS]
    lines = [
        "process.roles=broker,controller" if controller_port else "process.roles=broker",
        f"node.id={node_id}",
        f"controller.quorum.voters={voters}",
        f"listeners={','.join(listeners)}"
        + (f",CONTROLLER://127.0.0.1:{controller_port}" if controller_port else ""),
        f"advertised.listeners={','.join(listeners)}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        f"listener.security.protocol.map={','.join(security)}",
        *sasl,
        f"log.dirs={log_dir}",
        "num.partitions=1",
        f"default.replication.factor={rf}",
        f"min.insync.replicas={isr}",
        f"offsets.topic.replication.factor={rf}",
        "offsets.topic.num.partitions=4",
        f"transaction.state.log.replication.factor={rf}",
        f"transaction.state.log.min.isr={isr}",
        "transaction.state.log.num.partitions=1",
        f"share.coordinator.state.topic.replication.factor={rf}",
        f"share.coordinator.state.topic.min.isr={isr}",
        "group.initial.rebalance.delay.ms=0",
        "num.network.threads=2",
        "num.io.threads=2",
        "auto.create.topics.enable=false",
        "log.retention.hours=168",
        "log.segment.bytes=67108864",
    ]
    if cluster_size >= 3:  # notice a killed node in seconds, not the 9 s / 30 s defaults
        lines += ["broker.heartbeat.interval.ms=500", "broker.session.timeout.ms=3000",
                  "replica.lag.time.max.ms=5000", "controller.quorum.fetch.timeout.ms=2000",
                  "controller.quorum.election.timeout.ms=1000"]
    else:  # one node shares a laptop's cores: its no-op metadata records every 500 ms
        # cost ~10 ms of CPU per second idle (docs/performance.md, fix 20)
        lines += [f"metadata.max.idle.interval.ms={SINGLE_NODE_METADATA_IDLE_MS}"]
    return "\n".join([*lines, ""])


def java_command(lib: Path, data_dir: Path, heap: str, metrics_port: int | None = None
                 ) -> list[str]:
    """``java ... -cp <broker jars>``; with ``metrics_port``, the JMX exporter agent serves
    the broker's metrics at http://127.0.0.1:<port>/metrics."""
    agent = ([f"-javaagent:{agent_jar()}=127.0.0.1:{metrics_port}:{JMX_RULES}"]
             if metrics_port else [])
    return ["java", "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC", *LOCAL_JIT,
            "-Djava.awt.headless=true", *agent, f"-Dlog4j2.configurationFile=file:{LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={data_dir}", "-cp", f"{lib}/*"]
