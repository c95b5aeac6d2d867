"""What ``imgpipe bench`` asks of each job: a named preset or the user's own variants.

The heavy five-variant preset keeps its hand-written OpenCV baseline (the figures in
docs/performance.md are against it); any other workload is measured against the engine
alone on the same task (decode once, every variant, encode; no Kafka, no stores), which
``imgpipe bench ops`` shows matches a bare OpenCV loop. The difference between the
pipeline's CPU per job and that baseline's is the pipeline's fixed cost per job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.bench.ops import VARIANTS
from pipeline.ops import parse_variant_specs

#: Named workloads: compact CLI specs (None: the heavy five variants of bench ops).
PRESETS: dict[str, list[str] | None] = {
    "heavy": None,
    "fit512": ["fit=fit:512x512,jpeg:q80"],  # imgproxy's own benchmark task
    "thumb": ["thumb=fit:256x256,webp:q80"],
    "pair": ["thumb=fit:256x256,webp:q80", "large=fit:1280x1280,jpeg:q85"],
}


@dataclass(frozen=True)
class Workload:
    """The variants every bench job asks for, and how the baseline makes them."""

    name: str
    variants: dict[str, list[dict[str, Any]]]
    specs: tuple[str, ...] | None  # None: the OpenCV baseline of the heavy preset

    @property
    def baseline(self) -> str:
        return "bare OpenCV loop" if self.specs is None else "engine alone"


def workload(preset: str, specs: tuple[str, ...] = ()) -> Workload:
    """The user's ``--variant`` specs if any, else the named preset."""
    if specs:
        return Workload("custom", parse_variant_specs(list(specs)), tuple(specs))
    chosen = PRESETS[preset]
    if chosen is None:
        return Workload(preset, VARIANTS, None)
    return Workload(preset, parse_variant_specs(chosen), tuple(chosen))
