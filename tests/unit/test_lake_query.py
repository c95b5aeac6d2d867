"""Queries over the archive before and after anything is archived."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.lake.query import run_query
from pipeline.lake.schema import TABLES
from pipeline.objects import LocalObjectStore


def test_every_table_exists_before_anything_is_archived(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    for table, (schema, _row) in TABLES.items():
        columns, rows = run_query(store, "lake", f"SELECT * FROM {table}")
        assert rows == [] and columns == schema.names
    columns, rows = run_query(store, "lake", "SELECT reason, count(*) FROM dlq GROUP BY 1")
    assert columns[0] == "reason" and rows == []


def test_a_bad_query_on_an_empty_archive_says_how_to_fill_it(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    with pytest.raises(ConfigError) as failed:
        run_query(store, "lake", "SELECT * FROM nope")
    message = failed.value.message
    assert "nothing is archived yet" in message and "imgpipe archive" in message
    assert f"tables: {', '.join(TABLES)}" in message
