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


def machine_idle_seconds() -> float:
    """Idle (and I/O wait) CPU seconds of all cores since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = f.readline().split()  # "cpu user nice system idle iowait ..."
    return (int(fields[4]) + int(fields[5])) / _TICKS


def thread_schedule(pid: int) -> dict[int, tuple[float, float]]:
    """Per thread of ``pid``: (seconds on a CPU, seconds runnable but waiting for one),
    from /proc/PID/task/TID/schedstat."""
    times: dict[int, tuple[float, float]] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                on_cpu, waiting, _ = f.read().split()
        except (FileNotFoundError, ProcessLookupError):  # the thread just ended
            continue
        times[int(task)] = (int(on_cpu) / 1e9, int(waiting) / 1e9)
    return times


def busiest_threads_cpu(pid: int, before: dict[int, tuple[float, float]],
                        after: dict[int, tuple[float, float]], count: int) -> float:
    """CPU seconds between two ``thread_schedule`` readings of the ``count`` busiest
    threads of ``pid`` besides its main thread: a worker's image threads, which outwork
    its I/O threads many times over on any image job."""
    used = sorted((cpu - before.get(tid, (0.0, 0.0))[0]
                   for tid, (cpu, _) in after.items() if tid != pid), reverse=True)
    return sum(used[:count])
