"""Pixel filters: blur, sharpen, brightness/contrast and Canny edges."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pipeline.errors import InvalidRequest
from pipeline.ops.base import Frame, Limits, Operation, Param


class Blur(Operation):
    """Gaussian blur with standard deviation ``sigma`` pixels."""

    name = "blur"
    params = (Param("sigma", float, 2.0, minimum=0.1, maximum=100.0),)

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        return frame.replace(cv2.GaussianBlur(frame.pixels, (0, 0), args["sigma"]))


class Sharpen(Operation):
    """Unsharp mask: ``pixels + amount * (pixels - blur(pixels, sigma))``."""

    name = "sharpen"
    params = (
        Param("amount", float, 1.0, minimum=0.0, maximum=10.0),
        Param("sigma", float, 1.0, minimum=0.1, maximum=20.0),
    )

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        blurred = cv2.GaussianBlur(frame.pixels, (0, 0), args["sigma"])
        amount = args["amount"]
        sharpened = cv2.addWeighted(frame.pixels, 1.0 + amount, blurred, -amount, 0)
        if frame.has_alpha:
            sharpened[..., 3] = frame.pixels[..., 3]
        return frame.replace(sharpened)


class Adjust(Operation):
    """``out = (in - 128) * contrast + 128 + brightness * 255`` per colour channel."""

    name = "adjust"
    scale_invariant = True
    params = (
        Param("brightness", float, 0.0, minimum=-1.0, maximum=1.0),
        Param("contrast", float, 1.0, minimum=0.0, maximum=4.0),
    )

    def check(self, args: dict[str, Any], limits: Limits) -> None:
        if args["brightness"] == 0.0 and args["contrast"] == 1.0:
            raise InvalidRequest("adjust: set brightness and/or contrast", "missing_param")

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        contrast = args["contrast"]
        offset = 128 * (1 - contrast) + args["brightness"] * 255
        colour = frame.pixels if not frame.has_alpha else frame.pixels[..., :3]
        adjusted = cv2.convertScaleAbs(colour, alpha=contrast, beta=offset)
        if frame.has_alpha:
            adjusted = np.dstack([adjusted, frame.pixels[..., 3]])
        return frame.replace(adjusted)


class Edges(Operation):
    """Canny edge map (white edges on black), from the luminance."""

    name = "edges"
    params = (
        Param("low", float, 100.0, minimum=0.0, maximum=1000.0),
        Param("high", float, 200.0, minimum=0.0, maximum=1000.0),
    )

    def check(self, args: dict[str, Any], limits: Limits) -> None:
        if args["low"] > args["high"]:
            raise InvalidRequest("edges: low must not exceed high", "bad_param")

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        pixels = frame.pixels
        gray = pixels if pixels.ndim == 2 else cv2.cvtColor(
            np.ascontiguousarray(pixels[..., :3]), cv2.COLOR_RGB2GRAY)
        return frame.replace(cv2.Canny(gray, args["low"], args["high"]))
