"""``spanner://projects/P/instances/I/databases/D`` metadata store on Cloud Spanner.

Schema: versioned DDL files in ``spanner_ddl/`` applied in order by ``migrate()``
(``imgpipe db migrate``), recorded in SchemaMigrations. Writes: one commit of mutations
per batch (``database.batch()``): insert_or_update of each job row, a delete of its output
range, and insert_or_update of exactly its current outputs, so replays add no rows.
With SPANNER_EMULATOR_HOST set, migrate() also creates the instance and database.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from importlib import resources

from google.api_core import exceptions as gexc
from google.cloud import spanner
from google.cloud.spanner_v1 import KeyRange, KeySet
from google.cloud.spanner_v1.data_types import JsonObject

from pipeline.errors import ConfigError, MetadataUnavailable
from pipeline.metadata.base import PHASH_RE, JobRecord, MetadataStore, phash_bits
from pipeline.models import OutputInfo

URL_RE = re.compile(r"^spanner://projects/([^/]+)/instances/([^/]+)/databases/([^/]+)$")
JOB_COLUMNS = ("JobId", "Status", "Priority", "Tenant", "Source", "SubmittedAt", "FinishedAt",
               "Attempts", "ErrorCode", "Error", "Phash", "SourceName", "Label", "Image",
               "PhashBits", "UpdatedAt")
#: What a read selects: the job columns but the search key and the commit timestamp.
READ_COLUMNS = tuple(c for c in JOB_COLUMNS if c not in ("PhashBits", "UpdatedAt"))
OUTPUT_COLUMNS = ("JobId", "Variant", "Uri", "Width", "Height", "Format", "Bytes", "UpdatedAt")
MIGRATIONS_TABLE = ("CREATE TABLE SchemaMigrations (Version INT64 NOT NULL, AppliedAt TIMESTAMP "
                    "NOT NULL OPTIONS (allow_commit_timestamp = true)) PRIMARY KEY (Version)")
TRANSIENT = (gexc.Aborted, gexc.ServiceUnavailable, gexc.DeadlineExceeded,
             gexc.InternalServerError, gexc.ResourceExhausted)


def ddl_versions() -> list[tuple[int, list[str]]]:
    """(version, statements) of every schema file, in order."""
    folder = resources.files("pipeline.metadata") / "spanner_ddl"
    versions = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        text = "\n".join(line for line in entry.read_text().splitlines()
                         if not line.strip().startswith("--"))
        statements = [s.strip() for s in text.split(";") if s.strip()]
        versions.append((int(entry.name.split("_", 1)[0]), statements))
    return versions


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _epoch(value: datetime) -> float:
    return value.timestamp()


class SpannerMetadataStore(MetadataStore):
    def __init__(self, project: str, instance: str, database: str) -> None:
        self.project, self.instance_id, self.database_id = project, instance, database
        self.client = spanner.Client(project=project)
        self.instance = self.client.instance(instance)
        self.database = self.instance.database(database)

    @classmethod
    def from_url(cls, url: str) -> SpannerMetadataStore:
        match = URL_RE.match(url)
        if not match:
            raise ConfigError(f"bad Spanner URL {url!r}: expected "
                              "spanner://projects/P/instances/I/databases/D")
        return cls(*match.groups())

    # --- schema ----------------------------------------------------------------------

    def _ensure_emulator_database(self) -> None:
        if not os.environ.get("SPANNER_EMULATOR_HOST"):
            return
        if not self.instance.exists():
            config = f"projects/{self.project}/instanceConfigs/emulator-config"
            self.client.instance(self.instance_id, configuration_name=config,
                                 display_name="imgpipe", node_count=1).create().result(60)
        if not self.database.exists():
            self.database.create().result(60)

    def applied_versions(self) -> set[int]:
        with self.database.snapshot() as snapshot:
            return {row[0] for row in snapshot.execute_sql(
                "SELECT Version FROM SchemaMigrations")}

    def migrate(self) -> list[int]:
        """Apply every schema version not yet applied; returns the versions applied."""
        try:
            self._ensure_emulator_database()
            if not self.database.exists():
                raise ConfigError(f"Spanner database {self.database_id} does not exist in "
                                  f"instance {self.instance_id}: create it (gcloud spanner "
                                  "databases create) and run `imgpipe db migrate` again")
            if not self._has_migrations_table():
                self.database.update_ddl([MIGRATIONS_TABLE]).result(300)
            done = self.applied_versions()
            applied = []
            for version, statements in ddl_versions():
                if version in done:
                    continue
                self.database.update_ddl(statements).result(300)
                with self.database.batch() as batch:
                    batch.insert("SchemaMigrations", ("Version", "AppliedAt"),
                                 [(version, spanner.COMMIT_TIMESTAMP)])
                applied.append(version)
            self._backfill_phash_bits()
            return applied
        except gexc.GoogleAPICallError as exc:
            raise MetadataUnavailable(f"Spanner migration failed: {exc}") from exc

    def _backfill_phash_bits(self, batch_size: int = 1000) -> None:
        """Give rows written before schema version 3 their PhashBits, so they are found
        by similar() too (a no-op once done)."""
        while True:
            with self.database.snapshot() as snapshot:
                rows = list(snapshot.execute_sql(
                    "SELECT JobId, Phash FROM Jobs WHERE PhashBits IS NULL AND "
                    f"REGEXP_CONTAINS(Phash, r'{PHASH_RE.pattern}') LIMIT {int(batch_size)}"))
            if not rows:
                return
            with self.database.batch() as batch:
                batch.update("Jobs", ("JobId", "PhashBits", "UpdatedAt"),
                             [(job_id, phash_bits(phash), spanner.COMMIT_TIMESTAMP)
                              for job_id, phash in rows])

    def check_schema(self) -> None:
        try:
            missing = ({v for v, _ in ddl_versions()} - self.applied_versions()
                       if self.database.exists() and self._has_migrations_table() else {0})
        except gexc.GoogleAPICallError as exc:
            raise ConfigError(f"cannot read the Spanner schema of {self.database_id}: {exc}"
                              ) from exc
        if missing:
            raise ConfigError(f"Spanner database {self.database_id} lacks schema version(s) "
                              f"{sorted(missing)}: run `imgpipe db migrate` first")

    def _has_migrations_table(self) -> bool:
        with self.database.snapshot() as snapshot:
            rows = list(snapshot.execute_sql(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_name = 'SchemaMigrations'"))
        return rows[0][0] > 0

    # --- writes ----------------------------------------------------------------------

    def upsert_batch(self, records: list[JobRecord]) -> None:
        if not records:
            return
        try:
            with self.database.batch() as batch:
                self._mutate(batch, records)
        except TRANSIENT as exc:
            raise MetadataUnavailable(f"Spanner commit failed: {exc}") from exc
        except gexc.GoogleAPICallError as exc:
            raise MetadataUnavailable(f"Spanner commit rejected: {exc}") from exc

    @staticmethod
    def _mutate(batch, records: list[JobRecord]) -> None:
        jobs = [(r.job_id, r.status, r.priority, r.tenant, r.source, _ts(r.submitted_at),
                 _ts(r.finished_at), r.attempts, r.error_code, r.error, r.phash, r.name,
                 r.label, JsonObject(r.image) if r.image else None, phash_bits(r.phash),
                 spanner.COMMIT_TIMESTAMP) for r in records]
        batch.insert_or_update("Jobs", JOB_COLUMNS, jobs)
        batch.delete("Outputs", KeySet(ranges=[
            KeyRange(start_closed=[r.job_id], end_closed=[r.job_id]) for r in records]))
        outputs = [(r.job_id, o.variant, o.uri, o.width, o.height, o.format, o.bytes,
                    spanner.COMMIT_TIMESTAMP) for r in records for o in r.outputs]
        if outputs:
            batch.insert_or_update("Outputs", OUTPUT_COLUMNS, outputs)

    # --- reads -----------------------------------------------------------------------

    def _records(self, where: str, params: dict, types: dict, limit: int) -> list[JobRecord]:
        return [record for record, _ in self._rows(where, params, types, limit)]

    def _rows(self, where: str, params: dict, types: dict, limit: int, extra: str = "",
              order: str = "FinishedAt DESC") -> list[tuple[JobRecord, tuple]]:
        """Records matching ``where`` with their outputs, each with the values of the
        ``extra`` select expressions."""
        query = (f"SELECT {', '.join(READ_COLUMNS)}{extra} FROM Jobs {where} "
                 f"ORDER BY {order} LIMIT {int(limit)}")
        try:
            with self.database.snapshot(multi_use=True) as snapshot:
                rows = list(snapshot.execute_sql(query, params=params, param_types=types))
                outputs: dict[str, list[OutputInfo]] = {r[0]: [] for r in rows}
                if rows:
                    for o in snapshot.execute_sql(
                            "SELECT JobId, Variant, Uri, Width, Height, Format, Bytes "
                            "FROM Outputs WHERE JobId IN UNNEST(@ids) ORDER BY JobId, Variant",
                            params={"ids": list(outputs)},
                            param_types={"ids": spanner.param_types.Array(
                                spanner.param_types.STRING)}):
                        outputs[o[0]].append(OutputInfo(*o[1:]))
        except gexc.GoogleAPICallError as exc:
            raise MetadataUnavailable(f"Spanner read failed: {exc}") from exc
        return [(JobRecord(r[0], r[1], r[2], r[3], r[4], _epoch(r[5]), _epoch(r[6]), r[7],
                           r[8], r[9], r[10], tuple(outputs[r[0]]), name=r[11], label=r[12],
                           image=dict(r[13]) if r[13] else None), tuple(r[len(READ_COLUMNS):]))
                for r in rows]

    def get_job(self, job_id: str) -> JobRecord | None:
        found = self._records("WHERE JobId = @id", {"id": job_id},
                              {"id": spanner.param_types.STRING}, 1)
        return found[0] if found else None

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        if status:
            return self._records("WHERE Status = @status", {"status": status},
                                 {"status": spanner.param_types.STRING}, limit)
        return self._records("", {}, {}, limit)

    def similar(self, tenant: str, phash: str, max_distance: int, limit: int,
                exclude: str | None = None) -> list[tuple[JobRecord, int]]:
        kinds = spanner.param_types
        found = self._rows(
            "WHERE Tenant = @tenant AND JobId != @id AND PhashBits IS NOT NULL "
            "AND BIT_COUNT(PhashBits ^ @bits) <= @distance",
            {"tenant": tenant, "id": exclude or "", "bits": phash_bits(phash),
             "distance": max_distance},
            {"tenant": kinds.STRING, "id": kinds.STRING, "bits": kinds.INT64,
             "distance": kinds.INT64},
            limit, extra=", BIT_COUNT(PhashBits ^ @bits) AS Distance",
            order="Distance, FinishedAt DESC")
        return [(found_record, int(extra[0])) for found_record, extra in found]

    def count_rows(self) -> tuple[int, int]:
        with self.database.snapshot(multi_use=True) as snapshot:
            jobs = next(iter(snapshot.execute_sql("SELECT COUNT(*) FROM Jobs")))[0]
            outputs = next(iter(snapshot.execute_sql("SELECT COUNT(*) FROM Outputs")))[0]
        return jobs, outputs

    def close(self) -> None:
        self.database = None
