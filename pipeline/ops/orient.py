"""orient: apply (default) or ignore the source's EXIF orientation.

Every chain starts with an implicit ``{"op": "orient", "auto": true}`` unless it has an
orient op of its own, so outputs are upright the way viewers show the source.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pipeline.ops.base import Frame, Operation, Param

# EXIF orientation -> (rotate code or None, flip code or None), applied in that order.
_TRANSFORMS = {
    2: (None, 1),
    3: (cv2.ROTATE_180, None),
    4: (None, 0),
    5: (cv2.ROTATE_90_CLOCKWISE, 1),
    6: (cv2.ROTATE_90_CLOCKWISE, None),
    7: (cv2.ROTATE_90_COUNTERCLOCKWISE, 1),
    8: (cv2.ROTATE_90_COUNTERCLOCKWISE, None),
}


class Orient(Operation):
    name = "orient"
    scale_invariant = True
    params = (Param("auto", bool, True, help="apply the EXIF orientation tag"),)
    spec_words = ("noorient",)

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        return {"op": "orient", "auto": False}

    def output_size(self, width: int, height: int, args: dict[str, Any]) -> tuple[int, int]:
        return width, height  # frames carry the orientation; see Frame.orientation

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        if not args["auto"] or frame.orientation not in _TRANSFORMS:
            return frame
        rotation, flip = _TRANSFORMS[frame.orientation]
        pixels = frame.pixels
        if rotation is not None:
            pixels = cv2.rotate(pixels, rotation)
        if flip is not None:
            pixels = cv2.flip(pixels, flip)
        oriented = frame.replace(np.ascontiguousarray(pixels))
        oriented.orientation = 1
        return oriented
