"""Runtime configuration: one frozen object built once from IMGPIPE_* variables.

Every field has a default that runs on one laptop with no cloud account. Each field
documents itself (``describe()`` feeds ``imgpipe config`` and the README table), and
secrets are masked whenever the settings are printed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ConfigError

ENV_PREFIX = "IMGPIPE_"
PRIORITIES = ("high", "normal", "low")


def _setting(default: Any, help: str, *, secret: bool = False, minimum: float | None = None):
    return field(default=default, metadata={"help": help, "secret": secret, "min": minimum})


@dataclass(frozen=True)
class Settings:
    """Effective configuration of one imgpipe process (worker or CLI)."""

    broker: str = _setting("kafka://127.0.0.1:9092", "Kafka bootstrap URL(s), ';'-separated.")
    app_id: str = _setting("imgpipe", "Faust app id: consumer group and changelog prefix.")
    topic_prefix: str = _setting("imgpipe", "Prefix of every source topic name.")
    partitions: int = _setting(8, "Partitions of every topic (caps worker parallelism).",
                               minimum=1)
    replication_factor: int = _setting(1, "Replication factor of created topics.", minimum=1)
    object_store: str = _setting("file://./var/objects",
                                 "Where sources and outputs live: file://DIR or gs://BUCKET/PREFIX.")
    metadata_url: str = _setting("sqlite:///./var/metadata.db",
                                 "Metadata store: sqlite:///PATH or spanner://projects/P/"
                                 "instances/I/databases/D.")
    data_dir: str = _setting("./var/worker", "Faust data directory (table stores).")
    web_port: int = _setting(6066, "HTTP port of the worker's web view and API.", minimum=1)
    web_bind: str = _setting("127.0.0.1", "Interface the worker's web server binds.")
    web_host: str = _setting("127.0.0.1", "Host name peers use to reach this worker's web.")
    api_url: str = _setting("", "Worker API used by CLI commands "
                                "(default http://127.0.0.1:$IMGPIPE_WEB_PORT).")
    api_token: str = _setting("", "Bearer token the API requires (empty: no auth).",
                              secret=True)
    batch_size: int = _setting(8, "Most jobs taken into one processing batch.", minimum=1)
    batch_window: float = _setting(0.25, "Seconds a processing batch waits to fill.",
                                   minimum=0.001)
    ingest_batch_size: int = _setting(500, "Most events the ingest agent takes at once.",
                                      minimum=1)
    ingest_window: float = _setting(0.05, "Seconds an ingest batch waits to fill.",
                                    minimum=0.001)
    image_threads: int = _setting(0, "Threads for image work (0: one per CPU core).",
                                  minimum=0)
    max_attempts: int = _setting(3, "Attempts before a transiently failing job is FAILED.",
                                 minimum=1)
    retry_backoff: float = _setting(1.0, "Base seconds of exponential retry backoff.",
                                    minimum=0.0)
    max_source_bytes: int = _setting(50 * 1024 * 1024, "Largest accepted source file.",
                                     minimum=1)
    max_source_pixels: int = _setting(50_000_000, "Largest accepted source image (pixels).",
                                      minimum=1)
    max_output_pixels: int = _setting(25_000_000, "Largest output a variant may request.",
                                      minimum=1)
    max_variants: int = _setting(16, "Most variants one job may request.", minimum=1)
    source_roots: str = _setting("", "Extra comma-separated file:// roots sources may come "
                                     "from (the object store is always allowed).")
    log_level: str = _setting("info", "Worker log level.")

    def __post_init__(self) -> None:
        if not self.api_url:
            object.__setattr__(self, "api_url", f"http://127.0.0.1:{self.web_port}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from IMGPIPE_* variables; raise ConfigError naming the bad one."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = ENV_PREFIX + f.name.upper()
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(name, raw, f)
        return cls(**values)

    def topic(self, name: str) -> str:
        """Full name of source topic ``name`` (ingest, jobs.high, dlq, ...)."""
        return f"{self.topic_prefix}.{name}"

    def priority_topic(self, priority: str) -> str:
        return self.topic(f"jobs.{priority}")

    @property
    def broker_urls(self) -> list[str]:
        return [u.strip() for u in self.broker.split(";") if u.strip()]

    @property
    def bootstrap_servers(self) -> str:
        """The broker list in the host:port,host:port form Kafka clients take."""
        hosts = []
        for url in self.broker_urls:
            hosts.append(url.split("://", 1)[1] if "://" in url else url)
        return ",".join(hosts)

    @property
    def image_thread_count(self) -> int:
        return self.image_threads or (os.cpu_count() or 1)

    def describe(self) -> list[tuple[str, str, str]]:
        """(variable, effective value with secrets masked, help) for every setting."""
        rows = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = "********"
            rows.append((ENV_PREFIX + f.name.upper(), str(value), f.metadata["help"]))
        return rows

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value, _ in self.describe())
        return f"Settings({shown})"

    __str__ = __repr__


def _convert(name: str, raw: str, f: dataclasses.Field) -> Any:
    converters: dict[Any, Callable[[str], Any]] = {"int": int, "float": float, "str": str}
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    try:
        value = converters[kind](raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be {'an integer' if kind == 'int' else 'a number'}, "
                          f"got {raw!r}") from None
    minimum = f.metadata.get("min")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
    return value
