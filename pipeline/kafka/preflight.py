"""Checks a worker runs before it starts Faust, so a mistake is one line, not a
traceback: its web port is free, Kafka answers, and its topics exist (it waits for
them, saying so, when they do not yet)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from aiokafka.errors import KafkaError

from pipeline.errors import ConfigError, broker_unreachable
from pipeline.kafka.admin import admin_client
from pipeline.kafka.topics import TopicNames
from pipeline.settings import Settings


def check_port_free(host: str, port: int, what: str, hint: str) -> None:
    """ConfigError naming the port and what to do when something already listens there."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise ConfigError(f"{what} port {port} on {host} is taken: {hint}") from None


async def _missing_topics(settings: Settings, timeout: float) -> list[str]:
    async with admin_client(settings, timeout) as admin:
        try:
            existing = set(await admin.list_topics())
        except (KafkaError, OSError, TimeoutError) as exc:
            raise broker_unreachable(settings.bootstrap_servers, exc) from None
    return [name for name in TopicNames.from_settings(settings).all() if name not in existing]


def wait_for_topics(settings: Settings, echo: Callable[[str], None], timeout: float = 600.0,
                    poll: float = 2.0) -> None:
    """Return once every source topic exists; say what is missing (every 30 s) meanwhile.
    ConfigError if Kafka does not answer, or the topics do not appear within ``timeout``."""
    deadline = time.monotonic() + timeout
    said = 0.0
    while missing := asyncio.run(_missing_topics(settings, 10.0)):
        now = time.monotonic()
        if now >= deadline:
            raise ConfigError(f"topics {', '.join(missing)} do not exist: run `imgpipe "
                              "topics create` (with this worker's IMGPIPE_* settings)")
        if now - said >= 30:
            echo(f"waiting for topics {', '.join(missing)}: run `imgpipe topics create` "
                 "(the worker starts as soon as they exist)")
            said = now
        time.sleep(poll)
