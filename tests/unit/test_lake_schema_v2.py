"""Lake schema version 2: the source's facts in the results table; version 1 files still
query beside version 2 ones, and hostile values become nulls."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.lake.files import FileSpan, encode, file_key
from pipeline.lake.query import run_query
from pipeline.lake.schema import RESULTS, SCHEMA_VERSION, clean, results_row
from pipeline.metadata.base import phash_bits
from pipeline.objects import LocalObjectStore
from pipeline.records import ResultRecord

IMAGE = {"width": 4032, "height": 3024, "format": "jpeg", "camera_make": "Apple",
         "camera_model": "iPhone 15", "taken_at": "2024-05-01T12:34:56", "gps": True,
         "placeholder": "LQIzbn[VM|xv.m9[NHxaOrXSRjIo", "colour": "#0f0b0b"}
#: The columns version 1 had: everything before the source facts.
V1_NAMES = [f.name for f in RESULTS if f.name not in (
    "phash", "phash_bits", "source_width", "source_height", "source_format", "camera_make",
    "camera_model", "taken_at", "placeholder", "colour", "image_json")]


def result(job_id: str, **extra) -> bytes:
    record = ResultRecord(job_id, "DONE", tenant="acme", submitted_at=1.7e9,
                          updated_at=1.7e9 + 2, **extra)
    return json.dumps(record.to_dict()).encode()


def kafka_columns(offset: int, version: int) -> dict:
    return {"kafka_topic": "results", "kafka_partition": 0, "kafka_offset": offset,
            "kafka_timestamp": 1_700_000_000_000, "schema_version": version}


def test_a_results_row_carries_the_facts():
    row = results_row(result("j1", phash="f00000000000000f", image=IMAGE))
    assert (row["source_width"], row["camera_model"], row["colour"]) == (4032, "iPhone 15",
                                                                         "#0f0b0b")
    assert row["phash_bits"] == phash_bits("f00000000000000f") < 0  # signed 64-bit
    assert json.loads(row["image_json"]) == IMAGE


def test_hostile_facts_become_nulls():
    hostile = {"width": "4032", "height": 1 << 40, "colour": ["#fff"], "camera_model": 7}
    row = clean(results_row(result("j1", phash="zzzzzzzzzzzzzzzz", image=hostile)), RESULTS)
    assert row["phash"] == "zzzzzzzzzzzzzzzz" and row["phash_bits"] is None
    assert row["source_width"] is None and row["source_height"] is None
    assert row["colour"] is None and row["camera_model"] is None
    full_range = clean({"phash_bits": -(1 << 63)}, RESULTS)
    assert full_range["phash_bits"] == -(1 << 63)  # every pHash fits its column


def test_version_1_files_query_beside_version_2(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    old_row = {**{k: v for k, v in clean(results_row(result("old")), RESULTS).items()
                  if k in V1_NAMES}, **kafka_columns(0, 1)}
    v1_schema = pa.schema([RESULTS.field(n) for n in V1_NAMES])
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([old_row], schema=v1_schema), sink)
    new_row = {**clean(results_row(result("new", phash="f00000000000000f", image=IMAGE)),
                       RESULTS), **kafka_columns(1, SCHEMA_VERSION)}
    for span, data in ((FileSpan("results", 0, 0, 0), sink.getvalue()),
                       (FileSpan("results", 0, 1, 1),
                        encode([new_row], RESULTS, FileSpan("results", 0, 1, 1), "results"))):
        store.put(file_key("lake", span, "2023-11-14", "22"), data, "application/parquet")
    near = phash_bits("f00000000000000e")
    columns, rows = run_query(store, "lake",
                              "SELECT job_id, schema_version, colour, camera_model, "
                              f"bit_count(xor(phash_bits, {near})) AS distance "
                              "FROM results ORDER BY job_id")
    assert columns == ["job_id", "schema_version", "colour", "camera_model", "distance"]
    assert rows == [("new", 2, "#0f0b0b", "iPhone 15", 1), ("old", 1, None, None, None)]
