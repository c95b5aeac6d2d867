"""thumbnail: the common case in one op: fit a square box, or fill it exactly."""

from __future__ import annotations

from typing import Any

from pipeline.imaging.focus import CROP_GRAVITIES
from pipeline.ops.base import FOCUS_PARAMS, Frame, Limits, Operation, Param, spec_number
from pipeline.ops.resize import Resize

_resize = Resize()


class Thumbnail(Operation):
    name = "thumbnail"
    params = (
        Param("size", int, minimum=1, maximum=4096, help="edge of the square box"),
        Param("square", bool, False, help="fill the box exactly (cropped by gravity)"),
        Param("gravity", str, "centre", choices=CROP_GRAVITIES,
              help="where a square thumbnail crops: centre, a side, attention, entropy"),
        *FOCUS_PARAMS,
    )
    spec_words = ("thumbnail",)

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        smart = [a for a in args[1:] if a in CROP_GRAVITIES]
        return {"op": "thumbnail", "size": int(spec_number(word, args[0] if args else "")),
                "square": "square" in args[1:], **({"gravity": smart[-1]} if smart else {})}

    def _resize_args(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"width": args["size"], "height": args["size"],
                "mode": "fill" if args["square"] else "fit", "upscale": False,
                "gravity": args.get("gravity", "centre"),
                "focus_x": args.get("focus_x", -1.0), "focus_y": args.get("focus_y", -1.0)}

    def output_size(self, width: int, height: int, args: dict[str, Any]) -> tuple[int, int]:
        return _resize.output_size(width, height, self._resize_args(args))

    def load_scale(self, width: int, height: int, args: dict[str, Any]) -> float:
        return _resize.load_scale(width, height, self._resize_args(args))

    def check(self, args: dict[str, Any], limits: Limits) -> None:
        _resize.check(self._resize_args(args), limits)

    def plain_downscale(self, args: dict[str, Any]) -> bool:
        return not args.get("square", False)  # a square thumbnail crops

    def downscale_from(self, larger: Frame, width: int, height: int) -> Frame:
        return _resize.downscale_from(larger, width, height)

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        return _resize.apply(frame, self._resize_args(args))
