"""encode: the last step of every variant; JPEG, PNG or WebP through Pillow."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from pipeline.errors import InvalidRequest
from pipeline.imaging.colour import flatten_alpha, parse_colour
from pipeline.ops.base import Frame, Limits, Operation, Param

FORMATS = ("jpeg", "png", "webp", "avif", "jxl")
COLOUR_SPACES = ("srgb", "source")
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif", "jxl": "jxl"}
# Chosen by measurement (docs/operations.md): at q80 on 1280x720 photos method 2 took
# 16 ms vs 50 ms for libwebp's default 4, for files ~5% larger.
DEFAULT_WEBP_METHOD = 2
ORIENTATION_TAG = 0x0112

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
                 "avif": "image/avif", "jxl": "image/jxl"}
#: Formats that can embed an ICC profile (pillow-jxl-plugin writes sRGB JPEG XL only).
_PROFILE_FORMATS = frozenset({"jpeg", "png", "webp", "avif"})


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
        Param("format", str, choices=FORMATS, help="jpeg | png | webp | avif | jxl"),
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
        Param("background", str, "#ffffff",
              help="colour alpha is flattened onto for formats without alpha"),
    )
    spec_words = ("jpeg", "jpg", "webp", "png", "avif", "jxl")

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        op: dict[str, Any] = {"op": "encode", "format": "jpeg" if word == "jpg" else word}
        for arg in filter(None, args):
            if arg in ("lossless", "progressive"):
                op[arg] = True
            elif arg == "keepmeta":
                op["keep_metadata"] = True
            elif arg == "srcgamut":
                op["colour_space"] = "source"
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
        if args["colour_space"] == "source" and args["format"] not in _PROFILE_FORMATS:
            raise InvalidRequest(f"encode: {args['format']} outputs cannot carry the source's "
                                 "ICC profile; use colour_space srgb", "bad_param")

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:  # pragma: no cover
        raise TypeError("encode is terminal: call encode_frame()")


def encode_frame(frame: Frame, args: dict[str, Any]) -> Encoded:
    """Encode ``frame`` with validated encode ``args``."""
    fmt = args["format"]
    pixels = frame.pixels
    if frame.has_alpha and fmt == "jpeg":
        pixels = flatten_alpha(pixels, parse_colour(args["background"]))
    image = Image.fromarray(np.ascontiguousarray(pixels))
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
    else:
        options.update(compress_level=6)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt.upper(), **options)
    return Encoded(buffer.getvalue(), fmt, image.width, image.height)
