"""encode: the last step of every variant; JPEG, PNG or WebP through Pillow."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from pipeline.errors import InvalidRequest
from pipeline.ops.base import Frame, Limits, Operation, Param

FORMATS = ("jpeg", "png", "webp")
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


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
        Param("format", str, choices=FORMATS, help="jpeg | png | webp"),
        Param("quality", int, 85, minimum=1, maximum=100, help="lossy quality"),
        Param("lossless", bool, False, help="WebP lossless"),
        Param("progressive", bool, False, help="progressive JPEG"),
        Param("method", int, 4, minimum=0, maximum=6, help="WebP effort 0..6"),
        Param("keep_metadata", bool, False, help="keep EXIF and ICC profile"),
        Param("background", str, "#ffffff",
              help="colour alpha is flattened onto for formats without alpha"),
    )

    def check(self, args: dict[str, Any], limits: Limits) -> None:
        parse_colour(args["background"])
        if args["lossless"] and args["format"] != "webp":
            raise InvalidRequest("encode: lossless applies to webp only (png is always "
                                 "lossless)", "bad_param")

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:  # pragma: no cover
        raise TypeError("encode is terminal: call encode_frame()")


def parse_colour(text: str) -> tuple[int, int, int]:
    """'#rrggbb' or 'rrggbb' -> (r, g, b)."""
    value = text.removeprefix("#")
    if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise InvalidRequest(f"colour must be #rrggbb, got {text!r}", "bad_param")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def flatten_alpha(pixels: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Composite RGBA pixels onto an opaque background colour."""
    rgb = pixels[..., :3].astype(np.uint16)
    alpha = pixels[..., 3:4].astype(np.uint16)
    bg = np.array(background, dtype=np.uint16)
    out = (rgb * alpha + bg * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def encode_frame(frame: Frame, args: dict[str, Any]) -> Encoded:
    """Encode ``frame`` with validated encode ``args``."""
    fmt = args["format"]
    pixels = frame.pixels
    if frame.has_alpha and fmt == "jpeg":
        pixels = flatten_alpha(pixels, parse_colour(args["background"]))
    image = Image.fromarray(np.ascontiguousarray(pixels))
    options: dict[str, Any] = {}
    if args["keep_metadata"]:
        if frame.exif:
            options["exif"] = frame.exif
        if frame.icc_profile:
            options["icc_profile"] = frame.icc_profile
    if fmt == "jpeg":
        options.update(quality=args["quality"], progressive=args["progressive"],
                       optimize=False)
    elif fmt == "webp":
        options.update(quality=args["quality"], method=args["method"],
                       lossless=args["lossless"])
    else:
        options.update(compress_level=6)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt.upper(), **options)
    return Encoded(buffer.getvalue(), fmt, image.width, image.height)
