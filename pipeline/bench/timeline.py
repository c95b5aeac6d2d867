"""Where the image threads idle: a worker's timeline (pipeline/worker/timeline.py) read back.

Each moment in the measured window has a number of busy image threads (jobs between
``render_start`` and ``render_end``). Whenever fewer than all are busy, the idle
thread-seconds are charged to what the worker's batches were doing at that moment (each
batch in hand has one stage; a batch in its image work shows what its jobs are doing),
and to whether the agent was waiting for the stream's next batch or for a free slot.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

BATCH_STAGES = ("take", "flushed", "effects", "applied", "confirmed", "acked")
#: The stage a batch is in from each mark on (its image work is split further by jobs).
STAGE_AFTER = {"take": "admit+flush", "flushed": "image work", "effects": "apply",
               "applied": "confirm", "confirmed": "ack"}


@dataclass
class Batch:
    marks: dict[str, float] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)


@dataclass
class Timeline:
    batches: dict[str, Batch] = field(default_factory=dict)
    jobs: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    render_cpu: dict[str, float] = field(default_factory=dict)  # job id -> CPU seconds
    #: (start, end, label) spans where the agent waited (for the stream or a free slot).
    agent_waits: list[tuple[float, float, str]] = field(default_factory=list)


def read(path: Path) -> Timeline:
    """Parse one worker's timeline file."""
    line_ = Timeline()
    want: float | None = None
    full: float | None = None
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 5:
            continue  # a line cut short by the worker stopping
        t, stage, key, batch = float(parts[0]), parts[1], parts[2], parts[4]
        if stage in BATCH_STAGES or stage == "metadata":
            line_.batches.setdefault(batch, Batch()).marks[stage] = t
        elif stage == "fetch":  # a job's first mark, made by its batch's task
            line_.jobs[key]["fetch"] = t
            line_.batches.setdefault(batch, Batch()).jobs.append(key)
        elif stage == "want_batch":
            want = t
        elif stage == "got_batch" and want is not None:
            line_.agent_waits.append((want, t, "agent waits for the stream"))
            want = None
        elif stage == "depth_full":
            full = t
        else:
            line_.jobs[key][stage] = t
            if stage == "render_end" and len(parts) > 5:
                line_.render_cpu[key] = float(parts[5])
        if stage == "want_batch" and full is not None:
            line_.agent_waits.append((full, t, "agent waits for a free slot"))
            full = None
    return line_


def _job_stage(marks: dict[str, float], t: float) -> str | None:
    for begin, end, name in (("render_start", "render_end", "render"),
                             ("queued", "render_start", "queued"),
                             ("fetch", "queued", "fetch"), ("rendered", "stored", "store")):
        if marks.get(begin, float("inf")) <= t < marks.get(end, float("inf")):
            return name
    return None


def batch_stage(line_: Timeline, batch: Batch, t: float) -> str | None:
    """What ``batch`` is doing at ``t`` (None: not in hand)."""
    marks = batch.marks
    if not marks.get("take", float("inf")) <= t < marks.get("acked", float("inf")):
        return None
    stage = "admit+flush"
    for name in BATCH_STAGES[:-1]:
        if marks.get(name, float("inf")) <= t:
            stage = STAGE_AFTER[name]
    if stage != "image work":
        return stage
    if marks.get("metadata", float("inf")) <= t:
        return "metadata"
    doing = {_job_stage(line_.jobs[j], t) for j in batch.jobs} - {None}
    for name in ("render", "queued", "fetch", "store"):
        if name in doing:
            return name
    return "image work (between jobs)"


def idle_causes(line_: Timeline, start: float, end: float, threads: int
                ) -> tuple[float, Counter[str]]:
    """(image-thread utilisation in [start, end], idle thread-seconds per situation)."""
    edges = {start, end}
    spans = []
    for marks in line_.jobs.values():
        if "render_start" in marks and "render_end" in marks:
            spans.append((marks["render_start"], marks["render_end"]))
    for marks in line_.jobs.values():
        edges.update(t for t in marks.values() if start < t < end)
    for batch in line_.batches.values():
        edges.update(t for t in batch.marks.values() if start < t < end)
    for a, b, _ in line_.agent_waits:
        edges.update(t for t in (a, b) if start < t < end)
    points = sorted(edges)
    starts = sorted(s for s, _ in spans)
    ends = sorted(e for _, e in spans)
    ordered = sorted(line_.batches.values(), key=lambda b: b.marks.get("take", 0.0))
    idle: Counter[str] = Counter()
    busy_seconds = 0.0
    for a, b in itertools.pairwise(points):
        mid = (a + b) / 2
        busy = min(threads, bisect.bisect(starts, mid) - bisect.bisect(ends, mid))
        busy_seconds += busy * (b - a)
        if busy >= threads:
            continue
        stages = sorted(s for batch in ordered if (s := batch_stage(line_, batch, mid)))
        label = " + ".join(stages) or "no batch in hand"
        waits = [w for x, y, w in line_.agent_waits if x <= mid < y]
        if waits:
            label += " | " + waits[0]
        idle[label] += (threads - busy) * (b - a)
    return busy_seconds / (threads * (end - start)), idle


def render_ms(line_: Timeline, start: float, end: float) -> tuple[float, float]:
    """Mean (wall, CPU) milliseconds of one job's render on an image thread, over the
    renders within [start, end]."""
    inside = [j for j, m in line_.jobs.items()
              if start <= m.get("render_start", -1.0) and m.get("render_end", end + 1) <= end]
    if not inside:
        return 0.0, 0.0
    wall = sum(line_.jobs[j]["render_end"] - line_.jobs[j]["render_start"] for j in inside)
    cpu = sum(line_.render_cpu.get(j, 0.0) for j in inside)
    return 1000 * wall / len(inside), 1000 * cpu / len(inside)
