"""Decoding every frame of an animated GIF or WebP, within bounds.

Only variants that ask for ``encode.animated`` pay for this; every other variant works
on the first frame (the ordinary decode). The frame count and the pixels of all frames
together are checked from the header before any frame is decoded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from pipeline.errors import ImageRejected
from pipeline.imaging.decode import decoder_failures, open_checked
from pipeline.ops.base import Frame

ANIMATED_FORMATS = frozenset({"GIF", "WEBP"})
#: A frame without a duration (0) is shown this long, as browsers do.
DEFAULT_DURATION_MS = 100


@dataclass(frozen=True)
class Animation:
    """Composited frames (all one size), each shown ``durations[i]`` ms; ``loop`` 0 is
    forever."""

    frames: list[Frame]
    durations: list[int]
    loop: int


def decode_animation(data: bytes, *, max_pixels: int, max_frames: int,
                     max_total_pixels: int) -> Animation | None:
    """Every frame of ``data`` composited onto the canvas as RGBA (in the source's
    profile, like the first-frame decode); None for a still image; or ImageRejected
    (``too_many_frames``, ``animation_too_large``, or a decoder's code)."""
    with open_checked(io.BytesIO(data), max_pixels) as image:
        if image.format not in ANIMATED_FORMATS:
            return None
        with decoder_failures(image.format):
            count = max(1, int(getattr(image, "n_frames", 1) or 1))
        width, height = image.size
        if count == 1:
            return None
        if count > max_frames:
            raise ImageRejected(f"animation has {count} frames, more than the {max_frames} "
                                "allowed", "too_many_frames")
        if count * width * height > max_total_pixels:
            raise ImageRejected(f"animation has {count} frames of {width}x{height}, "
                                f"{count * width * height} pixels in all, more than the "
                                f"{max_total_pixels} allowed", "animation_too_large")
        profile = image.info.get("icc_profile") or None
        loop = int(image.info.get("loop", 0) or 0)
        frames, durations = [], []
        with decoder_failures(image.format):
            for index in range(count):
                image.seek(index)
                pixels = np.asarray(image.convert("RGBA"))
                # The chain's own to_srgb step converts (or keeps) the colour space.
                frames.append(Frame(pixels, image.format.lower(), None, profile, 1))
                durations.append(int(image.info.get("duration") or DEFAULT_DURATION_MS))
    return Animation(frames, durations, loop)
