"""to_srgb: convert pixels from the source's embedded ICC profile to sRGB.

Every chain starts with an implicit ``{"op": "to_srgb"}`` unless its encode step asks
for ``colour_space: source``, so outputs look the way a colour-managed viewer shows the
source. Untagged and sRGB-tagged frames pass through untouched.
"""

from __future__ import annotations

from typing import Any

from pipeline.imaging import icc
from pipeline.ops.base import Frame, Operation


class ToSrgb(Operation):
    name = "to_srgb"
    scale_invariant = True
    spec_words = ("srgb",)

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        return {"op": "to_srgb"}

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        pixels = icc.to_srgb(frame.pixels, frame.icc_profile)
        if pixels is frame.pixels:
            return frame  # untagged, already sRGB, or a profile viewers ignore
        converted = frame.replace(pixels)
        converted.icc_profile = None  # the pixels are sRGB now: no tag needed
        return converted
