"""The metadata store contract: one batched upsert per processed batch."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.models import OutputInfo

#: What phash_bits converts (pipeline/imaging/phash.py writes 16 lower-case hex digits).
PHASH_RE = re.compile(r"^[0-9a-fA-F]{16}$")


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
    image: dict[str, Any] | None = None  # facts about the source (schema v3)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outputs"] = [o.to_dict() for o in self.outputs]
        return data


def phash_bits(phash: str | None) -> int | None:
    """A 16-hex-digit pHash as the signed 64-bit integer both stores keep (so the
    database compares them: Spanner BIT_COUNT, SQLite a registered function); None for
    anything else (no pHash, or a hostile record's text)."""
    if not isinstance(phash, str) or not PHASH_RE.match(phash):
        return None
    value = int(phash, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming_bits(a: int, b: int) -> int:
    """Differing bits of two signed 64-bit pHashes."""
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()


#: The most similar jobs one query returns, and the largest distance it may ask for.
MAX_SIMILAR, MAX_DISTANCE = 100, 32
#: The distance a similar query uses unless told: resized, recompressed and slightly
#: cropped copies measured 0-10 bits from their original, different photos 20 and more
#: (tests/contract/test_metadata_store_contract.py, docs/api.md).
DEFAULT_DISTANCE = 10


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

    @abstractmethod
    def similar(self, tenant: str, phash: str, max_distance: int, limit: int,
                exclude: str | None = None) -> list[tuple[JobRecord, int]]:
        """Jobs of ``tenant`` (but ``exclude``) whose source pHash is within
        ``max_distance`` bits of ``phash``, nearest first, then most recent:
        (record, distance)."""

    def close(self) -> None:
        """Release connections."""
