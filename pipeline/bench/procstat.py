"""CPU time and peak memory of other processes, from /proc (Linux)."""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _status_mb(pid: int, field: str) -> float:
    """A kB field of /proc/PID/status in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of ``pid`` in MiB (VmHWM)."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    """Current resident set size of ``pid`` in MiB (VmRSS)."""
    return _status_mb(pid, "VmRSS")


def open_files(pid: int) -> int:
    """File descriptors ``pid`` holds open."""
    return len(os.listdir(f"/proc/{pid}/fd"))
