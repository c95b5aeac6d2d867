"""A throwaway real pipeline for benchmarks: its own Kafka, topics, stores and workers."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.dev.workers import start_worker, stop_worker, wait_healthy
from pipeline.kafka import local as localkafka
from pipeline.kafka.admin import create_topics
from pipeline.objects import open_object_store
from pipeline.settings import Settings

#: Where benchmarks put their sources: an upload area of tenant "default", whose jobs
#: the benchmarks submit (pipeline/jobs/sources.py: jobs read their own tenant's area).
BENCH_SOURCES = "sources/dt=bench"


@dataclass
class BenchPipeline:
    root: Path
    env: dict[str, str]
    broker_pid: int = 0
    workers: list = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def store_sources(self, images: list[bytes], name: str) -> list[str]:
        """Put ``images`` in the pipeline's object store as sources; their URIs."""
        store = open_object_store(self.settings.object_store)
        try:
            return [store.put(f"{BENCH_SOURCES}/{name}/{i}.jpg", data, "image/jpeg")
                    for i, data in enumerate(images)]
        finally:
            store.close()

    def start_worker(self) -> int:
        port = localkafka.free_port()
        name = f"w{len(self.workers) + 1}"
        log = self.root / f"{name}.log"
        # A SIGTERM while Popen is returning would leave a started worker off the list
        # that the cleanup stops; it is held until the worker is on it.
        with _sigterm_held():
            proc = start_worker({**self.env, "IMGPIPE_DATA_DIR": str(self.root / name)},
                                log, port)
            self.workers.append(proc)  # before the wait: stopped even if it never comes up
        wait_healthy(proc, f"http://127.0.0.1:{port}", log, timeout=90)
        return port


@contextmanager
def bench_pipeline(echo=print, **overrides: str) -> Iterator[BenchPipeline]:
    """Kafka on a free port plus topics and local stores in a temp folder; cleaned up."""
    previous = _exit_on_sigterm()
    root = Path(tempfile.mkdtemp(prefix="imgpipe-bench-"))
    workers: list = []
    try:
        # Held: a broker launched but not yet in its state file could not be stopped.
        with _sigterm_held():
            state = localkafka.up(localkafka.free_port(), root / "kafka",
                                  echo=lambda m: None)
        prefix = f"b{uuid.uuid4().hex[:6]}"
        env = {"IMGPIPE_BROKER": f"kafka://{state.bootstrap}", "IMGPIPE_APP_ID": prefix,
               "IMGPIPE_TOPIC_PREFIX": prefix,
               "IMGPIPE_OBJECT_STORE": f"file://{root}/objects",
               "IMGPIPE_METADATA_URL": f"sqlite:///{root}/metadata.db", **overrides}
        pipeline = BenchPipeline(root, env, state.pid, workers)
        create_topics(pipeline.settings)
        echo(f"kafka {state.bootstrap}, topics {prefix}.*, data in {root}")
        yield pipeline
    except BaseException:
        for log in sorted(root.glob("w*.log")):
            echo(f"--- tail of {log.name} ---\n{log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        with _sigterm_held():  # a second SIGTERM does not cut the cleanup short
            for proc in workers:
                stop_worker(proc)
            localkafka.down(root / "kafka", echo=lambda m: None)
            shutil.rmtree(root, ignore_errors=True)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


_held = {"depth": 0, "pending": False}


def _exit_on_sigterm() -> object:
    """SIGTERM (a CI timeout, `kill`) exits through the cleanup like Ctrl-C does, instead
    of leaving the broker and workers running; returns the handler it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigterm(signum: int, _frame: object) -> None:
        if _held["depth"]:
            _held["pending"] = True
        else:
            sys.exit(128 + signum)

    return signal.signal(signal.SIGTERM, on_sigterm)


@contextmanager
def _sigterm_held() -> Iterator[None]:
    """Run the block whole: a SIGTERM arriving inside exits right after it."""
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
    if _held["pending"] and not _held["depth"]:
        _held["pending"] = False
        sys.exit(128 + signal.SIGTERM)
