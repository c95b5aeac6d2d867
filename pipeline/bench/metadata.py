"""``imgpipe bench metadata``: jobs/s written per-row vs one commit per batch."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.dev import services as devservices
from pipeline.metadata import JobRecord, MetadataStore, open_metadata_store
from pipeline.models import OutputInfo


def records(count: int, tag: str) -> list[JobRecord]:
    return [JobRecord(f"{tag}-{i}", "DONE", "normal", "bench", f"gs://b/sources/{i}", 1.0, 2.0,
                      1, outputs=tuple(OutputInfo(v, f"gs://b/o/{i}/{v}", 256, 192, "webp", 999)
                                       for v in ("thumb", "large")))
            for i in range(count)]


def rate(store: MetadataStore, jobs: list[JobRecord], batch: int, per_row: bool) -> float:
    started = time.perf_counter()
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        (store.upsert_each if per_row else store.upsert_batch)(chunk)
    return len(jobs) / (time.perf_counter() - started)


@contextmanager
def spanner_store(log_dir: Path) -> Iterator[MetadataStore]:
    """A migrated database on the emulator (started here unless SPANNER_EMULATOR_HOST)."""
    service = None
    saved = dict(os.environ)
    os.environ.update(devservices.SPANNER_CLIENT_ENV)
    if not os.environ.get("SPANNER_EMULATOR_HOST"):
        service = devservices.start_spanner_emulator(log_dir / "spanner.log")
        os.environ["SPANNER_EMULATOR_HOST"] = service.address
    store = open_metadata_store(
        f"spanner://projects/bench/instances/bench/databases/b{uuid.uuid4().hex[:12]}")
    try:
        store.migrate()
        yield store
    finally:
        store.close()
        if service:
            service.stop()
        os.environ.clear()
        os.environ.update(saved)


def measure(jobs: int, batch: int) -> dict[str, dict[str, float]]:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = open_metadata_store(f"sqlite:///{tmp}/bench.db")
        results["sqlite"] = {"per_row": rate(sqlite, records(jobs, "a"), batch, True),
                             "batched": rate(sqlite, records(jobs, "b"), batch, False)}
        sqlite.close()
        with spanner_store(Path(tmp)) as spanner:
            results["spanner"] = {"per_row": rate(spanner, records(jobs, "a"), batch, True),
                                  "batched": rate(spanner, records(jobs, "b"), batch, False)}
    return results
