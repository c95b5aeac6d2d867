"""Starting and stopping ``imgpipe worker`` processes (used by the demo and the tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipeline.errors import ConfigError


def start_worker(env: dict[str, str], log_path: Path, web_port: int) -> subprocess.Popen:
    """Launch a worker with ``env`` (IMGPIPE_* settings) logging to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker", "--web-port", str(web_port)],
            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)


def wait_healthy(proc: subprocess.Popen, base_url: str, log_path: Path,
                 timeout: float = 60.0) -> float:
    """Wait until the worker's /healthz answers; seconds it took. Raises with the log tail."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise ConfigError(f"worker exited with code {proc.returncode} while starting; "
                              f"log tail:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.3)
    raise ConfigError(f"worker web view did not answer within {timeout:.0f}s; log tail:\n"
                      f"{_tail(log_path)}")


def stop_worker(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM (graceful: Faust commits and leaves the group), SIGKILL after ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return proc.returncode


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"
