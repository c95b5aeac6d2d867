"""A validated op chain per variant, and running it over a decoded frame."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.errors import ImageRejected, InvalidRequest
from pipeline.ops.base import Frame, Limits, Operation, RunContext
from pipeline.ops.encode import Encoded, encode_animation, encode_frame
from pipeline.ops.registry import OPERATIONS, get_operation

MAX_STEPS = 32
DEFAULT_ENCODE = {"op": "encode", "format": "jpeg"}


@dataclass(frozen=True)
class Step:
    operation: Operation
    args: dict[str, Any]

    @property
    def key(self) -> str:
        """Identity of the step, so variants sharing a prefix compute it once."""
        return self.operation.name + json.dumps(self.args, sort_keys=True)


@dataclass(frozen=True)
class Chain:
    """The steps of one variant; the last one is always encode."""

    steps: tuple[Step, ...]
    encode_args: dict[str, Any]

    def source_uris(self) -> list[str]:
        return [uri for step in self.steps for uri in step.operation.source_uris(step.args)]

    def load_scale(self, width: int, height: int, orientation: int = 1) -> float:
        """How far this chain lets a ``width`` x ``height`` source shrink on load."""
        if orientation in (5, 6, 7, 8) and self._auto_orients:
            width, height = height, width
        for step in self.steps:
            scale = step.operation.load_scale(width, height, step.args)
            if scale is not None:
                return scale
        return 1.0

    @property
    def _auto_orients(self) -> bool:
        return any(s.operation.name == "orient" and s.args["auto"] for s in self.steps)

    def largest_pixels(self, width: int, height: int) -> int:
        """The most pixels any step of this variant holds for a ``width`` x ``height``
        source (an upscale before a crop counts): its share of a job's memory."""
        largest = width * height
        for step in self.steps:
            width, height = step.operation.output_size(width, height, step.args)
            largest = max(largest, width * height)
        return largest

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Size of this variant's output for a ``width`` x ``height`` source."""
        for step in self.steps:
            width, height = step.operation.output_size(width, height, step.args)
        return width, height

    @property
    def animated(self) -> bool:
        """True if this variant keeps every frame of an animated source."""
        return bool(self.encode_args["animated"])

    def run(self, frame: Frame, limits: Limits, ctx: RunContext | None = None,
            shared: dict[tuple[str, ...], Frame] | None = None) -> Encoded:
        """Run every step then encode. Frames after prefixes listed in ``shared`` are
        taken from (or stored into) it, so variants compute common prefixes once."""
        ctx = ctx or RunContext()
        frame = self.transform(frame, limits, ctx, shared)
        return self._timed_encode(ctx, lambda: encode_frame(frame, self.encode_args))

    def run_animation(self, frames: list[Frame], durations: list[int], loop: int,
                      limits: Limits, ctx: RunContext | None = None) -> Encoded:
        """Run every step on each frame, then encode them as one animation."""
        ctx = ctx or RunContext()
        made = [self.transform(frame, limits, ctx) for frame in frames]
        return self._timed_encode(
            ctx, lambda: encode_animation(made, durations, loop, self.encode_args))

    @staticmethod
    def _timed_encode(ctx: RunContext, encode: Callable[[], Encoded]) -> Encoded:
        started = time.perf_counter()
        encoded = encode()
        if ctx.observe_op:
            ctx.observe_op("encode", time.perf_counter() - started)
        return encoded

    def transform(self, frame: Frame, limits: Limits, ctx: RunContext,
                  shared: dict[tuple[str, ...], Frame] | None = None) -> Frame:
        """Every step but encode, with the output limit checked before each."""
        prefix: tuple[str, ...] = ()
        for step in self.steps:
            prefix = (*prefix, step.key)
            if shared is not None and shared.get(prefix) is not None:
                frame = shared[prefix]
                continue
            w, h = step.operation.output_size(frame.width, frame.height, step.args)
            # Only a step that grows the image can break the output limit: the source's
            # own size was judged by the source pixel limit (a 49 MP photo's thumbnail
            # must not fail because its no-op orient step "makes" 49 MP).
            grows = w * h > frame.width * frame.height or max(w, h) > max(frame.width,
                                                                         frame.height)
            if grows and (w * h > limits.max_output_pixels or max(w, h) > limits.max_dimension):
                raise ImageRejected(f"{step.operation.name} would make a {w}x{h} image, more "
                                    "than the output limit", "output_too_large")
            larger = (_downscaled_sibling(shared, prefix, frame, w, h)
                      if shared is not None else None)
            started = time.perf_counter()
            if larger is not None and step.operation.plain_downscale(step.args):
                frame = step.operation.downscale_from(larger, w, h)
            else:
                frame = step.operation.run(frame, step.args, ctx)
            if ctx.observe_op:
                ctx.observe_op(step.operation.name, time.perf_counter() - started)
            if shared is not None and prefix in shared:
                shared[prefix] = frame
        return frame


def _is_plain_downscale(step_key: str) -> bool:
    """A step that only scales (each op declares it: Operation.plain_downscale)."""
    name, _, args = step_key.partition("{")
    return OPERATIONS[name].plain_downscale(json.loads("{" + args))


def _downscaled_sibling(shared: dict[tuple[str, ...], Frame | None], prefix: tuple[str, ...],
                        source: Frame, width: int, height: int) -> Frame | None:
    """The smallest already computed downscale of ``source`` (this step's input) that is
    still at least twice ``width`` x ``height``: resizing from it is as good, and cheaper."""
    best = None
    for key, frame in shared.items():
        if (frame is None or len(key) != len(prefix) or key[:-1] != prefix[:-1]
                or frame.width >= source.width or not _is_plain_downscale(key[-1])):
            continue
        if frame.width >= 2 * width and frame.height >= 2 * height and (
                best is None or frame.width < best.width):
            best = frame
    return best


def shared_prefixes(chains: dict[str, Chain]) -> dict[tuple[str, ...], Frame | None]:
    """Step prefixes used by two or more variants: slots for their shared results."""
    counts: Counter[tuple[str, ...]] = Counter()
    for chain in chains.values():
        keys = tuple(step.key for step in chain.steps)
        counts.update(keys[:n] for n in range(1, len(keys) + 1))
    return {prefix: None for prefix, count in counts.items() if count > 1}


def compile_chain(ops: list[dict[str, Any]], limits: Limits) -> Chain:
    """Validate one variant's op list; a missing encode step defaults to JPEG. Chains
    start with the implicit to_srgb (unless encode keeps the source's colour space) and
    orient steps."""
    if len(ops) > MAX_STEPS:
        raise InvalidRequest(f"a variant may have at most {MAX_STEPS} ops, got {len(ops)}",
                             "too_many_ops")
    steps: list[Step] = []
    encode_args: dict[str, Any] | None = None
    for index, raw in enumerate(ops):
        if encode_args is not None:
            raise InvalidRequest("encode must be the last op of a variant", "bad_chain")
        if not isinstance(raw, dict):
            raise InvalidRequest(f"op #{index + 1} must be an object", "bad_chain")
        operation = get_operation(raw.get("op"))
        args = operation.validate(raw, limits)
        if operation.name == "encode":
            encode_args = args
        else:
            steps.append(Step(operation, args))
    if encode_args is None:
        encode_args = get_operation("encode").validate(DEFAULT_ENCODE, limits)
    if not any(step.operation.name == "orient" for step in steps):
        steps.insert(0, Step(get_operation("orient"), {"auto": True}))
    if encode_args["colour_space"] == "srgb" and not any(
            step.operation.name == "to_srgb" for step in steps):
        steps.insert(0, Step(get_operation("to_srgb"), {}))
    return Chain(tuple(steps), encode_args)


def compile_variants(variants: dict[str, list[dict[str, Any]]], limits: Limits,
                     max_variants: int) -> dict[str, Chain]:
    """Validate every variant of a job, naming the variant in any error."""
    if len(variants) > max_variants:
        raise InvalidRequest(f"a job may request at most {max_variants} variants, got "
                             f"{len(variants)}", "too_many_variants")
    chains = {}
    for name, ops in variants.items():
        try:
            chains[name] = compile_chain(ops, limits)
        except InvalidRequest as exc:
            raise InvalidRequest(f"variant {name!r}: {exc.message}", exc.code) from None
    return chains
