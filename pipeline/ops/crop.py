"""crop: a box in pixels, or a width x height area placed by gravity."""

from __future__ import annotations

from typing import Any

from pipeline.errors import ImageRejected, InvalidRequest
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


class Crop(Operation):
    """With ``x``/``y`` the box is absolute (clamped to the image); without them the
    ``width`` x ``height`` area is placed at the focal point if given, else by
    ``gravity`` (default centre; ``attention``/``entropy``: where the image is
    interesting, pipeline/imaging/focus.py)."""

    name = "crop"
    params = (
        Param("width", int, minimum=1, maximum=16384),
        Param("height", int, minimum=1, maximum=16384),
        Param("x", int, -1, minimum=-1, maximum=65535, help="left edge (-1: use gravity)"),
        Param("y", int, -1, minimum=-1, maximum=65535, help="top edge (-1: use gravity)"),
        Param("gravity", str, "centre", choices=CROP_GRAVITIES),
        *FOCUS_PARAMS,
    )
    spec_words = ("crop",)

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        width, height = spec_size(args[0] if args else "")
        op: dict[str, Any] = {"op": "crop", "width": width, "height": height}
        if len(args) == 3:
            op.update(x=int(spec_number(word, args[1])), y=int(spec_number(word, args[2])))
        elif len(args) == 2:
            op["gravity"] = args[1]
        return op

    def check(self, args: dict[str, Any], limits: Limits) -> None:
        if (args["x"] < 0) != (args["y"] < 0):
            raise InvalidRequest("crop: give both x and y, or neither (gravity)", "bad_param")
        focus_of("crop", args)

    def load_scale(self, width: int, height: int, args: dict[str, Any]) -> float:
        return 1.0  # coordinates are in source pixels: never shrink before a crop

    def _box(self, width: int, height: int, args: dict[str, Any],
             pixels: Any = None) -> tuple[int, int, int, int]:
        w, h = min(args["width"], width), min(args["height"], height)
        if args["x"] >= 0:
            x, y = args["x"], args["y"]
            if x >= width or y >= height:
                raise ImageRejected(f"crop box at {x},{y} is outside the {width}x{height} "
                                    "image", "crop_outside_image")
            w, h = min(args["width"], width - x), min(args["height"], height - y)
        elif pixels is None:  # the size alone is asked: no need to look at the image
            x, y = 0, 0
        else:
            x, y = window(pixels, w, h, args["gravity"], focus_of("crop", args))
        return x, y, w, h

    def output_size(self, width: int, height: int, args: dict[str, Any]) -> tuple[int, int]:
        _, _, w, h = self._box(width, height, args)
        return w, h

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        x, y, w, h = self._box(frame.width, frame.height, args, frame.pixels)
        return frame.replace(frame.pixels[y:y + h, x:x + w])
