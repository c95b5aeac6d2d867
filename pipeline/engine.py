"""Running one job: read the source once, decode once, make every variant, store them.

Everything here is blocking (CPU and storage I/O); callers run it in the image executor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pipeline import metrics
from pipeline.models import JobRequest, OutputInfo
from pipeline.objects import ObjectStore
from pipeline.ops import Chain, Limits, decode
from pipeline.sources import SourcePolicy


def output_key(request: JobRequest, variant: str, extension: str) -> str:
    """Deterministic data-lake key, so a retried or replayed job overwrites in place."""
    return f"outputs/dt={request.submitted_date}/{request.job_id}/{variant}.{extension}"


@dataclass(frozen=True)
class EngineLimits:
    max_source_bytes: int
    max_source_pixels: int
    ops: Limits


class Engine:
    """Turns a validated job into stored outputs."""

    def __init__(self, store: ObjectStore, sources: SourcePolicy, limits: EngineLimits):
        self.store = store
        self.sources = sources
        self.limits = limits

    def run(self, request: JobRequest, chains: dict[str, Chain]) -> list[OutputInfo]:
        """Process ``request``; raises PermanentError or RetryableError subclasses."""
        started = time.perf_counter()
        data = self.sources.read(request.source, self.limits.max_source_bytes)
        metrics.SOURCE_BYTES.inc(len(data))
        fetched = time.perf_counter()
        frame = decode(data, max_pixels=self.limits.max_source_pixels,
                       load_scale=self._load_scale(data, chains))
        decoded = time.perf_counter()
        outputs = []
        put_seconds = 0.0
        for name, chain in chains.items():
            encoded = chain.run(frame, self.limits.ops)
            put_started = time.perf_counter()
            uri = self.store.put(output_key(request, name, encoded.extension), encoded.data,
                                 encoded.content_type)
            put_seconds += time.perf_counter() - put_started
            metrics.OUTPUT_BYTES.inc(len(encoded.data))
            outputs.append(OutputInfo(name, uri, encoded.width, encoded.height,
                                      encoded.format, len(encoded.data)))
        finished = time.perf_counter()
        metrics.STAGE_SECONDS.labels("fetch").observe(fetched - started)
        metrics.STAGE_SECONDS.labels("decode").observe(decoded - fetched)
        metrics.STAGE_SECONDS.labels("transform").observe(finished - decoded - put_seconds)
        metrics.STAGE_SECONDS.labels("store").observe(put_seconds)
        return outputs

    @staticmethod
    def _load_scale(data: bytes, chains: dict[str, Chain]) -> float:
        """The largest shrink-on-load every variant tolerates (JPEG draft mode)."""
        size = _jpeg_size(data)
        if size is None:
            return 1.0
        return max(chain.load_scale(*size) for chain in chains.values())


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's SOF marker, without decoding (None if not JPEG)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[i + 5:i + 7], "big")
            width = int.from_bytes(data[i + 7:i + 9], "big")
            return (width, height) if width and height else None
        i += 2 + length
    return None
