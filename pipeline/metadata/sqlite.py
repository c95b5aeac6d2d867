"""``sqlite:///PATH`` metadata store: the embedded default."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from pipeline.errors import ConfigError, MetadataUnavailable
from pipeline.metadata.base import JobRecord, MetadataStore, hamming_bits, phash_bits
from pipeline.models import OutputInfo

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id       TEXT PRIMARY KEY,
    status       TEXT NOT NULL,
    priority     TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    source       TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    finished_at  REAL NOT NULL,
    attempts     INTEGER NOT NULL,
    error_code   TEXT,
    error        TEXT,
    phash        TEXT,
    name         TEXT,
    label        TEXT,
    image        TEXT,
    phash_bits   INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, finished_at);
CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, finished_at);
CREATE TABLE IF NOT EXISTS outputs (
    job_id  TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    variant TEXT NOT NULL,
    uri     TEXT NOT NULL,
    width   INTEGER NOT NULL,
    height  INTEGER NOT NULL,
    format  TEXT NOT NULL,
    bytes   INTEGER NOT NULL,
    PRIMARY KEY (job_id, variant)
);
"""

_JOB_COLUMNS = ("job_id", "status", "priority", "tenant", "source", "submitted_at",
                "finished_at", "attempts", "error_code", "error", "phash", "name", "label",
                "image")
#: Columns added after the first schema: (name, type), added to older databases
#: (version 2: name, label; version 3: image facts as JSON, the pHash as an integer).
_ADDED_COLUMNS = (("name", "TEXT"), ("label", "TEXT"), ("image", "TEXT"),
                  ("phash_bits", "INTEGER"))


def path_from_sqlite_url(url: str) -> Path:
    """``sqlite:///./var/m.db`` -> ./var/m.db; ``sqlite:////abs/m.db`` -> /abs/m.db."""
    return Path(url.removeprefix("sqlite:///"))


class SqliteMetadataStore(MetadataStore):
    """SQLite in WAL mode; one connection guarded by a lock (calls come from threads)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30,
                                         isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.create_function("hamming", 2, hamming_bits, deterministic=True)
            self._conn.create_function("phash_bits", 1, phash_bits, deterministic=True)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"IMGPIPE_METADATA_URL: cannot open the SQLite database "
                              f"{self.path} ({getattr(exc, 'strerror', None) or exc}); "
                              "point it at a writable file") from None
        self.migrate()

    @classmethod
    def from_url(cls, url: str) -> SqliteMetadataStore:
        return cls(path_from_sqlite_url(url))

    def migrate(self) -> list[int]:
        with self._lock:
            self._conn.executescript(SCHEMA)
            present = {row[1] for row in self._conn.execute("PRAGMA table_info(jobs)")}
            for column, kind in _ADDED_COLUMNS:
                if column not in present:
                    self._conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
            # rows from before version 3 become searchable (a no-op once done)
            self._conn.execute("UPDATE jobs SET phash_bits = phash_bits(phash) "
                               "WHERE phash_bits IS NULL AND length(phash) = 16")
        return []

    def _record(self, row: tuple) -> JobRecord:
        fields = dict(zip(_JOB_COLUMNS, row, strict=True))
        fields["image"] = json.loads(fields["image"]) if fields["image"] else None
        return JobRecord(**fields, outputs=self._outputs(row[0]))

    @staticmethod
    def _row(record: JobRecord) -> tuple:
        values = {c: getattr(record, c) for c in _JOB_COLUMNS}
        values["image"] = (json.dumps(record.image, separators=(",", ":"))
                           if record.image else None)
        return (*values.values(), phash_bits(record.phash))

    def upsert_batch(self, records: list[JobRecord]) -> None:
        if not records:
            return
        placeholders = ",".join("?" * (len(_JOB_COLUMNS) + 1))
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for r in records:
                        self._conn.execute(
                            f"INSERT OR REPLACE INTO jobs ({','.join(_JOB_COLUMNS)},phash_bits) "
                            f"VALUES ({placeholders})", self._row(r))
                        self._conn.execute("DELETE FROM outputs WHERE job_id = ?", (r.job_id,))
                        self._conn.executemany(
                            "INSERT INTO outputs VALUES (?,?,?,?,?,?,?)",
                            [(r.job_id, o.variant, o.uri, o.width, o.height, o.format, o.bytes)
                             for o in r.outputs])
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except sqlite3.OperationalError as exc:
            raise MetadataUnavailable(f"sqlite write failed: {exc}") from exc

    def _outputs(self, job_id: str) -> tuple[OutputInfo, ...]:
        rows = self._conn.execute(
            "SELECT variant, uri, width, height, format, bytes FROM outputs "
            "WHERE job_id = ? ORDER BY variant", (job_id,)).fetchall()
        return tuple(OutputInfo(*row) for row in rows)

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {','.join(_JOB_COLUMNS)} FROM jobs WHERE job_id = ?",
                (job_id,)).fetchone()
            if row is None:
                return None
            return self._record(row)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        query = f"SELECT {','.join(_JOB_COLUMNS)} FROM jobs"
        params: tuple = ()
        if status:
            query += " WHERE status = ?"
            params = (status,)
        query += " ORDER BY finished_at DESC LIMIT ?"
        with self._lock:
            rows = self._conn.execute(query, (*params, limit)).fetchall()
            return [self._record(row) for row in rows]

    def similar(self, tenant: str, phash: str, max_distance: int, limit: int,
                exclude: str | None = None) -> list[tuple[JobRecord, int]]:
        bits = phash_bits(phash)
        columns = ",".join(f"j.{c}" for c in _JOB_COLUMNS)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {columns}, hamming(j.phash_bits, ?) AS distance FROM jobs j "
                "WHERE j.tenant = ? AND j.job_id != ? AND j.phash_bits IS NOT NULL "
                "AND hamming(j.phash_bits, ?) <= ? "
                "ORDER BY distance, j.finished_at DESC LIMIT ?",
                (bits, tenant, exclude or "", bits, max_distance, limit)).fetchall()
            return [(self._record(row[:-1]), row[-1]) for row in rows]

    def count_rows(self) -> tuple[int, int]:
        with self._lock:
            jobs = self._conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
            outputs = self._conn.execute("SELECT COUNT(*) FROM outputs").fetchone()[0]
        return jobs, outputs

    def close(self) -> None:
        with self._lock:
            self._conn.close()
