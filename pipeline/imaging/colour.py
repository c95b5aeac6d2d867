"""Colour parsing and alpha handling shared by several operations."""

from __future__ import annotations

import numpy as np

from pipeline.errors import InvalidRequest


def parse_colour(text: str) -> tuple[int, int, int]:
    """'#rrggbb' or 'rrggbb' -> (r, g, b)."""
    value = text.removeprefix("#")
    if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise InvalidRequest(f"colour must be #rrggbb, got {text!r}", "bad_param")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def background_for(pixels: np.ndarray, rgb: tuple[int, int, int]) -> tuple[int, ...]:
    """A border value matching the pixel layout (gray, RGB, or RGBA with opaque alpha)."""
    if pixels.ndim == 2:
        return (round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]),)
    if pixels.shape[2] == 4:
        return (*rgb, 255)
    return rgb


def flatten_alpha(pixels: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Composite RGBA pixels onto an opaque background colour."""
    rgb = pixels[..., :3].astype(np.uint16)
    alpha = pixels[..., 3:4].astype(np.uint16)
    bg = np.array(background, dtype=np.uint16)
    out = (rgb * alpha + bg * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)
