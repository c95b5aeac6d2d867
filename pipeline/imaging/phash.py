"""Perceptual hash (pHash, DCT based): near-identical images get near-identical hashes."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.imaging.sampling import every_nth


def phash(pixels: np.ndarray) -> str:
    """64-bit pHash as 16 hex digits: low-frequency DCT signs of a 32x32 gray image."""
    # Striding first (a free view) keeps the cost independent of the source size; the
    # area resize below still averages ~8x8 samples per hash cell.
    pixels = every_nth(pixels, max(1, min(pixels.shape[0], pixels.shape[1]) // 256))
    gray = pixels if pixels.ndim == 2 else cv2.cvtColor(
        np.ascontiguousarray(pixels[..., :3]), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low[1:] > np.median(low[1:])  # skip the DC term: brightness must not matter
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hashes (0 = same, > ~10 = different)."""
    return bin(int(a, 16) ^ int(b, 16)).count("1")
