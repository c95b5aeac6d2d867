"""watermark: a text or image overlay placed by gravity, blended with an opacity."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.errors import InvalidRequest
from pipeline.imaging.colour import parse_colour
from pipeline.imaging.gravity import GRAVITIES, place
from pipeline.ops.base import Frame, Limits, Operation, Param, RunContext

MAX_TEXT = 200
MAX_OVERLAY_PIXELS = 16_000_000


class Watermark(Operation):
    """``text`` (rendered with the bundled font, height = ``size`` x image width) or
    ``image`` (a URI in the allowed stores, width = ``size`` x image width)."""

    name = "watermark"
    params = (
        Param("text", str, ""),
        Param("image", str, "", help="overlay image URI (object store or allowed root)"),
        Param("gravity", str, "southeast", choices=GRAVITIES),
        Param("opacity", float, 0.5, minimum=0.0, maximum=1.0),
        Param("size", float, 0.05, minimum=0.005, maximum=1.0,
              help="text height or overlay width, as a fraction of the image width"),
        Param("margin", int, 16, minimum=0, maximum=4096),
        Param("colour", str, "#ffffff", help="text colour"),
    )
    spec_words = ("wm",)

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        return {"op": "watermark", "text": ":".join(args)}

    def check(self, args: dict[str, Any], limits: Limits) -> None:
        if bool(args["text"]) == bool(args["image"]):
            raise InvalidRequest("watermark: give exactly one of text or image", "bad_param")
        if len(args["text"]) > MAX_TEXT:
            raise InvalidRequest(f"watermark: text longer than {MAX_TEXT} characters",
                                 "bad_param")
        parse_colour(args["colour"])

    def source_uris(self, args: dict[str, Any]) -> list[str]:
        return [args["image"]] if args["image"] else []

    def run(self, frame: Frame, args: dict[str, Any], ctx: RunContext) -> Frame:
        if args["text"]:
            overlay = _render_text(args["text"], max(8, round(frame.width * args["size"])),
                                   parse_colour(args["colour"]), frame.width, frame.height)
        else:
            overlay = _load_overlay(ctx.load_image(args["image"], MAX_OVERLAY_PIXELS),
                                    max(1, round(frame.width * args["size"])))
        x, y = place(frame.width, frame.height, overlay.shape[1], overlay.shape[0],
                     args["gravity"], args["margin"])
        return frame.replace(blend(frame.pixels, overlay, x, y, args["opacity"]))


def _render_text(text: str, height: int, colour: tuple[int, int, int], max_width: int,
                 max_height: int) -> np.ndarray:
    """The text as an RGBA overlay, shrunk to fit the image: a text wider or taller than
    the image would be cut off anyway, and its canvas could take gigabytes (200
    characters at the image's height)."""
    font = ImageFont.load_default(size=height)
    left, top, right, bottom = font.getbbox(text)  # layout only: nothing is drawn yet
    fit = min(1.0, max_width / max(1, right - left), max_height / max(1, bottom - top))
    if fit < 1.0:
        font = ImageFont.load_default(size=max(1, int(height * fit)))
        left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("RGBA", (max(1, right - left), max(1, bottom - top)), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((-left, -top), text, font=font, fill=(*colour, 255))
    return np.asarray(canvas)


def _load_overlay(pixels: np.ndarray, width: int) -> np.ndarray:
    if pixels.ndim == 2:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    if pixels.shape[2] == 3:
        pixels = np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])
    height = max(1, round(pixels.shape[0] * width / pixels.shape[1]))
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)


def blend(base: np.ndarray, overlay: np.ndarray, x: int, y: int, opacity: float
          ) -> np.ndarray:
    """Alpha-blend an RGBA ``overlay`` onto ``base`` at (x, y), clipped to the image."""
    h, w = base.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + overlay.shape[1], w), min(y + overlay.shape[0], h)
    if x0 >= x1 or y0 >= y1:
        return base
    part = overlay[y0 - y:y1 - y, x0 - x:x1 - x]
    alpha = part[..., 3:4].astype(np.float32) * (opacity / 255.0)
    colour = part[..., :3].astype(np.float32)
    out = base.copy()
    region = out[y0:y1, x0:x1]
    if base.ndim == 2:
        gray = colour @ np.array([0.299, 0.587, 0.114], np.float32)
        region[:] = (region * (1 - alpha[..., 0]) + gray * alpha[..., 0]).astype(np.uint8)
    else:
        rgb = region[..., :3].astype(np.float32)
        region[..., :3] = (rgb * (1 - alpha) + colour * alpha + 0.5).astype(np.uint8)
    return out
