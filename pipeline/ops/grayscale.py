"""grayscale: luminance only (alpha, if any, is kept)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pipeline.ops.base import Frame, Operation


class Grayscale(Operation):
    name = "grayscale"
    scale_invariant = True
    spec_words = ("gray", "grayscale")

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        return {"op": "grayscale"}

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        pixels = frame.pixels
        if pixels.ndim == 2:
            return frame
        gray = cv2.cvtColor(np.ascontiguousarray(pixels[..., :3]), cv2.COLOR_RGB2GRAY)
        if frame.has_alpha:
            return frame.replace(np.dstack([gray, gray, gray, pixels[..., 3]]))
        return frame.replace(gray)
