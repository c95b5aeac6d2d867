"""What a page paints before the image arrives: a BlurHash and the dominant colour.

Both come from one tiny sRGB copy of the source (at most SUMMARY_EDGE pixels on its
longest side), so they cost the same for a 256 px icon and a 48 MP photo. BlurHash
(https://blurha.sh) was chosen over ThumbHash because every client library speaks it
(Mastodon, Unsplash, the iOS/Android/web decoders) and it is the smaller string; see
docs/operations.md for the measured cost.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pipeline.imaging.icc import to_srgb
from pipeline.imaging.sampling import every_nth

SUMMARY_EDGE = 32
_BASE83 = ("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
           "#$%*+,-.:;=?@[]^_{|}~")
_DIGIT = {ch: i for i, ch in enumerate(_BASE83)}
#: Components along the longer side and the shorter side (28 characters in all).
_LONG, _SHORT = 4, 3


def placeholders(pixels: np.ndarray, icc_profile: bytes | None) -> dict[str, str]:
    """``placeholder`` (BlurHash) and ``colour`` (#rrggbb) of decoded source pixels in
    the colour space ``icc_profile`` describes; both are judged in sRGB."""
    small = to_srgb(tiny(pixels), icc_profile)
    rgb = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB) if small.ndim == 2 else small[..., :3]
    alpha = small[..., 3] if small.ndim == 3 and small.shape[2] == 4 else None
    rgb = np.ascontiguousarray(rgb)
    return {"placeholder": blurhash(rgb), "colour": dominant_colour(rgb, alpha)}


def tiny(pixels: np.ndarray) -> np.ndarray:
    """A copy at most SUMMARY_EDGE on its longest side, channels kept (strided first, so
    the cost does not grow with the source)."""
    height, width = pixels.shape[:2]
    pixels = every_nth(pixels, max(1, max(width, height) // (SUMMARY_EDGE * 8)))
    height, width = pixels.shape[:2]
    scale = min(1.0, SUMMARY_EDGE / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def _to_linear(srgb: np.ndarray) -> np.ndarray:
    value = srgb.astype(np.float64) / 255.0
    return np.where(value <= 0.04045, value / 12.92, ((value + 0.055) / 1.055) ** 2.4)


def _to_srgb(linear: float) -> int:
    value = min(1.0, max(0.0, linear))
    srgb = value * 12.92 if value <= 0.0031308 else 1.055 * value ** (1 / 2.4) - 0.055
    return int(srgb * 255 + 0.5)


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - 1 - i)) % 83] for i in range(length))


def blurhash(rgb: np.ndarray) -> str:
    """The BlurHash of an RGB image (4 x 3 components, landscape; 3 x 4 portrait)."""
    height, width = rgb.shape[:2]
    cx, cy = (_LONG, _SHORT) if width >= height else (_SHORT, _LONG)
    linear = _to_linear(rgb)
    xs = np.cos(np.pi * np.outer(np.arange(cx), np.arange(width)) / width)  # cx x W
    ys = np.cos(np.pi * np.outer(np.arange(cy), np.arange(height)) / height)  # cy x H
    # factors[j, i, c] = mean over pixels of cos_i(x) * cos_j(y) * linear[y, x, c]
    factors = np.einsum("jy,ix,yxc->jic", ys, xs, linear) / (width * height)
    factors[1:, :, :] *= 2
    factors[:1, 1:, :] *= 2
    dc, ac = factors[0, 0], np.delete(factors.reshape(-1, 3), 0, axis=0)
    largest = float(np.abs(ac).max()) if ac.size else 0.0
    quantised_max = max(0, min(82, int(largest * 166 - 0.5))) if ac.size else 0
    maximum = (quantised_max + 1) / 166
    parts = [_base83((cx - 1) + (cy - 1) * 9, 1), _base83(quantised_max, 1),
             _base83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4)]
    for r, g, b in ac:
        quant = [max(0, min(18, math.floor(_sign_pow(v / maximum, 0.5) * 9 + 9.5)))
                 for v in (r, g, b)]
        parts.append(_base83(quant[0] * 361 + quant[1] * 19 + quant[2], 2))
    return "".join(parts)


def _sign_pow(value: float, exponent: float) -> float:
    return math.copysign(abs(value) ** exponent, value)


def blurhash_components(text: str) -> np.ndarray:
    """The colour factors a BlurHash holds (cy x cx x 3, linear light): what a client's
    decoder paints from; ValueError if ``text`` is no BlurHash."""
    if len(text) < 6 or any(ch not in _DIGIT for ch in text):
        raise ValueError("not a BlurHash")
    size = _DIGIT[text[0]]
    cx, cy = size % 9 + 1, size // 9 + 1
    if len(text) != 4 + 2 * cx * cy:
        raise ValueError("BlurHash length does not match its size flag")
    maximum = (_DIGIT[text[1]] + 1) / 166
    factors = np.zeros((cy * cx, 3))
    dc = _decode83(text[2:6])
    factors[0] = _to_linear(np.array([dc >> 16, (dc >> 8) & 255, dc & 255]))
    for index in range(1, cx * cy):
        value = _decode83(text[4 + 2 * index:6 + 2 * index])
        quant = (value // 361, (value // 19) % 19, value % 19)
        factors[index] = [_sign_pow((q - 9) / 9, 2) * maximum for q in quant]
    return factors.reshape(cy, cx, 3)


def _decode83(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 83 + _DIGIT[ch]
    return value


def dominant_colour(rgb: np.ndarray, alpha: np.ndarray | None = None) -> str:
    """``#rrggbb``: the mean colour of the most common of 4 x 4 x 4 colour boxes (a
    background, a sky), ignoring pixels more than half transparent."""
    pixels = rgb.reshape(-1, 3)
    if alpha is not None:
        opaque = alpha.reshape(-1) >= 128
        pixels = pixels[opaque] if opaque.any() else pixels
    boxes = (pixels // 64).astype(np.int32) @ np.array([16, 4, 1])
    common = np.bincount(boxes, minlength=64).argmax()
    r, g, b = pixels[boxes == common].mean(axis=0).round().astype(int)
    return f"#{r:02x}{g:02x}{b:02x}"
