"""resize: scale to a width and/or height with fit, fill, cover or exact semantics."""

from __future__ import annotations

from typing import Any

import cv2

from pipeline.errors import InvalidRequest
from pipeline.imaging.focus import CROP_GRAVITIES, window
from pipeline.ops.base import (
    FOCUS_PARAMS,
    Frame,
    Limits,
    Operation,
    Param,
    focus_of,
    spec_number,
    spec_size,
)

MODES = ("fit", "fill", "cover", "exact")


class Resize(Operation):
    """``fit``: inside the box, aspect kept. ``cover``: covers the box, aspect kept.
    ``fill``: covers the box, then cropped to it exactly where ``gravity`` or the focal
    point says (default centre). ``exact``: stretched.
    Never upscales unless ``upscale`` is true.
    """

    name = "resize"
    params = (
        Param("width", int, 0, minimum=0, maximum=16384, help="target width (0: from height)"),
        Param("height", int, 0, minimum=0, maximum=16384, help="target height (0: from width)"),
        Param("mode", str, "fit", choices=MODES, help="fit | fill | cover | exact"),
        Param("upscale", bool, False, help="allow enlarging small sources"),
        Param("gravity", str, "centre", choices=CROP_GRAVITIES,
              help="where fill crops: centre, a side or corner, attention or entropy"),
        *FOCUS_PARAMS,
    )
    spec_words = ("fit", "fill", "cover", "exact", "w", "h")

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        if word in ("w", "h"):
            value = int(spec_number(word, ":".join(args)))
            return {"op": "resize", ("width" if word == "w" else "height"): value}
        smart = [a for a in args if a in CROP_GRAVITIES]
        width, height = spec_size(":".join(a for a in args if a not in smart))
        return {"op": "resize", "width": width, "height": height, "mode": word,
                **({"gravity": smart[-1]} if smart else {})}

    def check(self, args: dict[str, Any], limits: Limits) -> None:
        if not args["width"] and not args["height"]:
            raise InvalidRequest("resize: give width, height or both", "missing_param")
        if args["mode"] in ("fill", "exact") and not (args["width"] and args["height"]):
            raise InvalidRequest(f"resize: mode {args['mode']} needs both width and height",
                                 "missing_param")
        focus_of("resize", args)
        box = (args["width"] or 1) * (args["height"] or 1)
        if args["width"] and args["height"] and box > limits.max_output_pixels:
            raise InvalidRequest(f"resize: {args['width']}x{args['height']} is more than the "
                                 f"{limits.max_output_pixels} output pixel limit",
                                 "output_too_large")

    def _scale(self, width: int, height: int, args: dict[str, Any]) -> tuple[float, float]:
        tw, th = args["width"], args["height"]
        mode = args["mode"]
        if mode == "exact":
            sx, sy = tw / width, th / height
        elif not tw or not th:
            s = tw / width if tw else th / height
            sx = sy = s
        elif mode == "fit":
            sx = sy = min(tw / width, th / height)
        else:  # cover and fill
            sx = sy = max(tw / width, th / height)
        if not args["upscale"]:
            sx, sy = min(sx, 1.0), min(sy, 1.0)
        return sx, sy

    def output_size(self, width: int, height: int, args: dict[str, Any]) -> tuple[int, int]:
        sx, sy = self._scale(width, height, args)
        w, h = max(1, round(width * sx)), max(1, round(height * sy))
        if args["mode"] == "fill":
            w, h = min(w, args["width"]), min(h, args["height"])
        return w, h

    def load_scale(self, width: int, height: int, args: dict[str, Any]) -> float:
        return min(1.0, max(self._scale(width, height, args)))

    def plain_downscale(self, args: dict[str, Any]) -> bool:
        return args.get("mode", "fit") != "fill"  # fill crops after scaling

    def downscale_from(self, larger: Frame, width: int, height: int) -> Frame:
        return larger.replace(cv2.resize(larger.pixels, (width, height),
                                         interpolation=cv2.INTER_AREA))

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        sx, sy = self._scale(frame.width, frame.height, args)
        w = max(1, round(frame.width * sx))
        h = max(1, round(frame.height * sy))
        pixels = frame.pixels
        if (w, h) != (frame.width, frame.height):
            shrinking = w * h < frame.width * frame.height
            interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
            pixels = cv2.resize(pixels, (w, h), interpolation=interpolation)
        if args["mode"] == "fill":
            cw, ch = min(w, args["width"]), min(h, args["height"])
            left, top = window(pixels, cw, ch, args.get("gravity", "centre"),
                               focus_of("resize", args))
            pixels = pixels[top:top + ch, left:left + cw]
        return frame.replace(pixels)
