"""Running one job: read the source once, decode once, make every variant, store them.

Everything here is blocking (CPU and storage I/O); callers run it in the image executor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from pipeline import metrics
from pipeline.models import JobRequest, OutputInfo
from pipeline.objects import ObjectStore
from pipeline.ops import Chain, Limits, decode
from pipeline.ops.base import RunContext
from pipeline.ops.chain import shared_prefixes
from pipeline.ops.phash import phash
from pipeline.sources import SourcePolicy


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def output_key(request: JobRequest, variant: str, extension: str) -> str:
    """Deterministic data-lake key, so a retried or replayed job overwrites in place."""
    return f"outputs/dt={request.submitted_date}/{request.job_id}/{variant}.{extension}"


@dataclass(frozen=True)
class EngineLimits:
    max_source_bytes: int
    max_source_pixels: int
    ops: Limits


@dataclass(frozen=True)
class JobResult:
    outputs: list[OutputInfo]
    phash: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


class Engine:
    """Turns a validated job into stored outputs."""

    def __init__(self, store: ObjectStore, sources: SourcePolicy, limits: EngineLimits):
        self.store = store
        self.sources = sources
        self.limits = limits
        self.context = RunContext(self._load_overlay)

    def _load_overlay(self, uri: str, max_pixels: int) -> np.ndarray:
        data = self.sources.read(uri, self.limits.max_source_bytes)
        return decode(data, max_pixels=max_pixels).pixels

    def run(self, request: JobRequest, chains: dict[str, Chain]) -> JobResult:
        """Process ``request``; raises PermanentError or RetryableError subclasses."""
        started = time.perf_counter()
        data = self.sources.read(request.source, self.limits.max_source_bytes)
        metrics.SOURCE_BYTES.inc(len(data))
        fetched = time.perf_counter()

        def plan(width: int, height: int, orientation: int) -> float:
            return max(chain.load_scale(width, height, orientation) for chain in chains.values())

        frame = decode(data, max_pixels=self.limits.max_source_pixels, load_scale=plan)
        decoded = time.perf_counter()
        outputs = []
        put_seconds = 0.0
        shared = shared_prefixes(chains)
        # Largest outputs first, so smaller variants can shrink their shared results.
        order = sorted(chains, key=lambda n: -_area(chains[n].output_size(frame.width,
                                                                           frame.height)))
        made = {}
        for name in order:
            made[name] = chains[name].run(frame, self.limits.ops, self.context, shared)
        for name in chains:
            encoded = made[name]
            put_started = time.perf_counter()
            uri = self.store.put(output_key(request, name, encoded.extension), encoded.data,
                                 encoded.content_type)
            put_seconds += time.perf_counter() - put_started
            metrics.OUTPUT_BYTES.inc(len(encoded.data))
            outputs.append(OutputInfo(name, uri, encoded.width, encoded.height,
                                      encoded.format, len(encoded.data)))
        finished = time.perf_counter()
        timings = {"fetch": fetched - started, "decode": decoded - fetched,
                   "transform": finished - decoded - put_seconds, "store": put_seconds}
        for stage, seconds in timings.items():
            metrics.STAGE_SECONDS.labels(stage).observe(seconds)
        return JobResult(outputs, phash(frame.pixels), timings)
