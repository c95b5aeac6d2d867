"""Creating the source and changelog topics with explicit partitions and replication
(idempotent)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from pipeline.errors import ConfigError, broker_unreachable
from pipeline.kafka.security import kafka_options
from pipeline.kafka.topics import TopicNames
from pipeline.settings import Settings
from pipeline.worker import faustcompat


@dataclass(frozen=True)
class TopicReport:
    name: str
    partitions: int
    created: bool


def changelog_topics(settings: Settings) -> dict[str, dict[str, str]]:
    """The tables' changelog topics and their configs. Created here, before any worker
    starts: a worker that finds a changelog missing at subscription creates it itself
    but then never consumes it, and its writes to that table wait forever."""
    return {f"{settings.app_id}-jobs-changelog": {"cleanup.policy": "compact"},
            f"{settings.app_id}-throughput-changelog": {
                "cleanup.policy": "compact,delete", "retention.ms": str(3600 * 1000)}}


@asynccontextmanager
async def admin_client(settings: Settings, timeout: float
                       ) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed after the block; broker_unreachable if Kafka does
    not answer within ``timeout``, in one line that carries aiokafka's last error (a
    refused login says so) instead of aiokafka's own log lines."""
    admin = AIOKafkaAdminClient(**kafka_options(settings),
                                request_timeout_ms=int(timeout * 1000))
    client_log, recorder = logging.getLogger("aiokafka"), _LastError()
    propagate = client_log.propagate
    client_log.propagate = False
    client_log.addHandler(recorder)
    try:
        try:
            await asyncio.wait_for(admin.start(), timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            reason = f"{exc}; {recorder.last}" if recorder.last else exc
            raise broker_unreachable(settings.bootstrap_servers, reason) from None
        finally:
            client_log.removeHandler(recorder)
            client_log.propagate = propagate
        yield admin
    finally:
        await admin.close()


class _LastError(logging.Handler):
    """Keeps the last error aiokafka logged (why a connection or login failed)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()


async def _create_topics(settings: Settings, timeout: float) -> list[TopicReport]:
    changelogs = changelog_topics(settings)
    names = [*TopicNames.from_settings(settings).all(), *changelogs]
    async with admin_client(settings, timeout) as admin:
        existing = set(await admin.list_topics())
        brokers = len(faustcompat.kafka_client(admin).cluster.brokers())
        rf = min(settings.replication_factor, max(brokers, 1))
        configs = {"min.insync.replicas": "2"} if rf >= 3 else {}
        missing = [n for n in names if n not in existing]
        if missing:
            response = await admin.create_topics(
                [NewTopic(n, settings.partitions, rf,
                          topic_configs={**configs, **changelogs.get(n, {})})
                 for n in missing])
            for name, code, message in getattr(response, "topic_errors", []):
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise ConfigError(f"creating topic {name} failed: {message} ({code})")
        # New topics can take a moment to show up in every broker's metadata.
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            described = await admin.describe_topics(names)
            partitions = {d["topic"]: len(d["partitions"]) for d in described}
            settled = all(partitions.get(n) for n in names)
            if settled or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        reports = [TopicReport(n, partitions.get(n, 0), n in missing) for n in names]
        wrong = [r for r in reports if r.partitions != settings.partitions]
        if wrong:
            detail = ", ".join(f"{r.name} has {r.partitions}" for r in wrong)
            raise ConfigError(f"topics must all have IMGPIPE_PARTITIONS={settings.partitions} "
                              f"partitions (co-partitioning), but {detail}")
        return reports


def create_topics(settings: Settings, timeout: float = 30.0) -> list[TopicReport]:
    """Create missing source and changelog topics; verify all have the configured
    partition count."""
    return asyncio.run(_create_topics(settings, timeout))
