"""Runtime configuration: one frozen object built once from IMGPIPE_* variables.

Every field has a default that runs on one laptop with no cloud account. Each field
documents itself (``describe()`` feeds ``imgpipe config`` and the README table), and
secrets are masked whenever the settings are printed.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ConfigError
from pipeline.models import PRIORITIES

log = logging.getLogger(__name__)
ENV_PREFIX = "IMGPIPE_"
#: IMGPIPE_* variables read outside Settings (tools, tests, fault hooks): not misspellings.
OTHER_VARIABLES = frozenset({"IMGPIPE_CACHE_DIR", "IMGPIPE_CRASH_AT", "IMGPIPE_CRASH_MARKER",
                             "IMGPIPE_FAULT_ACTION", "IMGPIPE_FAULT_JOBS",
                             "IMGPIPE_ISOLATED_CHILD", "IMGPIPE_SPANNER_EMULATOR",
                             "IMGPIPE_TIMELINE"})
TABLE_STORES = ("memory://", "rocksdb://")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
AGENT_ROLES = frozenset({"ingest", "process", "retry"})


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
    kafka_security_protocol: str = _setting("PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or "
                                            "SASL_SSL (managed Kafka: SASL_SSL).")
    kafka_sasl_mechanism: str = _setting("PLAIN", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or "
                                         "OAUTHBEARER.")
    kafka_username: str = _setting("", "SASL user name (Event Hubs: $ConnectionString).")
    kafka_password: str = _setting("", "SASL password (or Event Hubs connection string).",
                                   secret=True)
    kafka_oauth_token_file: str = _setting("", "OAUTHBEARER: file holding the current token "
                                           "(re-read for every login).")
    kafka_ca_file: str = _setting("", "PEM CA bundle for TLS (empty: the system's).")
    object_store: str = _setting("file://./var/objects",
                                 "Where sources and outputs live: file://DIR or gs://BUCKET/PREFIX.")
    metadata_url: str = _setting("sqlite:///./var/metadata.db",
                                 "Metadata store: sqlite:///PATH or spanner://projects/P/"
                                 "instances/I/databases/D.")
    data_dir: str = _setting("./var/worker", "Faust data directory (table stores).")
    table_store: str = _setting("memory://", "Table store: memory:// (rebuilt from the "
                                             "changelog) or rocksdb:// (see docs/scaling.md).")
    stream_buffer: int = _setting(512, "Jobs buffered per work stream; also bounds what a "
                                       "SIGTERM drain must finish.", minimum=1)
    ingest_buffer: int = _setting(4096, "Events buffered by the ingest and retry streams.",
                                  minimum=1)
    web_port: int = _setting(6066, "HTTP port of the worker's web view and API.", minimum=1)
    web_bind: str = _setting("127.0.0.1", "Interface the worker's web server binds.")
    web_host: str = _setting("127.0.0.1", "Host name peers use to reach this worker's web.")
    api_url: str = _setting("", "Worker API used by CLI commands: one URL, or several "
                                "comma-separated (the CLI moves to the next when one stops "
                                "answering).")
    api_token: str = _setting("", "Admin bearer token (tenant 'default'); the CLI sends and "
                              "signs with it (empty and no tokens file: no auth).",
                              secret=True)
    api_tokens_file: str = _setting("", "JSON file of tokens bound to tenants, priorities and "
                                    "admin rights (docs/api.md#tenants).")
    allow_open_api: bool = _setting(False, "Let a worker serve its API on a non-loopback "
                                    "address without any token (for a trusted network).")
    group_key: str = _setting("", "Secret all workers share to attest their records and "
                                 "sign peer requests (empty: derived from the tokens).",
                                 secret=True)
    peer_hosts: str = _setting("127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,"
                               "fc00::/7,localhost", "Networks and host-name patterns at "
                               "which the API asks other workers (peers) for their part.")
    batch_size: int = _setting(8, "Most normal-priority jobs in one processing batch.",
                               minimum=1)
    batch_window: float = _setting(0.01, "Seconds a normal-priority batch waits to fill "
                                         "(under load batches fill while the last runs).",
                                   minimum=0.001)
    batch_size_high: int = _setting(4, "Most high-priority jobs in one batch.", minimum=1)
    batch_window_high: float = _setting(0.005, "Seconds a high-priority batch waits to fill.",
                                        minimum=0.001)
    batch_size_low: int = _setting(16, "Most low-priority jobs in one batch.", minimum=1)
    batch_window_low: float = _setting(0.02, "Seconds a low-priority batch waits to fill.",
                                       minimum=0.001)
    normal_share: float = _setting(0.2, "Starvation guard: least share of image work "
                                        "normal priority gets while it waits.", minimum=0.0)
    low_share: float = _setting(0.1, "Starvation guard: least share of image work low "
                                     "priority gets while it waits.", minimum=0.0)
    tenant_priorities: str = _setting("", "Priority for requests that name none, by tenant: "
                                          "'acme=high,bulk=low'.")
    allowed_tenants: str = _setting("", "Comma-separated tenants accepted (empty: any).")
    allowed_formats: str = _setting("jpeg,png,webp,avif,jxl,gif",
                                    "Output formats jobs may request.")
    ingest_batch_size: int = _setting(500, "Most events the ingest agent takes at once.",
                                      minimum=1)
    ingest_window: float = _setting(0.01, "Seconds an ingest batch waits to fill.",
                                    minimum=0.001)
    agents: str = _setting("ingest,process,retry", "Agents this worker runs (ingest, process, "
                           "retry); for benchmarks, not for splitting deployments "
                           "(docs/scaling.md).")
    image_threads: int = _setting(0, "Threads for image work (0: one per CPU core).",
                                  minimum=0)
    io_threads: int = _setting(16, "Threads for storage and metadata I/O.", minimum=1)
    storage_retry_seconds: float = _setting(30.0, "How long the storage client retries a "
                                                  "transient error before the job is retried.",
                                            minimum=0.0)
    session_timeout: float = _setting(10.0, "Seconds before the group evicts a silent worker "
                                            "(a crashed worker's partitions move this fast).",
                                      minimum=1.0)
    sweep_interval: float = _setting(10.0, "Seconds between sweeps for jobs lost in "
                                           "transit.", minimum=0.5)
    sweep_stale_after: float = _setting(60.0, "Seconds a job must sit unchanged before the "
                                              "sweeper may re-send it.", minimum=0.0)
    temp_max_age: float = _setting(900.0, "Seconds after which a temp file of an output "
                                          "write is a crashed write's leftover and removed.",
                                   minimum=60.0)
    memory_trim_interval: float = _setting(30.0, "Seconds between returns of freed image "
                                                 "memory to the system (malloc_trim).",
                                           minimum=1.0)
    temp_sweep_interval: float = _setting(3600.0, "Seconds between sweeps of the object "
                                                  "store for leftover temp files (and one "
                                                  "at worker start).", minimum=1.0)
    max_job_memory_mb: int = _setting(1536, "Largest estimated peak memory (MiB) of one job's "
                                      "image work; over it the job FAILs memory_budget.",
                                      minimum=16)
    memory_budget_mb: int = _setting(0, "Estimated memory (MiB) of all running image work "
                                     "together; jobs wait until theirs fits (0: 60% of the "
                                     "container's or machine's memory).", minimum=0)
    isolate_above_mb: int = _setting(512, "Jobs estimated above this (MiB) run isolated in a "
                                     "child process, with a deadline.", minimum=1)
    job_deadline: float = _setting(300.0, "Seconds an isolated job (an expensive one, or one "
                                   "that crashed a worker before) may run before it is "
                                   "stopped: FAILED deadline_exceeded.", minimum=1.0)
    isolated_memory_mb: int = _setting(2048, "Address-space limit (MiB) of an isolated job's "
                                       "process: over it the job fails, not the worker.",
                                       minimum=256)
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
    max_frames: int = _setting(500, "Most frames of an animation a variant may keep "
                               "(encode.animated).", minimum=1)
    max_animation_pixels: int = _setting(100_000_000, "Most pixels of all frames of a "
                                         "kept animation together.", minimum=1)
    source_roots: str = _setting("", "Comma-separated file:// or gs:// roots every tenant's "
                                     "jobs may read (in the object store each tenant reads "
                                     "its own uploads and outputs; docs/api.md#tenants).")
    rules_file: str = _setting("", "TOML file of variant presets and the routes that turn "
                               "bucket notifications into jobs (docs/events.md).")
    lake_prefix: str = _setting("lake", "Object-store prefix of the event archive.")
    lake_tables: str = _setting("results,dlq", "Topics the archiver keeps (results, dlq, "
                                "ingest).")
    lake_roll_records: int = _setting(10_000, "Records per archive file at most.", minimum=1)
    lake_roll_seconds: float = _setting(300.0, "Seconds an archive file collects records "
                                        "before it is written.", minimum=0.1)
    lake_retention_days: int = _setting(365, "Days `imgpipe lake prune` keeps archived "
                                        "partitions.", minimum=1)
    log_level: str = _setting("info", "Worker log level.")

    def __post_init__(self) -> None:
        if not self.api_url:
            object.__setattr__(self, "api_url", f"http://127.0.0.1:{self.web_port}")
        self.tenant_priority_map  # noqa: B018  (validates the rules once, at start)
        self.agent_roles  # noqa: B018
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(f"IMGPIPE_LOG_LEVEL={self.log_level!r}: use one of "
                              f"{', '.join(LOG_LEVELS)}")
        if not self.table_store.startswith(TABLE_STORES):
            raise ConfigError(f"IMGPIPE_TABLE_STORE={self.table_store!r}: use one of "
                              f"{', '.join(TABLE_STORES)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from IMGPIPE_* variables; raise ConfigError naming the bad one."""
        environ = os.environ if environ is None else environ
        _warn_unknown(environ)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = ENV_PREFIX + f.name.upper()
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(name, raw, f)
        return cls(**values)

    @property
    def lake_table_list(self) -> list[str]:
        return sorted(self._csv(self.lake_tables))

    def topic(self, name: str) -> str:
        """Full name of source topic ``name`` (ingest, jobs.high, dlq, ...)."""
        return f"{self.topic_prefix}.{name}"

    def priority_topic(self, priority: str) -> str:
        return self.topic(f"jobs.{priority}")

    def batch_shape(self, priority: str) -> tuple[int, float]:
        """(batch size, window seconds) of one priority class."""
        if priority == "high":
            return self.batch_size_high, self.batch_window_high
        if priority == "low":
            return self.batch_size_low, self.batch_window_low
        return self.batch_size, self.batch_window

    @property
    def agent_roles(self) -> frozenset[str]:
        roles = self._csv(self.agents)
        unknown = roles - AGENT_ROLES
        if unknown or not roles:
            raise ConfigError(f"IMGPIPE_AGENTS: {self.agents!r} must name some of "
                              f"{', '.join(sorted(AGENT_ROLES))}")
        return roles

    @property
    def tenant_priority_map(self) -> dict[str, str]:
        rules = {}
        for item in filter(None, (p.strip() for p in self.tenant_priorities.split(","))):
            tenant, sep, priority = item.partition("=")
            if not sep or priority not in PRIORITIES:
                raise ConfigError(f"IMGPIPE_TENANT_PRIORITIES: {item!r} must be tenant=high|"
                                  "normal|low")
            rules[tenant.strip()] = priority
        return rules

    @staticmethod
    def _csv(text: str) -> frozenset[str]:
        return frozenset(p.strip() for p in text.split(",") if p.strip())

    @property
    def allowed_tenant_set(self) -> frozenset[str]:
        return self._csv(self.allowed_tenants)

    @property
    def allowed_format_set(self) -> frozenset[str]:
        return self._csv(self.allowed_formats)

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
    converters: dict[Any, Callable[[str], Any]] = {"int": int, "float": float, "str": str,
                                                   "bool": _boolean}
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    try:
        value = converters[kind](raw.strip())
    except ValueError:
        expected = {"int": "an integer", "bool": "true or false"}.get(kind, "a number")
        raise ConfigError(f"{name} must be {expected}, got {raw!r}") from None
    minimum = f.metadata.get("min")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


_warned: set[str] = set()


def _warn_unknown(environ: Mapping[str, str]) -> None:
    """A misspelled IMGPIPE_* variable would be ignored silently: name it, and the
    setting it probably meant."""
    known = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
    for name in sorted(environ):
        if (name.startswith(ENV_PREFIX) and name not in known | OTHER_VARIABLES
                and name not in _warned):
            _warned.add(name)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            log.warning("%s is not an imgpipe setting and is ignored%s", name, hint)


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def markdown_table() -> str:
    """The README's configuration table, generated from the field declarations."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for name, value, help_text in Settings().describe():
        if name == "IMGPIPE_API_URL":
            value = "http://127.0.0.1:$IMGPIPE_WEB_PORT"
        lines.append(f"| `{name}` | {f'`{value}`' if value else '(empty)'} | {help_text} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
