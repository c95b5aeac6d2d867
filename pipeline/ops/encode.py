"""encode: the last step of every variant; JPEG, PNG or WebP through Pillow."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from pipeline.errors import ImageRejected, InvalidRequest
from pipeline.imaging.colour import flatten_alpha, parse_colour
from pipeline.ops.base import Frame, Limits, Operation, Param

FORMATS = ("jpeg", "png", "webp", "avif", "jxl", "gif")
#: Formats that can hold an animation (encode.animated).
ANIMATED_FORMATS = ("webp", "gif")
COLOUR_SPACES = ("srgb", "source")
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif", "jxl": "jxl",
              "gif": "gif"}
# Chosen by measurement (docs/operations.md): at q80 on 1280x720 photos method 2 took
# 16 ms vs 50 ms for libwebp's default 4, for files ~5% larger.
DEFAULT_WEBP_METHOD = 2
ORIENTATION_TAG = 0x0112

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
                 "avif": "image/avif", "jxl": "image/jxl", "gif": "image/gif"}
#: Upper bound of encode.max_bytes (larger budgets are no budget at all).
MAX_BYTES_LIMIT = 100 << 20
#: Encodes one max_bytes search may spend per output: the requested quality, then a
#: binary search over 1..quality-1 (2**6 > 99 qualities).
MAX_BYTES_ENCODES = 7
#: Formats whose size max_bytes can trade against quality (when not lossless).
_QUALITY_FORMATS = frozenset({"jpeg", "webp", "avif", "jxl"})

#: Formats that can embed an ICC profile (pillow-jxl-plugin writes sRGB JPEG XL only).
_PROFILE_FORMATS = frozenset({"jpeg", "png", "webp", "avif", "gif"})


@dataclass(frozen=True)
class Encoded:
    data: bytes
    format: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


class Encode(Operation):
    """Encode the frame. ``method`` is WebP's speed/size trade-off (0 fast .. 6 small)."""

    name = "encode"
    params = (
        Param("format", str, choices=FORMATS, help="jpeg | png | webp | avif | jxl | gif"),
        Param("quality", int, 85, minimum=1, maximum=100, help="lossy quality"),
        Param("lossless", bool, False, help="WebP or JPEG XL lossless"),
        Param("progressive", bool, False, help="progressive JPEG"),
        Param("method", int, DEFAULT_WEBP_METHOD, minimum=0, maximum=6,
              help="WebP effort 0 (fast) .. 6 (small)"),
        Param("speed", int, 8, minimum=0, maximum=10, help="AVIF speed 0 (small) .. 10"),
        Param("effort", int, 4, minimum=1, maximum=9,
              help="JPEG XL effort 1 (fast) .. 9 (small)"),
        Param("keep_metadata", bool, False,
              help="keep EXIF, and the ICC profile the pixels are in"),
        Param("colour_space", str, "srgb", choices=COLOUR_SPACES,
              help="srgb (convert from the source's profile) | source (keep its gamut "
                   "and embed its profile)"),
        Param("animated", bool, False,
              help="keep every frame of an animated source (webp, gif); else the first"),
        Param("background", str, "#ffffff",
              help="colour alpha is flattened onto for formats without alpha"),
        Param("max_bytes", int, 0, minimum=0, maximum=MAX_BYTES_LIMIT,
              help="largest output in bytes: the highest quality that fits (lossy), "
                   "else the job fails max_bytes_unreachable; 0: no limit"),
    )
    spec_words = ("jpeg", "jpg", "webp", "png", "avif", "jxl", "gif")

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        op: dict[str, Any] = {"op": "encode", "format": "jpeg" if word == "jpg" else word}
        for arg in filter(None, args):
            if arg in ("lossless", "progressive", "animated"):
                op[arg] = True
            elif arg == "keepmeta":
                op["keep_metadata"] = True
            elif arg == "srcgamut":
                op["colour_space"] = "source"
            elif arg.startswith("max") and arg[3:].rstrip("k").isdigit():
                op["max_bytes"] = int(arg[3:].rstrip("k")) * (1024 if arg.endswith("k")
                                                               else 1)
            elif arg[:1] in ("q", "m", "s", "e") and arg[1:].isdigit():
                op[{"q": "quality", "m": "method", "s": "speed", "e": "effort"}[arg[0]]] = (
                    int(arg[1:]))
            else:
                raise InvalidRequest(f"{word}: unknown option {arg!r}", "bad_spec")
        return op

    def check(self, args: dict[str, Any], limits: Limits) -> None:
        parse_colour(args["background"])
        if args["lossless"] and args["format"] not in ("webp", "jxl"):
            raise InvalidRequest("encode: lossless applies to webp and jxl only (png is "
                                 "always lossless)", "bad_param")
        if args["animated"] and args["format"] not in ANIMATED_FORMATS:
            raise InvalidRequest(f"encode: animated applies to {' and '.join(ANIMATED_FORMATS)}"
                                 f" only, not {args['format']}", "bad_param")
        if args["colour_space"] == "source" and args["format"] not in _PROFILE_FORMATS:
            raise InvalidRequest(f"encode: {args['format']} outputs cannot carry the source's "
                                 "ICC profile; use colour_space srgb", "bad_param")

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:  # pragma: no cover
        raise TypeError("encode is terminal: call encode_frame()")


def encode_frame(frame: Frame, args: dict[str, Any]) -> Encoded:
    """Encode ``frame`` with validated encode ``args`` (within ``max_bytes``, if set)."""
    image = _image(frame, args)
    return _within_budget(image, _options(frame, args), args)


def encode_animation(frames: list[Frame], durations: list[int], loop: int,
                     args: dict[str, Any]) -> Encoded:
    """Encode ``frames`` (one size) as one animation, each shown ``durations[i]`` ms."""
    images = [_image(frame, args) for frame in frames]
    options = _options(frames[0], args)
    options.update(save_all=True, append_images=images[1:], duration=durations, loop=loop)
    if args["format"] == "gif":
        options.update(disposal=2, optimize=False)  # frames are whole composited canvases
    return _within_budget(images[0], options, args)


def _within_budget(image: Image.Image, options: dict[str, Any], args: dict[str, Any]
                   ) -> Encoded:
    """The output at the requested quality if it fits ``max_bytes``; else the largest
    quality that fits, found in at most MAX_BYTES_ENCODES encodes; else
    ImageRejected(max_bytes_unreachable)."""
    fmt, budget = args["format"], args["max_bytes"]
    encoded = _save(image, options, fmt)
    if not budget or len(encoded.data) <= budget:
        return encoded
    best = None
    if fmt in _QUALITY_FORMATS and not options.get("lossless"):
        low, high = 1, args["quality"] - 1
        for _ in range(MAX_BYTES_ENCODES - 1):
            if low > high:
                break
            quality = (low + high) // 2
            attempt = _save(image, {**options, "quality": quality}, fmt)
            if len(attempt.data) <= budget:
                best, low = attempt, quality + 1
            else:
                high = quality - 1
    if best is None:
        raise ImageRejected(
            f"encode: no {fmt} output of this variant fits max_bytes={budget} (at the "
            f"requested quality it is {len(encoded.data)} bytes"
            + ("" if fmt in _QUALITY_FORMATS and not options.get("lossless")
               else "; only lossy jpeg, webp, avif and jxl can trade quality for size")
            + "): allow more bytes or ask for a smaller size", "max_bytes_unreachable")
    return best


def _image(frame: Frame, args: dict[str, Any]) -> Image.Image:
    pixels = frame.pixels
    if frame.has_alpha and args["format"] == "jpeg":
        pixels = flatten_alpha(pixels, parse_colour(args["background"]))
    return Image.fromarray(np.ascontiguousarray(pixels))


def _save(image: Image.Image, options: dict[str, Any], fmt: str) -> Encoded:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt.upper(), **options)
    return Encoded(buffer.getvalue(), fmt, image.width, image.height)


def _options(frame: Frame, args: dict[str, Any]) -> dict[str, Any]:
    """Pillow save options for ``args`` (and the frame's metadata, if kept)."""
    fmt = args["format"]
    options: dict[str, Any] = {}
    if args["keep_metadata"] and frame.exif:
        exif = Image.Exif()
        exif.load(frame.exif)
        exif[ORIENTATION_TAG] = frame.orientation  # 1 once the orient op has run
        options["exif"] = exif.tobytes()
    # frame.icc_profile is the space the pixels are in (None once converted to sRGB).
    if frame.icc_profile and (args["keep_metadata"] or args["colour_space"] == "source"):
        options["icc_profile"] = frame.icc_profile
    if fmt == "jpeg":
        options.update(quality=args["quality"], progressive=args["progressive"],
                       optimize=False)
    elif fmt == "webp":
        options.update(quality=args["quality"], method=args["method"],
                       lossless=args["lossless"])
    elif fmt == "avif":
        options.update(quality=args["quality"], speed=args["speed"])
    elif fmt == "jxl":
        options.pop("icc_profile", None)  # sRGB only (see _PROFILE_FORMATS)
        options.update(quality=args["quality"], lossless=args["lossless"],
                       effort=args["effort"], num_threads=1)
    elif fmt == "png":
        options.update(compress_level=6)
    return options
