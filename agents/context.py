"""What agents' logic works with, reached through the app (or built by a test).

Agent modules register Faust agents on the app; their logic takes an ``AgentContext``,
so a unit test runs it with an in-memory table and outbox and no broker
(tests/agentkit.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.routing import Outbox
from pipeline.kafka.topics import TopicNames
from pipeline.settings import Settings
from pipeline.worker.inflight import InFlight, in_flight
from pipeline.worker.runtime import Runtime
from tables.jobs import JobStates


@dataclass
class AgentContext:
    settings: Settings
    runtime: Runtime
    topics: TopicNames
    states: JobStates
    outbox: Outbox
    #: Counts finished jobs: (event, priority, outcome[, jobs]); tables.stats.Throughput.
    count_outcome: Callable[..., None]
    in_flight: InFlight

    @classmethod
    def of_app(cls, app: Any) -> AgentContext:
        """The context of a worker's app (its producer, tables and runtime)."""

        async def produce(topic: str, key: bytes | None, value: bytes, headers: Any) -> Any:
            return await app.producer.send(topic, key, value, None, None, headers)

        return cls(settings=app.pipeline_settings, runtime=app.runtime,
                   topics=app.topic_names, states=app.job_states,
                   outbox=Outbox(produce, app.topic_names.dlq, app.runtime.group.attest),
                   count_outcome=app.throughput.count, in_flight=in_flight)


_contexts: dict[int, AgentContext] = {}


def context_of(app: Any) -> AgentContext:
    """The app's context, made once (agents call this when their stream starts)."""
    if id(app) not in _contexts:
        _contexts[id(app)] = AgentContext.of_app(app)
    return _contexts[id(app)]
