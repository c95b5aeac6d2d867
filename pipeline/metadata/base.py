"""The metadata store contract: one batched upsert per processed batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.models import OutputInfo


@dataclass(frozen=True)
class JobRecord:
    """One job's metadata row and its output rows."""

    job_id: str
    status: str
    priority: str
    tenant: str
    source: str
    submitted_at: float
    finished_at: float
    attempts: int
    error_code: str | None = None
    error: str | None = None
    phash: str | None = None
    outputs: tuple[OutputInfo, ...] = field(default_factory=tuple)
    name: str | None = None  # the submitted file's name
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outputs"] = [o.to_dict() for o in self.outputs]
        return data


class MetadataStore(ABC):
    """Jobs and their outputs. Upserts are idempotent: replays never add rows."""

    @abstractmethod
    def upsert_batch(self, records: list[JobRecord]) -> None:
        """Write every record (job row + exactly its output rows) in one commit."""

    def upsert_each(self, records: list[JobRecord]) -> None:
        """One commit per job: the slow baseline the metadata benchmark compares with."""
        for record in records:
            self.upsert_batch([record])

    @abstractmethod
    def get_job(self, job_id: str) -> JobRecord | None:
        """The stored record of ``job_id``, outputs included."""

    @abstractmethod
    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        """Most recently finished jobs first, optionally only one status."""

    @abstractmethod
    def count_rows(self) -> tuple[int, int]:
        """(job rows, output rows)."""

    def migrate(self) -> list[int]:
        """Create or upgrade the schema (idempotent); the versions applied now."""
        return []

    def check_schema(self) -> None:
        """Raise ConfigError if the schema is missing or older than this code needs."""

    def close(self) -> None:
        """Release connections."""
