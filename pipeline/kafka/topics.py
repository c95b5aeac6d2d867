"""The source topics. Every one is keyed by job_id with the same partition count, so the
jobs table (keyed by job_id) is co-partitioned with every stream that updates it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from pipeline.models import PRIORITIES
from pipeline.settings import Settings

#: Short names of the source topics, in the order ``imgpipe topics create`` lists them.
SOURCE_TOPICS = ("ingest", *(f"jobs.{p}" for p in PRIORITIES), "retry", "results", "dlq")


@dataclass(frozen=True)
class TopicNames:
    ingest: str
    priority: dict[str, str]
    retry: str
    results: str
    dlq: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        return cls(
            ingest=settings.topic("ingest"),
            priority={p: settings.priority_topic(p) for p in PRIORITIES},
            retry=settings.topic("retry"),
            results=settings.topic("results"),
            dlq=settings.topic("dlq"),
        )

    def all(self) -> list[str]:
        return [self.ingest, *self.priority.values(), self.retry, self.results, self.dlq]

    @cached_property
    def names(self) -> frozenset[str]:
        """Every source topic name, for membership tests on hot paths."""
        return frozenset(self.all())
