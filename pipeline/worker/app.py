"""The Faust application: ``faust -A pipeline.worker.app worker`` or ``imgpipe worker``.

This module only wires things together. Agents live in ``agents/``, tables in
``tables/``; both are imported by Faust's autodiscovery when a worker starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import REGISTRY

from pipeline.kafka.deadletters import DeadLetterReader
from pipeline.kafka.lag import LagProbe
from pipeline.kafka.reader import KafkaReader
from pipeline.kafka.security import faust_credentials, kafka_options
from pipeline.kafka.topics import TopicNames
from pipeline.settings import Settings
from pipeline.web import web_routes
from pipeline.web.server import PipelineWeb
from pipeline.worker import faustcompat
from pipeline.worker.memory import keep_freed_memory
from pipeline.worker.runtime import Runtime
from pipeline.worker.sensor import LeanPrometheusMonitor


class PipelineApp(faust.App):
    """Faust's App, holding what agents, tables and web views reach through it: the
    pipeline's settings, runtime services, topic names and lag probe. A module that fails
    to import stops the worker instead of leaving it running without its agents."""

    def __init__(self, *args, pipeline_settings: Settings, **kwargs) -> None:
        self.pipeline_settings = pipeline_settings
        self.runtime = Runtime(pipeline_settings)
        self.topic_names = TopicNames.from_settings(pipeline_settings)
        #: Consumer lag of the group's source topics: the web views, the lag gauge and the
        #: sweeper's stall check share one probe (and its Kafka connections).
        self.kafka_reader = KafkaReader(kafka_options(pipeline_settings))
        names = self.topic_names
        self.lag_probe = LagProbe(self.kafka_reader, pipeline_settings.app_id,
                                  [names.ingest, *names.priority.values(), names.retry])
        #: The newest dead letters, for the dashboard (answers cached a few seconds).
        self.dead_letters = DeadLetterReader(self.kafka_reader, names.dlq)
        #: The job-state table (tables/jobs.py registers it), for agents and web views.
        self.job_states: Any = None
        self._source_topics: dict[str, faust.TopicT] = {}
        super().__init__(*args, **kwargs)

    async def on_first_start(self) -> None:
        """At worker start: check the Faust/aiokafka versions, apply the fixes of the
        Faust seam and tune the allocator (never at import, so importing the app changes
        nothing)."""
        faustcompat.install(self.pipeline_settings.topic_prefix)
        faustcompat.resume_empties_only_suspended_queues(self)
        keep_freed_memory()
        Path(self.pipeline_settings.data_dir).mkdir(parents=True, exist_ok=True)
        await super().on_first_start()

    def _on_autodiscovery_error(self, name: str) -> None:
        raise

    def discover(self, *extra_modules: str, **kwargs) -> None:
        """Faust's autodiscovery, then drop the agents this worker is not configured
        to run (IMGPIPE_AGENTS), before any of them subscribes to its topic."""
        super().discover(*extra_modules, **kwargs)
        wanted = self.pipeline_settings.agent_roles
        for name in [n for n in self.agents if _role(n) not in wanted]:
            del self.agents[name]
        for path, view in web_routes().items():
            self.page(path)(view)

    def _new_web(self) -> PipelineWeb:
        return PipelineWeb(self)

    def source_topic(self, name: str) -> faust.TopicT:
        """A Faust topic handle for one of our source topics (raw bytes in, raw bytes out).

        Work topics get a small stream buffer (it bounds what a SIGTERM drain must finish
        and keeps backpressure tight); ingest and retry records are cheap, and a large
        buffer lets ingest route a burst quickly.
        """
        if name not in self._source_topics:
            settings = self.pipeline_settings
            work = name in self.topic_names.priority.values()
            self._source_topics[name] = self.topic(
                name, key_type=bytes, value_type=bytes, key_serializer="raw",
                value_serializer="raw", partitions=settings.partitions, internal=False,
                maxsize=settings.stream_buffer if work else settings.ingest_buffer)
        return self._source_topics[name]


def _role(agent_name: str) -> str:
    """The IMGPIPE_AGENTS role of an agent: process-high -> process, pipeline...ingest -> ingest."""
    return agent_name.rsplit(".", 1)[-1].split("-", 1)[0]


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured from ``settings`` (topics are created by ``imgpipe topics
    create``, never auto-declared with default partitions)."""
    return PipelineApp(
        settings.app_id,
        pipeline_settings=settings,
        broker=[f"kafka://{h}" for h in settings.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings),
        autodiscover=["agents", "tables"],
        origin="pipeline",
        datadir=settings.data_dir,
        store=settings.table_store,
        stream_buffer_maxsize=settings.ingest_buffer,
        # Faust's fetcher hands records to the streams one by one; a put into a full
        # stream queue stalls delivery to every other stream (head-of-line blocking,
        # e.g. a low-priority backlog holding up high-priority records). Faust stops
        # fetching a partition whose queue is ~80% full, so with small polls and a work
        # buffer well above 5x the poll size, a put never has to wait.
        broker_max_poll_records=50,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        # Faust's 60 s default leaves a crashed worker's partitions idle for a minute;
        # heartbeats come from the consumer thread, so image work cannot starve them.
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(1.0, settings.session_timeout / 4),
        producer_acks=-1,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        stream_wait_empty=True,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_host=settings.web_host,
        web_enabled=True,
        web_in_thread=False,
        # Uploads are streamed and capped by the submit view; this caps other bodies.
        web_application_options={"client_max_size": settings.max_source_bytes + (1 << 20)},
        table_standby_replicas=1,
        value_serializer="raw",
        key_serializer="raw",
    )


settings = Settings.from_env()
app = create_app(settings)
# Faust's own sensor on /metrics beside ours, prefixed "faust_" (not the app id, which
# differs between deployments) so dashboards and alerts work everywhere.
app.monitor = LeanPrometheusMonitor(metrics=FaustMetrics.create(REGISTRY, "faust"))
