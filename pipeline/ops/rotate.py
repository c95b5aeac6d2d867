"""rotate (any angle, exact for multiples of 90) and flip."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from pipeline.imaging.colour import background_for, parse_colour
from pipeline.ops.base import Frame, Limits, Operation, Param, spec_number

_RIGHT_ANGLES = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180,
                 270: cv2.ROTATE_90_CLOCKWISE}


_FLIPS = {"h": "horizontal", "v": "vertical", "both": "both"}


class Rotate(Operation):
    """Counter-clockwise by ``angle`` degrees; the canvas grows to hold the result."""

    name = "rotate"
    scale_invariant = True
    params = (
        Param("angle", float, minimum=-360, maximum=360),
        Param("background", str, "#ffffff", help="fill for uncovered corners"),
    )
    spec_words = ("rotate",)

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        return {"op": "rotate", "angle": spec_number(word, ":".join(args))}

    def check(self, args: dict[str, Any], limits: Limits) -> None:
        parse_colour(args["background"])

    def output_size(self, width: int, height: int, args: dict[str, Any]) -> tuple[int, int]:
        angle = args["angle"] % 360
        if angle in (90, 270):
            return height, width
        if angle in (0, 180):
            return width, height
        rad = math.radians(angle)
        cos, sin = abs(math.cos(rad)), abs(math.sin(rad))
        return (math.ceil(width * cos + height * sin), math.ceil(width * sin + height * cos))

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        angle = args["angle"] % 360
        if angle == 0:
            return frame
        if angle in _RIGHT_ANGLES:
            return frame.replace(cv2.rotate(frame.pixels, _RIGHT_ANGLES[int(angle)]))
        w, h = self.output_size(frame.width, frame.height, args)
        matrix = cv2.getRotationMatrix2D((frame.width / 2, frame.height / 2), angle, 1.0)
        matrix[0, 2] += (w - frame.width) / 2
        matrix[1, 2] += (h - frame.height) / 2
        border = background_for(frame.pixels, parse_colour(args["background"]))
        pixels = cv2.warpAffine(frame.pixels, matrix, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=border)
        return frame.replace(pixels)


class Flip(Operation):
    name = "flip"
    scale_invariant = True
    params = (Param("direction", str, "horizontal",
                    choices=("horizontal", "vertical", "both")),)
    spec_words = ("flip",)

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        direction = ":".join(args)
        return {"op": "flip", "direction": _FLIPS.get(direction, direction)}

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        code = {"horizontal": 1, "vertical": 0, "both": -1}[args["direction"]]
        return frame.replace(np.ascontiguousarray(cv2.flip(frame.pixels, code)))
