"""Where a box sits inside a larger area (crop and watermark placement)."""

from __future__ import annotations

GRAVITIES = ("centre", "north", "south", "east", "west", "northeast", "northwest",
             "southeast", "southwest")


def place(outer_w: int, outer_h: int, inner_w: int, inner_h: int, gravity: str,
          margin: int = 0) -> tuple[int, int]:
    """Top-left corner of an ``inner`` box placed in the ``outer`` area by ``gravity``."""
    x = (outer_w - inner_w) // 2
    y = (outer_h - inner_h) // 2
    if "west" in gravity:
        x = margin
    elif "east" in gravity:
        x = outer_w - inner_w - margin
    if gravity.startswith("north"):
        y = margin
    elif gravity.startswith("south"):
        y = outer_h - inner_h - margin
    return x, y
