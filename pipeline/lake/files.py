"""Archive file names and contents.

One file holds a contiguous offset range of ONE Kafka partition within one UTC hour::

    <prefix>/<table>/dt=YYYY-MM-DD/hour=HH/<table>-p<partition>-<first>-<last>.parquet

so the name alone says which records it holds: after a restart the archiver resumes
each partition after the highest ``last`` found, and never writes a record twice.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.lake.schema import SCHEMA_VERSION

_NAME = re.compile(r"(?P<table>[a-z]+)-p(?P<partition>\d+)-(?P<first>\d+)-(?P<last>\d+)"
                   r"\.parquet$")


@dataclass(frozen=True)
class FileSpan:
    """Which records one archive file holds."""

    table: str
    partition: int
    first: int
    last: int


def hour_of(timestamp_ms: int) -> tuple[str, str]:
    """(dt, hour) partition values of a record timestamp (UTC)."""
    moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d"), moment.strftime("%H")


def file_key(prefix: str, span: FileSpan, dt: str, hour: str) -> str:
    name = f"{span.table}-p{span.partition:04d}-{span.first:012d}-{span.last:012d}.parquet"
    return f"{prefix}/{span.table}/dt={dt}/hour={hour}/{name}"


def parse_key(key: str) -> FileSpan | None:
    """The span encoded in an archive file's key (None for any other key)."""
    match = _NAME.search(key)
    if not match:
        return None
    return FileSpan(match["table"], int(match["partition"]), int(match["first"]),
                    int(match["last"]))


def encode(rows: list[dict], schema: pa.Schema, span: FileSpan, topic: str) -> bytes:
    """A Parquet file (zstd) with the source topic, partition and offsets in its metadata."""
    table = pa.Table.from_pylist(rows, schema=schema).replace_schema_metadata({
        "imgpipe.schema_version": str(SCHEMA_VERSION), "imgpipe.topic": topic,
        "imgpipe.partition": str(span.partition), "imgpipe.first_offset": str(span.first),
        "imgpipe.last_offset": str(span.last)})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
