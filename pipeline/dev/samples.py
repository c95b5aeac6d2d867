"""Deterministic photo-like sample images (gradients, shapes, texture, noise)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def photo_like(width: int, height: int, seed: int) -> np.ndarray:
    """An RGB uint8 image with smooth regions, edges and fine detail, like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.empty((height, width, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 6.3)
        base[..., c] = 127 + 90 * np.sin(fx * x / width * 6.28 + phase) * np.cos(
            fy * y / height * 6.28)
    image = np.clip(base, 0, 255).astype(np.uint8)
    for _ in range(12):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        short = min(width, height)
        radius = int(rng.integers(max(2, short // 20), max(3, short // 4)))
        if rng.random() < 0.5:
            cv2.circle(image, centre, radius, colour, -1, lineType=cv2.LINE_AA)
        else:
            corner = (centre[0] + radius, centre[1] + radius // 2)
            cv2.rectangle(image, centre, corner, colour, -1)
    noise = rng.normal(0, 6, image.shape).astype(np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def write_samples(folder: Path, count: int, width: int = 1600, height: int = 1200,
                  seed: int = 7) -> list[Path]:
    """Write ``count`` JPEG samples into ``folder`` (reused if already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"sample-{i:03d}-{width}x{height}.jpg"
        if not path.exists():
            rgb = photo_like(width, height, seed + i)
            cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths
