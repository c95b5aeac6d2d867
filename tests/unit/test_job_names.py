"""Jobs keep the submitted file's name and the client's label everywhere a job is shown,
and default job ids people can read."""

from __future__ import annotations

import json
import sqlite3

import pytest

from pipeline.errors import InvalidRequest
from pipeline.lake.schema import results_row
from pipeline.metadata import JobRecord
from pipeline.metadata.sqlite import SqliteMetadataStore
from pipeline.models import (
    JOB_ID_RE,
    JobRequest,
    display_name,
    job_request_from_dict,
    readable_job_id,
)
from tables import transitions

VARIANTS = {"t": [{"op": "encode", "format": "png"}]}


@pytest.mark.parametrize(("name", "expected"), [
    ("IMG_0001.HEIC", "IMG_0001-0123456789ab"),
    ("beach photo (2).jpg", "beach-photo-2-0123456789ab"),
    (".hidden", "hidden-0123456789ab"),
    ("ünïcødé.png", "n-c-d-0123456789ab"),
    ("----.jpg", "0123456789abcdef0123456789abcdef"),
    (None, "0123456789abcdef0123456789abcdef"),
    ("x" * 300 + ".jpg", "x" * 48 + "-0123456789ab"),
])
def test_readable_job_ids_come_from_the_file_name(name, expected):
    job_id = readable_job_id(name, "0123456789abcdef0123456789abcdef")
    assert job_id == expected
    assert JOB_ID_RE.match(job_id)


def test_display_names_are_file_names_without_controls():
    assert display_name("/home/me/IMG\x1b[31m.jpg") == "IMG?[31m.jpg"
    assert display_name("C:\\photos\\cat.png") == "cat.png"
    assert display_name("..") == "unnamed" and len(display_name("y" * 999)) == 255


@pytest.mark.parametrize(("field", "value", "code"), [
    ("name", "../etc/passwd", "bad_name"),
    ("name", "a\\b.jpg", "bad_name"),
    ("name", "x" * 256, "bad_name"),
    ("name", "bell\x07.jpg", "bad_name"),
    ("name", 12, "bad_name"),
    ("label", "line\u2028break", "bad_label"),
    ("label", "y" * 201, "bad_label"),
    ("label", "   ", "bad_label"),
])
def test_hostile_names_and_labels_are_refused_with_a_code(field, value, code):
    with pytest.raises(InvalidRequest) as caught:
        job_request_from_dict({"job_id": "j", "source": "file:///x", "variants": VARIANTS,
                               field: value})
    assert caught.value.code == code


def test_the_job_state_shows_name_and_label_and_rebuilds_the_request():
    request = JobRequest("j1", "file:///s.jpg", VARIANTS, "normal", "default", 1.7e9,
                         name="IMG 1.jpg", label="card 2")
    state = transitions.queued(None, request, "imgpipe.ingest/0/5")
    view = transitions.public_view(state)
    assert (view["name"], view["label"]) == ("IMG 1.jpg", "card 2")
    assert transitions.request_of(state) == request
    record = transitions.result_record(state)
    row = results_row(json.dumps(record.to_dict()).encode())
    assert (row["name"], row["label"]) == ("IMG 1.jpg", "card 2")


def test_an_older_sqlite_database_gains_the_columns(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the schema before names existed
        conn.executescript("""
            CREATE TABLE jobs (job_id TEXT PRIMARY KEY, status TEXT NOT NULL,
              priority TEXT NOT NULL, tenant TEXT NOT NULL, source TEXT NOT NULL,
              submitted_at REAL NOT NULL, finished_at REAL NOT NULL,
              attempts INTEGER NOT NULL, error_code TEXT, error TEXT, phash TEXT);
            INSERT INTO jobs VALUES ('old', 'DONE', 'normal', 'default', 'file:///o', 1, 2,
                                     1, NULL, NULL, NULL);""")
    store = SqliteMetadataStore(path)
    try:
        assert store.get_job("old").name is None  # old rows read, without a name
        store.upsert_batch([JobRecord("new", "DONE", "normal", "default", "file:///n", 1.0,
                                      3.0, 1, name="n.jpg", label="l")])
        assert (store.get_job("new").name, store.get_job("new").label) == ("n.jpg", "l")
    finally:
        store.close()
