"""Analytics over the archive with DuckDB: one view per archived table.

Local archives are read in place; archives in a remote store (gs://) are copied to a
temporary folder first (DuckDB's own cloud readers would fetch an extension at run
time, which this project never does).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.errors import ConfigError
from pipeline.lake.schema import TABLES
from pipeline.objects import ObjectStore
from pipeline.objects.local import LocalObjectStore


@contextmanager
def local_archive(store: ObjectStore, prefix: str) -> Iterator[Path]:
    """A local folder holding the archive under ``prefix`` (the store's own, if local)."""
    if isinstance(store, LocalObjectStore):
        yield store.root / prefix.strip("/")
        return
    with tempfile.TemporaryDirectory(prefix="imgpipe-lake-") as folder:
        root = Path(folder)
        for key in store.list_keys(prefix):
            target = root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(store.get(store.uri_for(key), 1 << 34))
        yield root / prefix.strip("/")


def connect(archive: Path) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    """An in-memory DuckDB with a view per archived table, and the tables that have no
    files yet (they exist, empty, with their schema: a query over them returns no rows)."""
    db = duckdb.connect()
    empty = []
    for table, (schema, _row) in TABLES.items():
        if any((archive / table).rglob("*.parquet")):
            pattern = str(archive / table / "**" / "*.parquet").replace("'", "''")
            db.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', "
                       "hive_partitioning = true, union_by_name = true)")
        else:
            db.register(table, pa.Table.from_pylist([], schema=schema))
            empty.append(table)
    return db, empty


def run_query(store: ObjectStore, prefix: str, sql: str) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of ``sql`` over the archive."""
    with local_archive(store, prefix) as archive:
        db, empty = connect(archive)
        try:
            cursor = db.execute(sql)
        except duckdb.Error as exc:
            hint = ""
            if len(empty) == len(TABLES):
                hint = ("; nothing is archived yet: run `imgpipe archive` (it writes files "
                        "every IMGPIPE_LAKE_ROLL_SECONDS and when stopped)")
            raise ConfigError(f"query failed: {exc} (tables: {', '.join(TABLES)}; "
                              f"empty so far: {', '.join(empty) or 'none'}{hint})") from None
        columns = [d[0] for d in cursor.description or []]
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        db.close()
    return columns, rows
