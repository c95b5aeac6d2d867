"""Build small ICC v4 profiles (matrix/TRC RGB and grey) from primaries and curves.

Tests and benchmarks need tagged images in the spaces phones and editors write (Display
P3, Adobe RGB, ProPhoto) without downloading profiles; these are built the way the
specifications define them (ICC.1:2022, section 9 and 10), and LittleCMS reads them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

D50 = (0.9642, 1.0, 0.8249)
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                      [-0.7502, 1.7135, 0.0367],
                      [0.0389, -0.0685, 1.0296]])
#: IEC 61966-2-1 (sRGB) transfer curve as ICC parametric type 3 (g, a, b, c, d).
SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)


@dataclass(frozen=True)
class RgbSpace:
    """An RGB space: chromaticities of its primaries and white, and its curve (a gamma,
    or the five parameters of ICC parametric curve type 3)."""

    name: str
    red: tuple[float, float]
    green: tuple[float, float]
    blue: tuple[float, float]
    white: tuple[float, float]
    curve: float | tuple[float, float, float, float, float]


D65_WHITE = (0.3127, 0.3290)
DISPLAY_P3 = RgbSpace("Display P3", (0.680, 0.320), (0.265, 0.690), (0.150, 0.060),
                      D65_WHITE, SRGB_CURVE)
ADOBE_RGB = RgbSpace("Adobe RGB (1998)", (0.640, 0.330), (0.210, 0.710), (0.150, 0.060),
                     D65_WHITE, 563 / 256)
PROPHOTO_RGB = RgbSpace("ProPhoto RGB", (0.7347, 0.2653), (0.1596, 0.8404),
                        (0.0366, 0.0001), (0.3457, 0.3585), 1.8)


def rgb_profile(space: RgbSpace) -> bytes:
    """A display-class matrix/TRC profile of ``space`` (colorants adapted to D50)."""
    matrix = _adapted_matrix(space)
    curve = _curve(space.curve)
    return profile_bytes(b"mntr", b"RGB ", b"XYZ ", [
        (b"desc", text_tag(space.name)),
        (b"cprt", text_tag("No copyright, built by imgpipe")),
        (b"wtpt", xyz_tag(D50)),
        (b"chad", _sf32(_adaptation(_xy_toxyz_tag(space.white)).ravel())),
        (b"rXYZ", xyz_tag(matrix[:, 0])), (b"gXYZ", xyz_tag(matrix[:, 1])),
        (b"bXYZ", xyz_tag(matrix[:, 2])),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
    ])


def grey_profile(gamma: float, name: str = "") -> bytes:
    """A display-class grey profile with a pure ``gamma`` curve and a D50 white."""
    return profile_bytes(b"mntr", b"GRAY", b"XYZ ", [
        (b"desc", text_tag(name or f"Grey gamma {gamma:g}")),
        (b"cprt", text_tag("No copyright, built by imgpipe")),
        (b"wtpt", xyz_tag(D50)),
        (b"kTRC", _curve(gamma)),
    ])


def profile_bytes(device_class: bytes, colour_space: bytes, pcs: bytes,
                  tags: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v4 profile from already encoded tags (tests build LUT profiles with it)."""
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, data = [], b""
    for signature, body in tags:
        entries.append(struct.pack(">4sII", signature, offset + len(data), len(body)))
        data += body + b"\0" * (-len(body) % 4)
    total = offset + len(data)
    header = struct.pack(">I4sI4s4s4s6H4sI4s4s4sQI3i4s16s28s",
                         total, b"lcms", 0x04300000, device_class, colour_space, pcs,
                         2026, 1, 1, 0, 0, 0, b"acsp", 0, b"", b"", b"", 0, 0,
                         *(_s15(v) for v in D50), b"", b"", b"")
    return header + struct.pack(">I", len(tags)) + b"".join(entries) + data


def _s15(value: float) -> int:
    return round(value * 65536)


def xyz_tag(values) -> bytes:
    """An XYZType tag."""
    return b"XYZ \0\0\0\0" + struct.pack(">3i", *(_s15(v) for v in values))


def _sf32(values) -> bytes:
    return b"sf32\0\0\0\0" + struct.pack(f">{len(values)}i", *(_s15(v) for v in values))


def text_tag(text: str) -> bytes:
    """A multiLocalizedUnicodeType tag (en-US)."""
    encoded = text.encode("utf-16-be")
    return (b"mluc\0\0\0\0" + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(encoded), 28)
            + encoded)


def _curve(curve: float | tuple[float, ...]) -> bytes:
    if isinstance(curve, tuple):
        return b"para\0\0\0\0" + struct.pack(">HH5i", 3, 0, *(_s15(v) for v in curve))
    return b"para\0\0\0\0" + struct.pack(">HHi", 0, 0, _s15(curve))


def _xy_toxyz_tag(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _adaptation(white: np.ndarray) -> np.ndarray:
    """Bradford chromatic adaptation from ``white`` to D50."""
    source, target = _BRADFORD @ white, _BRADFORD @ np.array(D50)
    return np.linalg.inv(_BRADFORD) @ np.diag(target / source) @ _BRADFORD


def _adapted_matrix(space: RgbSpace) -> np.ndarray:
    """RGB -> XYZ(D50): columns are the D50-adapted colorants."""
    primaries = np.stack([_xy_toxyz_tag(p) for p in (space.red, space.green, space.blue)],
                         axis=1)
    white = _xy_toxyz_tag(space.white)
    scale = np.linalg.solve(primaries, white)
    return _adaptation(white) @ (primaries * scale)
