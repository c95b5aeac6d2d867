"""The contract every image operation implements, and typed parameter declarations.

An operation declares its parameters once (:class:`Param`); validation of a JSON op
object and the compact CLI spec both come from that declaration, so parsing never
drifts from processing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pipeline.errors import InvalidRequest

_REQUIRED = object()


@dataclass
class Frame:
    """A decoded image in flight: uint8 pixels (H x W, H x W x 3 RGB or x 4 RGBA).

    ``orientation`` is the EXIF orientation the pixels still need (1: upright).
    """

    pixels: np.ndarray
    source_format: str = ""
    exif: bytes | None = None
    icc_profile: bytes | None = None
    orientation: int = 1
    #: What decoding learnt about the source (pipeline/imaging/facts.py); only the
    #: decoded frame has it, frames made from it by ops do not.
    facts: dict[str, Any] | None = None

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def has_alpha(self) -> bool:
        return self.pixels.ndim == 3 and self.pixels.shape[2] == 4

    def replace(self, pixels: np.ndarray) -> Frame:
        return Frame(pixels, self.source_format, self.exif, self.icc_profile,
                     self.orientation)


class RunContext:
    """What an operation may need beyond its frame: loading overlay images by URI, and
    a hook told how long each op (and the final encode) took."""

    def __init__(self, load_image: Callable[[str, int], np.ndarray] | None = None,
                 observe_op: Callable[[str, float], None] | None = None) -> None:
        self._load_image = load_image
        self.observe_op = observe_op

    def load_image(self, uri: str, max_pixels: int) -> np.ndarray:
        if self._load_image is None:
            raise InvalidRequest(f"cannot load {uri}: no image loader configured",
                                 "bad_param")
        return self._load_image(uri, max_pixels)


@dataclass(frozen=True)
class Limits:
    """Bounds that keep one job from exhausting a worker."""

    max_output_pixels: int = 25_000_000
    max_dimension: int = 16384
    max_frames: int = 500  # of an animation kept as one (encode.animated)
    max_animation_pixels: int = 100_000_000  # all frames of one animation together


@dataclass(frozen=True)
class Param:
    """One typed, bounded parameter of an operation."""

    name: str
    kind: type
    default: Any = _REQUIRED
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def coerce(self, op: str, value: Any) -> Any:
        """Return ``value`` as this parameter's type or raise a precise InvalidRequest."""
        where = f"{op}.{self.name}"
        if self.kind is bool:
            if not isinstance(value, bool):
                raise InvalidRequest(f"{where} must be true or false, got {value!r}",
                                     "bad_param")
        elif self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise InvalidRequest(f"{where} must be an integer, got {value!r}",
                                         "bad_param")
        elif self.kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float) or (
                    not math.isfinite(value)):
                raise InvalidRequest(f"{where} must be a finite number, got {value!r}",
                                     "bad_param")
            value = float(value)
        elif self.kind is str and not isinstance(value, str):
            raise InvalidRequest(f"{where} must be a string, got {value!r}", "bad_param")
        if self.choices is not None and value not in self.choices:
            raise InvalidRequest(f"{where} must be one of {', '.join(map(str, self.choices))}"
                                 f", got {value!r}", "bad_param")
        if self.minimum is not None and value < self.minimum:
            raise InvalidRequest(f"{where} must be >= {self.minimum}, got {value!r}",
                                 "bad_param")
        if self.maximum is not None and value > self.maximum:
            raise InvalidRequest(f"{where} must be <= {self.maximum}, got {value!r}",
                                 "bad_param")
        return value


class Operation:
    """Base class: subclasses set ``name``/``params`` and implement ``apply``."""

    name: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    #: True if the result does not depend on the pixel scale (flip, grayscale, ...),
    #: so the source may still be shrunk on load for a resize that follows.
    scale_invariant: ClassVar[bool] = False
    #: Words of the compact CLI spec (pipeline/ops/spec.py) that make this op.
    spec_words: ClassVar[tuple[str, ...]] = ()

    def validate(self, raw: dict[str, Any], limits: Limits) -> dict[str, Any]:
        """Typed arguments with defaults filled, or InvalidRequest naming the problem."""
        declared = {p.name: p for p in self.params}
        unknown = sorted(set(raw) - set(declared) - {"op"})
        if unknown:
            raise InvalidRequest(f"{self.name}: unknown parameter(s) {', '.join(unknown)}; "
                                 f"expected {', '.join(declared) or 'none'}", "bad_param")
        args: dict[str, Any] = {}
        for param in self.params:
            if param.name in raw:
                args[param.name] = param.coerce(self.name, raw[param.name])
            elif param.required:
                raise InvalidRequest(f"{self.name}: missing parameter {param.name!r}",
                                     "missing_param")
            else:
                args[param.name] = param.default
        self.check(args, limits)
        return args

    def check(self, args: dict[str, Any], limits: Limits) -> None:
        """Cross-parameter checks; override when parameters depend on each other."""

    def output_size(self, width: int, height: int, args: dict[str, Any]) -> tuple[int, int]:
        """Size of the result for a ``width`` x ``height`` input (default: unchanged)."""
        return width, height

    def load_scale(self, width: int, height: int, args: dict[str, Any]) -> float | None:
        """How far the source may be shrunk on load for this op (1.0 = not at all).

        None means the op does not care, so a later op decides.
        """
        return None if self.scale_invariant else 1.0

    def plain_downscale(self, args: dict[str, Any]) -> bool:
        """True if the step only scales its input down (no crop, no other change): its
        result may then be made by shrinking a larger downscale of the same input that
        another variant already computed, and it may serve as such a downscale."""
        return False

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        """The JSON op of a compact spec token ``word[:arg...]`` (one of ``spec_words``)."""
        raise NotImplementedError

    def downscale_from(self, larger: Frame, width: int, height: int) -> Frame:
        raise NotImplementedError

    def source_uris(self, args: dict[str, Any]) -> list[str]:
        """URIs the op reads (checked against the source policy at ingest)."""
        return []

    def run(self, frame: Frame, args: dict[str, Any], ctx: RunContext) -> Frame:
        """Apply the op; override instead of ``apply`` when it needs the context."""
        return self.apply(frame, args)

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        raise NotImplementedError


def spec_size(text: str) -> tuple[int, int]:
    """``WxH`` of a compact spec (W or H may be empty: 0)."""
    try:
        w, h = text.lower().split("x", 1)
        return int(w or 0), int(h or 0)
    except ValueError:
        raise InvalidRequest(f"size must be WxH, got {text!r}", "bad_spec") from None


def spec_number(word: str, text: str) -> float:
    """A number argument of the compact spec token ``word``."""
    try:
        return float(text)
    except ValueError:
        raise InvalidRequest(f"{word}: needs a number, got {text!r}", "bad_spec") from None


#: Where a crop centres (thumbor's focal point): 0..1 of the image the op receives,
#: from the left and the top; -1 (both): none, the gravity decides.
FOCUS_PARAMS = (
    Param("focus_x", float, -1.0, minimum=-1.0, maximum=1.0,
          help="focal point 0..1 from the left (wins over gravity)"),
    Param("focus_y", float, -1.0, minimum=-1.0, maximum=1.0,
          help="focal point 0..1 from the top"),
)


def focus_of(op: str, args: dict[str, Any]) -> tuple[float, float] | None:
    """The focal point of ``args`` or None; InvalidRequest if only half given."""
    fx, fy = args.get("focus_x", -1.0), args.get("focus_y", -1.0)
    if fx == -1.0 and fy == -1.0:
        return None
    if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):
        raise InvalidRequest(f"{op}: give focus_x and focus_y both in 0..1, or neither",
                             "bad_param")
    return fx, fy
