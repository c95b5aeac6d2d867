"""Local stand-ins for the cloud services, for development and tests.

- fake-gcs-server (github.com/fsouza/fake-gcs-server), built once with ``go install``
  at a pinned version into ``~/.cache/imgpipe/bin``.
- The official Cloud Spanner emulator (``emulator_main`` from the Google Cloud SDK's
  ``cloud-spanner-emulator`` component, or IMGPIPE_SPANNER_EMULATOR).

Both bind 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.kafka.local import free_port

FAKE_GCS_MODULE = "github.com/fsouza/fake-gcs-server"
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.7.1"
FAKE_GCS_VERSION = "v1.56.1"
SPANNER_EMULATOR_PATHS = (
    "/usr/lib/google-cloud-sdk/bin/cloud_spanner_emulator/emulator_main",
    "/usr/share/google-cloud-sdk/bin/cloud_spanner_emulator/emulator_main",
    "/opt/google-cloud-sdk/bin/cloud_spanner_emulator/emulator_main",
)
#: What google-cloud-spanner 3.7x needs against this emulator (see docs/storage.md).
SPANNER_CLIENT_ENV = {
    "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS": "false",
    "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW": "false",
    "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_PARTITIONED_OPS": "false",
    "SPANNER_DISABLE_BUILTIN_METRICS": "true",
}


def _bin_dir() -> Path:
    base = os.environ.get("IMGPIPE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "imgpipe")
    return Path(base) / "bin"


def _go_tool(module: str, version: str, name: str, purpose: str, echo=print) -> Path:
    """A Go program built with ``go install module@version`` on first use, cached."""
    target = _bin_dir() / f"{name}-{version}"
    if target.exists():
        return target
    if not shutil.which("go"):
        raise ConfigError(f"Go is needed once to build {name} ({purpose}): install Go 1.22+ "
                          "(https://go.dev/dl or apt-get install golang) and retry")
    echo(f"Building {name} {version} with go install (first run only)...")
    build_dir = _bin_dir() / "go-build"
    result = subprocess.run(["go", "install", f"{module}@{version}"],
                            env={**os.environ, "GOBIN": str(build_dir)}, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise ConfigError(f"go install {module} failed:\n{result.stderr[-2000:]}")
    (build_dir / name).rename(target)
    return target


def fake_gcs_binary(echo=print) -> Path:
    """The fake-gcs-server binary, built with ``go install`` on first use."""
    return _go_tool(FAKE_GCS_MODULE, FAKE_GCS_VERSION, "fake-gcs-server", "GCS emulator",
                    echo)


def kustomize_binary(echo=print) -> Path:
    """kustomize (renders deploy/k8s in the tests), built with ``go install``."""
    return _go_tool(KUSTOMIZE_MODULE, KUSTOMIZE_VERSION, "kustomize",
                    "renders the Kubernetes manifests", echo)


def _sdk_program(variable: str, in_sdk: str, known: tuple[str, ...], missing: str) -> Path:
    """A program of the Google Cloud SDK: ``$variable`` if set, one of the ``known``
    paths, or ``in_sdk`` under the SDK that holds ``gcloud``; ConfigError ``missing``."""
    candidates = [os.environ.get(variable, ""), *known]
    gcloud = shutil.which("gcloud")
    if gcloud:
        candidates.append(str(Path(os.path.realpath(gcloud)).parents[1] / in_sdk))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ConfigError(missing)


def pubsub_emulator_binary() -> Path:
    """The Cloud Pub/Sub emulator's launcher (a Java program in the Cloud SDK)."""
    return _sdk_program(
        "IMGPIPE_PUBSUB_EMULATOR", "platform/pubsub-emulator/bin/cloud-pubsub-emulator", (),
        "Cloud Pub/Sub emulator not found: install it with `gcloud components install "
        "pubsub-emulator` (or the google-cloud-cli-pubsub-emulator Debian package), or set "
        "IMGPIPE_PUBSUB_EMULATOR to its launcher")


def spanner_emulator_binary() -> Path:
    """The Cloud Spanner emulator's ``emulator_main``."""
    return _sdk_program(
        "IMGPIPE_SPANNER_EMULATOR", "bin/cloud_spanner_emulator/emulator_main",
        SPANNER_EMULATOR_PATHS,
        "Cloud Spanner emulator not found: install it with `gcloud components install "
        "cloud-spanner-emulator` (or the google-cloud-cli-spanner-emulator Debian package), "
        "or set IMGPIPE_SPANNER_EMULATOR to emulator_main")


@dataclass
class Service:
    """A started local service process."""

    name: str
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def _start(name: str, argv: list[str], port: int, log: Path, ready, timeout: float,
           env: dict[str, str] | None = None) -> Service:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    service = Service(name, process, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"{name} exited with code {process.returncode}; log:\n"
                              f"{log.read_text(errors='replace')[-2000:]}")
        if ready(port):
            return service
        time.sleep(0.2)
    service.stop()
    raise ConfigError(f"{name} did not become ready within {timeout:.0f}s; see {log}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status < 500
    except OSError:
        return False


def _tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class ObjectEvents:
    """Where fake-gcs-server publishes object notifications: a Pub/Sub topic on the
    emulator at ``pubsub_host``, for objects of ``bucket`` under ``prefix``."""

    pubsub_host: str
    project: str
    topic: str
    bucket: str = ""
    prefix: str = ""
    kinds: str = "finalize,delete,metadataUpdate"

    def flags(self) -> list[str]:
        return ["-event.pubsub-project-id", self.project, "-event.pubsub-topic", self.topic,
                "-event.bucket", self.bucket, "-event.object-prefix", self.prefix,
                "-event.list", self.kinds]


def start_fake_gcs(log: Path, port: int | None = None, timeout: float = 30.0,
                   data_dir: Path | None = None, events: ObjectEvents | None = None
                   ) -> Service:
    """fake-gcs-server on 127.0.0.1, in memory or (``data_dir``) on disk so it can be
    restarted without losing objects; set STORAGE_EMULATOR_HOST to its URL. With
    ``events`` it publishes object notifications as Cloud Storage does (the topic must
    exist)."""
    port = port or free_port()
    backend = ["-backend", "filesystem", "-filesystem-root", str(data_dir)] if data_dir else [
        "-backend", "memory"]
    argv = [str(fake_gcs_binary()), "-scheme", "http", *backend,
            "-host", "127.0.0.1", "-port", str(port),
            "-external-url", f"http://127.0.0.1:{port}", "-public-host", f"127.0.0.1:{port}",
            "-log-level", "warn", *(events.flags() if events else [])]
    env = {**os.environ, "PUBSUB_EMULATOR_HOST": events.pubsub_host} if events else None
    return _start("fake-gcs-server", argv, port, log,
                  lambda p: _http_ok(f"http://127.0.0.1:{p}/storage/v1/b"), timeout, env)


def start_spanner_emulator(log: Path, port: int | None = None, timeout: float = 30.0
                           ) -> Service:
    """The Spanner emulator's gRPC endpoint on 127.0.0.1; set SPANNER_EMULATOR_HOST."""
    port = port or free_port()
    argv = [str(spanner_emulator_binary()), f"--host_port=127.0.0.1:{port}"]
    return _start("spanner-emulator", argv, port, log, _tcp_open, timeout)


def start_pubsub_emulator(log: Path, port: int | None = None, timeout: float = 60.0
                          ) -> Service:
    """The Pub/Sub emulator on 127.0.0.1 (a JVM: slower to start than the others); set
    PUBSUB_EMULATOR_HOST to its address."""
    port = port or free_port()
    argv = [str(pubsub_emulator_binary()), "--host=127.0.0.1", f"--port={port}"]
    return _start("pubsub-emulator", argv, port, log, _tcp_open, timeout)
