"""Running one job: read the source once, decode once, make every variant, store them.

Everything here is blocking (CPU and storage I/O); callers run it in the image executor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from pipeline import metrics
from pipeline.imaging.animation import decode_animation
from pipeline.imaging.decode import decode
from pipeline.imaging.icc import to_srgb
from pipeline.imaging.phash import phash
from pipeline.imaging.placeholder import placeholders
from pipeline.jobs.sources import SourcePolicy
from pipeline.models import DEFAULT_TENANT, JobRequest, OutputInfo, storage_path, tenant_of
from pipeline.objects import ObjectStore
from pipeline.ops import Chain, Encoded, Limits
from pipeline.ops.base import RunContext
from pipeline.ops.chain import shared_prefixes


def _observe_op(name: str, seconds: float) -> None:
    metrics.OP_SECONDS.labels(name).observe(seconds)


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def output_key(request: JobRequest, variant: str, extension: str) -> str:
    """Deterministic data-lake key, so a retried or replayed job overwrites in place."""
    return (f"outputs/dt={request.submitted_date}/{storage_path(request.job_id)}/"
            f"{variant}.{extension}")


@dataclass(frozen=True)
class EngineLimits:
    max_source_bytes: int
    max_source_pixels: int
    ops: Limits


@dataclass(frozen=True)
class SourceSummary:
    """What a job learnt about its source: the pHash and the image facts (dimensions,
    format, EXIF, placeholder, dominant colour; pipeline/imaging/facts.py)."""

    phash: str | None = None
    image: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobResult:
    outputs: list[OutputInfo]
    phash: str | None = None
    image: dict[str, Any] | None = None


class Engine:
    """Turns a validated job into stored outputs."""

    def __init__(self, store: ObjectStore, sources: SourcePolicy, limits: EngineLimits):
        self.object_store = store
        self.sources = sources
        self.limits = limits

    def _load_overlay(self, tenant: str, uri: str, max_pixels: int) -> np.ndarray:
        data = self.sources.read(uri, tenant, self.limits.max_source_bytes)
        overlay = decode(data, max_pixels=max_pixels)
        return to_srgb(overlay.pixels, overlay.icc_profile)

    # The three stages are separate so callers can run I/O (fetch, store) on an I/O
    # pool and only render() on the image threads; run() chains them for simple callers.

    def fetch(self, request: JobRequest) -> bytes:
        """Read the source (I/O): SourceNotAllowed/NotFound, too large, or unavailable."""
        started = time.perf_counter()
        data = self.sources.read(request.source, tenant_of(request.job_id),
                                 self.limits.max_source_bytes)
        metrics.SOURCE_BYTES.inc(len(data))
        metrics.STAGE_SECONDS.labels("fetch").observe(time.perf_counter() - started)
        return data

    def render(self, data: bytes, chains: dict[str, Chain], *, tenant: str = DEFAULT_TENANT,
               structure_checked: bool = False) -> tuple[dict[str, Encoded], SourceSummary]:
        """Decode once and make every variant (CPU); returns the encodings and what was
        learnt about the source. Overlays are read with ``tenant``'s rights;
        ``structure_checked``: as in ``decode``."""
        started = time.perf_counter()
        context = RunContext(partial(self._load_overlay, tenant), _observe_op)

        def plan(width: int, height: int, orientation: int) -> float:
            return max(chain.load_scale(width, height, orientation) for chain in chains.values())

        frame = decode(data, max_pixels=self.limits.max_source_pixels, load_scale=plan,
                       structure_checked=structure_checked)
        ops = self.limits.ops
        animation = (decode_animation(data, max_pixels=self.limits.max_source_pixels,
                                      max_frames=ops.max_frames,
                                      max_total_pixels=ops.max_animation_pixels)
                     if any(chain.animated for chain in chains.values()) else None)
        decoded = time.perf_counter()
        shared = shared_prefixes(chains)
        # Largest outputs first, so smaller variants can shrink their shared results.
        order = sorted(chains, key=lambda n: -_area(chains[n].output_size(frame.width,
                                                                           frame.height)))
        made = {}
        for name in order:
            chain = chains[name]
            if animation is not None and chain.animated:
                made[name] = chain.run_animation(animation.frames, animation.durations,
                                                 animation.loop, ops, context)
            else:
                made[name] = chain.run(frame, ops, context, shared)
        summary = SourceSummary(phash(frame.pixels),
                                {**(frame.facts or {}),
                                 **placeholders(frame.pixels, frame.icc_profile)})
        metrics.STAGE_SECONDS.labels("decode").observe(decoded - started)
        metrics.STAGE_SECONDS.labels("transform").observe(time.perf_counter() - decoded)
        return {name: made[name] for name in chains}, summary

    def store(self, request: JobRequest, name: str, encoded: Encoded) -> OutputInfo:
        """Write one output at its deterministic key (I/O)."""
        started = time.perf_counter()
        uri = self.object_store.put(output_key(request, name, encoded.extension), encoded.data,
                              encoded.content_type)
        metrics.OUTPUT_BYTES.inc(len(encoded.data))
        metrics.STAGE_SECONDS.labels("store").observe(time.perf_counter() - started)
        return OutputInfo(name, uri, encoded.width, encoded.height, encoded.format,
                          len(encoded.data))

    def run(self, request: JobRequest, chains: dict[str, Chain]) -> JobResult:
        """All three stages in the calling thread."""
        encoded, summary = self.render(self.fetch(request), chains,
                                       tenant=tenant_of(request.job_id))
        return JobResult([self.store(request, n, e) for n, e in encoded.items()],
                         summary.phash, summary.image)
