"""A worker's Runtime on a local folder and SQLite, for tests that need no services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.settings import Settings
from pipeline.worker.runtime import Runtime


@contextmanager
def local_runtime(root: Path | str, **settings: str) -> Iterator[Runtime]:
    """A Runtime with its objects and metadata under ``root``; each keyword sets
    IMGPIPE_<NAME> (``image_threads="2"``). Closed on exit."""
    env = {"IMGPIPE_OBJECT_STORE": f"file://{root}/objects",
           "IMGPIPE_METADATA_URL": f"sqlite:///{root}/m.db",
           **{f"IMGPIPE_{name.upper()}": value for name, value in settings.items()}}
    runtime = Runtime(Settings.from_env(env))
    try:
        yield runtime
    finally:
        runtime.close()


#: An upload folder of tenant "default" in the object store: its jobs may read what is
#: under it (pipeline/jobs/sources.py); ``f"{SOURCES}/{storage_path(job_id)}/..."`` for
#: another tenant's job.
SOURCES = "sources/dt=2026-01-01"
