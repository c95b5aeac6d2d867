"""The whole pipeline on a real broker: CLI submit -> ingest -> process -> outputs."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from pipeline.dev.samples import write_samples
from pipeline.objects.local import path_from_file_uri
from tests.kafkautil import produce_raw, read_topic

pytestmark = pytest.mark.kafka


def _metadata_counts(db: Path) -> tuple[dict[str, str], list[tuple]]:
    with sqlite3.connect(db) as conn:
        jobs = dict(conn.execute("SELECT job_id, status FROM jobs").fetchall())
        outputs = conn.execute("SELECT job_id, variant, width, height, format FROM outputs"
                               ).fetchall()
    return jobs, outputs


def test_fifty_images_through_the_cli(pipeline, tmp_path):
    images = write_samples(tmp_path / "in", 50, width=800, height=600)
    code, jobs = pipeline.cli_json(
        "submit", *map(str, images), "--variant", "thumb=fit:128x128,webp:q70",
        "--variant", "small=w:400,jpeg:q80", "--variant", "square=fill:100x100,png",
        "--label", "batch one", "--wait", "--json", "--timeout", "240")
    assert code == 0, jobs
    assert len(jobs) == 50
    assert {j["status"] for j in jobs} == {"DONE"}
    # Each job says which file it came from, and its outputs' folder is readable.
    for job, image in zip(jobs, images, strict=True):
        assert job["name"] == image.name and job["path"] == str(image)
        assert job["label"] == "batch one" and job["job_id"].startswith(f"{image.stem}-")
    expected = {"thumb": (128, 96, "WEBP"), "small": (400, 300, "JPEG"),
                "square": (100, 100, "PNG")}
    for job in jobs:
        assert {o["variant"] for o in job["outputs"]} == set(expected)
        for out in job["outputs"]:
            data = path_from_file_uri(out["uri"]).read_bytes()
            assert len(data) == out["bytes"]
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                w, h, fmt = expected[out["variant"]]
                assert (img.width, img.height, img.format) == (w, h, fmt)
                assert (out["width"], out["height"]) == (w, h)
            assert "/outputs/dt=" in out["uri"] and f"/{job['job_id']}/" in out["uri"]
    rows, outputs = _metadata_counts(pipeline.root / "metadata.db")
    with sqlite3.connect(pipeline.root / "metadata.db") as conn:
        named = dict(conn.execute("SELECT job_id, name FROM jobs").fetchall())
    assert all(named[j["job_id"]] == j["name"] for j in jobs)
    ids = {j["job_id"] for j in jobs}
    assert ids <= set(rows) and all(rows[i] == "DONE" for i in ids)
    ours = [o for o in outputs if o[0] in ids]
    assert len(ours) == 150 and len({(o[0], o[1]) for o in ours}) == 150


def test_malformed_events_are_dead_lettered_and_the_worker_keeps_going(pipeline, tmp_path):
    settings = pipeline.settings
    [image] = write_samples(tmp_path / "in", 1, width=320, height=240)
    code, [stored] = pipeline.cli_json("submit", str(image), "--json")
    assert code == 0
    bad_op = {"job_id": "bad-op-1", "source": "file:///etc/passwd",
              "variants": {"x": [{"op": "explode"}]}}
    traversal = {"job_id": "escape-1", "source": f"{settings.object_store}/../../etc/passwd",
                 "variants": {"x": [{"op": "resize", "width": 10}]}}
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"), [
        (b"garbage-1", b"\x00\xffnot json at all"),
        (None, b'{"job_id": "no-source"}'),
        (b"bad-op-1", json.dumps(bad_op).encode()),
        (b"escape-1", json.dumps(traversal).encode()),
        (b"empty-1", b""),
    ])
    # a valid job submitted after the bad ones still completes
    code, [job] = pipeline.cli_json("submit", str(image), "--variant", "t=fit:64x64,png",
                                    "--wait", "--json", "--timeout", "120")
    assert code == 0 and job["status"] == "DONE", job
    assert pipeline.cli_json("status", stored["job_id"], "--json")[1]["status"] == "DONE"

    code, bad = pipeline.cli_json("status", "bad-op-1", "--json")
    assert code != 0 and bad["status"] == "REJECTED"
    assert "unknown op 'explode'" in bad["error"]

    dlq = read_topic(settings.bootstrap_servers, settings.topic("dlq"))
    reasons = {(r["job_id"], r["reason"]) for r in dlq}
    # unparseable events are named by their key when it is a valid job id
    assert reasons == {("garbage-1", "malformed_json"), ("no-source", "missing_field"),
                       ("bad-op-1", "unknown_op"), ("escape-1", "source_not_allowed"),
                       ("empty-1", "empty_event")}
    assert len(dlq) == 5
    assert all(r["stage"] == "ingest" and r["error"] for r in dlq)
